// How the processes taking part in a step share its scalars: the policy
// between the evaluate and finish phases of every step (step_engine.hpp).
//
// A step is: prepare the views (per-span scales) -> evaluate this process's
// directions -> exchange -> one update pass with all n coefficients. The
// optimizer runs that sequence for every step (ZerothOrderOptimizer::run), so
// counters, last_coefficients(), last_scales(), optimizer state such as the
// fine-tuner's loss history, callbacks and update logs are the same however
// the step ran. LocalExchange is one process; zoopt::mpi::Distributed is the
// MPI exchange (an allgather of loss values and coefficients).
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <span>
#include <utility>

#include "zoopt/optimizer/step_engine.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt {

/// What an exchange policy provides, for an engine type E over parameters T:
///   directions(n)                    -> the directions [first, last) this
///                                       process evaluates
///   warns()                          -> whether this process checks eps and
///                                       warns (one process of identical
///                                       replicas is enough)
///   before(views, settings)          -> runs before the evaluation (e.g. a
///                                       replica check); may throw
///   combine(engine, views, settings, ok, coefficients) -> after this
///       process's evaluation (ok false: it failed and restored the
///       parameters): fills all n coefficients, leaves in engine.losses()
///       the loss values of all n directions in single-process order, and
///       returns the step's mean loss. If any process failed it restores
///       the parameters (engine.abort when ok) and throws the same error
///       everywhere.
///   after(views)                     -> runs after the update
template <class X, class T, class Engine>
concept StepExchange = requires(X& x, const X& cx, Engine& engine,
                                std::span<const SpanView<T>> views, const StepSettings& s, bool ok,
                                std::span<double> coefficients, std::uint32_t n) {
  { cx.directions(n) } -> std::same_as<std::pair<std::uint32_t, std::uint32_t>>;
  { cx.warns() } -> std::convertible_to<bool>;
  x.before(views, s);
  { x.combine(engine, views, s, ok, coefficients) } -> std::convertible_to<double>;
  x.after(views);
};

/// One process: every direction here, nothing to exchange.
struct LocalExchange {
  [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> directions(std::uint32_t n) const {
    return {0u, n};
  }
  [[nodiscard]] bool warns() const { return true; }
  template <class T>
  void before(std::span<const SpanView<T>>, const StepSettings&) {}
  template <class Engine, class T>
  double combine(Engine& engine, std::span<const SpanView<T>>, const StepSettings& s, bool ok,
                 std::span<double> coefficients) {
    if (!ok) std::rethrow_exception(engine.failure());
    engine.coefficients(s, 0, s.directions, coefficients);
    double sum = 0.0;
    for (const double v : engine.losses()) sum += v;
    return sum / static_cast<double>(engine.losses().size());
  }
  template <class T>
  void after(std::span<const SpanView<T>>) {}
};

}  // namespace zoopt
