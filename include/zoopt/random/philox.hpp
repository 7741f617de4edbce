// Counter-based noise: every random number zoopt uses is a pure function of
// (seed, step, direction, stream, index), computed with Philox4x32-10.
//
// Layout of one Philox call:
//   key     = { seed[31:0], seed[63:32] }
//   counter = { index[31:0], index[61:32] | stream << 30, step[31:0], direction }
// One call yields four 32-bit words; element noise uses word (g mod 4) of the
// block g / 4 for global element index g, so the value at g does not depend on
// how the parameters are split into spans, threads or devices.
#pragma once

#include <Random123/philox.h>

#include <cstdint>

#include "zoopt/core/config.hpp"

namespace zoopt {

/// Identifies one random direction: the optimizer's seed, the step number
/// (low 32 bits are used) and the direction index within the step.
struct NoiseKey {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint32_t direction = 0;
};

namespace random {

using Philox = r123::Philox4x32;

/// Independent sub-streams of one NoiseKey.
enum class Stream : std::uint32_t {
  element = 0,   ///< per-element direction noise z(g)
  scalar = 1,    ///< per-direction scalars (KerZOO's r)
  rounding = 2,  ///< stochastic rounding of updates
  user = 3,      ///< free for extensions
};

/// Four 32-bit words for block `block` of `stream` under `key`.
ZOOPT_HD inline Philox::ctr_type philox_block(const NoiseKey& key, std::uint64_t block,
                                              Stream stream = Stream::element) {
  const Philox::key_type k = {
      {static_cast<std::uint32_t>(key.seed), static_cast<std::uint32_t>(key.seed >> 32)}};
  const Philox::ctr_type c = {{static_cast<std::uint32_t>(block),
                               (static_cast<std::uint32_t>(block >> 32) & 0x3fffffffu) |
                                   (static_cast<std::uint32_t>(stream) << 30),
                               static_cast<std::uint32_t>(key.step), key.direction}};
  return Philox{}(c, k);
}

/// Uniform double in [0, 1) from 53 bits of two words.
ZOOPT_HD inline double uniform01(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits) * 0x1p-53;
}

}  // namespace random
}  // namespace zoopt
