// Shared machinery of the ZO optimizers: step() on a span or a parameter set,
// optimize() with callbacks, counters, and the one step path every step takes
// (run(): prepare views, evaluate, exchange scalars, update; the exchange is
// a policy, step_exchange.hpp). A concrete optimizer (MeZO, KerZOO, ...)
// derives from it (CRTP) and supplies
//   StepSettings settings(std::uint64_t step) const;
//   DirectionDraw draw(std::uint64_t step, std::uint32_t direction) const;
// and optionally
//   std::span<const SpanView<T>> prepare(std::span<const SpanView<T>> views);
// which may return per-step views (e.g. with per-span scales) of its own,
//   void rescale(std::span<double> coefficients, std::span<const double> losses);
// which may change the n coefficients once every direction's loss values are
// known (after the exchange, so it sees the same values on every process;
// FZOO's sigma-normalised step), and
//   void save_extra_state(std::vector<double>& out) const;
//   void load_extra_state(std::span<const double> in);
// if it carries state beyond the step and forward-pass counters (see
// OptimizerState). The update rule (last template argument, SgdUpdate by
// default) and its per-element state are held here, for every optimizer
// alike (update/update_rule.hpp).
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "zoopt/callbacks/callbacks.hpp"
#include "zoopt/callbacks/optimize_loop.hpp"
#include "zoopt/checkpoint/state.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/core/warning.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/optimizer/step_engine.hpp"
#include "zoopt/optimizer/step_exchange.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/update/update_rule.hpp"
#include "zoopt/update/update_state.hpp"

namespace zoopt {

namespace detail {
/// The settings of step t from an optimizer's Params (seed, directions, eps,
/// lr, schedule, weight_decay): lr_t = lr * schedule(t).
template <class Params>
StepSettings step_settings(const Params& p, std::uint64_t step) {
  return StepSettings{p.seed, step, p.directions, p.eps, p.lr * p.schedule(step), p.weight_decay};
}
}  // namespace detail

template <class Derived, class T, class Sampler, class Estimator, class Backend,
          class Update = SgdUpdate>
class ZerothOrderOptimizer {
  // The backend draws the noise, the optimizer names it in logs and
  // checkpoints: they must be the same sampler.
  static_assert(
      !requires { typename Backend::sampler_type; } ||
          std::is_same_v<typename Backend::sampler_type, Sampler>,
      "zoopt: the backend's sampler differs from the optimizer's Sampler; "
      "use Backend = CpuBackend<T, Sampler> with the same Sampler");
  static_assert(DifferenceEstimator<Estimator>,
                "zoopt: Estimator is not a difference estimator: it needs a static name, "
                "evaluates_base, points_per_direction (1 with a shared base loss, else 2) and "
                "projected(loss_a, loss_b, eps) (see zoopt/estimator/difference.hpp)");
  static_assert(UpdateRule<Update>,
                "zoopt: Update is not an update rule: it needs state_size, name(), "
                "check(where), init(theta0, s) and at<C>(k)(theta0, g, eta, s) "
                "(see zoopt/update/update_rule.hpp)");
  static_assert(
      std::is_same_v<Update, SgdUpdate> ||
          requires(Backend & b, std::span<const SpanView<T>> v, std::span<const Term> t,
                   compute_t<T>* state) {
            b.template update<Update::state_size>(v, 0, 0, t, 0.0, 0.0,
                                                  Update{}.template at<compute_t<T>>(0), state);
          },
      "zoopt: this backend applies plain SGD only; an update rule with state "
      "(momentum, Adam, acceleration) needs CpuBackend");

 public:
  using value_type = T;
  using sampler_type = Sampler;
  using estimator_type = Estimator;
  using backend_type = Backend;
  using update_type = Update;
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
    LocalExchange local;
    return step(loss, params, local);
  }

  /// One ZO step on a parameter set; the loss is called as
  /// loss(const ParameterSet<T>&) or loss().
  template <class Loss>
  requires detail::LossFor<Loss, ParameterSet<T>>
  double step(Loss&& loss, ParameterSet<T>& params) {
    LocalExchange local;
    return step(loss, params, local);
  }

