// The loop behind every optimize(): steps, reports, callbacks, result.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "zoopt/callbacks/callbacks.hpp"

namespace zoopt::detail {

/// Runs up to `steps` calls of step() (returning the step's mean loss),
/// reporting to each callback; `counters()` returns {step counter,
/// forward passes} after a step. Stops early when an on_step returns true.
template <class StepFn, class CountersFn, class... Callbacks>
OptimizeResult optimize_loop(StepFn&& step, CountersFn&& counters, std::size_t steps,
                             Callbacks&... callbacks) {
  static_assert((OptimizeCallback<Callbacks> && ...),
                "zoopt: an optimize() callback needs on_begin(std::size_t), "
                "on_step(const StepReport&) or on_end(const OptimizeResult&) (a plain lambda "
                "would never be called; see zoopt/callbacks/callbacks.hpp)");
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const std::uint64_t passes0 = counters().second;
  OptimizeResult result;
  result.best_loss = std::numeric_limits<double>::infinity();
  (callback_begin(callbacks, steps), ...);
  for (std::size_t i = 0; i < steps; ++i) {
    const double value = step();
    result.steps = i + 1;
    result.final_loss = value;
    result.best_loss = std::min(result.best_loss, value);
    const auto [step_count, passes] = counters();
    [[maybe_unused]] const StepReport report{
        i,     steps,  step_count,
        value, passes, std::chrono::duration<double>(clock::now() - start).count()};
    bool stop = false;
    ((stop = callback_step(callbacks, report) || stop), ...);
    if (stop) {
      result.stopped_early = i + 1 < steps;
      break;
    }
  }
  result.forward_passes = counters().second - passes0;
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  (callback_end(callbacks, result), ...);
  return result;
}

}  // namespace zoopt::detail
