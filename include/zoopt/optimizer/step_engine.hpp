// The schedule of one ZO step: which points are evaluated, in which order,
// and the passes that move the parameters between them.
//
// A step runs in three phases with an exchange of scalars between them
// (step_exchange.hpp: nothing in one process, an allgather under MPI):
//   1. evaluate(): move to each point of directions [first, last), call the
//      loss, record the values. On failure the parameters are restored and
//      the failure is kept instead of thrown.
//   2. coefficients(): projected gradient * kernel weight / n per direction,
//      from the (possibly all-reduced) loss values of directions evaluated
//      here.
//   3. finish(): one pass that restores and applies the update with all n
//      coefficients (possibly gathered from other processes); or
//      finish_and_move(), which also moves to the next step's first point
//      in that pass, so that the next step starts there.
#pragma once

#include <cmath>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/detail/loss_call.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/update/update_state.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Displacement and weight of one direction: the loss is evaluated at
/// theta0 +- h * s * z and the direction's projected gradient is multiplied
/// by `weight` (MeZO: h = eps, weight = 1; KerZOO: h = eps a rho,
/// weight = C K(rho) / a).
struct DirectionDraw {
  double h = 0.0;
  double weight = 1.0;
};

/// Per-step settings handed from an optimizer to its engine.
struct StepSettings {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint32_t directions = 1;
  double eps = 1e-3;
  double lr = 0.0;
  double weight_decay = 0.0;
};

/// Runs steps on a backend. Holds only O(n) scratch, reserved up front, so a
/// step allocates nothing.
template <class T, class Estimator, class Backend>
class StepEngine {
 public:
  explicit StepEngine(std::uint32_t directions, Backend backend = Backend{})
      : backend_(std::move(backend)) {
    terms_.reserve(directions + 1);
    coefficients_.reserve(directions);
    draws_.reserve(directions);
    losses_.reserve(2 * static_cast<std::size_t>(directions) + 1);
  }

  Backend& backend() noexcept { return backend_; }
  const Backend& backend() const noexcept { return backend_; }

  /// Loss values of the last evaluate(), in evaluation order: L(theta0) first
  /// if the estimator uses it, then L+ (and L- for the central difference)
  /// of each evaluated direction. A distributed driver may overwrite them
  /// with all-reduced values before coefficients().
  [[nodiscard]] std::span<double> losses() noexcept { return losses_; }
  [[nodiscard]] std::span<const double> losses() const noexcept { return losses_; }
  /// Replaces the loss values (an exchange that gathered every process's
  /// values, in single-process order). At most 2n + 1 values: allocates
  /// nothing.
  void assign_losses(std::span<const double> values) {
    losses_.assign(values.begin(), values.end());
  }
  /// Per-direction coefficients c_i = g_i * weight_i / n of the last step:
  /// the update was theta -= lr * (sum_i c_i s z_i + lambda theta).
  [[nodiscard]] std::span<const double> last_coefficients() const noexcept { return coefficients_; }
  /// Per-span scales of the views the last update used, in span order.
  [[nodiscard]] std::span<const double> last_scales() const noexcept { return scales_; }

  /// Phase 1. Returns false if the loss threw or returned NaN/Inf; the
  /// parameters then hold their pre-step bits and failure() says why.
  template <class Loss, class Arg, class Draw>
  bool evaluate(Loss& loss, const Arg& arg, std::span<const SpanView<T>> views,
                const StepSettings& s, Draw&& draw, std::uint32_t first, std::uint32_t last) {
    losses_.clear();
    draws_.clear();
    failure_ = nullptr;
    // A step may start displaced to its first point (finish_and_move()).
    if (at_.step != s.step) at_ = Position{};
    auto point = [&](std::uint32_t direction, const char* where) {
      double value = 0.0;
      const bool watch = watches_loss_writes();
      if (watch) watch_loss_writes(views);
      try {
        value = detail::call_loss(loss, arg);
      } catch (...) {
        failure_ = std::current_exception();
      }
      if (watch) check_loss_writes(views, s, direction, where);
      if (!failure_ && !std::isfinite(value)) {
        failure_ = std::make_exception_ptr(
            NonFiniteLoss("zoopt: loss returned " + std::to_string(value) + " at step " +
                          std::to_string(s.step) + ", direction " + std::to_string(direction) +
                          " (" + where + "); parameters restored to their pre-step values"));
      }
      if (failure_) {
        abort(views, s);
        return false;
      }
      losses_.push_back(value);
      return true;
    };
    if constexpr (Estimator::evaluates_base) {
      if (!point(first, "unperturbed point")) return false;
    }
    for (std::uint32_t i = first; i < last; ++i) {
      const DirectionDraw d = draw(i);
      draws_.push_back(d);
      go_to(views, s, i, d.h);
      if (!point(i, "+h")) return false;
      if constexpr (!Estimator::evaluates_base) {
        go_to(views, s, i, -d.h);
        if (!point(i, "-h")) return false;
      }
    }
    return true;
  }

  /// Why the last evaluate() failed (null if it did not).
  [[nodiscard]] std::exception_ptr failure() const noexcept { return failure_; }

  /// Phase 2: coefficients of directions [first, last) written to out[i].
  void coefficients(const StepSettings& s, std::uint32_t first, std::uint32_t last,
                    std::span<double> out) const {
    const std::size_t base = Estimator::evaluates_base ? 1 : 0;
    const double scale = 1.0 / static_cast<double>(s.directions);
    for (std::uint32_t i = first; i < last; ++i) {
      const std::size_t k = i - first;
      const std::size_t at = base + k * Estimator::points_per_direction;
      const double other = Estimator::evaluates_base ? losses_[0] : losses_[at + 1];
      out[i] = Estimator::projected(losses_[at], other, s.eps) * draws_[k].weight * scale;
    }
  }

