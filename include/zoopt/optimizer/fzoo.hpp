// FZOO: N one-sided directions around one shared base loss per step.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/optimizer/zo_optimizer.hpp"
#include "zoopt/sampler/rademacher.hpp"
#include "zoopt/schedule/lr_schedule.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// FZOO (Dang et al., 2025, arXiv:2506.09034): per step one unperturbed loss
/// L0 = L(theta) and N perturbed ones Li = L(theta + eps u_i), u_i
/// regenerated from (seed, step, i):
///   g = (1 / (eps N)) sum_i (Li - L0) u_i
///   theta <- theta - lr_t (g / sigma + weight_decay theta)     (normalize)
///   theta <- theta - lr_t (g + weight_decay theta)             (default)
/// with sigma^2 = (1/(N-1)) sum_i (Li - mean_j Lj)^2 and lr_t = lr *
/// schedule(t).
///
/// Why N directions around one base: each direction costs one evaluation
/// instead of two, so N directions cost N + 1 instead of 2N; with the
/// estimator's variance falling as 1/N the forward passes to a given
/// accuracy fall by up to 2N / (N + 1) against MeZO (1.6x at N = 4, 1.8x at
/// N = 8). The one-sided difference has an O(eps) bias (MeZO's central one:
/// O(eps^2)); at eps = 1e-3 it is far below the estimator's noise.
///
/// normalize (off by default): FZOO's sigma-normalised step, a normalised
/// SGD whose step length does not shrink as the loss flattens, so the lr
/// alone sets how close to the optimum it gets. Since sigma ~ eps |g|, its
/// lr lies a factor of about eps |g| below an unnormalised one (2^-2 to
/// 2^-11 times the suite's base lr in bench/RESULTS.md §3-§3g) and must be
/// tuned on a wide grid; a decaying schedule (LrSchedule) lets it start
/// larger. Off by default because an lr carried over from MeZO is then far
/// too large. A step whose N losses are all equal (sigma = 0) applies no
/// gradient (only the weight decay).
///
/// Memory: the parameters, O(N) scalars and the restore journal (CpuBackend);
/// no O(d) state. Forward passes (loss evaluations) per step: N + 1. Passes
/// over the parameters per step: N + 1 (one move to each of the N points, the
/// last pass restores theta and applies the update), against MeZO's 3 for
/// one direction (4 in the reference implementation).
///
/// Template parameters: T the parameter type (float, double, half,
/// bfloat16), Sampler the direction law (RademacherSampler as in the paper,
/// or GaussianSampler), Backend where the passes run (CpuBackend; the CUDA
/// backend for device memory: zoopt::cuda::FZOO), Update the update rule
/// (SgdUpdate by default; see MeZO).
template <class T, class Sampler = RademacherSampler, class Backend = CpuBackend<T, Sampler>,
          class Update = SgdUpdate>
class FZOO : public ZerothOrderOptimizer<FZOO<T, Sampler, Backend, Update>, T, Sampler,
                                         ForwardDifference, Backend, Update> {
  using Base = ZerothOrderOptimizer<FZOO<T, Sampler, Backend, Update>, T, Sampler,
                                    ForwardDifference, Backend, Update>;
  friend Base;

 public:
  /// Settings. lr and eps default to MeZO's for full fine-tuning of large
  /// language models (small problems want a much larger lr); N = 8.
  struct Params {
    double lr = 1e-6;              ///< learning rate eta (>= 0)
    double eps = 1e-3;             ///< perturbation scale (> 0)
    std::uint32_t directions = 8;  ///< N one-sided directions per step (>= 1; >= 2 to normalize)
    std::uint64_t seed = 0;        ///< noise seed; same seed, same trajectory
    double weight_decay = 0.0;     ///< lambda (>= 0), on spans that opt in
    bool normalize = false;        ///< divide the gradient estimate by sigma (see above)
    LrSchedule schedule{};         ///< step t uses lr * schedule(t) (default constant)
    Update update{};               ///< the update rule's settings (default SGD)

    /// Throws zoopt::InvalidArgument naming the first invalid field.
    void check() const {
      detail::check_step_params("FZOO::Params", lr, eps, directions, weight_decay);
      update.check("FZOO::Params");
      detail::require(!normalize || directions >= 2, "FZOO::Params", "directions",
                      "must be >= 2 with normalize (sigma is the spread of the N losses)");
      schedule.check("FZOO::Params");
    }
  };

  explicit FZOO(Params params = {}, Backend backend = Backend{})
      : Base((params.check(), params.directions), std::move(backend), params.update),
        p_(std::move(params)) {}

  [[nodiscard]] const Params& params() const noexcept { return p_; }

  /// The name logs and checkpoints record: "fzoo" or "fzoo/normalized".
  [[nodiscard]] std::string identity() const { return p_.normalize ? "fzoo/normalized" : "fzoo"; }

  /// sigma of the perturbed losses Li (i >= 1 of `losses`, L0 first), the
  /// sample standard deviation with N - 1 in the denominator.
  [[nodiscard]] static double loss_spread(std::span<const double> losses) {
    const std::span<const double> perturbed = losses.subspan(1);
    const auto n = static_cast<double>(perturbed.size());
    double mean = 0.0;
    for (const double v : perturbed) mean += v;
    mean /= n;
    double ss = 0.0;
    for (const double v : perturbed) ss += (v - mean) * (v - mean);
    return std::sqrt(ss / (n - 1.0));
  }

 private:
  [[nodiscard]] StepSettings settings(std::uint64_t step) const {
    return detail::step_settings(p_, step);
  }
  [[nodiscard]] DirectionDraw draw(std::uint64_t, std::uint32_t) const {
    return DirectionDraw{p_.eps, 1.0};
  }
  // Runs once all N + 1 losses are known (on every process alike).
  void rescale(std::span<double> coefficients, std::span<const double> losses) const {
    if (!p_.normalize) return;
    const double sigma = loss_spread(losses);
    for (double& c : coefficients) c = sigma > 0.0 ? c / sigma : 0.0;
  }

  Params p_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
