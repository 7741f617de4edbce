// CUDA backend: the passes of a ZO step over parameters in device memory.
// Plain C++ (host compilers included): link zoopt::cuda for the kernels.
//
// Same interface and per-element arithmetic as CpuBackend (move / update /
// restore over Terms), plus update_and_move(), which fuses the end of one
// step with the first perturbation of the next (2 passes per step for n = 1
// in steady state instead of 3).
//
// Memory, all allocated on the first pass and reused (a step allocates
// nothing, device or host):
//   segment table     48 bytes + 8 (scale) per span
//   journal           journal_capacity * 8 bytes per generation, plus one
//                     4-byte chain head per 4096-element tile (d / 1024 bytes);
//                     update_and_move() uses a second generation
//   reductions        (span_moments / l2_norm only) CUB temporary storage,
//                     O(spans + d / 2^22) rows
//
// Restore journal. A move writes fl(theta0 + d) in place; for a few elements
// fl(fl(theta0 + d) - d) != theta0 (CpuBackend explains when). The kernel
// checks every write and keeps those elements' theta0 bits: entries are
// grouped per tile in chunks appended to a fixed pool through an atomic
// counter, each tile's chunks chained from a per-tile head, and a later pass
// looks a tile's entries up in shared memory. Entries are 8 bytes (position
// in the tile, theta0 bits). Measured rates for float, eps = 1e-3, Gaussian
// z, after the +eps and -eps moves of one step (CPU journal, same rule):
// 11% of elements for theta ~ N(0, 0.02^2), 3.8% for N(0, 0.1^2), 0.5% for
// N(0, 1). Default capacity: d / 8 entries per generation.
//
// Overflow. A tile whose chunk does not fit is not journaled (never written
// past the pool); its elements are later rebuilt as fl(x - d), i.e. restored
// to within one rounding instead of bit-exactly, like the reference MeZO. The
// count is kept (journal_status()) and a host-mapped flag is raised; with
// OverflowPolicy::throw_next_step the next step's first move() throws
// JournalOverflow before touching the parameters (update_and_move() cannot
// throw safely, it only records). Which tiles miss out after an overflow
// depends on scheduling; without overflow results are deterministic.
//
// Streams. All work goes to options.stream (default: the legacy default
// stream). The user's loss must run its model on that stream or synchronise
// with it; reading the loss value back to the host is the only device->host
// traffic of a step.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/error.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/cuda/types.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/optimizer/fzoo.hpp"
#include "zoopt/optimizer/kerzoo.hpp"
#include "zoopt/optimizer/mezo.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/rademacher.hpp"

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

namespace detail {

/// Owns one cudaMalloc'd (device) or cudaHostAlloc'd (host) block.
class Buffer {
 public:
  enum class Kind { device, pinned_mapped };
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), kind_(o.kind_) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      kind_ = o.kind_;
    }
    return *this;
  }
  ~Buffer() { release(); }

  /// Makes the buffer hold at least `bytes` (contents lost when it grows).
  /// Returns true when it allocated.
  bool reserve(std::size_t bytes, Kind kind = Kind::device) {
    if (bytes <= bytes_ && kind == kind_ && ptr_ != nullptr) return false;
    release();
    kind_ = kind;
    if (kind == Kind::device) {
      check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
    } else {
      check(cudaHostAlloc(&ptr_, bytes, cudaHostAllocMapped), "cudaHostAlloc");
    }
    bytes_ = bytes;
    return true;
  }
  template <class U = void>
  [[nodiscard]] U* get() const noexcept {
    return static_cast<U*>(ptr_);
  }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  void release() noexcept {
    if (ptr_ == nullptr) return;
    if (kind_ == Kind::device) {
      static_cast<void>(cudaFree(ptr_));
    } else {
      static_cast<void>(cudaFreeHost(ptr_));
    }
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  Kind kind_ = Kind::device;
};

/// Journal pool entries for `elements` under `options`.
inline std::uint64_t journal_entries(const CudaBackendOptions& o, std::uint64_t elements) {
  if (o.journal_capacity != CudaBackendOptions::auto_capacity) return o.journal_capacity;
  const auto want =
      static_cast<std::uint64_t>(std::ceil(o.journal_fraction * static_cast<double>(elements)));
  return std::min<std::uint64_t>(std::max<std::uint64_t>(want, 65536), 0xfffffffeu);
}

}  // namespace detail

