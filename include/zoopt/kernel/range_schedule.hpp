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
struct RangeSchedule {
  /// Steps over which a_t decays linearly from 1; 0 disables the schedule.
  std::uint64_t decay_steps = 0;
  /// Floor of a_t (the published code used 1e-4 with decay_steps = 4000).
  double a_min = 1e-4;

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
