// CPU backend: the passes over parameter memory that a ZO step makes.
//
// Every pass rebuilds theta0 (the parameters at the start of the step) from
// the current values and the displacement it knows was applied, then writes
// the next point from theta0 directly: x = fl(theta0 + d). Perturbation
// rounding therefore never accumulates into the parameters, and L- is taken
// at fl(theta0 - h z), not at fl(fl(theta0 + h z) - 2 h z).
//
// Rebuilding theta0 = fl(x - d) is not always exact; the elements for which
// it is not are kept in a sparse restore journal (backend/restore_journal.hpp
// says when and what it costs), so restores and updates start from the exact
// theta0. Options::exact_restore = false drops the journal (the drift of the
// reference MeZO).
//
// Noise is generated a chunk of 256 elements at a time (noise_chunk), the
// same values as noise_block, so that the Philox rounds and Box-Muller
// vectorise. A pass over many elements is split into parts of whole chunks
// run on CpuBackendOptions::threads threads: each element's noise, point and
// rounding bits depend only on its global index, and each part writes the
// journal entries of its own index range, joined in order, so every result
// is bit-identical for any thread count.
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
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "zoopt/backend/cpu_options.hpp"
#include "zoopt/backend/direction_noise.hpp"
#include "zoopt/backend/parameter_checks.hpp"
#include "zoopt/backend/pass_threads.hpp"
#include "zoopt/backend/restore_journal.hpp"
#include "zoopt/backend/term.hpp"
#include "zoopt/backend/update_chunk.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/random/philox.hpp"
#include "zoopt/sampler/noise.hpp"
#include "zoopt/update/update_rule.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

template <class T, class Sampler>
class CpuBackend {
  static_assert(CpuStorage<T>,
                "zoopt::CpuBackend: T must be float, double, zoopt::half or zoopt::bfloat16");
  static_assert(DirectionSampler<Sampler>,
                "zoopt::CpuBackend: Sampler needs a static generate(const std::uint32_t (&)[4], "
                "C (&)[4]) for C = float and double, or (one sign per bit) a static "
                "sign<C>(std::uint32_t word, int bit) and kElementsPerBlock = 128, or (a sampler "
                "that uses span shapes) scratch_size, prepare and generate (ShapedSampler, "
                "sampler/noise.hpp)");

 public:
  using C = compute_t<T>;
  using value_type = T;
  using sampler_type = Sampler;

  explicit CpuBackend(std::size_t journal_reserve = 1024)
      : CpuBackend(CpuBackendOptions{.journal_reserve = journal_reserve}) {}

  /// Throws std::invalid_argument naming `rounding` if stochastic rounding is
  /// requested for float or double storage.
  explicit CpuBackend(CpuBackendOptions options) {
    detail::require(is_low_precision_v<T> || options.rounding != Rounding::stochastic,
                    "CpuBackendOptions", "rounding",
                    std::string("stochastic is only available for half/bfloat16 storage, not ") +
                        storage_traits<T>::name);
    detail::require(options.threads <= kThreadsMax, "CpuBackendOptions", "threads",
                    "must be at most " + std::to_string(kThreadsMax) + " (0: automatic), not " +
                        std::to_string(options.threads));
    rounding_ = options.rounding;
    if (rounding_ == Rounding::automatic) {
      rounding_ = is_low_precision_v<T> ? Rounding::stochastic : Rounding::nearest;
    }
    exact_ = options.exact_restore;
    if (options.dispatch != CpuDispatch::portable && detail::cpu_has_avx2()) {
      level_ = options.dispatch == CpuDispatch::automatic && detail::cpu_has_avx512()
                   ? Level::avx512
                   : Level::avx2;
    }
    check_writes_ = options.check_loss_writes;
    threads_ = options.threads != 0
                   ? options.threads
                   : std::clamp(std::thread::hardware_concurrency(), 1U, kAutomaticThreadsMax);
    parts_.resize(threads_);
    if (exact_) {
      journal_.reserve(options.journal_reserve);
      for (detail::RestoreJournal<T>& j : parts_) j.reserve(options.journal_reserve / threads_ + 1);
    }
  }

  /// Elements per thread below which a pass uses fewer threads.
  static constexpr std::uint64_t kElementsPerThread = std::uint64_t{1} << 15;
  /// Most threads the automatic setting (threads = 0) chooses.
  static constexpr unsigned kAutomaticThreadsMax = 8;
  /// Most threads CpuBackendOptions::threads accepts.
  static constexpr unsigned kThreadsMax = 256;

