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
