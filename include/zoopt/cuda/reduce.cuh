// Per-span reductions with CUB (nvcc only). Elements are addressed without a
// copy as the virtual index (span << 40) + position. Spans are cut into
// chunks of at most kReduceChunk elements so that one huge span does not run
// on a single block: a first cub::DeviceSegmentedReduce sums each chunk, a
// second sums the chunks of each span (fixed order: deterministic results).
// Used for the ZO Fine-tuner's block features (mean and Bessel-corrected
// variance) and the L2 norm.
#pragma once

#if !defined(__CUDACC__)
#error "zoopt/cuda/reduce.cuh must be compiled by nvcc; host compilers use cuda_backend.hpp"
#endif

#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <cub/device/device_segmented_reduce.cuh>

#include <cstdint>

#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/types.hpp"

namespace zoopt::cuda::detail {

inline constexpr int kSpanShift = 40;

/// Element (span << 40) + j as its shifted value and square, in double.
template <class T>
struct SpanElement {
  const DeviceSegment* segs;
  bool shifted;
  __device__ SpanSums operator()(std::uint64_t i) const {
    const DeviceSegment& s = segs[i >> kSpanShift];
    const T* data = static_cast<const T*>(s.data);
    const double k = shifted ? static_cast<double>(to_compute(data[0])) : 0.0;
    const double v =
        static_cast<double>(to_compute(data[i & ((std::uint64_t{1} << kSpanShift) - 1)])) - k;
    return SpanSums{v, v * v};
  }
};

struct AddSums {
  __device__ SpanSums operator()(const SpanSums& a, const SpanSums& b) const {
    return SpanSums{a.sum + b.sum, a.sumsq + b.sumsq};
  }
};

template <class T>
cudaError_t chunk_sums(void* temp, std::size_t& temp_bytes, const DeviceSegment* segs,
                       const std::uint64_t* begin, const std::uint64_t* end,
                       std::uint32_t num_chunks, SpanSums* out, bool shifted, cudaStream_t stream) {
  const thrust::counting_iterator<std::uint64_t> zero(0);
  const auto in = thrust::make_transform_iterator(zero, SpanElement<T>{segs, shifted});
  return cub::DeviceSegmentedReduce::Reduce(temp, temp_bytes, in, out,
                                            static_cast<std::int64_t>(num_chunks), begin, end,
                                            AddSums{}, SpanSums{}, stream);
}

template <class T>
cudaError_t combine_sums(void* temp, std::size_t& temp_bytes, const SpanSums* chunks,
                         const std::uint32_t* offsets, std::uint32_t num_spans, SpanSums* out,
                         cudaStream_t stream) {
  return cub::DeviceSegmentedReduce::Reduce(temp, temp_bytes, chunks, out,
                                            static_cast<std::int64_t>(num_spans), offsets,
                                            offsets + 1, AddSums{}, SpanSums{}, stream);
}

template <class T>
__global__ void first_values_kernel(const DeviceSegment* segs, std::uint32_t count, double* out) {
  for (std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += gridDim.x * blockDim.x) {
    out[i] = static_cast<double>(to_compute(static_cast<const T*>(segs[i].data)[0]));
  }
}

template <class T>
cudaError_t first_values(const DeviceSegment* segs, std::uint32_t count, double* out,
                         cudaStream_t stream) {
  std::uint32_t grid = (count + 255) / 256;
  grid = grid < 1 ? 1 : (grid > 1024 ? 1024 : grid);
  first_values_kernel<T><<<grid, 256, 0, stream>>>(segs, count, out);
  return cudaGetLastError();
}

}  // namespace zoopt::cuda::detail
