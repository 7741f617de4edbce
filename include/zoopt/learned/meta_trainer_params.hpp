// Settings and reports of the meta-trainer (learned/meta_trainer.hpp).
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>

#include "zoopt/core/error.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt {

/// Settings. Defaults are the ZO Fine-tuner paper's for LLMs where they
/// make sense (eps, lr_meta, lr_mlp, lr_trajectory = its lr_llm,
/// momentum, 15 epochs with a reset every 5); steps_per_epoch is the
/// number of minibatches per epoch, which is the user's to set.
struct MetaTrainerParams {
  double eps = 1e-3;                    ///< perturbation scale of L+- (> 0)
  double lr_meta = 1e-6;                ///< eta_meta of the virtual step (> 0)
  double lr_mlp = 0.1;                  ///< SGD lr of the networks (>= 0)
  double lr_trajectory = 0.01;          ///< initial trajectory lr (>= 0)
  double momentum = 0.8;                ///< trajectory momentum, in [0, 1)
  std::uint64_t epochs = 15;            ///< epochs (>= 1)
  std::uint64_t reset_every = 5;        ///< epochs between resets of theta (>= 1)
  std::uint64_t steps_per_epoch = 100;  ///< meta-steps per epoch (>= 1)
  std::uint64_t seed = 0;               ///< noise seed of the meta-steps
  bool normalise = true;                ///< use c = sqrt(sum d_i / sum d_i s_i^2)
  double probe_eps = 1e-3;              ///< mu of meta_step_forward's block probes (> 0)
  /// Clips each block's |dM/ds_i| to this value before backpropagation
  /// (0: no clipping, the paper's setting).
  double max_scale_gradient = 0.0;

  /// Throws std::invalid_argument naming the first invalid field.
  void check() const {
    constexpr const char* w = "MetaTrainer::Params";
    detail::require(std::isfinite(eps) && eps > 0.0, w, "eps", "must be finite and > 0");
    detail::require(std::isfinite(lr_meta) && lr_meta > 0.0, w, "lr_meta",
                    "must be finite and > 0");
    detail::require(std::isfinite(lr_mlp) && lr_mlp >= 0.0, w, "lr_mlp", "must be finite and >= 0");
    detail::require(std::isfinite(lr_trajectory) && lr_trajectory >= 0.0, w, "lr_trajectory",
                    "must be finite and >= 0");
    detail::require(std::isfinite(momentum) && momentum >= 0.0 && momentum < 1.0, w, "momentum",
                    "must be in [0, 1)");
    detail::require(epochs >= 1, w, "epochs", "must be >= 1");
    detail::require(reset_every >= 1, w, "reset_every", "must be >= 1");
    detail::require(steps_per_epoch >= 1, w, "steps_per_epoch", "must be >= 1");
    detail::require(std::isfinite(probe_eps) && probe_eps > 0.0, w, "probe_eps",
                    "must be finite and > 0");
    detail::require(std::isfinite(max_scale_gradient) && max_scale_gradient >= 0.0, w,
                    "max_scale_gradient", "must be finite and >= 0");
  }
};

/// What one meta-step saw.
struct MetaStepReport {
  std::uint64_t step = 0;           ///< meta-steps taken before this one (noise key)
  double loss_plus = 0.0;           ///< L(theta + eps c s.z)
  double loss_minus = 0.0;          ///< L(theta - eps c s.z)
  double projected_gradient = 0.0;  ///< g = (L+ - L-) / (2 eps)
  double normaliser = 1.0;          ///< c
  double trajectory_lr = 0.0;       ///< lr of the trajectory step taken
};

/// What MetaTrainer::train() returns.
struct MetaTrainResult {
  std::uint64_t steps = 0;                 ///< meta-steps taken
  std::uint64_t forward_passes = 0;        ///< loss evaluations
  std::uint64_t gradient_evaluations = 0;  ///< gradient functor calls
  double first_loss = 0.0;                 ///< (L+ + L-)/2 of the first meta-step
  double last_loss = 0.0;                  ///< (L+ + L-)/2 of the last meta-step
};

/// A gradient functor: grad(const ParameterSet<T>& p, std::span<T> out) writes
/// dL/dtheta at the current parameters into `out`, element g of `out` being
/// the derivative w.r.t. the element with global index g (span offset +
/// position; out.size() == p.elements()).
template <class G, class T>
concept GradientFor = std::invocable < G&,
        const ParameterSet<T>
&, std::span < T >> ;

}  // namespace zoopt
