// Baseline device operations the benchmarks compare the fused passes with.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace zoopt::cuda::bench {

/// x += a * z over n floats (one read of x and z, one write of x).
cudaError_t axpy(float* x, const float* z, float a, std::size_t n, cudaStream_t stream);

/// Fills x with n floats drawn from N(0, 0.02^2) (deterministic).
cudaError_t fill_normal(float* x, std::size_t n, unsigned long long seed, cudaStream_t stream);

}  // namespace zoopt::cuda::bench
