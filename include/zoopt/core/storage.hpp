// Storage types and the arithmetic type used for them.
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/half.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// The built-in floating-point types zoopt computes in (float, double).
template <class T>
concept Real = std::same_as<T, float> || std::same_as<T, double>;

/// Element types a CPU parameter span may hold: float, double, and the 16-bit
/// storage types zoopt::half and zoopt::bfloat16 (computed in float).
template <class T>
concept CpuStorage = Real<T> || is_low_precision_v<T>;

/// Noise and updates are computed in `compute_t<T>`: the storage type itself
/// for float and double; float for half and bfloat16.
template <class T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<half> {
  using type = float;
};
template <>
struct compute_type<bfloat16> {
  using type = float;
};
template <class T>
using compute_t = typename compute_type<T>::type;

/// Unsigned integer of the same width as T, for bitwise comparisons.
template <class T>
using bits_t = std::conditional_t<sizeof(T) == 8, std::uint64_t,
                                  std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint16_t>>;

/// How the update pass writes theta0 - lr * (...) (computed in compute_t<T>)
/// back into T.
///  - automatic: stochastic for half/bfloat16, nearest for float/double.
///  - nearest: round to nearest even (an update below half an ulp of the
///    parameter is lost).
///  - stochastic: unbiased seeded rounding (half/bfloat16 only), random bits
///    from Philox stream `rounding` keyed by (seed, step, element).
enum class Rounding : std::uint8_t { automatic = 0, nearest = 1, stochastic = 2 };

/// Names and file codes of the storage types (used in update logs and
/// checkpoints). Other backends' storage types (e.g. CUDA's __half) may
/// specialize it with codes >= 16; the primary template means "unknown".
template <class T>
struct storage_traits {
  static constexpr const char* name = "unknown";
  static constexpr std::uint8_t code = 0;
};
template <>
struct storage_traits<float> {
  static constexpr const char* name = "float";
  static constexpr std::uint8_t code = 1;
};
template <>
struct storage_traits<double> {
  static constexpr const char* name = "double";
  static constexpr std::uint8_t code = 2;
};
template <>
struct storage_traits<half> {
  static constexpr const char* name = "half";
  static constexpr std::uint8_t code = 3;
};
template <>
struct storage_traits<bfloat16> {
  static constexpr const char* name = "bfloat16";
  static constexpr std::uint8_t code = 4;
};

/// Spacing of T just above |x| (the ulp of x; for the largest finite value,
/// the spacing below it). NaN for NaN, Inf for Inf.
template <class T>
double ulp_of(T x) {
  if constexpr (Real<T>) {
    const T a = std::abs(x);
    if (!std::isfinite(a)) return static_cast<double>(a + a);
    const T up = std::nextafter(a, std::numeric_limits<T>::infinity());
    if (std::isinf(up)) return static_cast<double>(a - std::nextafter(a, T(0)));
    return static_cast<double>(up - a);
  } else {
    const auto b = static_cast<std::uint16_t>(x.to_bits() & 0x7fffu);
    const double a = static_cast<double>(static_cast<float>(T::from_bits(b)));
    if (!std::isfinite(a)) return a + a;
    const double up =
        static_cast<double>(static_cast<float>(T::from_bits(static_cast<std::uint16_t>(b + 1u))));
    if (std::isinf(up))
      return a - static_cast<double>(
                     static_cast<float>(T::from_bits(static_cast<std::uint16_t>(b - 1u))));
    return up - a;
  }
}

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