  /// One step whose scalars are shared by `exchange` (step_exchange.hpp);
  /// zoopt::mpi::Distributed calls these. Everything else is as step().
  template <class Loss, class Exchange>
  requires detail::LossFor<Loss, std::span<const T>>
  double step(Loss&& loss, std::span<T> params, Exchange& exchange) {
    detail::require(!params.empty(), "step", "params", "must not be an empty span");
    const std::array<SpanView<T>, 1> views = {SpanView<T>{params.data(), params.size()}};
    const std::span<const T> arg(params.data(), params.size());
    return run(loss, arg, std::span<const SpanView<T>>(views), exchange);
  }
  template <class Loss, class Exchange>
  requires detail::LossFor<Loss, ParameterSet<T>>
  double step(Loss&& loss, ParameterSet<T>& params, Exchange& exchange) {
    detail::require(!params.empty(), "step", "params", "must hold at least one span");
    return run(loss, params, std::span<const SpanView<T>>(params.views()), exchange);
  }

  /// Runs up to `steps` steps, calling each callback's on_begin / on_step /
  /// on_end (see callbacks.hpp); stops early when a callback's on_step
  /// returns true.
  template <class Loss, class Params, class... Callbacks>
  OptimizeResult optimize(Loss&& loss, Params&& params, std::size_t steps,
                          Callbacks&&... callbacks) {
    return detail::optimize_loop([&] { return step(loss, params); },
                                 [&] {
                                   return std::pair{step_, forward_passes_};
                                 },
                                 steps, callbacks...);
  }

