// Storage types and the arithmetic type used for them.
#pragma once

#include <concepts>
#include <cstdint>

namespace zoopt {

/// Element types a CPU parameter span may hold.
template <class T>
concept Real = std::same_as<T, float> || std::same_as<T, double>;

/// Noise and updates are computed in `compute_t<T>`: the storage type itself
/// for float and double (reduced-precision storage maps to float).
template <class T>
struct compute_type {
  using type = T;
};
template <class T>
using compute_t = typename compute_type<T>::type;

/// Unsigned integer of the same width as T, for bitwise comparisons.
template <class T>
using bits_t = std::conditional_t<sizeof(T) == 8, std::uint64_t,
                                  std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint16_t>>;

}  // namespace zoopt