  /// Threads a pass may use (the option, resolved).
  [[nodiscard]] unsigned threads() const noexcept { return threads_; }
  /// The instruction set of the pass loop: "avx512", "avx2" or "portable"
  /// (the build's baseline; in a build that targets AVX-512 itself, e.g.
  /// -march=x86-64-v4, the only loop).
  [[nodiscard]] const char* dispatch() const noexcept {
    return level_ == Level::avx512 ? "avx512" : level_ == Level::avx2 ? "avx2" : "portable";
  }

  /// The rounding the update pass uses (nearest or stochastic, never
  /// automatic).
  [[nodiscard]] Rounding rounding() const noexcept { return rounding_; }

  /// One pass: from displacement `before` to displacement `after`.
  void move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms) {
    const unsigned n = run_pass(views, seed, step, terms, [this](unsigned part) {
      detail::RestoreJournal<T>& out = parts_[part];
      out.clear();
      return [ this, &out ](std::uint64_t g0, T * x, const T* theta0, const C* d_after, int count,
                            const SpanView<T>&) __attribute__((always_inline)) {
        if (!exact_) {
          for (int k = 0; k < count; ++k) {
            x[k] = static_cast<T>(static_cast<C>(theta0[k]) + d_after[k]);
          }
          return;
        }
        detail::write_checked(g0, x, theta0, d_after, count, out);
      };
    });
    // The parts cover increasing index ranges: in order, they are the sorted
    // journal of the new point.
    if (n == 1) {
      std::swap(journal_, parts_[0]);
      return;
    }
    journal_.clear();
    for (unsigned k = 0; k < n; ++k) journal_.append(parts_[k]);
  }

  /// Last pass of a step: theta = theta0 - lr * (ghat + lambda * theta0), with
  /// ghat = sum_t after_t * s * z_t and lambda = weight_decay on spans that
  /// opted in. Clears the journal.
  void update(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
              std::span<const Term> terms, double lr, double weight_decay) {
    update_pass<0>(views, seed, step, terms, lr, weight_decay, SgdUpdate::Apply<C>{}, nullptr);
  }

  /// The last pass with an update rule (update/update_rule.hpp):
  /// theta = apply(theta0, ghat + lambda * theta0, lr, state + g * S) for
  /// element g, S = Rule::state_size values of state per element. A result
  /// equal to theta0 writes theta0's bits back. Clears the journal.
  template <std::size_t S, class Apply>
  void update(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
              std::span<const Term> terms, double lr, double weight_decay, const Apply& apply,
              C* state) {
    update_pass<S>(views, seed, step, terms, lr, weight_decay, apply, state);
  }

  /// Writes theta0 back bit-exactly. Clears the journal.
  void restore(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    run_pass(views, seed, step, terms, [](unsigned) {
      return [](std::uint64_t, T * x, const T* theta0, const C*, int count, const SpanView<T>&)
          __attribute__((always_inline)) {
        std::copy(theta0, theta0 + count, x);
      };
    });
    journal_.clear();
  }

  /// update(views, seed, step, terms, lr, weight_decay[, apply, state])
  /// followed by move(views, seed, next_step, next_terms) in one pass, bit
  /// for bit (next_terms start from the updated parameters: before == 0).
  /// Leaves the parameters displaced and the journal of the next step filled.
  void update_and_move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                       std::span<const Term> terms, double lr, double weight_decay,
                       std::uint64_t next_step, std::span<const Term> next_terms) {
    update_and_move<0>(views, seed, step, terms, lr, weight_decay, SgdUpdate::Apply<C>{}, nullptr,
                       next_step, next_terms);
  }
  template <std::size_t S, class Apply>
  void update_and_move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                       std::span<const Term> terms, double lr, double weight_decay,
                       const Apply& apply, C* state, std::uint64_t next_step,
                       std::span<const Term> next_terms) {
    for (const Term& t : next_terms) {
      detail::require(t.before == 0.0, "CpuBackend::update_and_move", "next_terms",
                      "must have before == 0 (the next step starts at the updated parameters)");
    }
    const NextMove next{next_step, next_terms};
    update_pass<S>(views, seed, step, terms, lr, weight_decay, apply, state, &next);
  }

  /// Elements currently held in the journal.
  [[nodiscard]] std::size_t journal_size() const noexcept { return journal_.index.size(); }

  /// Share of elements x (over all views) for which a perturbation of
  /// eps * |span scale| is below half the spacing of T at x
  /// (backend/parameter_checks.hpp).
  [[nodiscard]] double fraction_below_half_ulp(std::span<const SpanView<T>> views,
                                               double eps) const {
    return zoopt::fraction_below_half_ulp(views, eps);
  }
  using NonFinite = zoopt::NonFinite;
  /// The first NaN/Inf element in span order, if any.
  [[nodiscard]] std::optional<NonFinite> find_non_finite(std::span<const SpanView<T>> views) const {
    return zoopt::find_non_finite(views);
  }

  /// True when check_loss_writes is on.
  [[nodiscard]] bool checks_loss_writes() const noexcept { return check_writes_; }
  /// Copies the parameters before a loss call (check_loss_writes).
  void snapshot(std::span<const SpanView<T>> views) { guard_.snapshot(views); }
  /// After the loss call: if any parameter's bits differ from the snapshot,
  /// writes the snapshot back and returns the first such (span, element).
  std::optional<std::pair<std::size_t, std::size_t>> revert_loss_writes(
      std::span<const SpanView<T>> views) {
    return guard_.revert(views);
  }

 private:
  // The update pass (update_chunk.hpp), and with `next` the move to the
  // next step's first point from the updated values in the same pass.
  struct NextMove {
    std::uint64_t step;
    std::span<const Term> terms;
  };
  template <std::size_t S, class Apply>
  void update_pass(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                   std::span<const Term> terms, double lr, double weight_decay, const Apply& apply,
                   C* state, const NextMove* next = nullptr) {
    const detail::UpdateChunk<S, T, C, Apply> update{static_cast<C>(lr),
                                                     static_cast<C>(weight_decay),
                                                     weight_decay != 0.0,
                                                     apply,
                                                     state,
                                                     rounding_,
                                                     seed,
                                                     step};
    if (next == nullptr) {
      run_pass(views, seed, step, terms, [&](unsigned) { return update; });
      journal_.clear();
      return;
    }
    next_scratch_.prepare(views, seed, next->step, next->terms);
    const unsigned n = run_pass(views, seed, step, terms, [&](unsigned part) {
      detail::RestoreJournal<T>& out = parts_[part];
      out.clear();
      // always_inline: the pass is compiled for the dispatched ISA only where
      // its op is inlined into for_each_element_avx2/avx512; out of line,
      // the next step's noise would be generated by baseline code.
      return [&, &out = out, chunk = update ](std::uint64_t g0, T * x, const T* theta0,
                                              const C* ghat, int count, const SpanView<T>& v)
          __attribute__((always_inline)) {
        // The updated values, then what move(views, seed, next->step,
        // next->terms) writes from them; v is an element of views.
        T theta1[kChunkElements];
        C d[kChunkElements];
        chunk(g0, theta1, theta0, ghat, count, v);
        const auto view = static_cast<std::size_t>(&v - views.data());
        detail::after_displacement(seed, next->step, next->terms, next_scratch_, v, view, g0, count,
                                   d);
        if (exact_) {
          detail::write_checked(g0, x, theta1, d, count, out);
        } else {
          for (int k = 0; k < count; ++k) x[k] = static_cast<T>(static_cast<C>(theta1[k]) + d[k]);
        }
      };
    });
    journal_.clear();
    for (unsigned k = 0; k < n; ++k) journal_.append(parts_[k]);
  }

  // One pass over all views: splits the elements (in view order) into up to
  // threads_ parts of whole noise chunks, and calls for_each_element on
  // each with make_op(part). Returns the number of parts. The noise of an
  // element does not depend on where a part starts (noise_chunk and
  // noise_block give the same values), so neither do the results.
  template <class MakeOp>
  unsigned run_pass(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
                    std::span<const Term> terms, MakeOp&& make_op) {
    std::uint64_t total = 0;
    for (const SpanView<T>& v : views) total += v.size;
    const auto n =
        static_cast<unsigned>(std::clamp<std::uint64_t>(total / kElementsPerThread, 1, threads_));
    const std::uint64_t chunks = (total + kChunkElements - 1) / kChunkElements;
    scratch_.prepare(views, seed, step, terms);
    auto part = [&](unsigned k) {
      const auto at = [&](unsigned j) {
        return std::min(total, chunks * j / n * std::uint64_t{kChunkElements});
      };
      auto op = make_op(k);
#if ZOOPT_CPU_DISPATCH
#if ZOOPT_CPU_DISPATCH_AVX512
      if (level_ == Level::avx512) {
        for_each_element_avx512(views, at(k), at(k + 1), seed, step, terms, op);
        return;
      }
#endif
      if (level_ == Level::avx2) {
        for_each_element_avx2(views, at(k), at(k + 1), seed, step, terms, op);
        return;
      }
#endif
      for_each_element(views, at(k), at(k + 1), seed, step, terms, op);
    };
    if (n == 1) {
      part(0);
    } else {
      pool_.get(n).run(n, part);
    }
    return n;
  }

