// The restore journal of CudaBackend, host side: its device memory, its
// counters and the overflow flag. The kernels (kernels.cuh) fill and read it.
//
// Entries. A move writes fl(theta0 + d) in place; for a few elements
// fl(fl(theta0 + d) - d) != theta0 (backend/restore_journal.hpp says when).
// The kernel checks every write and keeps those elements' theta0 bits: entries are
// grouped per tile in chunks appended to a fixed pool through an atomic
// counter, each tile's chunks chained from a per-tile head, and a later pass
// looks a tile's entries up in shared memory. Entries are 8 bytes (position
// in the tile, theta0 bits). Measured rates for float, eps = 1e-3, Gaussian
// z, after the +eps and -eps moves of one step (CPU journal, same rule):
// 11% of elements for theta ~ N(0, 0.02^2), 3.8% for N(0, 0.1^2), 0.5% for
// N(0, 1). Default capacity: d / 8 entries per generation.
//
// Overflow. A tile whose chunk does not fit is not journaled (never written
// past the pool); its elements are later rebuilt as fl(x - d), i.e. restored
// to within one rounding instead of bit-exactly, like the reference MeZO. The
// count is kept (journal_status()) and a host-mapped flag is raised; with
// OverflowPolicy::throw_next_step the next step's first move() throws
// JournalOverflow before touching the parameters (update_and_move() cannot
// throw safely, it only records). Which tiles miss out after an overflow
// depends on scheduling; without overflow results are deterministic.
//
// Generations. A pass reads theta0 from the generation of the current step
// and writes new entries into it; update_and_move() reads the current one
// and writes the next step's entries into the other, then makes that one
// current.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "zoopt/core/error.hpp"
#include "zoopt/cuda/buffer.hpp"
#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/error.hpp"
#include "zoopt/cuda/options.hpp"

namespace zoopt::cuda::detail {

/// Journal pool entries for `elements` under `options`.
inline std::uint64_t journal_entries(const CudaBackendOptions& o, std::uint64_t elements) {
  if (o.journal_capacity != CudaBackendOptions::auto_capacity) return o.journal_capacity;
  const auto want =
      static_cast<std::uint64_t>(std::ceil(o.journal_fraction * static_cast<double>(elements)));
  return std::min<std::uint64_t>(std::max<std::uint64_t>(want, 65536), 0xfffffffeu);
}

class DeviceJournal {
 public:
  /// Sizes the journal for `elements` in `tiles` tiles (the segment table
  /// changed; between steps only). Allocates only when it needs more.
  void resize(const CudaBackendOptions& o, std::uint64_t elements, std::uint64_t tiles,
              cudaStream_t stream) {
    if (words_.get() == nullptr) {
      grow(words_, 8 * sizeof(unsigned long long));
      check(cudaMemsetAsync(words_.get(), 0, 8 * sizeof(unsigned long long), stream),
            "cudaMemsetAsync");
      grow(flag_, sizeof(int), Buffer::Kind::pinned_mapped);
      *flag_.get<volatile int>() = 0;
      void* dev = nullptr;
      check(cudaHostGetDevicePointer(&dev, flag_.get(), 0), "cudaHostGetDevicePointer");
      flag_device_ = static_cast<int*>(dev);
    }
    capacity_ = journal_entries(o, elements);
    tiles_ = tiles;
    for (int g = 0; g < 2; ++g) {
      if (gens_[g].ready || g == cur_) {
        gens_[g].ready = false;
        ensure_generation(g, stream);
      }
    }
  }

  /// A pass within a step: reads and writes the current generation.
  [[nodiscard]] JournalRefs refs_in_step() const { return refs(cur_, cur_); }
  /// update_and_move(): reads the current generation, writes the other.
  [[nodiscard]] JournalRefs refs_into_next(cudaStream_t stream) {
    ensure_generation(1 - cur_, stream);
    return refs(cur_, 1 - cur_);
  }
  /// After update_and_move(): the other generation becomes current.
  void advance(cudaStream_t stream) {
    reset_counters(cur_, stream);
    cur_ = 1 - cur_;
  }
  /// After the last pass of a step: the current generation is emptied.
  void end_step(cudaStream_t stream) { reset_counters(cur_, stream); }

