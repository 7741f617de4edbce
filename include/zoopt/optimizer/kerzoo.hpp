// KerZOO: kernel-weighted two-point ZO estimator without the O(eps^2) bias.
#pragma once

#include <cmath>
#include <cstdint>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/kernel/kernel.hpp"
#include "zoopt/kernel/range_schedule.hpp"
#include "zoopt/optimizer/zo_optimizer.hpp"
#include "zoopt/random/philox.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/schedule/lr_schedule.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// KerZOO. Per direction i, one scalar rho_i ~ U[-1, 1] (shared by every
/// element and span) and u_i regenerated from (seed, step, i); with
/// r_i = a_t rho_i (a_t from the range schedule, 1 by default):
///   g_i = [L(theta + eps r_i u_i) - L(theta - eps r_i u_i)] / (2 eps)
///         * C K(rho_i) / a_t
///   theta <- theta - lr ((1/n) sum_i g_i u_i + weight_decay * theta)
/// With E[rho K] = 1 and E[rho^3 K] = 0 (cubic, quintic) the estimator's mean
/// is C grad L + O(eps^4): the eps^2 bias of MeZO cancels. The price is
/// variance: E[(rho K)^2] = 25/4 for the cubic kernel (MeZO: 1).
///
/// Memory and passes: as MeZO (2n + 1 passes per step with the central
/// difference), plus one Philox call per direction for rho.
///
/// Template parameters: T the parameter type (float, double), Sampler the
/// direction law (GaussianSampler, RademacherSampler), Estimator
/// (CentralDifference, ForwardDifference), Backend where the passes run
/// (CpuBackend; the CUDA backend for device memory), Update the update rule
/// (SgdUpdate by default; see MeZO).
template <class T, class Sampler = GaussianSampler, class Estimator = CentralDifference,
          class Backend = CpuBackend<T, Sampler>, class Update = SgdUpdate>
class KerZOO : public ZerothOrderOptimizer<KerZOO<T, Sampler, Estimator, Backend, Update>, T,
                                           Sampler, Estimator, Backend, Update> {
  using Base = ZerothOrderOptimizer<KerZOO<T, Sampler, Estimator, Backend, Update>, T, Sampler,
                                    Estimator, Backend, Update>;
  friend Base;

 public:
  /// Settings; defaults follow the KerZOO paper's full fine-tuning runs
  /// (n = 3, eps = 1e-3, lr = 1e-6) with the honest normalisation C = 1.
  struct Params {
    double lr = 1e-6;                 ///< learning rate eta (>= 0)
    double eps = 1e-3;                ///< perturbation scale (> 0)
    std::uint32_t directions = 3;     ///< directions n per step (>= 1)
    std::uint64_t seed = 0;           ///< noise seed
    double weight_decay = 0.0;        ///< lambda (>= 0), on spans that opt in
    Kernel kernel = Kernel::cubic();  ///< K(rho), normalised to E[rho K] = 1
    double C = 1.0;                   ///< E[rK] = C: scales the effective lr (> 0)
    RangeSchedule range{};            ///< shrinking range of r (off by default)
    LrSchedule schedule{};            ///< step t uses lr * schedule(t) (default constant)
    Update update{};                  ///< the update rule's settings (default SGD)

    /// Throws std::invalid_argument naming the first invalid field.
    void check() const {
      detail::check_step_params("KerZOO::Params", lr, eps, directions, weight_decay);
      schedule.check("KerZOO::Params");
      update.check("KerZOO::Params");
      detail::require(std::isfinite(C) && C > 0.0, "KerZOO::Params", "C", "must be finite and > 0");
      range.check("KerZOO::Params");
    }
  };

  explicit KerZOO(Params params = {}, Backend backend = Backend{})
      : Base((params.check(), params.directions), std::move(backend), params.update),
        p_(std::move(params)) {}

  [[nodiscard]] const Params& params() const noexcept { return p_; }

  /// rho_i of direction i at step t: 2 u - 1 with u uniform on 53 bits from
  /// the scalar stream of (seed, t, i); 1 for the identity kernel.
  [[nodiscard]] double rho(std::uint64_t step, std::uint32_t i) const {
    if (!p_.kernel.draws_r()) return 1.0;
    const auto w = random::philox_block(NoiseKey{p_.seed, step, i}, 0, random::Stream::scalar);
    return 2.0 * random::uniform01(w.v[0], w.v[1]) - 1.0;
  }

 private:
  [[nodiscard]] StepSettings settings(std::uint64_t step) const {
    return detail::step_settings(p_, step);
  }
  [[nodiscard]] DirectionDraw draw(std::uint64_t step, std::uint32_t i) const {
    const double a = p_.range.at(step);
    const double r = rho(step, i);
    if (!p_.range.rescale_kernel) return DirectionDraw{p_.eps * a * r, p_.C * p_.kernel(a * r)};
    return DirectionDraw{p_.eps * a * r, p_.C * p_.kernel(r) / a};
  }

  Params p_;
};

/// KerZOO with the public code's copy-based acceleration (AcceleratedUpdate);
/// kerzoo_published() gives its other settings.
template <class T, class Sampler = GaussianSampler>
using KerZOOPublished =
    KerZOO<T, Sampler, CentralDifference, CpuBackend<T, Sampler>, AcceleratedUpdate>;

/// The settings of the public KerZOO code (Rainbow0427/zo_acc), so that its
/// runs can be reproduced: the cubic kernel with C = 4 (its K = 15 rho (5 -
/// 7 rho^2)), one direction per step, the range shrink a_t = max(1 - t/4000,
/// 1e-4) with K(a_t rho) not rescaled (a hidden lr warm-up, then a decay to
/// ~0 at step 4000), and acceleration with beta_k = 1 + k/6. Two of the
/// code's choices are not reproduced: it draws one r per tensor (here one
/// per direction; at a = 1 both give the same estimator variance) and clips
/// each tensor's estimate to norm 4e5 (here no clip; it only acts on
/// estimates of norm above 4e5). bench/RESULTS.md §3b compares it with MeZO.
template <class T, class Sampler = GaussianSampler>
typename KerZOOPublished<T, Sampler>::Params kerzoo_published(double lr = 1e-6,
                                                              std::uint64_t seed = 0) {
  typename KerZOOPublished<T, Sampler>::Params p;
  p.lr = lr;
  p.eps = 1e-3;
  p.directions = 1;
  p.seed = seed;
  p.kernel = Kernel::cubic();
  p.C = 4.0;
  p.range = RangeSchedule{.decay_steps = 4000, .a_min = 1e-4, .rescale_kernel = false};
  p.update = AcceleratedUpdate{.growth = 6.0};
  return p;
}

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
