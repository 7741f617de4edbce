// Per-span sums over device parameters (CudaBackend::span_moments and
// l2_norm): each span is cut into chunks of kReduceChunk elements, reduced
// by one cub::DeviceSegmentedReduce over the chunks and one over each span's
// chunks, so that no segment is longer than 2^22 elements.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/cuda/buffer.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/error.hpp"
#include "zoopt/cuda/layout.hpp"

namespace zoopt::cuda::detail {

template <class T>
class SpanReducer {
 public:
  /// The chunk layout is rebuilt on the next run (the segment table changed).
  void invalidate() noexcept { ready_ = false; }

  /// Reduces every span of `table` (its device copy at `segs`) and copies
  /// one SpanSums per span and each span's first value to the host; with
  /// `shifted`, the sums are of x - first value (a stable variance).
  /// Synchronises `stream`.
  void run(const SegmentTable& table, const DeviceSegment* segs, bool shifted,
           cudaStream_t stream) {
    spans_ = static_cast<std::uint32_t>(table.rows.size());
    if (!ready_) prepare(table, stream);
    auto* chunks = chunk_out_.get<SpanSums>();
    auto* sums = span_out_.get<SpanSums>();
    std::size_t bytes = temp_.bytes();
    check(chunk_sums<T>(temp_.get(), bytes, segs, chunk_begin_.get<const std::uint64_t>(),
                        chunk_end_.get<const std::uint64_t>(), chunks_, chunks, shifted, stream),
          "cub::DeviceSegmentedReduce (chunks)");
    bytes = temp_.bytes();
    check(combine_sums<T>(temp_.get(), bytes, chunks, chunk_offsets_.get<const std::uint32_t>(),
                          spans_, sums, stream),
          "cub::DeviceSegmentedReduce (spans)");
    check(first_values<T>(segs, spans_, reinterpret_cast<double*>(sums + spans_), stream),
          "first values kernel");
    check(cudaMemcpyAsync(host_.get(), sums, spans_ * (sizeof(SpanSums) + sizeof(double)),
                          cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync (span sums)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  /// Sums of span i from the last run.
  [[nodiscard]] const SpanSums& sums(std::size_t i) const { return host_.get<SpanSums>()[i]; }
  /// First value of span i from the last run.
  [[nodiscard]] double first_value(std::size_t i) const {
    return reinterpret_cast<const double*>(host_.get<SpanSums>() + spans_)[i];
  }
  /// Allocations made (device and pinned host).
  [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }

 private:
  void grow(Buffer& b, std::size_t bytes, Buffer::Kind kind = Buffer::Kind::device) {
    if (b.reserve(bytes, kind)) ++allocations_;
  }

  void prepare(const SegmentTable& table, cudaStream_t stream) {
    std::vector<std::uint64_t> begin;
    std::vector<std::uint64_t> end;
    std::vector<std::uint32_t> offsets{0};
    for (std::uint32_t s = 0; s < spans_; ++s) {
      const std::uint64_t size = table.rows[s].size;
      zoopt::detail::require(size < kMaxReduceSpan, "zoopt::cuda::CudaBackend", "views.size",
                             "must be below 2^40 elements for the reductions");
      for (std::uint64_t at = 0; at < size; at += kReduceChunk) {
        begin.push_back((std::uint64_t{s} << 40) + at);
        end.push_back((std::uint64_t{s} << 40) + std::min(size, at + kReduceChunk));
      }
      offsets.push_back(static_cast<std::uint32_t>(begin.size()));
    }
    chunks_ = static_cast<std::uint32_t>(begin.size());
    grow(chunk_begin_, begin.size() * sizeof(std::uint64_t));
    grow(chunk_end_, end.size() * sizeof(std::uint64_t));
    grow(chunk_offsets_, offsets.size() * sizeof(std::uint32_t));
    grow(chunk_out_, begin.size() * sizeof(SpanSums));
    grow(span_out_, spans_ * (sizeof(SpanSums) + sizeof(double)));
    grow(host_, spans_ * (sizeof(SpanSums) + sizeof(double)), Buffer::Kind::pinned_mapped);
    check(cudaMemcpy(chunk_begin_.get(), begin.data(), begin.size() * sizeof(std::uint64_t),
                     cudaMemcpyHostToDevice),
          "cudaMemcpy (chunks)");
    check(cudaMemcpy(chunk_end_.get(), end.data(), end.size() * sizeof(std::uint64_t),
                     cudaMemcpyHostToDevice),
          "cudaMemcpy (chunks)");
    check(cudaMemcpy(chunk_offsets_.get(), offsets.data(), offsets.size() * sizeof(std::uint32_t),
                     cudaMemcpyHostToDevice),
          "cudaMemcpy (chunks)");
    std::size_t a = 0;
    std::size_t b = 0;
    check(chunk_sums<T>(nullptr, a, nullptr, nullptr, nullptr, chunks_, nullptr, true, stream),
          "cub::DeviceSegmentedReduce (size query)");
    check(combine_sums<T>(nullptr, b, nullptr, nullptr, spans_, nullptr, stream),
          "cub::DeviceSegmentedReduce (size query)");
    grow(temp_, std::max<std::size_t>(std::max(a, b), 1));
    ready_ = true;
  }

  bool ready_ = false;
  std::uint32_t spans_ = 0;
  std::uint32_t chunks_ = 0;
  std::uint64_t allocations_ = 0;
  Buffer chunk_begin_;
  Buffer chunk_end_;
  Buffer chunk_offsets_;
  Buffer chunk_out_;
  Buffer span_out_;
  Buffer host_;
  Buffer temp_;
};

}  // namespace zoopt::cuda::detail
