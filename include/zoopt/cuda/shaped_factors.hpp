// The scratch of a shaped sampler (LowRankSampler's factors) for the CUDA
// passes: drawn on the host by the sampler's prepare() (the values
// CpuBackend draws, bit for bit), then copied to the device before the pass.
// Cost per pass: (rows + cols) Rank Gaussians per matrix and direction on the
// host, one stream synchronisation (the previous pass may still read the
// device copy, the previous copy the host buffer) and a host-to-device copy.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/cuda/buffer.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/error.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt::cuda::detail {

/// The host side: the table of offsets and the values, laid out as
/// ShapedScratch describes (slot k < terms.size() is terms[k] at `step`, the
/// slots after it next_terms at `next_step`). Buffers grow only. Empty for
/// samplers that do not use shapes.
template <class Sampler>
class HostFactors {
 public:
  void fill(const SegmentTable& table, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms, std::uint64_t next_step,
            std::span<const Term> next_terms) {
    if constexpr (ShapedSampler<Sampler>) {
      const std::size_t segs = table.rows.size();
      const std::size_t slots = terms.size() + next_terms.size();
      const auto term_of = [&](std::size_t k) -> const Term& {
        return k < terms.size() ? terms[k] : next_terms[k - terms.size()];
      };
      const auto used = [](const Term& t) { return t.before != 0.0 || t.after != 0.0; };
      at_.assign(slots * segs, 0);
      std::uint64_t total = 0;
      for (std::size_t k = 0; k < slots; ++k) {
        if (!used(term_of(k))) continue;
        for (std::size_t s = 0; s < segs; ++s) {
          at_[k * segs + s] = total;
          total += Sampler::scratch_size(layout(table.rows[s]));
        }
      }
      size_ = static_cast<std::size_t>(total);
      if (values_.size() < size_) values_.resize(size_);
      for (std::size_t k = 0; k < slots; ++k) {
        const Term& t = term_of(k);
        if (!used(t)) continue;
        const NoiseKey key{seed, k < terms.size() ? step : next_step, t.direction};
        for (std::size_t s = 0; s < segs; ++s) {
          Sampler::prepare(key, layout(table.rows[s]), values_.data() + at_[k * segs + s]);
        }
      }
    }
  }

  [[nodiscard]] std::span<const std::uint64_t> offsets() const noexcept { return at_; }
  [[nodiscard]] std::span<const float> values() const noexcept { return {values_.data(), size_}; }

  static SpanLayout layout(const DeviceSegment& s) {
    return SpanLayout{s.offset, s.size, MatrixShape{s.rows, s.cols}};
  }

 private:
  std::vector<std::uint64_t> at_;
  std::vector<float> values_;
  std::size_t size_ = 0;
};

/// Host factors and their device copy; upload() returns what the pass
/// kernel reads. Empty (and free) for samplers that do not use shapes.
template <class Sampler>
class DeviceFactors {
 public:
  ShapedScratch upload(const SegmentTable& table, std::uint64_t seed, std::uint64_t step,
                       std::span<const Term> terms, std::uint64_t next_step,
                       std::span<const Term> next_terms, cudaStream_t stream) {
    if constexpr (!ShapedSampler<Sampler>) {
      return {};
    } else {
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      host_.fill(table, seed, step, terms, next_step, next_terms);
      const auto at = host_.offsets();
      const auto values = host_.values();
      grow(at_, std::max<std::size_t>(at.size_bytes(), 1));
      grow(values_, std::max<std::size_t>(values.size_bytes(), 1));
      check(cudaMemcpyAsync(at_.get(), at.data(), at.size_bytes(), cudaMemcpyHostToDevice, stream),
            "cudaMemcpyAsync (low-rank factor table)");
      check(cudaMemcpyAsync(values_.get(), values.data(), values.size_bytes(),
                            cudaMemcpyHostToDevice, stream),
            "cudaMemcpyAsync (low-rank factors)");
      return ShapedScratch{values_.get<const float>(), at_.get<const std::uint64_t>(),
                           static_cast<std::uint32_t>(table.rows.size())};
    }
  }

  /// Device allocations made.
  [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }

 private:
  void grow(Buffer& b, std::size_t bytes) {
    if (b.reserve(bytes)) ++allocations_;
  }

  HostFactors<Sampler> host_;
  Buffer at_;
  Buffer values_;
  std::uint64_t allocations_ = 0;
};

}  // namespace zoopt::cuda::detail
