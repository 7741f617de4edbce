// How the CUDA passes cut parameter memory into work: the segment table (one
// row per span, uploaded once and reused while the views do not change),
// 16-byte units, 4096-element tiles, and the launch geometry. Plain C++: the
// host builds and tests it without a device; the kernels read the same rows.
//
// Units. A span's memory is cut at 16-byte boundaries: an optional head unit
// (the elements before the first 16-byte aligned address), then body units of
// `unit_elements<T>` elements (4 float or 8 half), the last possibly short.
// A full body unit is one aligned 128-bit load and store. Units of all spans
// are numbered consecutively (the span's `unit_begin` + its local unit).
//
// Tiles. A tile is `units_per_tile<T>` consecutive units (at most 4096
// elements); one thread block processes one tile at a time, each thread
// `units_per_thread<T>` units spaced one block apart (coalesced). The restore
// journal is kept per tile (see journal.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "zoopt/core/config.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt::cuda {

/// Threads per block of every pass kernel.
inline constexpr std::uint32_t kBlockThreads = 256;
/// Elements per tile (at most; short units make a tile hold fewer).
inline constexpr std::uint32_t kTileElements = 4096;
/// Largest number of terms one pass accepts (directions + 1 per pass).
inline constexpr std::uint32_t kMaxTerms = 32;
/// Highest global element index + 1 the noise layout supports (62-bit block
/// index, four elements per block).
inline constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 62;

/// Elements per 16-byte unit.
template <class T>
inline constexpr std::uint32_t unit_elements = 16 / sizeof(T);
/// Units per tile and per thread.
template <class T>
inline constexpr std::uint32_t units_per_tile = kTileElements / unit_elements<T>;
template <class T>
inline constexpr std::uint32_t units_per_thread = units_per_tile<T> / kBlockThreads;

/// One span as the kernels see it.
struct DeviceSegment {
  void* data = nullptr;          ///< device pointer to the span's first element
  std::uint64_t size = 0;        ///< elements
  std::uint64_t offset = 0;      ///< global index of the first element
  std::uint64_t unit_begin = 0;  ///< first unit of the span
  std::uint32_t head = 0;        ///< elements before the first 16-byte boundary (0: aligned)
  std::uint32_t weight_decay = 1;
  std::uint64_t rows = 0;  ///< SpanView::shape (for samplers that use it)
  std::uint64_t cols = 0;
};

/// Elements [first, first + count) of a span covered by one unit.
struct UnitRange {
  std::uint64_t first = 0;
  std::uint32_t count = 0;
  bool full = false;  ///< a whole aligned 16-byte unit
};

/// Units of a span of `size` elements whose first `head` elements precede
/// the first 16-byte boundary.
ZOOPT_HD inline std::uint64_t span_units(std::uint64_t size, std::uint32_t head,
                                         std::uint32_t per_unit) {
  return (head > 0 ? 1 : 0) + (size - head + per_unit - 1) / per_unit;
}

/// The elements of local unit `k` of segment `s`.
ZOOPT_HD inline UnitRange unit_range(const DeviceSegment& s, std::uint64_t k,
                                     std::uint32_t per_unit) {
  if (s.head > 0) {
    if (k == 0) return UnitRange{0, s.head, false};
    --k;
  }
  const std::uint64_t first = s.head + k * per_unit;
  const std::uint64_t left = s.size - first;
  const auto count = static_cast<std::uint32_t>(left < per_unit ? left : per_unit);
  return UnitRange{first, count, count == per_unit};
}

