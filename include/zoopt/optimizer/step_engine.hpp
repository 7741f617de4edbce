// The schedule of one ZO step: which points are evaluated, in which order,
// and the passes that move the parameters between them.
#pragma once

#include <cmath>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/detail/loss_call.hpp"
#include "zoopt/params/parameter_set.hpp"

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

/// What a finished step produced: the mean loss and every projected
/// gradient coefficient (after weighting, before the 1/n average). The
/// coefficients and the step key are all a replay needs.
struct StepOutcome {
  double mean_loss = 0.0;
  std::uint32_t evaluations = 0;
};

/// Runs steps on a backend. Holds only O(n) scratch, reserved up front.
template <class T, class Estimator, class Backend>
class StepEngine {
 public:
  explicit StepEngine(std::uint32_t directions) {
    terms_.reserve(directions + 1);
    coefficients_.reserve(directions);
  }

  Backend& backend() noexcept { return backend_; }
  const Backend& backend() const noexcept { return backend_; }
  /// Projected-gradient coefficient of each direction in the last step
  /// (g_i * weight_i / n): the update was theta -= lr * sum_i c_i s z_i.
  [[nodiscard]] std::span<const double> coefficients() const noexcept { return coefficients_; }

  template <class Loss, class Arg, class Draw>
  StepOutcome run(Loss& loss, const Arg& arg, std::span<const SpanView<T>> views,
                  const StepSettings& s, Draw&& draw) {
    coefficients_.clear();
    at_ = Position{};
    double sum = 0.0;
    std::uint32_t count = 0;

    auto evaluate = [&](std::uint32_t direction, const char* where) {
      double value = 0.0;
      try {
        value = detail::call_loss(loss, arg);
      } catch (...) {
        abort(views, s);
        throw;
      }
      if (!std::isfinite(value)) {
        abort(views, s);
        throw NonFiniteLoss("zoopt: loss returned " + std::to_string(value) + " at step " +
                            std::to_string(s.step) + ", direction " + std::to_string(direction) +
                            " (" + where + "); parameters restored to their pre-step values");
      }
      sum += value;
      ++count;
      return value;
    };

    double base = 0.0;
    if constexpr (Estimator::evaluates_base) base = evaluate(0, "unperturbed point");
    for (std::uint32_t i = 0; i < s.directions; ++i) {
      const DirectionDraw d = draw(i);
      go_to(views, s, i, d.h);
      const double plus = evaluate(i, "+h");
      double other = base;
      if constexpr (!Estimator::evaluates_base) {
        go_to(views, s, i, -d.h);
        other = evaluate(i, "-h");
      }
      coefficients_.push_back(Estimator::projected(plus, other, s.eps) * d.weight /
                              static_cast<double>(s.directions));
    }

    terms_.clear();
    bool merged = false;
    for (std::uint32_t i = 0; i < s.directions; ++i) {
      const bool here = at_.valid && at_.direction == i;
      merged = merged || here;
      terms_.push_back(Term{i, here ? at_.coef : 0.0, coefficients_[i]});
    }
    if (at_.valid && !merged) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
    backend_.update(views, s.seed, s.step, terms_, s.lr, s.weight_decay);
    at_ = Position{};
    return StepOutcome{sum / count, count};
  }

 private:
  struct Position {
    bool valid = false;
    std::uint32_t direction = 0;
    double coef = 0.0;
  };

  void go_to(std::span<const SpanView<T>> views, const StepSettings& s, std::uint32_t direction,
             double coef) {
    terms_.clear();
    if (at_.valid && at_.direction == direction) {
      terms_.push_back(Term{direction, at_.coef, coef});
    } else {
      if (at_.valid) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
      terms_.push_back(Term{direction, 0.0, coef});
    }
    backend_.move(views, s.seed, s.step, terms_);
    at_ = Position{true, direction, coef};
  }

  void abort(std::span<const SpanView<T>> views, const StepSettings& s) noexcept {
    terms_.clear();
    if (at_.valid) terms_.push_back(Term{at_.direction, at_.coef, 0.0});
    backend_.restore(views, s.seed, s.step, terms_);
    at_ = Position{};
  }

  Backend backend_;
  std::vector<Term> terms_;
  std::vector<double> coefficients_;
  Position at_;
};

}  // namespace zoopt