  /// Counters (synchronises the stream).
  [[nodiscard]] JournalStatus status(cudaStream_t stream) const {
    JournalStatus s;
    s.capacity = capacity_;
    if (words_.get() == nullptr) return s;
    unsigned long long w[5] = {};
    check(cudaMemcpyAsync(w, words_.get(), sizeof(w), cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync (journal counters)");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    s.entries = w[2 * cur_ + 1];
    s.lost = w[4];
    s.overflowed = *flag_.get<volatile int>() != 0;
    return s;
  }

  /// Clears the overflow flag and the lost-element count.
  void reset_overflow(cudaStream_t stream) {
    if (words_.get() == nullptr) return;
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    *flag_.get<volatile int>() = 0;
    check(cudaMemsetAsync(words_.get<unsigned long long>() + 4, 0, 8, stream), "cudaMemsetAsync");
  }

  /// With OverflowPolicy::throw_next_step: throws JournalOverflow (and
  /// clears the flag) if an earlier pass overflowed.
  void throw_if_overflowed(OverflowPolicy policy, cudaStream_t stream) {
    if (flag_.get() == nullptr || policy != OverflowPolicy::throw_next_step) return;
    if (*flag_.get<volatile int>() == 0) return;
    const JournalStatus s = status(stream);
    *flag_.get<volatile int>() = 0;
    throw JournalOverflow(
        "zoopt::cuda::CudaBackend: the restore journal overflowed in an earlier step (" +
        std::to_string(s.lost) +
        " elements not journaled): they were restored or updated from "
        "fl(x - d), within one rounding of their exact values; raise "
        "CudaBackendOptions::journal_capacity (now " +
        std::to_string(capacity_) + " entries)");
  }

  /// Allocations made (device and pinned host).
  [[nodiscard]] std::uint64_t allocations() const noexcept { return allocations_; }

 private:
  struct Generation {
    Buffer pool;
    Buffer directory;
    bool ready = false;
  };

  void grow(Buffer& b, std::size_t bytes, Buffer::Kind kind = Buffer::Kind::device) {
    if (b.reserve(bytes, kind)) ++allocations_;
  }

  void ensure_generation(int g, cudaStream_t stream) {
    if (gens_[g].ready || capacity_ == 0) {
      gens_[g].ready = true;
      return;
    }
    const std::uint64_t heads = std::max<std::uint64_t>(tiles_, 1);
    grow(gens_[g].pool, capacity_ * sizeof(std::uint64_t));
    grow(gens_[g].directory, heads * sizeof(std::uint32_t));
    check(cudaMemsetAsync(gens_[g].directory.get(), 0xff, heads * sizeof(std::uint32_t), stream),
          "cudaMemsetAsync (journal directory)");
    reset_counters(g, stream);
    gens_[g].ready = true;
  }

  void reset_counters(int g, cudaStream_t stream) {
    check(cudaMemsetAsync(words_.get<unsigned long long>() + 2 * g, 0,
                          2 * sizeof(unsigned long long), stream),
          "cudaMemsetAsync (journal counter)");
  }

  JournalRefs refs(int read, int write) const {
    JournalRefs j;
    j.capacity = capacity_;
    auto* w = words_.get<unsigned long long>();
    j.lost = w + 4;
    j.overflow = flag_device_;
    if (capacity_ > 0) {
      j.read = {w + 2 * read, w + 2 * read + 1, gens_[read].pool.get<std::uint64_t>(),
                gens_[read].directory.get<std::uint32_t>()};
      j.write = {w + 2 * write, w + 2 * write + 1, gens_[write].pool.get<std::uint64_t>(),
                 gens_[write].directory.get<std::uint32_t>()};
    } else {
      j.read = {w + 2 * read, w + 2 * read + 1, nullptr, nullptr};
      j.write = j.read;
    }
    return j;
  }

  // words_: [2g] pool entries handed out by generation g, [2g+1] its journal
  // entries, [4] elements lost to overflow.
  Buffer words_;
  Buffer flag_;
  int* flag_device_ = nullptr;
  Generation gens_[2];
  std::uint64_t capacity_ = 0;
  std::uint64_t tiles_ = 0;
  int cur_ = 0;
  std::uint64_t allocations_ = 0;
};

}  // namespace zoopt::cuda::detail
