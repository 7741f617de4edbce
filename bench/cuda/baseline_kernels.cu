#include "baseline_kernels.hpp"

#include <cstdint>

#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt::cuda::bench {

namespace {

__global__ void axpy_kernel(float* __restrict__ x, const float* __restrict__ z, float a,
                            std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    x[i] += a * z[i];
  }
}

__global__ void fill_kernel(float* x, std::size_t n, unsigned long long seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    x[i] = 0.02f * zoopt::noise_at<zoopt::GaussianSampler, float>(zoopt::NoiseKey{seed, 0, 0}, i);
  }
}

unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

}  // namespace

cudaError_t axpy(float* x, const float* z, float a, std::size_t n, cudaStream_t stream) {
  axpy_kernel<<<grid_for(n), 256, 0, stream>>>(x, z, a, n);
  return cudaGetLastError();
}

cudaError_t fill_normal(float* x, std::size_t n, unsigned long long seed, cudaStream_t stream) {
  fill_kernel<<<grid_for(n), 256, 0, stream>>>(x, n, seed);
  return cudaGetLastError();
}

}  // namespace zoopt::cuda::bench
