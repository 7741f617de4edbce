// zoopt::half and zoopt::bfloat16: exact widening, round-to-nearest-even
// narrowing, NaN/Inf/subnormal handling.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

#include "zoopt/core/half.hpp"
#include "zoopt/core/storage.hpp"

using zoopt::bfloat16;
using zoopt::half;

namespace {

float next_up(float x) { return std::nextafter(x, std::numeric_limits<float>::infinity()); }
float next_down(float x) { return std::nextafter(x, -std::numeric_limits<float>::infinity()); }

template <class H>
bool is_nan_bits(std::uint16_t b) {
  if constexpr (std::is_same_v<H, half>) {
    return (b & 0x7c00u) == 0x7c00u && (b & 0x03ffu) != 0u;
  } else {
    return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0u;
  }
}

// For every pair of adjacent non-negative finite values a < b of H (and
// their negatives): the midpoint goes to the one with an even last bit, and
// the floats just below / above it go to a / b. This pins down
// round-to-nearest-even at every rounding boundary of the format, subnormals
// included.
template <class H>
void check_all_midpoints(std::uint16_t max_finite) {
  for (std::uint32_t b = 0; b < max_finite; ++b) {
    const auto lo = static_cast<std::uint16_t>(b);
    const auto hi = static_cast<std::uint16_t>(b + 1);
    const float flo = static_cast<float>(H::from_bits(lo));
    const float fhi = static_cast<float>(H::from_bits(hi));
    const float mid = flo + (fhi - flo) * 0.5f;  // exact: spacing / 2 is a float
    REQUIRE(mid > flo);
    REQUIRE(mid < fhi);
    const std::uint16_t even = (lo & 1u) == 0u ? lo : hi;
    for (const float sign : {1.0f, -1.0f}) {
      const std::uint16_t s = sign < 0 ? 0x8000u : 0u;
      INFO("pair " << lo << ", sign " << sign);
      REQUIRE(H(sign * mid).to_bits() == (even | s));
      REQUIRE(H(sign * next_down(mid)).to_bits() == (lo | s));
      REQUIRE(H(sign * next_up(mid)).to_bits() == (hi | s));
      REQUIRE(H(sign * flo).to_bits() == (lo | s));
    }
  }
}

}  // namespace

TEST_CASE("exact: 16-bit types are 2-byte storage computed in float", "[exact][half]") {
  STATIC_REQUIRE(sizeof(half) == 2);
  STATIC_REQUIRE(sizeof(bfloat16) == 2);
  STATIC_REQUIRE(std::is_same_v<zoopt::compute_t<half>, float>);
  STATIC_REQUIRE(std::is_same_v<zoopt::compute_t<bfloat16>, float>);
  STATIC_REQUIRE(std::is_same_v<zoopt::compute_t<float>, float>);
  STATIC_REQUIRE(std::is_same_v<zoopt::compute_t<double>, double>);
  STATIC_REQUIRE(zoopt::CpuStorage<half>);
  STATIC_REQUIRE(zoopt::CpuStorage<bfloat16>);
  STATIC_REQUIRE(!zoopt::Real<half>);
  // No silent double rounding: only float converts.
  STATIC_REQUIRE(!std::is_constructible_v<half, double>);
  STATIC_REQUIRE(!std::is_constructible_v<bfloat16, double>);
  STATIC_REQUIRE(!std::is_constructible_v<half, int>);
  STATIC_REQUIRE(std::is_constructible_v<half, float>);
  STATIC_REQUIRE(!std::is_convertible_v<float, half>);
  STATIC_REQUIRE(half(1.0f).to_bits() == 0x3c00u);  // usable in constant expressions
  STATIC_REQUIRE(bfloat16(1.0f).to_bits() == 0x3f80u);
}