#if ZOOPT_CPU_DISPATCH
  // for_each_element with everything it inlines compiled for AVX2.
  template <class Op>
  [[gnu::target("avx2")]] void for_each_element_avx2(std::span<const SpanView<T>> views,
                                                     std::uint64_t begin, std::uint64_t end,
                                                     std::uint64_t seed, std::uint64_t step,
                                                     std::span<const Term> terms, Op& op) {
    for_each_element(views, begin, end, seed, step, terms, op);
  }
#if ZOOPT_CPU_DISPATCH_AVX512
  // The same for AVX-512 (F, BW, DQ, VL).
  template <class Op>
  [[gnu::target("avx512f,avx512bw,avx512dq,avx512vl")]] void for_each_element_avx512(
      std::span<const SpanView<T>> views, std::uint64_t begin, std::uint64_t end,
      std::uint64_t seed, std::uint64_t step, std::span<const Term> terms, Op& op) {
    for_each_element(views, begin, end, seed, step, terms, op);
  }
#endif
#endif

  // Calls op(g, x, theta0, d_after, count, span) for consecutive pieces of
  // at most one noise chunk, in order of global index: element g + k (k <
  // count) lives at x[k], theta0[k] is read from the journal or rebuilt from
  // x and the `before` displacement, and d_after[k] = sum after_t * s * z_t.
  // Terms with both coefficients zero are skipped; a single-term
  // displacement is exactly fl(c * z).
  // Only the elements at positions [begin, end) of the views' concatenation.
  template <class Op>
  [[gnu::always_inline]] inline void for_each_element(std::span<const SpanView<T>> views,
                                                      std::uint64_t begin,
                                                      std::uint64_t end_position,
                                                      std::uint64_t seed, std::uint64_t step,
                                                      std::span<const Term> terms, Op& op) {
    constexpr std::uint64_t chunk_size = kChunkElements;
    C z[kChunkElements];
    C d_before[kChunkElements];
    C d_after[kChunkElements];
    T theta0[kChunkElements];
    typename detail::RestoreJournal<T>::Cursor journaled(journal_);
    std::uint64_t position = 0;
    for (std::size_t view = 0; view < views.size(); ++view) {
      const SpanView<T>& v = views[view];
      const std::uint64_t from = std::max(begin, position);
      const std::uint64_t to = std::min(end_position, position + v.size);
      position += v.size;
      if (from >= to) continue;
      std::uint64_t g = v.offset + (from - (position - v.size));
      const std::uint64_t end = g + (to - from);
      while (g < end) {
        const std::uint64_t chunk = g / chunk_size;
        const std::uint64_t first = chunk * chunk_size;
        const auto lo = static_cast<int>(g - first);
        const auto hi = static_cast<int>(std::min(end, first + chunk_size) - first);
        for (int k = lo; k < hi; ++k) {
          d_before[k] = C(0);
          d_after[k] = C(0);
        }
        bool any_before = false;
        for (std::size_t term = 0; term < terms.size(); ++term) {
          const Term& t = terms[term];
          if (t.before == 0.0 && t.after == 0.0) continue;
          const NoiseKey key{seed, step, t.direction};
          detail::direction_noise(key, v, scratch_, term, view, chunk, lo, hi, z);
          const C cb = static_cast<C>(t.before * v.scale);
          const C ca = static_cast<C>(t.after * v.scale);
          any_before = any_before || t.before != 0.0;
          for (int k = lo; k < hi; ++k) {
            d_before[k] += cb * z[k];
            d_after[k] += ca * z[k];
          }
        }
        // theta0 of the piece: rebuilt from x (one vector loop), then the
        // journaled elements overwritten with their exact values.
        T* x = v.data + (g - v.offset);
        const int count = hi - lo;
        if (any_before) {
          for (int k = 0; k < count; ++k) {
            theta0[k] = static_cast<T>(static_cast<C>(x[k]) - d_before[lo + k]);
          }
        } else {
          std::copy(x, x + count, theta0);
        }
        journaled.overwrite(g, count, theta0);
        op(g, x, theta0, d_after + lo, count, v);
        g += static_cast<std::uint64_t>(count);
      }
    }
  }

  Rounding rounding_ = Rounding::nearest;
  bool exact_ = true;
  bool check_writes_ = false;
  LossWriteGuard<T> guard_;
  unsigned threads_ = 1;
  enum class Level { portable, avx2, avx512 };
  Level level_ = Level::portable;
  detail::RestoreJournal<T> journal_;
  std::vector<detail::RestoreJournal<T>> parts_;  // one new journal per part of a move pass
  detail::DirectionScratch<C, Sampler> scratch_;
  detail::DirectionScratch<C, Sampler> next_scratch_;  // update_and_move's next terms
  detail::PassThreadsSlot pool_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
