// The restore journal of CpuBackend.
//
// Rebuilding theta0 = fl(x - d) is exact for most elements; it is not
// when |theta0| is far below |d| or theta0 + d crosses into a coarser binade
// (the rounding of fl(theta0 + d) then discards low bits of theta0). No
// in-place scheme can avoid that: fl(. + d) maps several floats to one. The
// backend therefore checks each write and keeps the elements whose current
// value does not invert in a sparse journal (global index, theta0 bits),
// rewritten by every pass: an element leaves it as soon as its new point
// inverts again. A restore or update reads theta0 from the journal for those
// elements, so aborting a step returns the exact pre-step bits. The journal
// is empty between steps. Its size during a step depends on the binade
// geometry, not on the precision: for theta ~ N(0, 0.02^2), eps = 1e-3 and
// Gaussian z about 7.5% of the elements at a perturbed point (float/double;
// ~4.6% for half/bfloat16; tests/exact/README.md), far fewer when
// |theta| >> eps. Memory: two buffers of (8-byte index + sizeof(T)) per
// journaled element, reused across steps and grown only when a step needs
// more than any before. Options::exact_restore = false drops the journal:
// then restores and updates start from fl(x - d), which can differ from
// theta0 by an ulp on those elements (the drift of the reference MeZO).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/sampler/noise.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt::detail {

/// Sorted global indices and the exact theta0 of the journaled elements.
template <class T>
struct RestoreJournal {
  std::vector<std::uint64_t> index;
  std::vector<T> value;

  void clear() noexcept {
    index.clear();
    value.clear();
  }
  void reserve(std::size_t n) {
    index.reserve(n);
    value.reserve(n);
  }
  /// Appends a journal of higher indices (the next part of a pass).
  void append(const RestoreJournal& j) {
    index.insert(index.end(), j.index.begin(), j.index.end());
    value.insert(value.end(), j.value.begin(), j.value.end());
  }

  /// Reads the journal in increasing index order (one cursor per part of a
  /// pass; its first lookup is a binary search, the rest walk forward).
  class Cursor {
   public:
    explicit Cursor(const RestoreJournal& journal) : j_(journal) {}
    /// theta0[k] = the journaled theta0 of element g + k, for the journaled
    /// ones among k < count; g never decreases between calls.
    void overwrite(std::uint64_t g, int count, T* theta0) {
      const std::vector<std::uint64_t>& idx = j_.index;
      if (!placed_) {
        at_ = static_cast<std::size_t>(std::lower_bound(idx.begin(), idx.end(), g) - idx.begin());
        placed_ = true;
      }
      while (at_ < idx.size() && idx[at_] < g) ++at_;
      for (; at_ < idx.size() && idx[at_] < g + static_cast<std::uint64_t>(count); ++at_) {
        theta0[idx[at_] - g] = j_.value[at_];
      }
    }

   private:
    const RestoreJournal& j_;
    std::size_t at_ = 0;
    bool placed_ = false;
  };
};

/// x[k] = fl(theta0[k] + d[k]) for count <= kChunkElements elements starting
/// at global index g0; appends to `out` those for which fl(x[k] - d[k]) is not
/// theta0[k] bit for bit. The write and check run in one branch-free loop
/// (it vectorises), the rarely taken journal loop after it.
template <class T, class C>
[[gnu::always_inline]] inline void write_checked(std::uint64_t g0, T* x, const T* theta0,
                                                 const C* d, int count, RestoreJournal<T>& out) {
  unsigned char keep[kChunkElements];
  unsigned char any = 0;
  for (int k = 0; k < count; ++k) {
    const T next = static_cast<T>(static_cast<C>(theta0[k]) + d[k]);
    x[k] = next;
    const unsigned char bad =
        std::bit_cast<bits_t<T>>(static_cast<T>(static_cast<C>(next) - d[k])) !=
        std::bit_cast<bits_t<T>>(theta0[k]);
    keep[k] = bad;
    any |= bad;
  }
  if (any == 0) return;
  if constexpr (std::endian::native == std::endian::little) {
    // Eight flags per load: a chunk with one journaled element costs
    // count/8 tests instead of count (keep[k] is 0 or 1, so each set byte
    // holds one set bit, at bit 8 (k mod 8)).
    for (int k0 = 0; k0 < count; k0 += 8) {
      std::uint64_t word = 0;
      std::memcpy(&word, keep + k0, static_cast<std::size_t>(std::min(8, count - k0)));
      for (; word != 0; word &= word - 1) {
        const int k = k0 + std::countr_zero(word) / 8;
        out.index.push_back(g0 + static_cast<std::uint64_t>(k));
        out.value.push_back(theta0[k]);
      }
    }
  } else {
    for (int k = 0; k < count; ++k) {
      if (keep[k] != 0) {
        out.index.push_back(g0 + static_cast<std::uint64_t>(k));
        out.value.push_back(theta0[k]);
      }
    }
  }
}

}  // namespace zoopt::detail

ZOOPT_FP_CONTRACT_OFF_END