/// Index of the segment holding unit u: the last s with unit_begin <= u
/// (segments sorted by unit_begin, the first starting at 0).
ZOOPT_HD inline std::uint32_t find_segment(const DeviceSegment* segs, std::uint32_t count,
                                           std::uint64_t u) {
  std::uint32_t lo = 0;
  std::uint32_t hi = count;  // invariant: segs[lo].unit_begin <= u, answer < hi
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    if (segs[mid].unit_begin <= u) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/// The segment table of a list of views, built and validated on the host.
struct SegmentTable {
  std::vector<DeviceSegment> rows;
  std::vector<double> scales;
  std::uint64_t units = 0;
  std::uint64_t tiles = 0;
  std::uint64_t elements = 0;
};

/// Builds the table for element type T. Throws std::invalid_argument naming
/// the field when a view is unusable: no spans, a null or misaligned data
/// pointer, an empty span, offsets that are not increasing and disjoint, a
/// non-finite scale, or more than kMaxElements elements.
template <class T>
SegmentTable build_segment_table(std::span<const SpanView<T>> views) {
  constexpr const char* where = "zoopt::cuda::CudaBackend";
  zoopt::detail::require(!views.empty(), where, "views", "must hold at least one span");
  zoopt::detail::require(views.size() < 0xffffffffu, where, "views", "has too many spans");
  SegmentTable t;
  t.rows.reserve(views.size());
  t.scales.reserve(views.size());
  std::uint64_t end = 0;
  for (std::size_t i = 0; i < views.size(); ++i) {
    const SpanView<T>& v = views[i];
    const std::string at = "(span " + std::to_string(i) + ") ";
    zoopt::detail::require(v.data != nullptr, where, "views.data", at + "must not be null");
    const auto addr = reinterpret_cast<std::uintptr_t>(v.data);
    zoopt::detail::require(addr % alignof(T) == 0, where, "views.data",
                           at + "must be aligned to the element size");
    zoopt::detail::require(v.size > 0, where, "views.size", at + "must be > 0");
    zoopt::detail::require(i == 0 || v.offset >= end, where, "views.offset",
                           at + "must not be below the end of the previous span");
    zoopt::detail::require(v.offset < kMaxElements && v.size <= kMaxElements - v.offset, where,
                           "views.size", at + "reaches past the 2^62 elements the noise supports");
    zoopt::detail::require(v.scale == v.scale && v.scale - v.scale == 0.0, where, "views.scale",
                           at + "must be finite");
    const auto misalign = static_cast<std::uint32_t>(addr % 16);
    const std::uint32_t head = misalign == 0 ? 0u
                                             : static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                                   v.size, (16 - misalign) / sizeof(T)));
    DeviceSegment row;
    row.data = const_cast<void*>(static_cast<const void*>(v.data));
    row.size = v.size;
    row.offset = v.offset;
    row.unit_begin = t.units;
    row.head = head;
    row.weight_decay = v.weight_decay ? 1u : 0u;
    row.rows = v.shape.rows;
    row.cols = v.shape.cols;
    t.units += span_units(v.size, head, unit_elements<T>);
    t.rows.push_back(row);
    t.scales.push_back(v.scale);
    t.elements += v.size;
    end = v.offset + v.size;
  }
  t.tiles = (t.units + units_per_tile<T> - 1) / units_per_tile<T>;
  return t;
}

/// Same geometry (pointers, sizes, offsets, weight-decay flags, shapes): the uploaded
/// table can be reused, at most the scales need refreshing.
inline bool same_geometry(const SegmentTable& a, const SegmentTable& b) {
  if (a.rows.size() != b.rows.size()) return false;
  for (std::size_t i = 0; i < a.rows.size(); ++i) {
    const DeviceSegment& x = a.rows[i];
    const DeviceSegment& y = b.rows[i];
    if (x.data != y.data || x.size != y.size || x.offset != y.offset ||
        x.weight_decay != y.weight_decay || x.rows != y.rows || x.cols != y.cols) {
      return false;
    }
  }
  return true;
}

/// Blocks to launch for `tiles` tiles: enough to fill the device
/// (`sm_count` * `blocks_per_sm` resident blocks), never more than there are
/// tiles; the kernels stride over the remaining tiles. At least 1.
inline std::uint32_t launch_blocks(std::uint64_t tiles, int sm_count, int blocks_per_sm) {
  const std::uint64_t resident = static_cast<std::uint64_t>(std::max(sm_count, 1)) *
                                 static_cast<std::uint64_t>(std::max(blocks_per_sm, 1));
  const std::uint64_t blocks = std::min<std::uint64_t>(std::max<std::uint64_t>(tiles, 1), resident);
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks, 0x7fffffffu));
}

}  // namespace zoopt::cuda
