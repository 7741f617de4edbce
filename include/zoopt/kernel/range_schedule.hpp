// Range schedule for KerZOO's scalar r.
#pragma once

#include <algorithm>
#include <cstdint>

#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Shrinks the range of r over training: r = a_t * rho, rho ~ U[-1, 1], with
/// the weight K(rho) / a_t. This keeps E[rK] = C and E[r^3 K] = 0 exactly (it
/// is equivalent to perturbing with eps * a_t); drawing r ~ U[-a, a] with an
/// unchanged K would break both conditions.
///   a_t = max(1 - t / decay_steps, a_min)   if decay_steps > 0
///   a_t = 1                                 otherwise (default: no shrinking)
/// rescale_kernel = false reproduces the public KerZOO code instead: the
/// weight is K(r) = K(a_t rho), so E[rK] = C (25 a^2 - 21 a^4) / 4 for the
/// cubic kernel (an lr warm-up to 1.86 C, then a decay to ~0 at
/// decay_steps; LrSchedule::kerzoo_range is that factor) and E[r^3 K] != 0.
struct RangeSchedule {
  /// Steps over which a_t decays linearly from 1; 0 disables the schedule.
  std::uint64_t decay_steps = 0;
  /// Floor of a_t (the published code used 1e-4 with decay_steps = 4000).
  double a_min = 1e-4;
  /// true: weight K(rho) / a_t (moments kept); false: K(a_t rho) (the code's).
  bool rescale_kernel = true;

  [[nodiscard]] double at(std::uint64_t step) const {
    if (decay_steps == 0) return 1.0;
    const double a = 1.0 - static_cast<double>(step) / static_cast<double>(decay_steps);
    return std::max(a, a_min);
  }

  void check(const char* where) const {
    detail::require(a_min > 0.0 && a_min <= 1.0, where, "range.a_min", "must be in (0, 1]");
  }
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
