// Device-side helpers of the CUDA device tests, callable from host-compiled
// test code: a weighted quadratic loss computed on the device (a stand-in for
// the user's CUDA model), deterministic (fixed CUB reduction order).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace zoopt::cuda::test {

/// L(x) = sum_i 0.5 w_i (x_i - t_i)^2 / n in double on the device; x, t, w
/// device arrays of n floats. Allocates its temporary storage once.
class DeviceQuadratic {
 public:
  DeviceQuadratic(const float* target, const float* weight, std::size_t n);
  ~DeviceQuadratic();
  DeviceQuadratic(const DeviceQuadratic&) = delete;
  DeviceQuadratic& operator=(const DeviceQuadratic&) = delete;
  double operator()(const float* x);

 private:
  const float* t_;
  const float* w_;
  std::size_t n_;
  void* temp_ = nullptr;
  std::size_t temp_bytes_ = 0;
  double* out_ = nullptr;
};

}  // namespace zoopt::cuda::test
