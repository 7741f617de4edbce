// 16-bit floating-point storage types for CPU parameter spans.
//
// zoopt::half     IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits.
// zoopt::bfloat16 bfloat16: 1 sign, 8 exponent, 7 mantissa bits (the top
//                 half of a binary32).
//
// Both are storage only: arithmetic happens in float (compute_t<T> = float).
// Conversion to float is exact. Conversion from float rounds to nearest, ties
// to even, with IEEE semantics: overflow goes to +-Inf, values below half the
// smallest subnormal go to +-0, subnormals are produced with correct
// rounding, Inf keeps its sign and NaN stays a NaN (quiet, sign and top
// payload bits kept). Construction from any type other than float is deleted
// so that a double is never rounded twice by accident (double -> float ->
// 16 bits); convert explicitly with static_cast<float> first if that is what
// you mean.
//
// stochastic_round<H>(v, r) rounds v to one of its two neighbours in H with
// probability proportional to proximity, from 32 random bits r: the result is
// unbiased (E = v up to 2^-32 of the spacing) and a pure function of (v, r).
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace zoopt {

namespace detail {

/// float -> binary16 bits, round to nearest even.
constexpr std::uint16_t float_to_half_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) {  // NaN: quiet, keep the top payload bits
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x03ffu));
  }
  if (ax >= 0x477ff000u) {  // >= 65520 (halfway to 2^16) or Inf
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  }
  if (ax >= 0x38800000u) {               // >= 2^-14: normal binary16
    std::uint32_t m = ax - 0x38000000u;  // rebias the exponent (127 -> 15)
    m += 0x0fffu + ((m >> 13) & 1u);     // round the 13 dropped bits, ties to even
    return static_cast<std::uint16_t>(sign | (m >> 13));
  }
  if (ax <= 0x33000000u) {  // <= 2^-25: rounds to zero (2^-25 is a tie -> even 0)
    return sign;
  }
  // Subnormal result k * 2^-24 (the input is a normal float here).
  const std::uint32_t e = ax >> 23;  // biased exponent, 102..112
  const std::uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126u - e;  // 14..24
  std::uint32_t k = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  if (rem > halfway || (rem == halfway && (k & 1u) != 0u)) ++k;
  return static_cast<std::uint16_t>(sign | k);
}

/// binary16 bits -> float (exact).
constexpr float half_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x03ffu;
  if (e == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  if (e == 0u) {
    const float v = static_cast<float>(m) * 0x1p-24f;  // exact: m < 2^10
    return sign != 0u ? -v : v;
  }
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

/// float -> bfloat16 bits, round to nearest even.
constexpr std::uint16_t float_to_bf16_bits(float f) noexcept {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: quiet, keep sign and top payload
    return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  }
  const std::uint32_t rounded = x + 0x7fffu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

/// bfloat16 bits -> float (exact).
constexpr float bf16_bits_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

}  // namespace detail

/// IEEE 754 binary16 storage (2 bytes). Range +-65504, 11 significant bits,
/// subnormals down to 2^-24. Compute type: float.
struct half {
  /// +0.
  constexpr half() noexcept = default;
  /// Round to nearest even from float.
  constexpr explicit half(float f) noexcept : bits_(detail::float_to_half_bits(f)) {}
  /// Only float converts: a double would be rounded twice.
  template <class U>
  requires(!std::is_same_v<U, float>) half(U)
  = delete;
  /// Exact conversion to float.
  constexpr explicit operator float() const noexcept { return detail::half_bits_to_float(bits_); }

  [[nodiscard]] static constexpr half from_bits(std::uint16_t b) noexcept {
    half h;
    h.bits_ = b;
    return h;
  }
  [[nodiscard]] constexpr std::uint16_t to_bits() const noexcept { return bits_; }

 private:
  std::uint16_t bits_ = 0;
};

/// bfloat16 storage (2 bytes): the float exponent range with 8 significant
/// bits. Compute type: float.
struct bfloat16 {
  /// +0.
  constexpr bfloat16() noexcept = default;
  /// Round to nearest even from float.
  constexpr explicit bfloat16(float f) noexcept : bits_(detail::float_to_bf16_bits(f)) {}
  /// Only float converts: a double would be rounded twice.
  template <class U>
  requires(!std::is_same_v<U, float>) bfloat16(U)
  = delete;
  /// Exact conversion to float.
  constexpr explicit operator float() const noexcept { return detail::bf16_bits_to_float(bits_); }

  [[nodiscard]] static constexpr bfloat16 from_bits(std::uint16_t b) noexcept {
    bfloat16 h;
    h.bits_ = b;
    return h;
  }
  [[nodiscard]] constexpr std::uint16_t to_bits() const noexcept { return bits_; }

 private:
  std::uint16_t bits_ = 0;
};

static_assert(sizeof(half) == 2 && std::is_trivially_copyable_v<half>);
static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable_v<bfloat16>);

/// True for zoopt's 16-bit storage types.
template <class T>
inline constexpr bool is_low_precision_v = std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;

/// Rounds v to H stochastically: with lo <= |v| <= hi the two neighbours of
/// |v| in H (same sign as v), the result is hi with probability
/// (|v| - lo) / (hi - lo) and lo otherwise, decided by the 32 random bits r
/// (hi iff r < frac * 2^32). Hence E[result] = v up to 2^-32 of the spacing
/// (exactly for every v when H = bfloat16 or for normal half results).
/// Representable values, NaN and Inf come back unchanged; a v that rounds to
/// Inf under round-to-nearest overflows to Inf here too, and a finite v
/// between the largest finite value and that threshold gives the largest
/// finite value. All intermediate float operations are exact (Sterbenz;
/// the spacing is a power of two).
template <class H>
constexpr H stochastic_round(float v, std::uint32_t r) noexcept {
  static_assert(is_low_precision_v<H>, "zoopt::stochastic_round: H must be half or bfloat16");
  const H nearest(v);
  const float fn = static_cast<float>(nearest);
  if (fn == v || !(fn - fn == 0.0f) || v != v) return nearest;  // exact, Inf/overflow or NaN
  const std::uint16_t nb = nearest.to_bits();
  const float an = fn < 0.0f ? -fn : fn;
  const float av = v < 0.0f ? -v : v;
  // Sign-magnitude: bits + 1 is the next larger magnitude, bits - 1 the next
  // smaller (nearest is not +-0 when |v| < |nearest|).
  const std::uint16_t lo_bits = an < av ? nb : static_cast<std::uint16_t>(nb - 1u);
  const std::uint16_t hi_bits = an < av ? static_cast<std::uint16_t>(nb + 1u) : nb;
  const float lo = static_cast<float>(H::from_bits(lo_bits));
  const float hi = static_cast<float>(H::from_bits(hi_bits));
  const float alo = lo < 0.0f ? -lo : lo;
  const float ahi = hi < 0.0f ? -hi : hi;
  const float frac = (av - alo) / (ahi - alo);  // 0 when hi is Inf (saturate)
  return static_cast<double>(r) < static_cast<double>(frac) * 0x1p32 ? H::from_bits(hi_bits)
                                                                     : H::from_bits(lo_bits);
}

}  // namespace zoopt
