// Helpers shared by the exactness tests.
#pragma once

#include <unistd.h>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "zoopt/checkpoint/checkpoint.hpp"
#include "zoopt/kerzoo.hpp"
#include "zoopt/replay/replay.hpp"
#include "zoopt/replay/update_log.hpp"

namespace exact_test {

template <class T>
T from_double(double v) {
  if constexpr (zoopt::Real<T>) {
    return static_cast<T>(v);
  } else {
    return T(static_cast<float>(v));
  }
}

template <class T>
double to_double(T v) {
  return static_cast<double>(static_cast<float>(v));
}
inline double to_double(double v) { return v; }

/// theta ~ N(0, sigma^2) with a fixed seed, plus a few hard elements at the
/// front: +-0, values far below eps, subnormal-ish, near binade boundaries.
template <class T>
std::vector<T> weights(std::size_t n, std::uint64_t seed, double sigma = 0.02, bool hard = true) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal(0.0, sigma);
  std::vector<T> v(n);
  for (auto& x : v) x = from_double<T>(normal(gen));
  if (hard && n >= 16) {
    const double special[] = {0.0,   -0.0,   1e-7, -3e-6, 1e-5, 2.0e-3, -0.0009765625, 0.125,
                              -0.25, 0.0625, 1.0,  -2.0,  5e-4, 3e-8,   6e-5,          -1.5e-5};
    for (std::size_t i = 0; i < 16; ++i) v[i] = from_double<T>(special[i]);
  }
  return v;
}

/// Index of the first element whose bits differ, or -1.
template <class T>
long first_difference(std::span<const T> a, std::span<const T> b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<zoopt::bits_t<T>>(a[i]) != std::bit_cast<zoopt::bits_t<T>>(b[i])) {
      return static_cast<long>(i);
    }
  }
  return -1;
}
template <class T>
long first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  return first_difference<T>(std::span<const T>(a), std::span<const T>(b));
}

/// A smooth loss with a minimum at target_i = 0.01 * sin(i):
/// L = sum_i (1 + (i % 3)) (theta_i - target_i)^2 + 0.1 sum_i theta_i^4.
struct Quadratic {
  template <class Span>
  double operator()(const Span& p) const {
    double sum = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double x = to_double(p[i]);
      const double d = x - 0.01 * std::sin(static_cast<double>(i));
      sum += (1.0 + static_cast<double>(i % 3)) * d * d + 0.1 * x * x * x * x;
    }
    return sum;
  }
  template <class T>
  double operator()(const zoopt::ParameterSet<T>& set) const {
    double sum = 0.0;
    for (std::size_t s = 0; s < set.size(); ++s) {
      const auto sp = set.span(s);
      sum += (*this)(std::span<const T>(sp.data(), sp.size())) * static_cast<double>(s + 1);
    }
    return sum;
  }
};

/// A temporary file path removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("zoopt_exact_" + std::to_string(::getpid()) + "_" + name))
                 .string()) {}
  ~TempFile() { std::remove(path.c_str()); }
};

}  // namespace exact_test