  /// optimize() with each step's last pass fused with the next step's first
  /// perturbation (the backend's update_and_move): 2n passes per step
  /// instead of 2n + 1 for n central-difference directions (MeZO: 2 instead
  /// of 3), plus one restore pass at the end. Parameters, counters,
  /// coefficients and logs are bit-identical to optimize()'s.
  ///
  /// Between steps the parameters sit at the next step's first point, so a
  /// callback must not read them: a checkpoint or a validation loss belongs
  /// in optimize(); a log recorder, early stopping or a progress bar is fine.
  /// On return, and when the loss or a callback throws, the parameters hold
  /// their values after the completed steps. For central-difference
  /// estimators (with a base loss a step starts at theta itself: nothing to
  /// fuse) and optimizers that do not rescale spans per step (not the ZO
  /// Fine-tuner).
  template <class Loss, class Params, class... Callbacks>
  OptimizeResult optimize_pipelined(Loss&& loss, Params&& params, std::size_t steps,
                                    Callbacks&&... callbacks) {
    static_assert(!Estimator::evaluates_base,
                  "zoopt: optimize_pipelined needs a central-difference estimator; with a base "
                  "loss a step starts at theta itself and there is no pass to fuse");
    static_assert(
        !requires(Derived & d, std::span<const SpanView<T>> v) { d.prepare(v); },
        "zoopt: optimize_pipelined cannot fuse steps of an optimizer that rescales its "
        "spans every step (the ZO Fine-tuner); use optimize()");
    struct Fusing {
      bool& on;
      explicit Fusing(bool& flag) : on(flag) { on = true; }
      ~Fusing() { on = false; }
      Fusing(const Fusing&) = delete;
      Fusing& operator=(const Fusing&) = delete;
    };
    // Returns the parameters to the values after the completed steps.
    auto settle = [&] {
      if (!engine_.displaced()) return;
      const auto& self = static_cast<const Derived&>(*this);
      if constexpr (std::is_same_v<std::remove_cvref_t<Params>, ParameterSet<T>>) {
        engine_.abort(params.views(), self.settings(step_));
      } else {
        const std::array<SpanView<T>, 1> views = {SpanView<T>{params.data(), params.size()}};
        engine_.abort(std::span<const SpanView<T>>(views), self.settings(step_));
      }
    };
    OptimizeResult result;
    try {
      const Fusing fusing(fuse_next_);
      result = detail::optimize_loop([&] { return step(loss, params); },
                                     [&] {
                                       return std::pair{step_, forward_passes_};
                                     },
                                     steps, callbacks...);
    } catch (...) {
      settle();
      throw;
    }
    settle();
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
  /// Settings and direction draws of step t, as step() would use them.
  [[nodiscard]] StepSettings settings_at(std::uint64_t t) const {
    return static_cast<const Derived&>(*this).settings(t);
  }
  [[nodiscard]] DirectionDraw draw_at(std::uint64_t t, std::uint32_t i) const {
    return static_cast<const Derived&>(*this).draw(t, i);
  }

  /// Sets the loss-evaluation counter (resuming a run).
  void set_forward_passes(std::uint64_t n) noexcept { forward_passes_ = n; }

  /// The update rule and its per-element state (empty for SGD).
  [[nodiscard]] const UpdateRuleState<Update, compute_t<T>>& update_state() const noexcept {
    return rule_state_;
  }

  /// The resumable state: counters, the update rule's state (none for SGD;
  /// for a stateful rule O(d) exact values, see UpdateRuleState::save), then
  /// what the concrete optimizer adds via save_extra_state (the fine-tuner's
  /// scales).
  [[nodiscard]] OptimizerState state() const {
    OptimizerState s{step_, forward_passes_, {}};
    rule_state_.save(s.extra);
    const auto& self = static_cast<const Derived&>(*this);
    if constexpr (requires(std::vector<double> & out) { self.save_extra_state(out); }) {
      self.save_extra_state(s.extra);
    }
    return s;
  }
  /// Restores a state() taken from an optimizer with the same settings.
  /// Throws std::invalid_argument naming `extra` if the state carries values
  /// this optimizer does not define (or, via load_extra_state, the wrong
  /// number of them); the counters are then left unchanged.
  void set_state(const OptimizerState& s) {
    auto& self = static_cast<Derived&>(*this);
    UpdateRuleState<Update, compute_t<T>> rule(rule_state_.rule());
    const std::span<const double> rest =
        rule.load(std::span<const double>(s.extra), "ZerothOrderOptimizer::set_state");
    if constexpr (requires(std::span<const double> in) { self.load_extra_state(in); }) {
      self.load_extra_state(rest);
    } else {
      detail::require(
          rest.empty(), "ZerothOrderOptimizer::set_state", "extra",
          "has " + std::to_string(rest.size()) + " values this optimizer does not define");
    }
    rule_state_ = std::move(rule);
    step_ = s.step;
    forward_passes_ = s.forward_passes;
  }

  /// Where warnings go (default: an empty sink, i.e. std::cerr).
  void set_warning_sink(WarningSink sink) { warning_sink_ = std::move(sink); }
  /// Share of parameters (default 0.1) above which the first step warns that
  /// eps is below half an ulp of the stored values. Throws
  /// std::invalid_argument naming `share` outside [0, 1].
  void set_eps_warning_share(double share) {
    detail::require(share >= 0.0 && share <= 1.0, "ZerothOrderOptimizer::set_eps_warning_share",
                    "share", "must be in [0, 1]");
    eps_warning_share_ = share;
  }
  /// Checks eps against the spacing of the stored parameters (one read of
  /// them) and warns once per optimizer when eps * |span scale| is below
  /// half an ulp for more than the warning share of the elements: such
  /// perturbations are rounded away and the estimate sees only noise.
  /// step() calls it on its first step (on one process of a distributed
  /// run). Returns the share found (0 if the backend cannot measure it).
  double check_eps(std::span<const SpanView<T>> views, double eps) {
    eps_checked_ = true;
    double share = 0.0;
    if constexpr (requires { engine_.backend().fraction_below_half_ulp(views, eps); }) {
      share = engine_.backend().fraction_below_half_ulp(views, eps);
      if (share > eps_warning_share_ && !eps_warned_) {
        eps_warned_ = true;
        std::ostringstream msg;
        msg << "eps = " << eps << " is below half an ulp of " << 100.0 * share
            << "% of the parameters (storage type " << storage_name() << "); perturbations "
            << "of those elements are rounded away. Use a larger eps or wider storage.";
        detail::emit_warning(warning_sink_, msg.str());
      }
    }
    return share;
  }
  /// Per-span scales of the views the last step used (1 unless the
  /// optimizer scales spans, as the ZO Fine-tuner does), in span order:
  /// what an update log needs to replay that step. O(number of spans).
  [[nodiscard]] std::span<const double> last_scales() const noexcept {
    return engine_.last_scales();
  }

 protected:
  explicit ZerothOrderOptimizer(std::uint32_t directions, Backend backend = Backend{},
                                Update update = Update{})
      : engine_(directions, std::move(backend)), rule_state_(std::move(update)) {
    coefficients_.reserve(directions);
  }

  /// The step engine (for optimizers that read the step's loss values).
  [[nodiscard]] engine_type& engine() noexcept { return engine_; }
  [[nodiscard]] const engine_type& engine() const noexcept { return engine_; }

  // The one step path: prepare the views, evaluate this process's
  // directions, exchange, update, count.
  template <class Loss, class Arg, class Exchange>
  double run(Loss& loss, const Arg& arg, std::span<const SpanView<T>> views, Exchange& exchange) {
    static_assert(StepExchange<Exchange, T, engine_type>,
                  "zoopt: the exchange policy must provide directions(n), warns(), "
                  "before(views, settings), combine(engine, views, settings, ok, "
                  "coefficients) and after(views) (see zoopt/optimizer/step_exchange.hpp)");
    auto& self = static_cast<Derived&>(*this);
    static_assert(
        requires(const Derived& d, std::uint64_t step, std::uint32_t i) {
          { d.settings(step) } -> std::same_as<StepSettings>;
          { d.draw(step, i) } -> std::same_as<DirectionDraw>;
        },
        "zoopt: an optimizer built on ZerothOrderOptimizer must define "
        "StepSettings settings(std::uint64_t step) const (seed, step, directions, eps, lr, "
        "weight_decay) and DirectionDraw draw(std::uint64_t step, std::uint32_t direction) const "
        "(displacement h and weight: the direction weighting, e.g. KerZOO's kernel)");
    const std::uint64_t t = step_;
    detail::check_step_counter(t);
    if constexpr (requires { self.prepare(views); }) views = self.prepare(views);
    const StepSettings settings = self.settings(t);
    rule_state_.prepare(views, "step");
    exchange.before(views, settings);
    if (!eps_checked_) {
      eps_checked_ = true;
      if (exchange.warns()) check_eps(views, settings.eps);
    }
    const auto [first, last] = exchange.directions(settings.directions);
    double mean = 0.0;
    try {
      const bool ok = engine_.evaluate(
          loss, arg, views, settings, [&](std::uint32_t i) { return self.draw(t, i); }, first,
          last);
      const std::uint64_t evaluated = ok ? engine_.losses().size() : 0;
      coefficients_.assign(settings.directions, 0.0);
      mean = exchange.combine(engine_, views, settings, ok, std::span<double>(coefficients_));
      if constexpr (requires(std::span<double> c, std::span<const double> l) {
                      self.rescale(c, l);
                    }) {
        self.rescale(std::span<double>(coefficients_), std::span<const double>(engine_.losses()));
      }
      // (Step 2^32 - 1 is not fused: the next step would throw before its
      // first pass.)
      bool fused = false;
      if constexpr (!Estimator::evaluates_base) {
        if (fuse_next_ && t + 1 < detail::max_steps) {
          engine_.finish_and_move(views, settings, coefficients_, &rule_state_,
                                  self.settings(t + 1), self.draw(t + 1, 0));
          fused = true;
        }
      }
      if (!fused) engine_.finish(views, settings, coefficients_, &rule_state_);
      forward_passes_ += evaluated;
      ++step_;
    } catch (const NonFiniteLoss& e) {
      explain_non_finite(arg, views, e);
      throw;
    }
    exchange.after(views);
    return mean;
  }

  // A NaN/Inf loss is most often caused by NaN/Inf parameters: after the
  // restore, look for one (backends that can read the parameters) and name
  // it. Costs one read of the parameters, on the failure path only.
  template <class Arg>
  void explain_non_finite(const Arg& arg, std::span<const SpanView<T>> views,
                          const NonFiniteLoss& e) const {
    if constexpr (requires { engine_.backend().find_non_finite(views); }) {
      if (dynamic_cast<const NonFiniteParameters*>(&e) != nullptr) return;
      const auto bad = engine_.backend().find_non_finite(views);
      if (!bad) return;
      std::string span = "params";
      if constexpr (std::is_same_v<Arg, ParameterSet<T>>)
        span = "span '" + arg.name(bad->span) + "'";
      throw NonFiniteParameters("zoopt: " + span + " holds a non-finite value before step " +
                                std::to_string(step_) + " (element " +
                                std::to_string(bad->element) + " is " + std::to_string(bad->value) +
                                "); " + e.what());
    }
  }

 private:
  engine_type engine_;
  UpdateRuleState<Update, compute_t<T>> rule_state_;
  std::vector<double> coefficients_;
  std::uint64_t step_ = 0;
  std::uint64_t forward_passes_ = 0;
  WarningSink warning_sink_;
  double eps_warning_share_ = 0.1;
  bool eps_checked_ = false;
  bool eps_warned_ = false;
  bool fuse_next_ = false;  // inside optimize_pipelined()

  static const char* storage_name() { return storage_traits<T>::name; }
};

}  // namespace zoopt
