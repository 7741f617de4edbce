// CPU backend: the passes over parameter memory that a ZO step makes.
//
// Every pass rebuilds theta0 (the parameters at the start of the step) from
// the current values and the displacement it knows was applied, then writes
// the next point from theta0 directly: x = fl(theta0 + d). Perturbation
// rounding therefore never accumulates into the parameters, and L- is taken
// at fl(theta0 - h z), not at fl(fl(theta0 + h z) - 2 h z).
//
// Rebuilding theta0 = fl(x - d) is exact for most elements; it is not
// when |theta0| is far below |d| or theta0 + d crosses into a coarser binade
// (the rounding of fl(theta0 + d) then discards low bits of theta0). No
// in-place scheme can avoid that: fl(. + d) maps several floats to one. The
// backend therefore checks each write and keeps the elements whose write
// does not invert in a sparse journal (global index, theta0 bits). A restore
// or update reads theta0 from the journal for those elements, so aborting a
// step returns the exact pre-step bits. Journal size: the elements whose
// displaced value lies in a coarser binade than theta0 (|theta0| near the top
// of its binade, or |theta0| below about |d|). It depends on the binade
// geometry, not on the precision: measured for theta ~ N(0, 0.02^2),
// eps = 1e-3, Gaussian z (tests/exact/README.md) it is ~7.5% of the
// elements after the +eps z pass and ~11% at the update for float and
// double, ~4.6% and ~8.3% for half and bfloat16. 16 bytes per entry; the
// storage is reused across steps and only grown when a step needs more than
// any before.
//
// Storage types: float, double, zoopt::half, zoopt::bfloat16 (the 16-bit
// types compute in float and are journaled the same way). The update pass
// computes theta0 - lr * (ghat + lambda theta0) in compute_t<T> from the exact
// theta0 and rounds it into T once: to nearest for float/double, and by
// default stochastically for half/bfloat16 (Rounding, CpuBackendOptions), so
// that updates below half an ulp are kept in expectation instead of lost.
// The rounding bits of element g at step t are word g % 4 of
//   philox_block(NoiseKey{seed, t, 0}, g / 4, Stream::rounding),
// so the rounded result is a pure function of (theta0, coefficients, seed,
// t, g): a replay of the update on theta0 gives the same bits. A zero update
// (lr = 0, or a zero gradient estimate on a span without weight decay)
// writes theta0 back unchanged, signed zeros included.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/random/philox.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt {

/// Options of CpuBackend.
struct CpuBackendOptions {
  /// Rounding of the update pass (default automatic: stochastic for
  /// half/bfloat16, nearest for float/double). Stochastic rounding of
  /// float/double storage is not offered (std::invalid_argument).
  Rounding rounding = Rounding::automatic;
  /// Journal entries reserved up front (16 bytes each; default 1024). The
  /// journal grows beyond it when a step needs more.
  std::size_t journal_reserve = 1024;
};

template <class T, class Sampler>
class CpuBackend {
  static_assert(CpuStorage<T>,
                "zoopt::CpuBackend: T must be float, double, zoopt::half or zoopt::bfloat16");

 public:
  using C = compute_t<T>;

  /// Exact theta0 of one element whose displaced value does not invert.
  struct JournalEntry {
    std::uint64_t index;
    T value;
  };

  explicit CpuBackend(std::size_t journal_reserve = 1024)
      : CpuBackend(CpuBackendOptions{Rounding::automatic, journal_reserve}) {}

  /// Throws std::invalid_argument naming `rounding` if stochastic rounding is
  /// requested for float or double storage.
  explicit CpuBackend(CpuBackendOptions options) {
    detail::require(is_low_precision_v<T> || options.rounding != Rounding::stochastic,
                    "CpuBackendOptions", "rounding",
                    std::string("stochastic is only available for half/bfloat16 storage, not ") +
                        storage_traits<T>::name);
    rounding_ = options.rounding;
    if (rounding_ == Rounding::automatic) {
      rounding_ = is_low_precision_v<T> ? Rounding::stochastic : Rounding::nearest;
    }
    journal_.reserve(options.journal_reserve);
    pending_.reserve(options.journal_reserve);
    merged_.reserve(options.journal_reserve);
  }

