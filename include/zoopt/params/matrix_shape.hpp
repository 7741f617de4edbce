// The matrix shape of a parameter span, and where a span lies among all
// parameters: what samplers that use shapes see (sampler/low_rank.hpp).
#pragma once

#include <cstdint>

namespace zoopt {

/// The shape of a span stored row-major: element p is entry (p / cols,
/// p % cols). {0, 0}: no shape (a vector, or a tensor whose shape does not
/// matter to the sampler).
struct MatrixShape {
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  [[nodiscard]] constexpr bool empty() const noexcept { return rows == 0 && cols == 0; }
  /// True when rows * cols = size exactly (no overflow), both >= 1.
  [[nodiscard]] constexpr bool fits(std::uint64_t size) const noexcept {
    return rows >= 1 && cols >= 1 && size % cols == 0 && size / cols == rows;
  }
  friend constexpr bool operator==(const MatrixShape&, const MatrixShape&) = default;
};

/// One span as a sampler sees it: its global offset (the index of its first
/// element), its element count and its shape.
struct SpanLayout {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  MatrixShape shape{};
};

}  // namespace zoopt
