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
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

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

/// The words of `Blocks` consecutive element blocks starting at
/// `first_block`, in structure-of-arrays form: w[k][b] is word k of block
/// first_block + b. Bit-identical to philox_block (Philox4x32-10: round
/// (c0,c1,c2,c3) -> (hi(M1 c2)^c1^k0, lo(M1 c2), hi(M0 c0)^c3^k1, lo(M0 c0)),
/// key += (W0, W1) between rounds), written so the compiler vectorises it.
/// Always inlined: a pass loop compiled for AVX2 or AVX-512 (CpuBackend's
/// dispatch) must get its own vector code, not a call to the baseline one.
template <int Blocks>
[[gnu::always_inline]] inline void philox_chunk(const NoiseKey& key, std::uint64_t first_block,
                                                std::uint32_t (&w)[4][Blocks],
                                                Stream stream = Stream::element) {
  std::uint32_t c0[Blocks], c1[Blocks], c2[Blocks], c3[Blocks];
  for (int b = 0; b < Blocks; ++b) {
    const std::uint64_t block = first_block + static_cast<std::uint64_t>(b);
    c0[b] = static_cast<std::uint32_t>(block);
    c1[b] = (static_cast<std::uint32_t>(block >> 32) & 0x3fffffffu) |
            (static_cast<std::uint32_t>(stream) << 30);
    c2[b] = static_cast<std::uint32_t>(key.step);
    c3[b] = key.direction;
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(key.seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int b = 0; b < Blocks; ++b) {
      const std::uint64_t p0 = std::uint64_t{0xD2511F53u} * c0[b];
      const std::uint64_t p1 = std::uint64_t{0xCD9E8D57u} * c2[b];
      const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[b] ^ k0;
      const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[b] ^ k1;
      c1[b] = static_cast<std::uint32_t>(p1);
      c3[b] = static_cast<std::uint32_t>(p0);
      c0[b] = n0;
      c2[b] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int b = 0; b < Blocks; ++b) {
    w[0][b] = c0[b];
    w[1][b] = c1[b];
    w[2][b] = c2[b];
    w[3][b] = c3[b];
  }
}

/// Uniform double in [0, 1) from 53 bits of two words.
ZOOPT_HD inline double uniform01(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits) * 0x1p-53;
}

}  // namespace random
}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
