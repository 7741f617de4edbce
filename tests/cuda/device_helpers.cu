#include "device_helpers.hpp"

#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <cub/device/device_reduce.cuh>

#include "zoopt/cuda/error.hpp"

namespace zoopt::cuda::test {

namespace {

struct Term2 {
  const float* x;
  const float* t;
  const float* w;
  __device__ double operator()(std::size_t i) const {
    const double e = static_cast<double>(x[i]) - static_cast<double>(t[i]);
    return 0.5 * static_cast<double>(w[i]) * e * e;
  }
};

}  // namespace

DeviceQuadratic::DeviceQuadratic(const float* target, const float* weight, std::size_t n)
    : t_(target), w_(weight), n_(n) {
  const auto in = thrust::make_transform_iterator(thrust::counting_iterator<std::size_t>(0),
                                                  Term2{nullptr, t_, w_});
  detail::check(cub::DeviceReduce::Sum(nullptr, temp_bytes_, in, static_cast<double*>(nullptr),
                                       static_cast<long long>(n_)),
                "cub::DeviceReduce::Sum (size)");
  detail::check(cudaMalloc(&temp_, temp_bytes_), "cudaMalloc");
  detail::check(cudaMalloc(&out_, sizeof(double)), "cudaMalloc");
}

DeviceQuadratic::~DeviceQuadratic() {
  static_cast<void>(cudaFree(temp_));
  static_cast<void>(cudaFree(out_));
}

double DeviceQuadratic::operator()(const float* x) {
  const auto in =
      thrust::make_transform_iterator(thrust::counting_iterator<std::size_t>(0), Term2{x, t_, w_});
  detail::check(cub::DeviceReduce::Sum(temp_, temp_bytes_, in, out_, static_cast<long long>(n_)),
                "cub::DeviceReduce::Sum");
  double v = 0.0;
  detail::check(cudaMemcpy(&v, out_, sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
  return v / static_cast<double>(n_);
}

}  // namespace zoopt::cuda::test
