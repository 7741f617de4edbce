// Per-element arithmetic of the CUDA passes, compiled for host and device.
//
// Every operation is written with explicitly rounded single operations (on
// the device the __f*_rn intrinsics, which the compiler never contracts into
// a fused multiply-add), in exactly the order CpuBackend uses, so a device
// pass writes the same bits as the CPU pass for the same noise values:
//   d      = sum over terms, in order, of fl(c_t * z_t)  starting from +0
//   theta0 = fl(x - d_before)            (unless journaled or no `before`)
//   next   = fl(theta0 + d_after)        (move)
//   theta  = fl(t0 - fl(eta * fl(ghat + fl(lambda * t0))))   (update)
// The host build of these functions is what the host tests compare against
// CpuBackend.
#pragma once

#include <cstdint>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/config.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/cuda/types.hpp"
#include "zoopt/random/philox.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt::cuda::detail {

ZOOPT_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

ZOOPT_HD inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

ZOOPT_HD inline float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

/// A term's coefficients in the compute type for a span of scale s:
/// fl(before * s) and fl(after * s), products taken in double as on the CPU.
struct TermCoefficients {
  float before = 0.0f;
  float after = 0.0f;
};

ZOOPT_HD inline TermCoefficients coefficients(const Term& t, double scale) {
  return TermCoefficients{static_cast<float>(t.before * scale),
                          static_cast<float>(t.after * scale)};
}

/// A term contributes to a pass unless both coefficients are zero.
ZOOPT_HD inline bool active(const Term& t) { return !(t.before == 0.0 && t.after == 0.0); }

/// d += fl(c * z), in that rounding order.
ZOOPT_HD inline float accumulate(float d, float c, float z) { return add_rn(d, mul_rn(c, z)); }

/// One element's displacement before and after the pass.
struct Displacement {
  float before = 0.0f;
  float after = 0.0f;
  bool any_before = false;
};

/// Where an element is, for samplers that see it: its segment (index `seg`),
/// the pass's scratch and the slot of the first of the terms summed.
struct ElementPlace {
  const DeviceSegment* segment = nullptr;
  std::uint32_t seg = 0;
  ShapedScratch scratch{};
  std::uint32_t first_slot = 0;
};

/// Entry of global element g for the `index`-th term summed (key = its
/// direction's): by global index, or from the scratch for shaped samplers.
template <class Sampler>
ZOOPT_HD inline float element_noise(const NoiseKey& key, std::uint64_t g, const ElementPlace& at,
                                    std::uint32_t index) {
  if constexpr (ShapedSampler<Sampler>) {
    const DeviceSegment& s = *at.segment;
    const SpanLayout span{s.offset, s.size, MatrixShape{s.rows, s.cols}};
    const float* scratch =
        at.scratch.values + at.scratch.at[(at.first_slot + index) * at.scratch.num_segs + at.seg];
    return Sampler::entry_at(key, span, scratch, g - s.offset);
  } else {
    return noise_at<Sampler, float>(key, g);
  }
}

/// Displacement of global element g for `terms` under (seed, step): the slow
/// single-element form (one Philox call per term); the kernels evaluate the
/// same sums four elements per Philox call. `at` is needed by shaped
/// samplers only.
template <class Sampler>
ZOOPT_HD inline Displacement displacement_at(const Term* terms, std::uint32_t count,
                                             std::uint64_t seed, std::uint64_t step, double scale,
                                             std::uint64_t g, const ElementPlace& at = {}) {
  Displacement d;
  for (std::uint32_t i = 0; i < count; ++i) {
    const Term& t = terms[i];
    if (!active(t)) continue;
    const float z = element_noise<Sampler>(NoiseKey{seed, step, t.direction}, g, at, i);
    const TermCoefficients c = coefficients(t, scale);
    d.any_before = d.any_before || t.before != 0.0;
    d.before = accumulate(d.before, c.before, z);
    d.after = accumulate(d.after, c.after, z);
  }
  return d;
}

/// theta0 rebuilt from the current value x and the displacement `before`.
template <class T>
ZOOPT_HD inline T rebuild(T x, float d_before, bool any_before) {
  return any_before ? from_compute<T>(sub_rn(to_compute(x), d_before)) : x;
}

/// fl(theta0 + d).
template <class T>
ZOOPT_HD inline T displaced(T theta0, float d) {
  return from_compute<T>(add_rn(to_compute(theta0), d));
}

/// Whether the next pass can rebuild theta0 from `next` = fl(theta0 + d):
/// fl(next - d) has theta0's bits.
template <class T>
ZOOPT_HD inline bool invertible(T next, T theta0, float d) {
  return to_bits(from_compute<T>(sub_rn(to_compute(next), d))) == to_bits(theta0);
}

/// theta0 - eta * (ghat + lambda * theta0), rounded to nearest; `decay`
/// false drops the lambda term (span opted out, or weight decay zero). A zero
/// update (eta == 0 or a zero direction) returns theta0's exact bits (signed
/// zeros included), as CpuBackend does.
template <class T>
ZOOPT_HD inline T updated(T theta0, float ghat, float eta, float lambda, bool decay) {
  const float t0 = to_compute(theta0);
  float direction = ghat;
  if (decay) direction = add_rn(direction, mul_rn(lambda, t0));
  if (eta == 0.0f || direction == 0.0f) return theta0;
  return from_compute<T>(sub_rn(t0, mul_rn(eta, direction)));
}

}  // namespace zoopt::cuda::detail