TEST_CASE("exact: every half and bfloat16 widens exactly and narrows back to itself",
          "[exact][half]") {
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float h = static_cast<float>(half::from_bits(bits));
    const float f = static_cast<float>(bfloat16::from_bits(bits));
    INFO("bits " << b);
    if (is_nan_bits<half>(bits)) {
      REQUIRE(std::isnan(h));
      REQUIRE(std::signbit(h) == ((bits & 0x8000u) != 0u));
      // Quiet NaN with the same sign and top payload bits.
      REQUIRE(half(h).to_bits() == (bits | 0x0200u));
    } else {
      REQUIRE(half(h).to_bits() == bits);
    }
    if (is_nan_bits<bfloat16>(bits)) {
      REQUIRE(std::isnan(f));
      REQUIRE(bfloat16(f).to_bits() == (bits | 0x0040u));
    } else {
      REQUIRE(bfloat16(f).to_bits() == bits);
      // bfloat16 is the top half of a binary32.
      REQUIRE(std::bit_cast<std::uint32_t>(f) == (static_cast<std::uint32_t>(bits) << 16));
    }
  }
  // Spot values from the formats' definitions.
  CHECK(static_cast<float>(half::from_bits(0x7bffu)) == 65504.0f);
  CHECK(static_cast<float>(half::from_bits(0x0001u)) == 0x1p-24f);
  CHECK(static_cast<float>(half::from_bits(0x0400u)) == 0x1p-14f);
  CHECK(static_cast<float>(half::from_bits(0x3555u)) == 0x1.554p-2f);
  CHECK(std::isinf(static_cast<float>(half::from_bits(0xfc00u))));
  CHECK(static_cast<float>(bfloat16::from_bits(0x0001u)) == 0x1p-133f);
}

TEST_CASE("exact: float to half rounds to nearest even at every boundary", "[exact][half]") {
  check_all_midpoints<half>(0x7bffu);
  // Overflow: 65520 is halfway between 65504 and 2^16 -> even -> Inf.
  CHECK(half(65520.0f).to_bits() == 0x7c00u);
  CHECK(half(next_down(65520.0f)).to_bits() == 0x7bffu);
  CHECK(half(-1e30f).to_bits() == 0xfc00u);
  CHECK(half(std::numeric_limits<float>::infinity()).to_bits() == 0x7c00u);
  // Underflow: 2^-25 is halfway between 0 and the smallest subnormal -> 0.
  CHECK(half(0x1p-25f).to_bits() == 0x0000u);
  CHECK(half(next_up(0x1p-25f)).to_bits() == 0x0001u);
  CHECK(half(-0x1p-26f).to_bits() == 0x8000u);
  CHECK(half(std::numeric_limits<float>::denorm_min()).to_bits() == 0x0000u);
  CHECK(half(-0.0f).to_bits() == 0x8000u);
}

TEST_CASE("exact: float to bfloat16 rounds to nearest even at every boundary", "[exact][half]") {
  check_all_midpoints<bfloat16>(0x7f7fu);
  CHECK(bfloat16(std::numeric_limits<float>::max()).to_bits() == 0x7f80u);  // rounds up to Inf
  CHECK(bfloat16(-std::numeric_limits<float>::infinity()).to_bits() == 0xff80u);
  CHECK(bfloat16(std::numeric_limits<float>::denorm_min()).to_bits() == 0x0000u);
  CHECK(bfloat16(0x1p-133f).to_bits() == 0x0001u);
  CHECK(bfloat16(std::bit_cast<float>(0x7fc00001u)).to_bits() == 0x7fc0u);
  // A signalling NaN whose payload sits only in the low 16 bits stays a NaN.
  CHECK(is_nan_bits<bfloat16>(bfloat16(std::bit_cast<float>(0x7f800001u)).to_bits()));
  CHECK(is_nan_bits<half>(half(std::bit_cast<float>(0x7f800001u)).to_bits()));
}

#if defined(__FLT16_MAX__)
TEST_CASE("exact: float to half agrees with the compiler's _Float16 on random floats",
          "[exact][half]") {
  // An independent reference: the compiler's binary16 conversion.
  std::mt19937 gen(12345);
  for (int i = 0; i < 2000000; ++i) {
    std::uint32_t x = gen();
    if (i % 2 == 0) x = (x & 0x80000000u) | (0x30000000u + (x % 0x18000000u));  // near half range
    const float f = std::bit_cast<float>(x);
    if (std::isnan(f)) continue;
    const auto ref = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
    INFO("float bits " << x);
    REQUIRE(half(f).to_bits() == ref);
  }
}
#endif
