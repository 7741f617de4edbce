// Element noise z_key(g) for a sampler, one Philox block at a time.
#pragma once

#include <cstdint>

#include "zoopt/random/philox.hpp"

namespace zoopt {

/// Concept of a direction sampler: a type with a static
/// `generate(const uint32_t (&)[4], C (&)[4])` that maps four Philox words to
/// four direction entries with E[z] = 0 and E[z^2] = 1.
template <class S>
concept DirectionSampler = requires(const std::uint32_t (&w)[4], float (&zf)[4], double (&zd)[4]) {
  S::generate(w, zf);
  S::generate(w, zd);
};

/// The four noise values of block `block` (elements 4*block .. 4*block+3).
template <class Sampler, class C>
ZOOPT_HD inline void noise_block(const NoiseKey& key, std::uint64_t block, C (&z)[4]) {
  const auto r = random::philox_block(key, block);
  const std::uint32_t w[4] = {r.v[0], r.v[1], r.v[2], r.v[3]};
  Sampler::generate(w, z);
}

/// Noise of one element with global index g (slow path; passes use blocks).
template <class Sampler, class C>
ZOOPT_HD inline C noise_at(const NoiseKey& key, std::uint64_t g) {
  C z[4];
  noise_block<Sampler>(key, g / 4, z);
  return z[g % 4];
}

}  // namespace zoopt
