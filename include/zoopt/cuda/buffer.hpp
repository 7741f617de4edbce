// One owned block of CUDA device or pinned host memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "zoopt/cuda/error.hpp"

namespace zoopt::cuda::detail {

/// Owns one cudaMalloc'd (device) or cudaHostAlloc'd (host) block.
class Buffer {
 public:
  enum class Kind { device, pinned_mapped };
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), kind_(o.kind_) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      kind_ = o.kind_;
    }
    return *this;
  }
  ~Buffer() { release(); }

  /// Makes the buffer hold at least `bytes` (contents lost when it grows).
  /// Returns true when it allocated.
  bool reserve(std::size_t bytes, Kind kind = Kind::device) {
    if (bytes <= bytes_ && kind == kind_ && ptr_ != nullptr) return false;
    release();
    kind_ = kind;
    if (kind == Kind::device) {
      check(cudaMalloc(&ptr_, bytes), "cudaMalloc");
    } else {
      check(cudaHostAlloc(&ptr_, bytes, cudaHostAllocMapped), "cudaHostAlloc");
    }
    bytes_ = bytes;
    return true;
  }
  template <class U = void>
  [[nodiscard]] U* get() const noexcept {
    return static_cast<U*>(ptr_);
  }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  void release() noexcept {
    if (ptr_ == nullptr) return;
    if (kind_ == Kind::device) {
      static_cast<void>(cudaFree(ptr_));
    } else {
      static_cast<void>(cudaFreeHost(ptr_));
    }
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  Kind kind_ = Kind::device;
};

}  // namespace zoopt::cuda::detail
