// Explicit instantiations of the CUDA dispatch layer for the types a host
// compiler can use through zoopt/cuda/cuda_backend.hpp: float, __half and
// __nv_bfloat16 storage with the Gaussian, Rademacher, packed-sign
// Rademacher and default low-rank (LowRankSampler<>, rank 2) samplers. Other
// ranks: include kernels.cuh in a .cu file and instantiate them the same way
// (Keep only acts on the host, but it is part of the type).
#include "zoopt/cuda/kernels.cuh"
#include "zoopt/cuda/reduce.cuh"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/low_rank.hpp"
#include "zoopt/sampler/rademacher.hpp"

namespace zoopt::cuda::detail {

#define ZOOPT_CUDA_INSTANTIATE_PASS(T, S)                                            \
  template cudaError_t launch_pass<T, S>(PassKind, const PassParams&, std::uint32_t, \
                                         cudaStream_t);                              \
  template cudaError_t pass_occupancy<T, S>(PassKind, int*);

#define ZOOPT_CUDA_INSTANTIATE_TYPE(T)                                                             \
  ZOOPT_CUDA_INSTANTIATE_PASS(T, ::zoopt::GaussianSampler)                                         \
  ZOOPT_CUDA_INSTANTIATE_PASS(T, ::zoopt::RademacherSampler)                                       \
  ZOOPT_CUDA_INSTANTIATE_PASS(T, ::zoopt::PackedRademacherSampler)                                 \
  ZOOPT_CUDA_INSTANTIATE_PASS(T, ::zoopt::LowRankSampler<>)                                        \
  template cudaError_t chunk_sums<T>(void*, std::size_t&, const DeviceSegment*,                    \
                                     const std::uint64_t*, const std::uint64_t*, std::uint32_t,    \
                                     SpanSums*, bool, cudaStream_t);                               \
  template cudaError_t combine_sums<T>(void*, std::size_t&, const SpanSums*, const std::uint32_t*, \
                                       std::uint32_t, SpanSums*, cudaStream_t);                    \
  template cudaError_t first_values<T>(const DeviceSegment*, std::uint32_t, double*, cudaStream_t);

ZOOPT_CUDA_INSTANTIATE_TYPE(float)
ZOOPT_CUDA_INSTANTIATE_TYPE(__half)
ZOOPT_CUDA_INSTANTIATE_TYPE(__nv_bfloat16)

#undef ZOOPT_CUDA_INSTANTIATE_TYPE
#undef ZOOPT_CUDA_INSTANTIATE_PASS

}  // namespace zoopt::cuda::detail