  /// The rounding the update pass uses (nearest or stochastic, never
  /// automatic).
  [[nodiscard]] Rounding rounding() const noexcept { return rounding_; }

  /// One pass: from displacement `before` to displacement `after`.
  void move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms) {
    pending_.clear();
    for_each_element(
        views, seed, step, terms,
        [&](std::uint64_t g, T& x, T theta0, C d_after, bool journaled, const SpanView<T>&) {
          const T next = static_cast<T>(static_cast<C>(theta0) + d_after);
          x = next;
          if (!journaled &&
              std::bit_cast<bits_t<T>>(static_cast<T>(static_cast<C>(next) - d_after)) !=
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
    std::uint64_t cached_block = ~std::uint64_t{0};
    std::uint32_t words[4] = {0, 0, 0, 0};
    for_each_element(views, seed, step, terms,
                     [&](std::uint64_t g, T& x, T theta0, C ghat, bool, const SpanView<T>& v) {
                       const C t0 = static_cast<C>(theta0);
                       C direction = ghat;
                       if (v.weight_decay && weight_decay != 0.0) direction += lambda * t0;
                       if (eta == C(0) || direction == C(0)) {
                         x = theta0;  // nothing to apply: keep the exact bits
                         return;
                       }
                       if constexpr (is_low_precision_v<T>) {
                         if (rounding_ == Rounding::stochastic) {
                           if (g / 4 != cached_block) {
                             cached_block = g / 4;
                             const auto r = random::philox_block(
                                 NoiseKey{seed, step, 0}, cached_block, random::Stream::rounding);
                             for (int k = 0; k < 4; ++k) words[k] = r.v[k];
                           }
                           x = stochastic_round<T>(t0 - eta * direction, words[g % 4]);
                           return;
                         }
                       }
                       x = static_cast<T>(t0 - eta * direction);
                     });
    journal_.clear();
  }

  /// Writes theta0 back bit-exactly. Clears the journal.
  void restore(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    for_each_element(
        views, seed, step, terms,
        [](std::uint64_t, T& x, T theta0, C, bool, const SpanView<T>&) { x = theta0; });
    journal_.clear();
  }

  /// Elements currently held in the journal.
  [[nodiscard]] std::size_t journal_size() const noexcept { return journal_.size(); }

  /// Share of elements x (over all views) for which a perturbation of
  /// eps * |span scale| is below half the spacing of T at x, so that
  /// round-to-nearest would mostly discard it. One read of the parameters;
  /// NaN/Inf elements are not counted as below; spans with scale 0 (frozen)
  /// are left out. 0 for no elements.
  [[nodiscard]] double fraction_below_half_ulp(std::span<const SpanView<T>> views,
                                               double eps) const {
    std::uint64_t below = 0;
    std::uint64_t total = 0;
    for (const SpanView<T>& v : views) {
      if (v.scale == 0.0) continue;  // a frozen span is not perturbed at all
      const double h = std::abs(eps * v.scale);
      for (std::size_t i = 0; i < v.size; ++i) {
        if (h < 0.5 * ulp_of(v.data[i])) ++below;
      }
      total += v.size;
    }
    return total == 0 ? 0.0 : static_cast<double>(below) / static_cast<double>(total);
  }

 private:
  // Calls op(g, x, theta0, d_after, journaled, span) for every element, where
  // theta0 is rebuilt from x and the `before` displacement (or read from the
  // journal, then journaled = true) and d_after = sum after_t * s * z_t. Terms with both
  // coefficients zero are skipped; a single-term displacement is exactly fl(c * z).
  template <class Op>
  void for_each_element(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                        std::span<const Term> terms, Op&& op) {
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

  Rounding rounding_ = Rounding::nearest;
  std::vector<JournalEntry> journal_;
  std::vector<JournalEntry> pending_;
  std::vector<JournalEntry> merged_;
};

}  // namespace zoopt
