// Storage types of the CUDA backend: float, __half and __nv_bfloat16, all
// computed in float. Usable from nvcc and from a plain host compiler (the CUDA
// half headers provide host conversions).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <concepts>
#include <cstdint>
#include <cstring>

#include "zoopt/core/config.hpp"
#include "zoopt/core/storage.hpp"

namespace zoopt {

/// Half-precision storage is computed in float, like the CPU backend's rule
/// for reduced-precision types.
template <>
struct compute_type<__half> {
  using type = float;
};
template <>
struct compute_type<__nv_bfloat16> {
  using type = float;
};

namespace cuda {

/// Element types a device parameter span may hold.
template <class T>
concept DeviceReal =
    std::same_as<T, float> || std::same_as<T, __half> || std::same_as<T, __nv_bfloat16>;

namespace detail {

/// Storage -> compute type (exact for every supported type).
template <class T>
ZOOPT_HD inline float to_compute(T x) {
  if constexpr (std::same_as<T, __half>) {
    return __half2float(x);
  } else if constexpr (std::same_as<T, __nv_bfloat16>) {
    return __bfloat162float(x);
  } else {
    return x;
  }
}

/// Compute type -> storage, rounding to nearest even.
template <class T>
ZOOPT_HD inline T from_compute(float x) {
  if constexpr (std::same_as<T, __half>) {
    return __float2half_rn(x);
  } else if constexpr (std::same_as<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(x);
  } else {
    return x;
  }
}

/// The bit pattern of a stored value.
template <class T>
ZOOPT_HD inline bits_t<T> to_bits(T x) {
  bits_t<T> b;
  std::memcpy(&b, static_cast<const void*>(&x), sizeof(T));
  return b;
}

template <class T>
ZOOPT_HD inline T from_bits(bits_t<T> b) {
  T x;
  std::memcpy(static_cast<void*>(&x), &b, sizeof(T));
  return x;
}

}  // namespace detail
}  // namespace cuda
}  // namespace zoopt
