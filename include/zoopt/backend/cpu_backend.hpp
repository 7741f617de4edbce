// CPU backend: the passes over parameter memory that a ZO step makes.
//
// Every pass rebuilds theta0 (the parameters at the start of the step) from
// the current values and the displacement it knows was applied, then writes
// the next point from theta0 directly: x = fl(theta0 + d). Perturbation
// rounding therefore never accumulates into the parameters, and L- is taken
// at fl(theta0 - h z), not at fl(fl(theta0 + h z) - 2 h z).
//
// Rebuilding theta0 = fl(x - d) is exact for almost every element; it is not
// when |theta0| is far below |d| or theta0 + d crosses into a coarser binade
// (the rounding of fl(theta0 + d) then discards low bits of theta0). No
// in-place scheme can avoid that: fl(. + d) maps several floats to one. The
// backend therefore checks each write and keeps the few elements whose write
// does not invert in a sparse journal (global index, theta0 bits). A restore
// or update reads theta0 from the journal for those elements, so aborting a
// step returns the exact pre-step bits. Journal size: the number of such
// elements (typically far below 1% of d when |theta| >> eps); its storage is
// reused across steps and only grows when a step needs more than any before.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <span>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt {

template <class T, class Sampler>
class CpuBackend {
  static_assert(Real<T>, "zoopt::CpuBackend: T must be float or double");

 public:
  using C = compute_t<T>;

  /// Exact theta0 of one element whose displaced value does not invert.
  struct JournalEntry {
    std::uint64_t index;
    T value;
  };

  explicit CpuBackend(std::size_t journal_reserve = 1024) {
    journal_.reserve(journal_reserve);
    pending_.reserve(journal_reserve);
    merged_.reserve(journal_reserve);
  }

  /// One pass: from displacement `before` to displacement `after`.
  void move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms) {
    pending_.clear();
    for_each_element(views, seed, step, terms,
                     [&](std::uint64_t g, T& x, T theta0, C d_after, bool journaled, const SpanView<T>&) {
                       const T next = static_cast<T>(static_cast<C>(theta0) + d_after);
                       x = next;
                       if (!journaled && std::bit_cast<bits_t<T>>(static_cast<T>(
                                             static_cast<C>(next) - d_after)) !=
                                             std::bit_cast<bits_t<T>>(theta0)) {
                         pending_.push_back(JournalEntry{g, theta0});
                       }
                     });
    merge_pending();
  }

  /// Last pass of a step: theta = theta0 - lr * (ghat + lambda * theta0), with
  /// ghat = sum_t after_t * s * z_t and lambda = weight_decay on spans that
  /// opted in. Clears the journal.
  void update(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
              std::span<const Term> terms, double lr, double weight_decay) {
    const C eta = static_cast<C>(lr);
    const C lambda = static_cast<C>(weight_decay);
    for_each_element(views, seed, step, terms,
                     [&](std::uint64_t, T& x, T theta0, C ghat, bool, const SpanView<T>& v) {
                       const C t0 = static_cast<C>(theta0);
                       C direction = ghat;
                       if (v.weight_decay && weight_decay != 0.0) direction += lambda * t0;
                       x = static_cast<T>(t0 - eta * direction);
                     });
    journal_.clear();
  }

  /// Writes theta0 back bit-exactly. Clears the journal.
  void restore(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    for_each_element(views, seed, step, terms,
                     [](std::uint64_t, T& x, T theta0, C, bool, const SpanView<T>&) { x = theta0; });
    journal_.clear();
  }

  /// Elements currently held in the journal.
  [[nodiscard]] std::size_t journal_size() const noexcept { return journal_.size(); }

 private:
  // Calls op(g, x, theta0, d_after, journaled, span) for every element, where
  // theta0 is rebuilt from x and the `before` displacement (or read from the
  // journal, then journaled = true) and d_after = sum after_t * s * z_t. Terms with both coefficients zero are
  // skipped; a single-term displacement is exactly fl(c * z).
  template <class Op>
  void for_each_element(std::span<const SpanView<T>> views, std::uint64_t seed,
                        std::uint64_t step, std::span<const Term> terms, Op&& op) {
    std::size_t cursor = 0;
    for (const SpanView<T>& v : views) {
      const std::uint64_t end = v.offset + v.size;
      std::uint64_t g = v.offset;
      while (g < end) {
        const std::uint64_t block = g / 4;
        C d_before[4] = {C(0), C(0), C(0), C(0)};
        C d_after[4] = {C(0), C(0), C(0), C(0)};
        bool any_before = false;
        for (const Term& t : terms) {
          if (t.before == 0.0 && t.after == 0.0) continue;
          C z[4];
          noise_block<Sampler>(NoiseKey{seed, step, t.direction}, block, z);
          const C cb = static_cast<C>(t.before * v.scale);
          const C ca = static_cast<C>(t.after * v.scale);
          any_before = any_before || t.before != 0.0;
          for (int k = 0; k < 4; ++k) {
            d_before[k] += cb * z[k];
            d_after[k] += ca * z[k];
          }
        }
        const std::uint64_t stop = std::min(end, (block + 1) * 4);
        for (; g < stop; ++g) {
          const auto lane = static_cast<int>(g % 4);
          T& x = v.data[g - v.offset];
          while (cursor < journal_.size() && journal_[cursor].index < g) ++cursor;
          const bool journaled = cursor < journal_.size() && journal_[cursor].index == g;
          T theta0 = x;
          if (journaled) {
            theta0 = journal_[cursor].value;
          } else if (any_before) {
            theta0 = static_cast<T>(static_cast<C>(x) - d_before[lane]);
          }
          op(g, x, theta0, d_after[lane], journaled, v);
        }
      }
    }
  }

  void merge_pending() {
    if (pending_.empty()) return;
    merged_.clear();
    merged_.reserve(journal_.size() + pending_.size());
    std::merge(journal_.begin(), journal_.end(), pending_.begin(), pending_.end(),
               std::back_inserter(merged_),
               [](const JournalEntry& a, const JournalEntry& b) { return a.index < b.index; });
    journal_.swap(merged_);
    pending_.clear();
  }

  std::vector<JournalEntry> journal_;
  std::vector<JournalEntry> pending_;
  std::vector<JournalEntry> merged_;
};

}  // namespace zoopt
