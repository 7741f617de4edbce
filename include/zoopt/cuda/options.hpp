// Options and reports of zoopt::cuda::CudaBackend (cuda_backend.hpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "zoopt/core/error.hpp"

namespace zoopt::cuda {

/// What happens after the restore journal overflowed (see cuda_backend.hpp).
enum class OverflowPolicy {
  throw_next_step,  ///< the next step's first move() throws JournalOverflow
  record,           ///< only counted: journal_status().lost
};

/// Options of a CudaBackend. check() throws std::invalid_argument naming the
/// field.
struct CudaBackendOptions {
  /// journal_capacity value meaning "journal_fraction of the elements".
  static constexpr std::size_t auto_capacity = std::numeric_limits<std::size_t>::max();
  /// Stream every pass and reduction is issued on.
  cudaStream_t stream = nullptr;
  /// Journal pool entries per generation (8 bytes each); 0 disables the
  /// journal (restores are then within one rounding, like reference MeZO).
  std::size_t journal_capacity = auto_capacity;
  /// With auto_capacity: max(65536, ceil(fraction * elements)) entries.
  double journal_fraction = 0.125;
  OverflowPolicy on_overflow = OverflowPolicy::throw_next_step;

  void check() const {
    constexpr const char* where = "zoopt::cuda::CudaBackendOptions";
    zoopt::detail::require(journal_capacity == auto_capacity || journal_capacity < 0xffffffffu,
                           where, "journal_capacity", "must be below 2^32 - 1 entries");
    zoopt::detail::require(
        std::isfinite(journal_fraction) && journal_fraction > 0.0 && journal_fraction <= 1.0, where,
        "journal_fraction", "must be in (0, 1]");
  }
};

/// State of the restore journal (reading it synchronises the stream).
struct JournalStatus {
  std::uint64_t capacity = 0;  ///< pool entries per generation
  std::uint64_t entries = 0;   ///< elements journaled in the current step
  std::uint64_t lost = 0;      ///< elements not journaled for lack of capacity (cumulative)
  bool overflowed = false;     ///< the overflow flag (cleared by reset_overflow())
};

/// Mean and Bessel-corrected variance of one span (variance 0 for a span of
/// one element).
struct SpanMoments {
  double mean = 0.0;
  double variance = 0.0;
};

}  // namespace zoopt::cuda
