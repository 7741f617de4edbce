// Early stopping for optimize().
#pragma once

#include <cstddef>
#include <limits>

#include "zoopt/callbacks/callbacks.hpp"
#include "zoopt/core/error.hpp"

namespace zoopt {

/// Stops when the smoothed step loss reaches `target`, or has not improved
/// by more than `min_delta` for `patience` steps. ZO step losses are noisy
/// (they are taken at perturbed points), so the test uses an exponential
/// moving average with factor `smoothing` (0 = raw losses).
struct EarlyStopOptions {
  std::size_t patience = 100;  ///< steps without improvement before stopping (0: never)
  double min_delta = 0.0;      ///< improvement that resets the patience counter
  double target = -std::numeric_limits<double>::infinity();  ///< stop at or below this
  double smoothing = 0.9;                                    ///< EMA factor in [0, 1)
};

class EarlyStop {
 public:
  using Options = EarlyStopOptions;

  /// Throws std::invalid_argument for smoothing outside [0, 1) or a negative
  /// or NaN min_delta.
  explicit EarlyStop(Options options = {}) : o_(options) {
    detail::require(o_.smoothing >= 0.0 && o_.smoothing < 1.0, "EarlyStop", "smoothing",
                    "must be in [0, 1)");
    detail::require(o_.min_delta >= 0.0, "EarlyStop", "min_delta", "must be >= 0");
  }

  void on_begin(std::size_t) {
    ema_ = 0.0;
    best_ = std::numeric_limits<double>::infinity();
    since_best_ = 0;
    seen_ = false;
  }

  bool on_step(const StepReport& r) {
    ema_ = seen_ ? o_.smoothing * ema_ + (1.0 - o_.smoothing) * r.loss : r.loss;
    seen_ = true;
    if (ema_ <= o_.target) return true;
    if (ema_ < best_ - o_.min_delta) {
      best_ = ema_;
      since_best_ = 0;
      return false;
    }
    return o_.patience > 0 && ++since_best_ >= o_.patience;
  }

 private:
  Options o_;
  double ema_ = 0.0;
  double best_ = std::numeric_limits<double>::infinity();
  std::size_t since_best_ = 0;
  bool seen_ = false;
};

}  // namespace zoopt
