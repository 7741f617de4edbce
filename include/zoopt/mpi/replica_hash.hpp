// The hash Distributed compares across ranks to find replicas that diverged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "zoopt/params/parameter_set.hpp"

namespace zoopt::mpi {

/// A cheap 64-bit hash of the parameters' bits (and of the span sizes): four
/// independent multiply-xor lanes over 8-byte words, one read of the
/// parameters. Any single changed word always changes the hash.
template <class T>
[[nodiscard]] std::uint64_t parameter_hash(std::span<const SpanView<T>> views) noexcept {
  constexpr std::uint64_t prime = 0x9e3779b97f4a7c15ULL;  // odd: a bijection mod 2^64
  std::uint64_t lane[4] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
                           0x082efa98ec4e6c89ULL};
  auto mix = [&](int j, std::uint64_t w) { lane[j] = (lane[j] ^ w) * prime; };
  for (const SpanView<T>& v : views) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data);
    const std::size_t n = v.size * sizeof(T);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      std::uint64_t w[4];
      std::memcpy(w, bytes + i, 32);
      mix(0, w[0]);
      mix(1, w[1]);
      mix(2, w[2]);
      mix(3, w[3]);
    }
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, bytes + i, 8);
      mix(0, w);
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes + i, n - i);
    mix(1, tail);
    mix(2, static_cast<std::uint64_t>(v.size));
  }
  std::uint64_t h = 0;
  for (const std::uint64_t l : lane) {
    h ^= l;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
  }
  return h;
}

}  // namespace zoopt::mpi
