// Helpers shared by the core tests.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <zoopt/kerzoo.hpp>

namespace zt {

/// Exception matcher for CHECK_THROWS_MATCHES: what() contains `part`.
class WhatContains : public Catch::MatcherBase<std::exception> {
 public:
  explicit WhatContains(std::string part) : part_(std::move(part)) {}
  bool match(const std::exception& e) const override {
    return std::string(e.what()).find(part_) != std::string::npos;
  }
  std::string describe() const override { return "what() contains \"" + part_ + "\""; }

 private:
  std::string part_;
};

/// True when both ranges hold the same bytes (so -0.0 != +0.0 and NaN
/// payloads count).
template <class T>
bool same_bits(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return same_bits(std::span<const T>(a), std::span<const T>(b));
}

/// Silences an optimizer's warnings (tests use parameter values that trigger
/// the eps-below-half-an-ulp warning on purpose), where the optimizer has a
/// warning sink.
template <class Opt>
Opt& quiet(Opt& opt) {
  if constexpr (requires { opt.set_warning_sink([](const std::string&) {}); }) {
    opt.set_warning_sink([](const std::string&) {});
  }
  return opt;
}

/// Optimizer parameters with the fields MeZO and KerZOO share.
template <class Opt>
typename Opt::Params make_params(double lr, double eps, std::uint32_t directions,
                                 std::uint64_t seed, double weight_decay = 0.0) {
  typename Opt::Params p;
  p.lr = lr;
  p.eps = eps;
  p.directions = directions;
  p.seed = seed;
  p.weight_decay = weight_decay;
  return p;
}

/// f(x) = 1/2 sum_i lambda_i (x_i - c_i)^2 + sum_i b_i x_i, accumulated in
/// double in element order (so a split into spans sums in the same order).
struct DiagQuadratic {
  std::vector<double> lambda, center, b;

  template <class T>
  double operator()(std::span<const T> x) const {
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) s += term(i, static_cast<double>(x[i]));
    return s;
  }
  template <class T>
  double operator()(const zoopt::ParameterSet<T>& set) const {
    double s = 0.0;
    std::size_t g = 0;
    set.for_each([&](const std::string&, std::span<T> part) {
      for (const T v : part) s += term(g++, static_cast<double>(v));
    });
    return s;
  }
  [[nodiscard]] double term(std::size_t i, double v) const {
    const double u = v - center[i];
    return 0.5 * lambda[i] * u * u + b[i] * v;
  }
};

/// Parameter values that stress an exact restore: far below eps, signed
/// zeros, subnormals, values just below powers of two (a perturbation
/// crosses into a coarser binade), values near eps, and large values.
template <class T>
std::vector<T> stress_values() {
  using L = std::numeric_limits<T>;
  const T one = T(1);
  return {T(1e-30),
          T(-3e-25),
          T(-0.0),
          T(0.0),
          L::denorm_min(),
          -L::denorm_min(),
          L::min() / T(3),  // subnormal
          L::min(),
          std::nextafter(one, T(0)),
          std::nextafter(T(2), T(0)),
          -std::nextafter(T(0.5), T(0)),
          std::nextafter(T(0.25), T(0)),
          -std::nextafter(T(1024), T(0)),
          T(1e-3),
          T(-7e-4),
          T(3e-3),
          T(0.1),
          T(-1.5),
          T(3.14159),
          T(1e30),
          -L::max() / T(2),
          L::max() / T(4),
          T(12345.678),
          T(-2e-6)};
}

/// Values cycling through stress_values(), d of them.
template <class T>
std::vector<T> stress_vector(std::size_t d) {
  const auto base = stress_values<T>();
  std::vector<T> v(d);
  for (std::size_t i = 0; i < d; ++i) v[i] = base[(i * 7) % base.size()];
  return v;
}

}  // namespace zt
