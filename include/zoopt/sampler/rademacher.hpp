// Rademacher direction sampler: z = +-1 with equal probability.
#pragma once

#include <cstdint>

#include "zoopt/core/config.hpp"

namespace zoopt {

/// Random signs: element lane k takes the top bit of word k. E[z] = 0,
/// E[z^2] = 1 like the Gaussian, but E[z^4] = 1 instead of 3, which lowers the
/// estimator's variance. Bit-identical on every backend.
struct RademacherSampler {
  static constexpr const char* name = "rademacher";

  template <class C>
  ZOOPT_HD static void generate(const std::uint32_t (&w)[4], C (&z)[4]) {
    for (int k = 0; k < 4; ++k) {
      z[k] = (w[k] >> 31) != 0u ? C(-1) : C(1);
    }
  }
};

}  // namespace zoopt

namespace zoopt {

/// Random signs, one per bit: 128 elements per Philox call instead of 4, so
/// noise costs about a 32nd of RademacherSampler's. A stream of its own (its
/// signs are not RademacherSampler's): element g takes bit (g mod 32) of
/// word (g / 32) mod 4 of Philox block g / 128; a set bit is -1. Same law as
/// RademacherSampler (independent fair signs), bit-identical on every
/// backend.
struct PackedRademacherSampler {
  static constexpr const char* name = "rademacher-packed";
  /// Elements that share one Philox block.
  static constexpr int kElementsPerBlock = 128;

  /// The sign of bit `bit` (0..31) of `word`.
  template <class C>
  ZOOPT_HD static C sign(std::uint32_t word, int bit) {
    return ((word >> bit) & 1u) != 0u ? C(-1) : C(1);
  }
};

}  // namespace zoopt
