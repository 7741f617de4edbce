// MeZO / ZO-SGD: the two-point ZO baseline with in-place seeded perturbation.
#pragma once

#include <cmath>
#include <cstdint>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/optimizer/zo_optimizer.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/schedule/lr_schedule.hpp"

namespace zoopt {

/// MeZO (Malladi et al., 2023). Per step, for each of n directions z_i
/// regenerated from (seed, step, i):
///   L+ = L(theta + eps z_i),  L- = L(theta - eps z_i),
///   g_i = (L+ - L-) / (2 eps),
///   theta <- theta - lr ((1/n) sum_i g_i z_i + weight_decay * theta).
/// E[g z] = grad L + (eps^2/2) grad(Laplacian L) + O(eps^4): an O(eps^2) bias.
///
/// Memory: the parameters plus O(n) scalars and the restore journal (see
/// CpuBackend). Passes over the parameters per step: 2n + 1 with the central
/// difference (3 for n = 1: +eps z, -eps z, restore fused with the update),
/// n + 1 with ForwardDifference.
///
/// Template parameters: T the parameter type (float, double), Sampler the
/// direction law (GaussianSampler, RademacherSampler), Estimator
/// (CentralDifference, ForwardDifference), Backend where the passes run
/// (CpuBackend; the CUDA backend for device memory), Update the update rule
/// (SgdUpdate: the step above; MomentumUpdate, AdamUpdate,
/// AcceleratedUpdate keep O(d) state, update/update_rule.hpp).
template <class T, class Sampler = GaussianSampler, class Estimator = CentralDifference,
          class Backend = CpuBackend<T, Sampler>, class Update = SgdUpdate>
class MeZO : public ZerothOrderOptimizer<MeZO<T, Sampler, Estimator, Backend, Update>, T, Sampler,
                                         Estimator, Backend, Update> {
  using Base = ZerothOrderOptimizer<MeZO<T, Sampler, Estimator, Backend, Update>, T, Sampler,
                                    Estimator, Backend, Update>;
  friend Base;

 public:
  /// Settings; the defaults are the MeZO paper's for full fine-tuning of
  /// large language models (small problems want a much larger lr).
  struct Params {
    double lr = 1e-6;              ///< learning rate eta (>= 0)
    double eps = 1e-3;             ///< perturbation scale (> 0)
    std::uint32_t directions = 1;  ///< directions n per step (>= 1)
    std::uint64_t seed = 0;        ///< noise seed; same seed, same trajectory
    double weight_decay = 0.0;     ///< lambda (>= 0), on spans that opt in
    LrSchedule schedule{};         ///< step t uses lr * schedule(t) (default constant)
    Update update{};               ///< the update rule's settings (default SGD)

    /// Throws std::invalid_argument naming the first invalid field.
    void check() const {
      detail::check_step_params("MeZO::Params", lr, eps, directions, weight_decay);
      schedule.check("MeZO::Params");
      update.check("MeZO::Params");
    }
  };

  explicit MeZO(Params params = {}, Backend backend = Backend{})
      : Base((params.check(), params.directions), std::move(backend), params.update),
        p_(std::move(params)) {}

  [[nodiscard]] const Params& params() const noexcept { return p_; }

 private:
  [[nodiscard]] StepSettings settings(std::uint64_t step) const {
    return detail::step_settings(p_, step);
  }
  [[nodiscard]] DirectionDraw draw(std::uint64_t, std::uint32_t) const {
    return DirectionDraw{p_.eps, 1.0};
  }

  Params p_;
};

}  // namespace zoopt
