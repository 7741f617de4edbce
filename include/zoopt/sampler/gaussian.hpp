// Gaussian direction sampler: z ~ N(0, 1) per element via Box-Muller.
#pragma once

#include <cmath>
#include <cstdint>

#include "zoopt/core/config.hpp"

namespace zoopt {

/// Standard normal directions (MeZO, KerZOO). One Philox block (four words)
/// gives four normals: (w0, w1) and (w2, w3) each feed one Box-Muller pair
///   z0 = sqrt(-2 ln u1) cos(2 pi u2),  z1 = sqrt(-2 ln u1) sin(2 pi u2),
/// with u1 in (0, 1] so the logarithm is finite. Computed in C (float for
/// float storage, double for double).
struct GaussianSampler {
  static constexpr const char* name = "gaussian";

  template <class C>
  ZOOPT_HD static void generate(const std::uint32_t (&w)[4], C (&z)[4]) {
    box_muller(w[0], w[1], z[0], z[1]);
    box_muller(w[2], w[3], z[2], z[3]);
  }

  template <class C>
  ZOOPT_HD static void box_muller(std::uint32_t a, std::uint32_t b, C& z0, C& z1) {
    if constexpr (sizeof(C) == 4) {
      // 24-bit uniforms: exact in float. u1 in (0, 1], t in [0, 1).
      const float u1 = static_cast<float>((a >> 8) + 1u) * 0x1p-24f;
      const float t = static_cast<float>(b >> 8) * 0x1p-24f;
      const float r = std::sqrt(-2.0f * std::log(u1));
      const float angle = 6.2831853071795864769f * t;
      z0 = r * std::cos(angle);
      z1 = r * std::sin(angle);
    } else {
      const double u1 = (static_cast<double>(a) + 1.0) * 0x1p-32;
      const double t = static_cast<double>(b) * 0x1p-32;
      const double r = std::sqrt(-2.0 * std::log(u1));
      const double angle = 6.2831853071795864769 * t;
      z0 = r * std::cos(angle);
      z1 = r * std::sin(angle);
    }
  }
};

}  // namespace zoopt
