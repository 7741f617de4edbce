// Errors of the CUDA backend. Internally every CUDA call reports a
// cudaError_t; check() below is the one place that turns one into an
// exception.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "zoopt/core/error.hpp"

namespace zoopt::cuda {

/// A CUDA runtime call failed. code() is the runtime's error.
class CudaError : public zoopt::StdError<std::runtime_error> {
 public:
  CudaError(cudaError_t code, const std::string& what)
      : zoopt::StdError<std::runtime_error>(what), code_(code) {}
  [[nodiscard]] cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

/// The restore journal ran out of capacity during an earlier step: some
/// elements were restored/updated from fl(x - d) instead of their exact
/// pre-step bits. Thrown at the start of the next step (parameters are then
/// unperturbed), see CudaBackendOptions::on_overflow.
class JournalOverflow : public zoopt::StdError<std::runtime_error> {
 public:
  using zoopt::StdError<std::runtime_error>::StdError;
};

namespace detail {

inline void check(cudaError_t code, const char* what) {
  if (code != cudaSuccess) {
    throw CudaError(code, std::string("zoopt::cuda: ") + what + " failed: " +
                              cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")");
  }
}

}  // namespace detail
}  // namespace zoopt::cuda
