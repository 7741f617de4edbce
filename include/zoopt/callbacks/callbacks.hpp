// What optimize() tells its callbacks, and how it calls them.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace zoopt {

/// Reported to callbacks after every step of optimize().
struct StepReport {
  std::size_t iteration = 0;         ///< 0-based index within this optimize() call
  std::size_t total = 0;             ///< steps requested from optimize()
  std::uint64_t step = 0;            ///< the optimizer's global step counter after the step
  double loss = 0.0;                 ///< mean of the loss values the step evaluated
  std::uint64_t forward_passes = 0;  ///< loss evaluations so far (optimizer lifetime)
  double seconds = 0.0;              ///< wall time since optimize() began
};

/// What optimize() returns.
struct OptimizeResult {
  std::size_t steps = 0;             ///< steps taken in this call
  double final_loss = 0.0;           ///< mean loss of the last step
  double best_loss = 0.0;            ///< lowest step mean seen
  std::uint64_t forward_passes = 0;  ///< loss evaluations in this call
  bool stopped_early = false;        ///< a callback asked to stop
  double seconds = 0.0;
};

/// A callback may define any of:
///   void on_begin(std::size_t total_steps);
///   bool on_step(const StepReport&);   // return true to stop (void: never)
///   void on_end(const OptimizeResult&);
namespace detail {

/// True for a type with at least one of the hooks above.
template <class Cb>
concept OptimizeCallback = requires(Cb& cb, std::size_t n) {
  cb.on_begin(n);
}
|| requires(Cb& cb, const StepReport& r) { cb.on_step(r); }
|| requires(Cb& cb, const OptimizeResult& o) { cb.on_end(o); };

template <class Cb>
void callback_begin(Cb& cb, std::size_t total) {
  if constexpr (requires { cb.on_begin(total); }) cb.on_begin(total);
}

template <class Cb>
bool callback_step(Cb& cb, const StepReport& r) {
  if constexpr (requires {
                  { cb.on_step(r) } -> std::convertible_to<bool>;
                }) {
    return static_cast<bool>(cb.on_step(r));
  } else if constexpr (requires { cb.on_step(r); }) {
    cb.on_step(r);
  }
  return false;
}

template <class Cb>
void callback_end(Cb& cb, const OptimizeResult& r) {
  if constexpr (requires { cb.on_end(r); }) cb.on_end(r);
}

}  // namespace detail
}  // namespace zoopt
