// Parameters of one pass kernel launch and the dispatch layer's entry points.
// Plain C++ declarations: a host compiler calls them and links zoopt::cuda
// (explicit instantiations for float, __half and __nv_bfloat16 with the
// Gaussian, Rademacher, packed-sign Rademacher and default low-rank
// samplers); nvcc users may include kernels.cuh and reduce.cuh for the
// definitions (any sampler). Everything here reports
// failures as cudaError_t; CudaBackend turns them into exceptions.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "zoopt/backend/term.hpp"
#include "zoopt/cuda/layout.hpp"

namespace zoopt::cuda::detail {

/// The three pass kernels. `move`: from displacement `before` to `after`
/// (journal grows). `finish`: update (or restore) from the step's journal,
/// which it empties. `finish_move`: finish, then move to the next step's
/// first point in the same pass, journaling into the other generation.
enum class PassKind : std::uint32_t { move = 0, finish = 1, finish_move = 2 };

/// Directory value of a tile without journal entries; chunk link terminator.
inline constexpr std::uint32_t kNoChunk = 0xffffffffu;

/// One generation of the restore journal (see journal notes in
/// cuda_backend.hpp): a pool of 64-bit entries filled through `counter`, and
/// one chain head per tile.
struct JournalGeneration {
  unsigned long long* counter = nullptr;  ///< pool entries handed out (may exceed capacity)
  unsigned long long* entries = nullptr;  ///< journal entries stored (chunk headers excluded)
  std::uint64_t* pool = nullptr;
  std::uint32_t* directory = nullptr;
};

struct JournalRefs {
  JournalGeneration read;              ///< entries that hold theta0 for this pass
  JournalGeneration write;             ///< where new entries go (== read for move)
  std::uint64_t capacity = 0;          ///< pool entries per generation (0: no journal)
  unsigned long long* lost = nullptr;  ///< elements that could not be journaled (device)
  int* overflow = nullptr;             ///< set to 1 on overflow (host-mapped)
};

/// A shaped sampler's scratch as a pass sees it (ElementShapedSampler):
/// term slot k of segment `seg` starts at values + at[k * num_segs + seg];
/// slots 0.. are the pass's terms, then its next_terms (update_and_move).
struct ShapedScratch {
  const float* values = nullptr;
  const std::uint64_t* at = nullptr;
  std::uint32_t num_segs = 0;
};

/// Kernel parameters (passed by value, < 4 KiB).
struct PassParams {
  const DeviceSegment* segs = nullptr;
  const double* scales = nullptr;
  std::uint32_t num_segs = 0;
  std::uint64_t units = 0;
  std::uint64_t tiles = 0;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint32_t num_terms = 0;
  Term terms[kMaxTerms] = {};
  float eta = 0.0f;            ///< fl(lr)
  float lambda = 0.0f;         ///< fl(weight_decay)
  std::uint32_t decay_on = 0;  ///< weight_decay != 0
  std::uint32_t restore_only = 0;
  std::uint64_t next_step = 0;
  std::uint32_t num_next = 0;
  Term next_terms[kMaxTerms] = {};
  JournalRefs journal;
  ShapedScratch scratch;  ///< shaped samplers only
};

/// Launches one pass with `blocks` blocks of kBlockThreads threads.
template <class T, class Sampler>
cudaError_t launch_pass(PassKind kind, const PassParams& p, std::uint32_t blocks,
                        cudaStream_t stream);

/// Resident blocks per SM of a pass kernel.
template <class T, class Sampler>
cudaError_t pass_occupancy(PassKind kind, int* blocks_per_sm);

/// Per-span sums over a segment table: sum of (x - K) and of (x - K)^2 in
/// double, K = the span's first element when `shifted`, else 0.
struct SpanSums {
  double sum = 0.0;
  double sumsq = 0.0;
};

/// Largest span the reductions accept (elements): spans are addressed as
/// (span << 40) + position.
inline constexpr std::uint64_t kMaxReduceSpan = std::uint64_t{1} << 40;
/// Elements per chunk of the first reduction stage.
inline constexpr std::uint64_t kReduceChunk = std::uint64_t{1} << 22;

/// Stage 1: sums of the virtual-index ranges [begin[c], end[c]) (device
/// arrays) into out[c]. With `temp` null, writes the temporary storage size
/// to `temp_bytes` (CUB convention).
template <class T>
cudaError_t chunk_sums(void* temp, std::size_t& temp_bytes, const DeviceSegment* segs,
                       const std::uint64_t* begin, const std::uint64_t* end,
                       std::uint32_t num_chunks, SpanSums* out, bool shifted, cudaStream_t stream);

/// Stage 2: out[s] = sum of chunks[offsets[s] .. offsets[s + 1]) (T: the
/// element type of the spans, for instantiation only).
template <class T>
cudaError_t combine_sums(void* temp, std::size_t& temp_bytes, const SpanSums* chunks,
                         const std::uint32_t* offsets, std::uint32_t num_spans, SpanSums* out,
                         cudaStream_t stream);

/// out[s] = the first element of span s (the shift of the shifted sums).
template <class T>
cudaError_t first_values(const DeviceSegment* segs, std::uint32_t count, double* out,
                         cudaStream_t stream);

}  // namespace zoopt::cuda::detail
