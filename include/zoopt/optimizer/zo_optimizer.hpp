// Shared machinery of the ZO optimizers: step() on a span or a parameter set,
// optimize() with callbacks, counters. A concrete optimizer (MeZO, KerZOO, ...)
// derives from it (CRTP) and supplies
//   StepSettings settings(std::uint64_t step) const;
//   DirectionDraw draw(std::uint64_t step, std::uint32_t direction) const;
// and optionally
//   std::span<const SpanView<T>> prepare(std::span<const SpanView<T>> views);
// which may return per-step views (e.g. with per-span scales) of its own.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>

#include "zoopt/callbacks/callbacks.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/optimizer/step_engine.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt {

template <class Derived, class T, class Sampler, class Estimator, class Backend>
class ZerothOrderOptimizer {
 public:
  using value_type = T;
  using sampler_type = Sampler;
  using estimator_type = Estimator;
  using backend_type = Backend;
  using engine_type = StepEngine<T, Estimator, Backend>;

  /// Passes over parameter memory per step for n directions (central: 2n+1,
  /// forward: n+1). The reference MeZO makes 4 for n = 1.
  static constexpr std::uint64_t passes_per_step(std::uint64_t n) {
    return Estimator::evaluates_base ? n + 1 : 2 * n + 1;
  }
  /// Loss evaluations per step for n directions (central: 2n, forward: n+1).
  static constexpr std::uint64_t evaluations_per_step(std::uint64_t n) {
    return Estimator::evaluates_base ? n + 1 : 2 * n;
  }

  /// One ZO step on a single span, in place. The loss is called as
  /// loss(std::span<const T>) or loss() with the parameters perturbed.
  /// Returns the mean of the loss values evaluated. Throws
  /// std::invalid_argument for an empty span and NonFiniteLoss for a NaN/Inf
  /// loss; on any exception the parameters hold their pre-step bits.
  template <class Loss>
    requires detail::LossFor<Loss, std::span<const T>>
  double step(Loss&& loss, std::span<T> params) {
    detail::require(!params.empty(), "step", "params", "must not be an empty span");
    const std::array<SpanView<T>, 1> views = {SpanView<T>{params.data(), params.size()}};
    const std::span<const T> arg(params.data(), params.size());
    return run(loss, arg, std::span<const SpanView<T>>(views));
  }

  /// One ZO step on a parameter set; the loss is called as
  /// loss(const ParameterSet<T>&) or loss().
  template <class Loss>
    requires detail::LossFor<Loss, ParameterSet<T>>
  double step(Loss&& loss, ParameterSet<T>& params) {
    detail::require(!params.empty(), "step", "params", "must hold at least one span");
    return run(loss, params, std::span<const SpanView<T>>(params.views()));
  }

  /// Runs up to `steps` steps, calling each callback's on_begin / on_step /
  /// on_end (see callbacks.hpp); stops early when a callback's on_step
  /// returns true.
  template <class Loss, class Params, class... Callbacks>
  OptimizeResult optimize(Loss&& loss, Params&& params, std::size_t steps,
                          Callbacks&&... callbacks) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const std::uint64_t passes0 = forward_passes_;
    OptimizeResult result;
    result.best_loss = std::numeric_limits<double>::infinity();
    (detail::callback_begin(callbacks, steps), ...);
    for (std::size_t i = 0; i < steps; ++i) {
      const double value = step(loss, params);
      result.steps = i + 1;
      result.final_loss = value;
      result.best_loss = std::min(result.best_loss, value);
      [[maybe_unused]] const StepReport report{i, steps, step_, value, forward_passes_,
                              std::chrono::duration<double>(clock::now() - start).count()};
      bool stop = false;
      ((stop = detail::callback_step(callbacks, report) || stop), ...);
      if (stop) {
        result.stopped_early = i + 1 < steps;
        break;
      }
    }
    result.forward_passes = forward_passes_ - passes0;
    result.seconds = std::chrono::duration<double>(clock::now() - start).count();
    (detail::callback_end(callbacks, result), ...);
    return result;
  }

  /// Steps completed so far; the next step's noise is keyed by this number.
  [[nodiscard]] std::uint64_t step_count() const noexcept { return step_; }
  /// Sets the step counter (resuming a run: the noise of step t depends only
  /// on the seed and t).
  void set_step_count(std::uint64_t t) noexcept { step_ = t; }
  /// Loss evaluations made by this optimizer.
  [[nodiscard]] std::uint64_t forward_passes() const noexcept { return forward_passes_; }
  /// The last step's per-direction coefficients c_i (theta -= lr sum c_i z_i).
  [[nodiscard]] std::span<const double> last_coefficients() const noexcept {
    return engine_.last_coefficients();
  }
  [[nodiscard]] const backend_type& backend() const noexcept { return engine_.backend(); }
  [[nodiscard]] backend_type& backend() noexcept { return engine_.backend(); }
  /// The step engine, for drivers that run its phases themselves
  /// (distributed steps); ordinary users call step().
  [[nodiscard]] engine_type& engine() noexcept { return engine_; }
  /// Settings and direction draws of step t, as step() would use them.
  [[nodiscard]] StepSettings settings_at(std::uint64_t t) const {
    return static_cast<const Derived&>(*this).settings(t);
  }
  [[nodiscard]] DirectionDraw draw_at(std::uint64_t t, std::uint32_t i) const {
    return static_cast<const Derived&>(*this).draw(t, i);
  }
  /// Counts a step run by an external driver (advances the noise key).
  void record_step(std::uint64_t evaluations) noexcept {
    forward_passes_ += evaluations;
    ++step_;
  }

 protected:
  explicit ZerothOrderOptimizer(std::uint32_t directions, Backend backend = Backend{})
      : engine_(directions, std::move(backend)) {}

  template <class Loss, class Arg>
  double run(Loss& loss, const Arg& arg, std::span<const SpanView<T>> views) {
    auto& self = static_cast<Derived&>(*this);
    if constexpr (requires { self.prepare(views); }) views = self.prepare(views);
    const StepSettings settings = self.settings(step_);
    const double mean = engine_.run(loss, arg, views, settings,
                                    [&](std::uint32_t i) { return self.draw(step_, i); });
    record_step(engine_.losses().size());
    return mean;
  }

 private:
  StepEngine<T, Estimator, backend_type> engine_;
  std::uint64_t step_ = 0;
  std::uint64_t forward_passes_ = 0;
};

}  // namespace zoopt
