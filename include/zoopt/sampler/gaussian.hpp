// Gaussian direction sampler: z ~ N(0, 1) per element via Box-Muller, with
// its own logarithm, square root and sine/cosine made of IEEE +, *, / and bit
// operations only, so that every CPU and GPU produces the same bits and the
// host loop vectorises.
#pragma once

#include <bit>
#include <cstdint>

#include "zoopt/core/config.hpp"
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {
namespace detail {

// Round-to-nearest float operations. Device code uses the _rn intrinsics,
// which the compiler never fuses into an FMA; host code is compiled with
// contraction off (core/fp_contract.hpp), whatever the user's flags
// (tests/flags checks -O2, -O3, -march=x86-64-v3, -mfma -ffp-contract=fast
// and clang).
#if defined(__CUDA_ARCH__)
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ inline std::uint32_t float_bits(float x) { return __float_as_uint(x); }
__device__ inline float bits_float(std::uint32_t b) { return __uint_as_float(b); }
#else
inline float mul_rn(float a, float b) { return a * b; }
inline float add_rn(float a, float b) { return a + b; }
inline float div_rn(float a, float b) { return a / b; }
inline double mul_rn(double a, double b) { return a * b; }
inline double add_rn(double a, double b) { return a + b; }
inline std::uint32_t float_bits(float x) { return std::bit_cast<std::uint32_t>(x); }
inline float bits_float(std::uint32_t b) { return std::bit_cast<float>(b); }
#endif

/// -2 ln(u) for u = k 2^-24, k in [1, 2^24]. With u = m 2^e, m in
/// [sqrt(1/2), sqrt(2)): ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9),
/// s = (m - 1)/(m + 1), |s| <= 0.172 (truncation below 1e-9 relative).
ZOOPT_HD inline float minus_two_log(std::uint32_t k) {
  const float u = mul_rn(static_cast<float>(static_cast<int>(k)), 0x1p-24f);  // exact
  const std::uint32_t bits = float_bits(u);
  const float m1 = bits_float((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
  const int big = static_cast<int>(m1 > 1.41421356f);
  const float m = mul_rn(m1, add_rn(1.0f, mul_rn(-0.5f, static_cast<float>(big))));  // exact
  const int e = static_cast<int>(bits >> 23) - 127 + big;
  const float s = div_rn(add_rn(m, -1.0f), add_rn(m, 1.0f));
  const float s2 = mul_rn(s, s);
  float p = 1.0f / 9.0f;
  p = add_rn(mul_rn(p, s2), 1.0f / 7.0f);
  p = add_rn(mul_rn(p, s2), 1.0f / 5.0f);
  p = add_rn(mul_rn(p, s2), 1.0f / 3.0f);
  p = add_rn(mul_rn(p, s2), 1.0f);
  const float ln_m = mul_rn(mul_rn(2.0f, s), p);
  // ln 2 = 0.693145752 + 1.42860677e-6: e * hi is exact for |e| <= 25.
  const float fe = static_cast<float>(e);
  const float ln_u = add_rn(mul_rn(fe, 0.693145752f), add_rn(mul_rn(fe, 1.42860677e-06f), ln_m));
  return mul_rn(-2.0f, ln_u);
}

/// sqrt(x) for x >= 0: the bit-level first guess of 1/sqrt(x), three Newton
/// steps y <- y (3/2 - x y^2 / 2) (relative error ~1e-7), then x y.
/// sqrt(0) = 0.
ZOOPT_HD inline float sqrt_newton(float x) {
  float y = bits_float(0x5f375a86u - (float_bits(x) >> 1));
  const float half_x = mul_rn(0.5f, x);
  y = mul_rn(y, add_rn(1.5f, -mul_rn(half_x, mul_rn(y, y))));
  y = mul_rn(y, add_rn(1.5f, -mul_rn(half_x, mul_rn(y, y))));
  y = mul_rn(y, add_rn(1.5f, -mul_rn(half_x, mul_rn(y, y))));
  return mul_rn(x, y);
}

/// (sin, cos) of 2 pi t for t = j 2^-24 in [0, 1): quadrant q = round(4t),
/// x = (4t - q) pi/2 in [-pi/4, pi/4], Taylor polynomials to x^9 and x^10
/// (truncation below 2e-9), then the quadrant's symmetry by bit operations.
ZOOPT_HD inline void sincos_turn(std::uint32_t j, float& sin_out, float& cos_out) {
  const float q4 = mul_rn(static_cast<float>(static_cast<int>(j)), 0x1p-22f);  // 4t, exact
  const int q = static_cast<int>(add_rn(q4, 0.5f));  // round half up, q4 >= 0
  const float x = mul_rn(add_rn(q4, -static_cast<float>(q)), 1.57079637f);
  const float x2 = mul_rn(x, x);
  float sp = 1.0f / 362880.0f;
  sp = add_rn(mul_rn(sp, x2), -1.0f / 5040.0f);
  sp = add_rn(mul_rn(sp, x2), 1.0f / 120.0f);
  sp = add_rn(mul_rn(sp, x2), -1.0f / 6.0f);
  sp = add_rn(mul_rn(sp, x2), 1.0f);
  const float s = mul_rn(sp, x);
  float cp = -1.0f / 3628800.0f;
  cp = add_rn(mul_rn(cp, x2), 1.0f / 40320.0f);
  cp = add_rn(mul_rn(cp, x2), -1.0f / 720.0f);
  cp = add_rn(mul_rn(cp, x2), 1.0f / 24.0f);
  cp = add_rn(mul_rn(cp, x2), -0.5f);
  const float c = add_rn(mul_rn(cp, x2), 1.0f);
  // q = 0: (s, c); 1: (c, -s); 2: (-s, -c); 3: (-c, s).
  const std::uint32_t swap = 0u - static_cast<std::uint32_t>(q & 1);
  const std::uint32_t flip = static_cast<std::uint32_t>(q & 2) << 30;
  const std::uint32_t bs = float_bits(s);
  const std::uint32_t bc = float_bits(c);
  sin_out = bits_float(((bs & ~swap) | (bc & swap)) ^ flip);
  cos_out = bits_float(((bc & ~swap) | ((bs ^ 0x80000000u) & swap)) ^ flip);
}

}  // namespace detail

/// Standard normal directions (MeZO, KerZOO). One Philox block (four words)
/// gives four normals: (w0, w1) and (w2, w3) each feed one Box-Muller pair
///   z0 = sqrt(-2 ln u) cos(2 pi t),  z1 = sqrt(-2 ln u) sin(2 pi t),
/// with u = ((w0 >> 8) + 1) 2^-24 in (0, 1] and t = (w1 >> 8) 2^-24 in [0, 1).
/// Float arithmetic with round-to-nearest and no fused operations: the values
/// are the same bits on every CPU and GPU, and double storage gets the same
/// values widened. |z| <= sqrt(48 ln 2) = 5.77 (a tail mass of 8e-9).
struct GaussianSampler {
  static constexpr const char* name = "gaussian";

  template <class C>
  ZOOPT_HD static void generate(const std::uint32_t (&w)[4], C (&z)[4]) {
    float z0, z1, z2, z3;
    box_muller(w[0], w[1], z0, z1);
    box_muller(w[2], w[3], z2, z3);
    z[0] = static_cast<C>(z0);
    z[1] = static_cast<C>(z1);
    z[2] = static_cast<C>(z2);
    z[3] = static_cast<C>(z3);
  }

  ZOOPT_HD static void box_muller(std::uint32_t a, std::uint32_t b, float& z0, float& z1) {
    const float r = detail::sqrt_newton(detail::minus_two_log((a >> 8) + 1u));
    float s, c;
    detail::sincos_turn(b >> 8, s, c);
    z0 = detail::mul_rn(r, c);
    z1 = detail::mul_rn(r, s);
  }
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
