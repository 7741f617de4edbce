// Finite-difference estimators: where the loss is evaluated along a direction
// and how the values become the projected gradient (a scalar per direction).
#pragma once

#include <concepts>

#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Two-point central difference (default):
///   g_i = [L(x + h_i u_i) - L(x - h_i u_i)] / (2 eps)
/// Evaluations per step: 2n. Passes over the parameters: 2n + 1 (each move
/// between evaluation points is one pass; the last pass restores and updates).
struct CentralDifference {
  static constexpr const char* name = "central";
  static constexpr bool evaluates_base = false;
  static constexpr int points_per_direction = 2;
  static double projected(double loss_plus, double loss_minus, double eps) {
    return (loss_plus - loss_minus) / (2.0 * eps);
  }
};

/// One-sided forward difference: g_i = [L(x + h_i u_i) - L(x)] / eps, with
/// L(x) evaluated once per step and shared by all directions. Evaluations per
/// step: n + 1. Passes: n + 1. Its bias is O(eps) for MeZO (O(eps^2) with an
/// odd KerZOO kernel, since E[r^2 K] = 0).
struct ForwardDifference {
  static constexpr const char* name = "forward";
  static constexpr bool evaluates_base = true;
  static constexpr int points_per_direction = 1;
  static double projected(double loss_plus, double loss_base, double eps) {
    return (loss_plus - loss_base) / eps;
  }
};

/// What an estimator provides: a static `name` (logs and checkpoints),
/// `evaluates_base` (whether L(x) is evaluated once per step and shared),
/// `points_per_direction` (1 with a shared base, 2 without: the points
/// x + h u and x - h u) and `projected(loss_a, loss_b, eps)`, where loss_b is
/// the base loss or the loss at x - h u.
template <class E>
concept DifferenceEstimator = requires(double a, double b, double e) {
  { E::name } -> std::convertible_to<const char*>;
  { E::projected(a, b, e) } -> std::convertible_to<double>;
  { E::evaluates_base } -> std::convertible_to<bool>;
  { E::points_per_direction } -> std::convertible_to<int>;
  requires E::points_per_direction == (E::evaluates_base ? 1 : 2);
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
