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
//   segment table     56 bytes + 8 (scale) per span
//   journal           journal_capacity * 8 bytes per generation, plus one
//                     4-byte chain head per 4096-element tile (d / 1024 bytes);
//                     update_and_move() uses a second generation
//   reductions        (span_moments / l2_norm only) CUB temporary storage,
//                     O(spans + d / 2^22) rows
//   shaped samplers   (LowRankSampler only) the factors of every direction
//                     of a pass, (rows + cols) Rank floats per matrix, on
//                     the host and the device (shaped_factors.hpp)
//
// Restore journal and its overflow: device_journal.hpp.
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
#include "zoopt/cuda/buffer.hpp"
#include "zoopt/cuda/device_journal.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/error.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/cuda/options.hpp"
#include "zoopt/cuda/shaped_factors.hpp"
#include "zoopt/cuda/span_reducer.hpp"
#include "zoopt/cuda/types.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/optimizer/fzoo.hpp"
#include "zoopt/optimizer/kerzoo.hpp"
#include "zoopt/optimizer/mezo.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/rademacher.hpp"

namespace zoopt::cuda {

/// Backend for device-resident parameters of type T (float, __half,
/// __nv_bfloat16; computed in float) with noise from Sampler. Views passed
/// to it must hold device pointers (cudaMalloc'd or managed memory).
template <class T, class Sampler>
class CudaBackend {
  static_assert(DeviceReal<T>,
                "zoopt::cuda::CudaBackend: T must be float, __half or __nv_bfloat16");
  static_assert(!ShapedSampler<Sampler> || ElementShapedSampler<Sampler>,
                "zoopt::cuda::CudaBackend: a sampler that uses span shapes needs a host-and-device "
                "static entry_at(key, span, scratch, position) (ElementShapedSampler, "
                "sampler/noise.hpp)");

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
    if (!dirty_) journal_.throw_if_overflowed(o_.on_overflow, o_.stream);
    detail::PassParams p = base_params(seed, step, terms, "move");
    p.journal = journal_.refs_in_step();
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
    p.journal = journal_.refs_in_step();
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
    p.journal = journal_.refs_in_step();
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
    p.journal = journal_.refs_into_next(o_.stream);
    launch(detail::PassKind::finish_move, p);
    journal_.advance(o_.stream);
    dirty_ = true;
  }

  /// Elements journaled in the current step (synchronises the stream).
  [[nodiscard]] std::size_t journal_size() const { return journal_status().entries; }

  /// Journal counters (synchronises the stream).
  [[nodiscard]] JournalStatus journal_status() const { return journal_.status(o_.stream); }

  /// Clears the overflow flag and the lost-element count.
  void reset_overflow() { journal_.reset_overflow(o_.stream); }

  /// Device allocations this backend has made (a steady-state step makes
  /// none; tests check it).
  [[nodiscard]] std::uint64_t allocations() const noexcept {
    return allocations_ + journal_.allocations() + reducer_.allocations() + factors_.allocations();
  }

  /// Per-span mean and Bessel-corrected variance (ZO Fine-tuner features),
  /// written to out[i] for span i. Two cub::DeviceSegmentedReduce calls with
  /// temporary storage kept between calls; copies 3 doubles per span to the
  /// host and synchronises the stream.
  void span_moments(std::span<const SpanView<T>> views, std::span<SpanMoments> out) {
    constexpr const char* where = "zoopt::cuda::CudaBackend::span_moments";
    zoopt::detail::require(out.size() == views.size(), where, "out",
                           "must have one entry per span");
    prepare(views, "span_moments");
    reducer_.run(table_, segs_.get<const DeviceSegment>(), true, o_.stream);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double n = static_cast<double>(table_.rows[i].size);
      const detail::SpanSums& s = reducer_.sums(i);
      const double k = reducer_.first_value(i);
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
    reducer_.run(table_, segs_.get<const DeviceSegment>(), false, o_.stream);
    double sum = 0.0;
    for (std::size_t i = 0; i < table_.rows.size(); ++i) sum += reducer_.sums(i).sumsq;
    return std::sqrt(sum);
  }

  /// The uploaded segment table (host copy).
  [[nodiscard]] const SegmentTable& table() const noexcept { return table_; }

 private:
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
          r.weight_decay != (v.weight_decay ? 1u : 0u) || r.rows != v.shape.rows ||
          r.cols != v.shape.cols) {
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
    journal_.resize(o_, table_.elements, table_.tiles, o_.stream);
    int device = 0;
    detail::check(cudaGetDevice(&device), "cudaGetDevice");
    detail::check(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device),
                  "cudaDeviceGetAttribute");
    for (int k = 0; k < 3; ++k) {
      detail::check(
          detail::pass_occupancy<T, Sampler>(static_cast<detail::PassKind>(k), &blocks_per_sm_[k]),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    }
    reducer_.invalidate();
    uploaded_ = true;
    upload_scales();
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

  void end_step() {
    journal_.end_step(o_.stream);
    dirty_ = false;
  }

  void launch(detail::PassKind kind, detail::PassParams p) {
    p.scratch = factors_.upload(table_, p.seed, p.step, {p.terms, p.num_terms}, p.next_step,
                                {p.next_terms, p.num_next}, o_.stream);
    const std::uint32_t blocks =
        launch_blocks(table_.tiles, sm_count_, blocks_per_sm_[static_cast<int>(kind)]);
    detail::check(detail::launch_pass<T, Sampler>(kind, p, blocks, o_.stream),
                  "pass kernel launch");
  }

  CudaBackendOptions o_;
  SegmentTable table_;
  bool uploaded_ = false;
  detail::Buffer segs_;
  detail::Buffer scales_;
  detail::Buffer scales_host_;
  detail::DeviceJournal journal_;
  bool dirty_ = false;
  int sm_count_ = 1;
  int blocks_per_sm_[3] = {1, 1, 1};
  std::uint64_t allocations_ = 0;
  detail::SpanReducer<T> reducer_;
  detail::DeviceFactors<Sampler> factors_;
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