  /// Phase 3: one pass that restores theta0 and applies
  /// theta = theta0 - lr (sum_i c_i s z_i + lambda theta0) for all n
  /// directions. `coefficients` has one entry per direction.
  /// With an update rule's state (update_state.hpp), the rule makes theta
  /// from theta0 and the estimate; SGD's state holds nothing.
  template <class Rule = SgdUpdate>
  void finish(std::span<const SpanView<T>> views, const StepSettings& s,
              std::span<const double> coefficients,
              UpdateRuleState<Rule, compute_t<T>>* rule = nullptr) {
    finish_terms(views, coefficients);
    if constexpr (std::is_same_v<Rule, SgdUpdate>) {
      backend_.update(views, s.seed, s.step, terms_, s.lr, s.weight_decay);
    } else {
      backend_.template update<Rule::state_size>(views, s.seed, s.step, terms_, s.lr,
                                                 s.weight_decay, rule->apply(), rule->data());
      rule->advance();
    }
    at_ = Position{};
  }

  /// finish(), fused with the move to the first point of step `next`
  /// (direction 0 at displacement first.h) in the same pass (the backend's
  /// update_and_move): the next evaluate() with `next` starts there without
  /// a pass of its own. The parameters stay displaced until then (or an
  /// abort() with `next`).
  template <class Rule = SgdUpdate>
  void finish_and_move(std::span<const SpanView<T>> views, const StepSettings& s,
                       std::span<const double> coefficients,
                       UpdateRuleState<Rule, compute_t<T>>* rule, const StepSettings& next,
                       const DirectionDraw& first) {
    finish_terms(views, coefficients);
    const Term move{0, 0.0, first.h};
    const std::span<const Term> moves(&move, 1);
    if constexpr (std::is_same_v<Rule, SgdUpdate>) {
      backend_.update_and_move(views, s.seed, s.step, terms_, s.lr, s.weight_decay, next.step,
                               moves);
    } else {
      backend_.template update_and_move<Rule::state_size>(views, s.seed, s.step, terms_, s.lr,
                                                          s.weight_decay, rule->apply(),
                                                          rule->data(), next.step, moves);
      rule->advance();
    }
    at_ = Position{true, 0, first.h, next.step};
  }

  /// True while the parameters are displaced (during a step, or between a
  /// finish_and_move() and the next step).
  [[nodiscard]] bool displaced() const noexcept { return at_.valid; }

  /// Restores theta0 (for a driver that must give up after evaluate()).
  void abort(std::span<const SpanView<T>> views, const StepSettings& s) noexcept {
    terms_.clear();
    if (at_.valid) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
    backend_.restore(views, s.seed, s.step, terms_);
    at_ = Position{};
  }

 private:
  struct Position {
    bool valid = false;
    std::uint32_t direction = 0;
    double coef = 0.0;
    std::uint64_t step = ~std::uint64_t{0};  ///< the step whose noise displaces
  };

  // The terms of the last pass of a step (restore theta0, apply all n
  // coefficients); records what the update used.
  void finish_terms(std::span<const SpanView<T>> views, std::span<const double> coefficients) {
    // However the coefficients were made (here or gathered by a distributed
    // driver): an update log records these.
    if (coefficients.data() != coefficients_.data()) {
      coefficients_.assign(coefficients.begin(), coefficients.end());
    }
    scales_.resize(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) scales_[i] = views[i].scale;
    terms_.clear();
    bool merged = false;
    for (std::uint32_t i = 0; i < coefficients.size(); ++i) {
      const bool here = at_.valid && at_.direction == i;
      merged = merged || here;
      terms_.push_back(Term{i, here ? at_.coef : 0.0, coefficients[i]});
    }
    if (at_.valid && !merged) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
  }

  // The optional write check of backends that offer it (CpuBackend).
  [[nodiscard]] bool watches_loss_writes() const {
    if constexpr (requires { backend_.checks_loss_writes(); }) {
      return backend_.checks_loss_writes();
    } else {
      return false;
    }
  }
  void watch_loss_writes(std::span<const SpanView<T>> views) {
    if constexpr (requires { backend_.snapshot(views); }) backend_.snapshot(views);
  }
  void check_loss_writes(std::span<const SpanView<T>> views, const StepSettings& s,
                         std::uint32_t direction, const char* where) {
    if constexpr (requires { backend_.revert_loss_writes(views); }) {
      const auto wrote = backend_.revert_loss_writes(views);
      if (!wrote) return;
      failure_ = std::make_exception_ptr(LossModifiedParameters(
          "zoopt: the loss wrote to the parameters it was given (span " +
          std::to_string(wrote->first) + ", element " + std::to_string(wrote->second) +
          ", at step " + std::to_string(s.step) + ", direction " + std::to_string(direction) +
          " (" + where +
          ")); a loss must only read them. Parameters restored to their pre-step values"));
    }
  }

  void go_to(std::span<const SpanView<T>> views, const StepSettings& s, std::uint32_t direction,
             double coef) {
    if (at_.valid && at_.direction == direction && at_.coef == coef) return;  // already there
    terms_.clear();
    if (at_.valid && at_.direction == direction) {
      terms_.push_back(Term{direction, at_.coef, coef});
    } else {
      if (at_.valid) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
      terms_.push_back(Term{direction, 0.0, coef});
    }
    backend_.move(views, s.seed, s.step, terms_);
    at_ = Position{true, direction, coef, s.step};
  }

  Backend backend_;
  std::vector<Term> terms_;
  std::vector<double> coefficients_;
  std::vector<double> scales_;
  std::vector<DirectionDraw> draws_;
  std::vector<double> losses_;
  std::exception_ptr failure_;
  Position at_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