/// Backend for device-resident parameters of type T (float, __half,
/// __nv_bfloat16; computed in float) with noise from Sampler. Views passed
/// to it must hold device pointers (cudaMalloc'd or managed memory).
template <class T, class Sampler>
class CudaBackend {
  static_assert(DeviceReal<T>,
                "zoopt::cuda::CudaBackend: T must be float, __half or __nv_bfloat16");
  static_assert(!ShapedSampler<Sampler>,
                "zoopt::cuda::CudaBackend: samplers that use span shapes (LowRankSampler) run "
                "on CpuBackend only");

 public:
  using C = compute_t<T>;
  using value_type = T;
  using sampler_type = Sampler;

  explicit CudaBackend(CudaBackendOptions options = {}) : o_(std::move(options)) { o_.check(); }
  CudaBackend(CudaBackend&&) noexcept = default;
  CudaBackend& operator=(CudaBackend&&) noexcept = default;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  ~CudaBackend() = default;

  [[nodiscard]] const CudaBackendOptions& options() const noexcept { return o_; }

  /// One pass: from displacement `before` to displacement `after`.
  void move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms) {
    check_terms(terms, "move");
    prepare(views, "move");
    if (!dirty_) check_overflow();
    detail::PassParams p = base_params(seed, step, terms, "move");
    p.journal = refs(cur_, cur_);
    launch(detail::PassKind::move, p);
    dirty_ = true;
  }

  /// Last pass of a step: theta = theta0 - lr * (ghat + lambda * theta0);
  /// empties the journal.
  void update(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
              std::span<const Term> terms, double lr, double weight_decay) {
    check_terms(terms, "update");
    prepare(views, "update");
    detail::PassParams p = base_params(seed, step, terms, "update");
    set_update(p, lr, weight_decay);
    p.journal = refs(cur_, cur_);
    launch(detail::PassKind::finish, p);
    end_step();
  }

  /// Writes theta0 back bit-exactly (journal permitting); empties the journal.
  void restore(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    check_terms(terms, "restore");
    prepare(views, "restore");
    detail::PassParams p = base_params(seed, step, terms, "restore");
    p.restore_only = 1;
    p.journal = refs(cur_, cur_);
    launch(detail::PassKind::finish, p);
    end_step();
  }

  /// update(views, seed, step, terms, lr, weight_decay) followed by
  /// move(views, seed, next_step, next_terms) in one pass. next_terms must
  /// all have before == 0 (the next step starts from the updated theta).
  /// Leaves the parameters displaced; the journal of the next step is filled
  /// as move() would.
  void update_and_move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                       std::span<const Term> terms, double lr, double weight_decay,
                       std::uint64_t next_step, std::span<const Term> next_terms) {
    constexpr const char* where = "zoopt::cuda::CudaBackend::update_and_move";
    zoopt::detail::require(next_terms.size() <= kMaxTerms, where, "next_terms",
                           "must hold at most " + std::to_string(kMaxTerms) + " terms");
    for (const Term& t : next_terms) {
      zoopt::detail::require(t.before == 0.0, where, "next_terms",
                             "must have before == 0 (the next step starts at the updated theta)");
    }
    check_terms(terms, "update_and_move");
    prepare(views, "update_and_move");
    detail::PassParams p = base_params(seed, step, terms, "update_and_move");
    set_update(p, lr, weight_decay);
    p.next_step = next_step;
    p.num_next = static_cast<std::uint32_t>(next_terms.size());
    std::copy(next_terms.begin(), next_terms.end(), p.next_terms);
    const int next = 1 - cur_;
    ensure_generation(next);
    p.journal = refs(cur_, next);
    launch(detail::PassKind::finish_move, p);
    reset_counters(cur_);
    cur_ = next;
    dirty_ = true;
  }

  /// Elements journaled in the current step (synchronises the stream).
  [[nodiscard]] std::size_t journal_size() const { return journal_status().entries; }

  /// Journal counters (synchronises the stream).
  [[nodiscard]] JournalStatus journal_status() const {
    JournalStatus s;
    s.capacity = capacity_;
    if (words_.get() == nullptr) return s;
    unsigned long long w[5] = {};
    detail::check(cudaMemcpyAsync(w, words_.get(), sizeof(w), cudaMemcpyDeviceToHost, o_.stream),
                  "cudaMemcpyAsync (journal counters)");
    detail::check(cudaStreamSynchronize(o_.stream), "cudaStreamSynchronize");
    s.entries = w[2 * cur_ + 1];
    s.lost = w[4];
    s.overflowed = *flag_.get<volatile int>() != 0;
    return s;
  }

  /// Clears the overflow flag and the lost-element count.
  void reset_overflow() {
    if (words_.get() == nullptr) return;
    detail::check(cudaStreamSynchronize(o_.stream), "cudaStreamSynchronize");
    *flag_.get<volatile int>() = 0;
    detail::check(cudaMemsetAsync(words_.get<unsigned long long>() + 4, 0, 8, o_.stream),
                  "cudaMemsetAsync");
  }

  /// Device allocations this backend has made (a steady-state step makes
  /// none; tests check it).
  [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }

  /// Per-span mean and Bessel-corrected variance (ZO Fine-tuner features),
  /// written to out[i] for span i. Two cub::DeviceSegmentedReduce calls with
  /// temporary storage kept between calls; copies 3 doubles per span to the
  /// host and synchronises the stream.
  void span_moments(std::span<const SpanView<T>> views, std::span<SpanMoments> out) {
    constexpr const char* where = "zoopt::cuda::CudaBackend::span_moments";
    zoopt::detail::require(out.size() == views.size(), where, "out",
                           "must have one entry per span");
    prepare(views, "span_moments");
    reduce(true);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double n = static_cast<double>(table_.rows[i].size);
      const detail::SpanSums& s = host_sums_.template get<detail::SpanSums>()[i];
      const double k = host_sums_.template get<double>()[2 * table_.rows.size() + i];
      out[i].mean = k + s.sum / n;
      out[i].variance = n > 1.0 ? std::max(0.0, (s.sumsq - s.sum * s.sum / n) / (n - 1.0)) : 0.0;
    }
  }

  [[nodiscard]] std::vector<SpanMoments> span_moments(std::span<const SpanView<T>> views) {
    std::vector<SpanMoments> out(views.size());
    span_moments(views, out);
    return out;
  }

  /// Euclidean norm of all parameters (diagnostics; synchronises).
  [[nodiscard]] double l2_norm(std::span<const SpanView<T>> views) {
    prepare(views, "l2_norm");
    reduce(false);
    double sum = 0.0;
    for (std::size_t i = 0; i < table_.rows.size(); ++i) {
      sum += host_sums_.template get<detail::SpanSums>()[i].sumsq;
    }
    return std::sqrt(sum);
  }

  /// The uploaded segment table (host copy).
  [[nodiscard]] const SegmentTable& table() const noexcept { return table_; }

 private:
  struct Generation {
    detail::Buffer pool;
    detail::Buffer directory;
    bool ready = false;
  };

  static void check_terms(std::span<const Term> terms, const char* what) {
    if (terms.size() <= kMaxTerms) return;
    zoopt::detail::require(false, (std::string("zoopt::cuda::CudaBackend::") + what).c_str(),
                           "terms", "must hold at most " + std::to_string(kMaxTerms) + " terms");
  }

  detail::PassParams base_params(std::uint64_t seed, std::uint64_t step,
                                 std::span<const Term> terms, const char*) const {
    detail::PassParams p;
    p.segs = segs_.get<const DeviceSegment>();
    p.scales = scales_.get<const double>();
    p.num_segs = static_cast<std::uint32_t>(table_.rows.size());
    p.units = table_.units;
    p.tiles = table_.tiles;
    p.seed = seed;
    p.step = step;
    p.num_terms = static_cast<std::uint32_t>(terms.size());
    std::copy(terms.begin(), terms.end(), p.terms);
    return p;
  }

  static void set_update(detail::PassParams& p, double lr, double weight_decay) {
    p.eta = static_cast<float>(lr);
    p.lambda = static_cast<float>(weight_decay);
    p.decay_on = weight_decay != 0.0 ? 1u : 0u;
  }

  detail::JournalRefs refs(int read, int write) const {
    detail::JournalRefs j;
    j.capacity = capacity_;
    auto* w = words_.get<unsigned long long>();
    j.lost = w + 4;
    j.overflow = flag_device_;
    if (capacity_ > 0) {
      j.read = {w + 2 * read, w + 2 * read + 1, gens_[read].pool.template get<std::uint64_t>(),
                gens_[read].directory.template get<std::uint32_t>()};
      j.write = {w + 2 * write, w + 2 * write + 1, gens_[write].pool.template get<std::uint64_t>(),
                 gens_[write].directory.template get<std::uint32_t>()};
    } else {
      j.read = {w + 2 * read, w + 2 * read + 1, nullptr, nullptr};
      j.write = j.read;
    }
    return j;
  }

  // Validates the views against the uploaded table; re-uploads the geometry
  // when it changed (between steps only) and the scales when they changed.
  void prepare(std::span<const SpanView<T>> views, const char* what) {
    if (matches(views)) {
      bool scales_changed = false;
      for (std::size_t i = 0; i < views.size(); ++i) {
        if (views[i].scale != table_.scales[i]) {
          zoopt::detail::require(std::isfinite(views[i].scale),
                                 (std::string("zoopt::cuda::CudaBackend::") + what).c_str(),
                                 "views.scale", "must be finite");
          table_.scales[i] = views[i].scale;
          scales_changed = true;
        }
      }
      if (scales_changed) upload_scales();
      return;
    }
    SegmentTable t = build_segment_table<T>(views);
    zoopt::detail::require(!dirty_, (std::string("zoopt::cuda::CudaBackend::") + what).c_str(),
                           "views", "changed while a step's perturbation is applied");
    rebuild(std::move(t));
  }

  bool matches(std::span<const SpanView<T>> views) const {
    if (!uploaded_ || views.size() != table_.rows.size()) return false;
    for (std::size_t i = 0; i < views.size(); ++i) {
      const DeviceSegment& r = table_.rows[i];
      const SpanView<T>& v = views[i];
      if (r.data != static_cast<const void*>(v.data) || r.size != v.size || r.offset != v.offset ||
          r.weight_decay != (v.weight_decay ? 1u : 0u)) {
        return false;
      }
    }
    return true;
  }

  void rebuild(SegmentTable t) {
    detail::check(cudaStreamSynchronize(o_.stream), "cudaStreamSynchronize");
    for (const DeviceSegment& r : t.rows) {
      cudaPointerAttributes a{};
      detail::check(cudaPointerGetAttributes(&a, r.data), "cudaPointerGetAttributes");
      zoopt::detail::require(a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged,
                             "zoopt::cuda::CudaBackend", "views.data",
                             "must point to device or managed memory");
    }
    table_ = std::move(t);
    const std::size_t spans = table_.rows.size();
    grow(segs_, spans * sizeof(DeviceSegment));
    grow(scales_, spans * sizeof(double));
    grow(scales_host_, spans * sizeof(double), detail::Buffer::Kind::pinned_mapped);
    detail::check(cudaMemcpy(segs_.get(), table_.rows.data(), spans * sizeof(DeviceSegment),
                             cudaMemcpyHostToDevice),
                  "cudaMemcpy (segment table)");
    // Journal: capacity from the element count, one chain head per tile.
    if (words_.get() == nullptr) {
      grow(words_, 8 * sizeof(unsigned long long));
      detail::check(cudaMemsetAsync(words_.get(), 0, 8 * sizeof(unsigned long long), o_.stream),
                    "cudaMemsetAsync");
      grow(flag_, sizeof(int), detail::Buffer::Kind::pinned_mapped);
      *flag_.get<volatile int>() = 0;
      void* dev = nullptr;
      detail::check(cudaHostGetDevicePointer(&dev, flag_.get(), 0), "cudaHostGetDevicePointer");
      flag_device_ = static_cast<int*>(dev);
    }
    capacity_ = detail::journal_entries(o_, table_.elements);
    for (int g = 0; g < 2; ++g) {
      if (gens_[g].ready || g == cur_) {
        gens_[g].ready = false;
        ensure_generation(g);
      }
    }
    int device = 0;
    detail::check(cudaGetDevice(&device), "cudaGetDevice");
    detail::check(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device),
                  "cudaDeviceGetAttribute");
    for (int k = 0; k < 3; ++k) {
      detail::check(
          detail::pass_occupancy<T, Sampler>(static_cast<detail::PassKind>(k), &blocks_per_sm_[k]),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    }
    reduce_ready_ = false;
    uploaded_ = true;
    upload_scales();
  }

  void ensure_generation(int g) {
    if (gens_[g].ready || capacity_ == 0) {
      gens_[g].ready = true;
      return;
    }
    grow(gens_[g].pool, capacity_ * sizeof(std::uint64_t));
    grow(gens_[g].directory, std::max<std::uint64_t>(table_.tiles, 1) * sizeof(std::uint32_t));
    detail::check(cudaMemsetAsync(gens_[g].directory.get(), 0xff,
                                  std::max<std::uint64_t>(table_.tiles, 1) * sizeof(std::uint32_t),
                                  o_.stream),
                  "cudaMemsetAsync (journal directory)");
    reset_counters(g);
    gens_[g].ready = true;
  }

  void upload_scales() {
    const std::size_t spans = table_.rows.size();
    // The pinned staging buffer may still feed the previous copy.
    detail::check(cudaStreamSynchronize(o_.stream), "cudaStreamSynchronize");
    std::copy(table_.scales.begin(), table_.scales.end(), scales_host_.get<double>());
    detail::check(cudaMemcpyAsync(scales_.get(), scales_host_.get(), spans * sizeof(double),
                                  cudaMemcpyHostToDevice, o_.stream),
                  "cudaMemcpyAsync (span scales)");
  }

  void grow(detail::Buffer& b, std::size_t bytes,
            detail::Buffer::Kind kind = detail::Buffer::Kind::device) {
    if (b.reserve(bytes, kind)) ++allocations_;
  }

  void reset_counters(int g) {
    detail::check(cudaMemsetAsync(words_.get<unsigned long long>() + 2 * g, 0,
                                  2 * sizeof(unsigned long long), o_.stream),
                  "cudaMemsetAsync (journal counter)");
  }

  void end_step() {
    reset_counters(cur_);
    dirty_ = false;
  }

  void check_overflow() {
    if (flag_.get() == nullptr || o_.on_overflow != OverflowPolicy::throw_next_step) return;
    if (*flag_.get<volatile int>() == 0) return;
    const JournalStatus s = journal_status();
    *flag_.get<volatile int>() = 0;
    throw JournalOverflow(
        "zoopt::cuda::CudaBackend: the restore journal overflowed in an earlier step (" +
        std::to_string(s.lost) +
        " elements not journaled): they were restored or updated from "
        "fl(x - d), within one rounding of their exact values; raise "
        "CudaBackendOptions::journal_capacity (now " +
        std::to_string(capacity_) + " entries)");
  }

  void launch(detail::PassKind kind, const detail::PassParams& p) {
    const std::uint32_t blocks =
        launch_blocks(table_.tiles, sm_count_, blocks_per_sm_[static_cast<int>(kind)]);
    detail::check(detail::launch_pass<T, Sampler>(kind, p, blocks, o_.stream),
                  "pass kernel launch");
  }

  // Fills host_sums_ with one SpanSums per span followed by the spans' first
  // values (shifted) and synchronises.
  void reduce(bool shifted) {
    const auto spans = static_cast<std::uint32_t>(table_.rows.size());
    if (!reduce_ready_) prepare_reduce();
    auto* chunks = chunk_out_.get<detail::SpanSums>();
    auto* sums = span_out_.get<detail::SpanSums>();
    std::size_t bytes = temp_.bytes();
    detail::check(detail::chunk_sums<T>(temp_.get(), bytes, segs_.get<const DeviceSegment>(),
                                        chunk_begin_.get<const std::uint64_t>(),
                                        chunk_end_.get<const std::uint64_t>(), chunks_, chunks,
                                        shifted, o_.stream),
                  "cub::DeviceSegmentedReduce (chunks)");
    bytes = temp_.bytes();
    detail::check(
        detail::combine_sums<T>(temp_.get(), bytes, chunks,
                                chunk_offsets_.get<const std::uint32_t>(), spans, sums, o_.stream),
        "cub::DeviceSegmentedReduce (spans)");
    detail::check(detail::first_values<T>(segs_.get<const DeviceSegment>(), spans,
                                          reinterpret_cast<double*>(sums + spans), o_.stream),
                  "first values kernel");
    detail::check(
        cudaMemcpyAsync(host_sums_.get(), sums, spans * (sizeof(detail::SpanSums) + sizeof(double)),
                        cudaMemcpyDeviceToHost, o_.stream),
        "cudaMemcpyAsync (span sums)");
    detail::check(cudaStreamSynchronize(o_.stream), "cudaStreamSynchronize");
  }

  void prepare_reduce() {
    const auto spans = static_cast<std::uint32_t>(table_.rows.size());
    std::vector<std::uint64_t> begin;
    std::vector<std::uint64_t> end;
    std::vector<std::uint32_t> offsets{0};
    for (std::uint32_t s = 0; s < spans; ++s) {
      const std::uint64_t size = table_.rows[s].size;
      zoopt::detail::require(size < detail::kMaxReduceSpan, "zoopt::cuda::CudaBackend",
                             "views.size", "must be below 2^40 elements for the reductions");
      for (std::uint64_t at = 0; at < size; at += detail::kReduceChunk) {
        begin.push_back((std::uint64_t{s} << 40) + at);
        end.push_back((std::uint64_t{s} << 40) + std::min(size, at + detail::kReduceChunk));
      }
      offsets.push_back(static_cast<std::uint32_t>(begin.size()));
    }
    chunks_ = static_cast<std::uint32_t>(begin.size());
    grow(chunk_begin_, begin.size() * sizeof(std::uint64_t));
    grow(chunk_end_, end.size() * sizeof(std::uint64_t));
    grow(chunk_offsets_, offsets.size() * sizeof(std::uint32_t));
    grow(chunk_out_, begin.size() * sizeof(detail::SpanSums));
    grow(span_out_, spans * (sizeof(detail::SpanSums) + sizeof(double)));
    grow(host_sums_, spans * (sizeof(detail::SpanSums) + sizeof(double)),
         detail::Buffer::Kind::pinned_mapped);
    detail::check(cudaMemcpy(chunk_begin_.get(), begin.data(), begin.size() * sizeof(std::uint64_t),
                             cudaMemcpyHostToDevice),
                  "cudaMemcpy (chunks)");
    detail::check(cudaMemcpy(chunk_end_.get(), end.data(), end.size() * sizeof(std::uint64_t),
                             cudaMemcpyHostToDevice),
                  "cudaMemcpy (chunks)");
    detail::check(cudaMemcpy(chunk_offsets_.get(), offsets.data(),
                             offsets.size() * sizeof(std::uint32_t), cudaMemcpyHostToDevice),
                  "cudaMemcpy (chunks)");
    std::size_t a = 0;
    std::size_t b = 0;
    detail::check(detail::chunk_sums<T>(nullptr, a, nullptr, nullptr, nullptr, chunks_, nullptr,
                                        true, o_.stream),
                  "cub::DeviceSegmentedReduce (size query)");
    detail::check(detail::combine_sums<T>(nullptr, b, nullptr, nullptr, spans, nullptr, o_.stream),
                  "cub::DeviceSegmentedReduce (size query)");
    grow(temp_, std::max<std::size_t>(std::max(a, b), 1));
    reduce_ready_ = true;
  }

  CudaBackendOptions o_;
  SegmentTable table_;
  bool uploaded_ = false;
  detail::Buffer segs_;
  detail::Buffer scales_;
  detail::Buffer scales_host_;
  // words_: [2g] pool entries handed out by generation g, [2g+1] its journal
  // entries, [4] elements lost to overflow.
  detail::Buffer words_;
  detail::Buffer flag_;
  int* flag_device_ = nullptr;
  Generation gens_[2];
  std::uint64_t capacity_ = 0;
  int cur_ = 0;
  bool dirty_ = false;
  int sm_count_ = 1;
  int blocks_per_sm_[3] = {1, 1, 1};
  std::uint64_t allocations_ = 0;
  // Reductions.
  bool reduce_ready_ = false;
  std::uint32_t chunks_ = 0;
  detail::Buffer chunk_begin_;
  detail::Buffer chunk_end_;
  detail::Buffer chunk_offsets_;
  detail::Buffer chunk_out_;
  detail::Buffer span_out_;
  detail::Buffer host_sums_;
  detail::Buffer temp_;
};

/// MeZO on device memory: zoopt::MeZO with the CUDA backend.
template <class T, class Sampler = GaussianSampler, class Estimator = CentralDifference>
using MeZO = zoopt::MeZO<T, Sampler, Estimator, CudaBackend<T, Sampler>>;

/// KerZOO on device memory.
template <class T, class Sampler = GaussianSampler, class Estimator = CentralDifference>
using KerZOO = zoopt::KerZOO<T, Sampler, Estimator, CudaBackend<T, Sampler>>;

/// FZOO on device memory.
template <class T, class Sampler = RademacherSampler>
using FZOO = zoopt::FZOO<T, Sampler, CudaBackend<T, Sampler>>;

}  // namespace zoopt::cuda
