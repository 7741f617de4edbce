// Small deterministic problems for the MPI tests: least-squares data shards
// and a two-span parameter replica.
#pragma once

#include <zoopt/kerzoo.hpp>

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace zoopt_mpi_test {

/// Uniform values in [-1, 1) from a splitmix64 stream (portable, seeded).
class Stream {
 public:
  explicit Stream(std::uint64_t seed) : s_(seed) {}
  double next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return 2.0 * static_cast<double>(z >> 11) * 0x1.0p-53 - 1.0;
  }

 private:
  std::uint64_t s_;
};

/// One data shard: rows of a least-squares problem, different per shard id.
struct Shard {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> a;
  std::vector<double> b;
};

inline Shard make_shard(int id, std::size_t cols, std::size_t rows = 6) {
  Shard s{rows, cols, std::vector<double>(rows * cols), std::vector<double>(rows)};
  Stream g(1000 + static_cast<std::uint64_t>(id));
  for (double& v : s.a) v = g.next();
  for (double& v : s.b) v = 2.0 * g.next() + id;
  return s;
}

/// Mean squared residual of the shard at theta.
template <class T>
double shard_loss(const Shard& s, std::span<const T> theta) {
  double total = 0.0;
  for (std::size_t i = 0; i < s.rows; ++i) {
    double r = -s.b[i];
    for (std::size_t j = 0; j < s.cols; ++j)
      r += s.a[i * s.cols + j] * static_cast<double>(theta[j]);
    total += r * r;
  }
  return total / static_cast<double>(s.rows);
}

/// Mean of the shards' losses, summed in shard order then divided once: what
/// a single process computes when it averages the ranks' shards.
template <class T>
double mean_loss(const std::vector<Shard>& shards, std::span<const T> theta) {
  double sum = 0.0;
  for (const Shard& s : shards) sum += shard_loss(s, theta);
  return sum / static_cast<double>(shards.size());
}

/// Parameters in one buffer, exposed as a two-span ParameterSet ("w" with
/// weight decay and the matrix shape `shape`, if any; "b" without).
template <class T>
struct Replica {
  std::vector<T> storage;
  zoopt::ParameterSet<T> set;

  Replica(std::size_t d, std::size_t bias, std::uint64_t seed, zoopt::MatrixShape shape = {})
      : storage(d) {
    Stream g(seed);
    for (T& v : storage) v = static_cast<T>(0.5 * g.next());
    set.add("w", std::span<T>(storage.data(), d - bias), {.shape = shape});
    set.add("b", std::span<T>(storage.data() + (d - bias), bias), {.weight_decay = false});
  }
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  [[nodiscard]] std::span<const T> values() const { return storage; }
};

inline std::vector<Shard> all_shards(int ranks, std::size_t cols) {
  std::vector<Shard> shards;
  for (int r = 0; r < ranks; ++r) shards.push_back(make_shard(r, cols));
  return shards;
}

}  // namespace zoopt_mpi_test
