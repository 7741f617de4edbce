// Meta-training of the ZO Fine-tuner's per-block networks ("learning to
// learn", once per base model): a one-step virtual-update meta-loss along a
// first-order (or zeroth-order) trajectory of the model.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/detail/loss_call.hpp"
#include "zoopt/learned/meta_trainer_params.hpp"
#include "zoopt/learned/perturbation_model.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt {

/// Meta-trainer of a PerturbationModel. One meta-step on the current
/// minibatch (the user's functors decide what the batch is):
///   1. s_i = PertNN_i(features of block i), c (treated as a constant);
///   2. L+- = L(theta +- eps c s.z), z ~ N(0, I) from (seed, meta-step);
///      g = (L+ - L-) / (2 eps);
///   3. virtual step theta' = theta - lr_meta c g (s.z);
///   4. dM/ds_i = -lr_meta c g <grad_{theta_i} L(theta'), z_i> for the
///      meta-loss M = L(theta'); backpropagated into block i's network, one
///      SGD step on its weights (lr_mlp);
///   5. history <- (L+, L-, s); theta returns to its value before the step
///      and takes one trajectory step: SGD with momentum on grad L(theta)
///      (meta_step) or on the ZO estimate g c s.z (meta_step_forward).
///
/// Two variants:
///  - meta_step(loss, grad, params): <grad_i L(theta'), z_i> from the user's
///    gradient functor. Per meta-step: 2 loss evaluations + 2 gradient
///    evaluations (at theta' and at theta). Memory: 4 copies of theta (the
///    step's start, the trajectory's start for resets, the momentum, the
///    gradient buffer), all of type T.
///  - meta_step_forward(loss, params): no gradient; <grad_i L(theta'), z_i>
///    is estimated by the symmetric difference
///    [L(theta' + mu z_i) - L(theta' - mu z_i)] / (2 mu) along the
///    block-restricted direction (mu = probe_eps), and the trajectory is
///    zeroth-order. Per meta-step: 2 + 2B loss evaluations for B blocks.
///    Memory: 3 copies of theta (no gradient buffer). An extension: the
///    ZO Fine-tuner paper meta-trains with gradients.
/// Both also hold the model (449 doubles per block), one gradient
/// accumulator network and one forward cache per block.
///
/// train() runs the whole schedule: epochs * steps_per_epoch meta-steps,
/// the trajectory lr decaying linearly from lr_trajectory towards 0 within
/// each period of reset_every epochs, after which theta, the momentum and
/// the loss/scale history are reset to the start. On return (and on an
/// exception) the parameters hold their values from before the call.
template <class T, class Sampler = GaussianSampler>
class MetaTrainer {
  static_assert(Real<T>, "zoopt::MetaTrainer: T must be float or double");

 public:
  using C = compute_t<T>;

  /// Callback type used when train() is given none.
  struct NoCallback {
    void operator()(const MetaStepReport&) const {}
  };

  /// Settings (learned/meta_trainer_params.hpp).
  using Params = MetaTrainerParams;

  /// Starts from `initial` (e.g. PerturbationModel::unit(params)). Throws
  /// std::invalid_argument for invalid params or an empty model.
  MetaTrainer(Params params, PerturbationModel initial)
      : p_((params.check(), std::move(params))), model_(std::move(initial)) {
    detail::require(!model_.empty(), "MetaTrainer", "model", "must hold at least one block");
    const std::size_t b = model_.size();
    scales_.assign(b, 1.0);
    previous_.assign(b, 1.0);
    dscale_.assign(b, 0.0);
    dots_.assign(b, 0.0);
    caches_.resize(b);
    grads_.resize(b);
  }

  /// Starts from PerturbationModel::unit(parameters, seed).
  MetaTrainer(Params params, const ParameterSet<T>& parameters)
      : MetaTrainer(params, PerturbationModel::unit(parameters, params.seed)) {}

  [[nodiscard]] const Params& params() const noexcept { return p_; }
  /// The networks as trained so far.
  [[nodiscard]] const PerturbationModel& model() const noexcept { return model_; }
  /// s_i of the last meta-step.
  [[nodiscard]] std::span<const double> scales() const noexcept { return scales_; }
  /// dM/ds_i of the last meta-step (after clipping).
  [[nodiscard]] std::span<const double> scale_gradients() const noexcept { return dscale_; }
  /// <grad_{theta_i} L(theta'), z_i> (or its estimate) of the last meta-step.
  [[nodiscard]] std::span<const double> block_projections() const noexcept { return dots_; }
  [[nodiscard]] std::uint64_t steps() const noexcept { return step_; }
  [[nodiscard]] std::uint64_t forward_passes() const noexcept { return forward_passes_; }
  [[nodiscard]] std::uint64_t gradient_evaluations() const noexcept { return grad_evals_; }

  /// Loss evaluations per meta-step for B blocks: 2 (meta_step) or 2 + 2B
  /// (meta_step_forward).
  static constexpr std::uint64_t evaluations_per_step(std::uint64_t blocks, bool forward_only) {
    return forward_only ? 2 + 2 * blocks : 2;
  }

  /// Takes `params` as the trajectory's start: copies theta (the reset
  /// point), zeroes the momentum and the history, and allocates the
  /// buffers. Called by train(); meta_step() calls it on first use.
  void begin(const ParameterSet<T>& params) {
    model_.check_matches(params, "MetaTrainer");
    const std::size_t d = params.elements();
    start_.resize(d);
    backup_.resize(d);
    velocity_.assign(d, T(0));
    copy_to_flat(params, std::span<T>(start_));
    period_step_ = 0;
    begun_ = true;
    reset_history();
  }

  /// Puts theta back to the trajectory's start and zeroes the momentum and
  /// the history (train() does this every reset_every epochs).
  void reset(ParameterSet<T>& params) {
    require_begun(params);
    copy_from_flat(std::span<const T>(start_), params);
    std::fill(velocity_.begin(), velocity_.end(), T(0));
    period_step_ = 0;
    reset_history();
  }

  /// One meta-step with the user's gradient (see the class comment). The
  /// loss is called as loss(const ParameterSet<T>&) or loss(); the
  /// gradient as grad(params, out). Throws NonFiniteLoss if a loss value is
  /// not finite (theta restored to its value before the step).
  template <class Loss, class Grad>
  requires detail::LossFor<Loss, ParameterSet<T>> && GradientFor<Grad, T> MetaStepReport
  meta_step(Loss&& loss, Grad&& grad, ParameterSet<T>& params) {
    if (!begun_ || params.elements() != start_.size()) begin(params);
    gradient_.resize(start_.size());
    return step_impl(loss, &grad, params);
  }

  /// One forward-only meta-step (see the class comment).
  template <class Loss>
  requires detail::LossFor<Loss, ParameterSet<T>> MetaStepReport
  meta_step_forward(Loss&& loss, ParameterSet<T>& params) {
    if (!begun_ || params.elements() != start_.size()) begin(params);
    return step_impl(loss, static_cast<NoGradient*>(nullptr), params);
  }

  /// The whole schedule with the user's gradient. `on_step(report)`, if
  /// given, is called after every meta-step (e.g. to draw the next
  /// minibatch).
  template <class Loss, class Grad, class OnStep = NoCallback>
  requires detail::LossFor<Loss, ParameterSet<T>> && GradientFor<Grad, T> MetaTrainResult
  train(Loss&& loss, Grad&& grad, ParameterSet<T>& params, OnStep&& on_step = {}) {
    gradient_.resize(params.elements());
    return train_impl(loss, &grad, params, on_step);
  }

  /// The whole schedule without gradients (meta_step_forward).
  template <class Loss, class OnStep = NoCallback>
  requires detail::LossFor<Loss, ParameterSet<T>> MetaTrainResult
  train_forward(Loss&& loss, ParameterSet<T>& params, OnStep&& on_step = {}) {
    return train_impl(loss, static_cast<NoGradient*>(nullptr), params, on_step);
  }

 private:
  struct NoGradient {
    void operator()(const ParameterSet<T>&, std::span<T>) const {}
  };

  void reset_history() {
    loss_plus_ = 0.0;
    loss_minus_ = 0.0;
    std::fill(previous_.begin(), previous_.end(), 1.0);
  }

  void require_begun(const ParameterSet<T>& params) const {
    detail::require(begun_ && params.elements() == start_.size(), "MetaTrainer::reset", "params",
                    "must be the parameter set given to begin()");
  }

  // Calls f(block, global index, theta element, z) for the elements of the
  // blocks in [first, last).
  template <class F>
  void for_each_noise(ParameterSet<T>& params, std::size_t first, std::size_t last, F&& f) {
    const NoiseKey key{p_.seed, step_, 0};
    auto views = params.views();
    for (std::size_t i = first; i < last; ++i) {
      const SpanView<T>& v = views[i];
      const std::uint64_t end = v.offset + v.size;
      std::uint64_t g = v.offset;
      while (g < end) {
        const std::uint64_t block = g / 4;
        C z[4];
        noise_block<Sampler>(key, block, z);
        const std::uint64_t stop = std::min(end, (block + 1) * 4);
        for (; g < stop; ++g) f(i, g, v.data[g - v.offset], static_cast<double>(z[g % 4]));
      }
    }
  }

  // theta_i = backup_i + a * s_i * z_i on blocks [first, last).
  void displace(ParameterSet<T>& params, std::size_t first, std::size_t last, double a) {
    for_each_noise(params, first, last, [&](std::size_t i, std::uint64_t g, T& x, double z) {
      x = static_cast<T>(static_cast<double>(backup_[g]) + a * scales_[i] * z);
    });
  }

  template <class Loss>
  double evaluate(Loss& loss, ParameterSet<T>& params, const char* where) {
    double value = 0.0;
    try {
      value = detail::call_loss(loss, params);
    } catch (...) {
      copy_from_flat(std::span<const T>(backup_), params);
      throw;
    }
    ++forward_passes_;
    if (!std::isfinite(value)) {
      copy_from_flat(std::span<const T>(backup_), params);
      throw NonFiniteLoss("zoopt: MetaTrainer: loss returned " + std::to_string(value) +
                          " at meta-step " + std::to_string(step_) + " (" + where +
                          "); parameters restored to their values before the step");
    }
    return value;
  }

  template <class Grad>
  void gradient(Grad& grad, ParameterSet<T>& params) {
    try {
      std::invoke(grad, std::as_const(params), std::span<T>(gradient_));
    } catch (...) {
      copy_from_flat(std::span<const T>(backup_), params);
      throw;
    }
    ++grad_evals_;
  }

  template <class Loss, class Grad>
  MetaStepReport step_impl(Loss& loss, Grad* grad, ParameterSet<T>& params) {
    constexpr bool forward_only = std::is_same_v<std::remove_cv_t<Grad>, NoGradient>;
    model_.check_matches(params, "MetaTrainer::meta_step");
    const std::size_t nb = model_.size();
    auto views = params.views();
    const std::span<const SpanView<T>> cviews(views.data(), views.size());

    // 1. Scales and normaliser from the current history.
    const double c =
        model_.scales(cviews, loss_plus_, loss_minus_, std::span<const double>(previous_),
                      std::span<double>(scales_), p_.normalise, std::span<PertNN::Cache>(caches_));
    copy_to_flat(params, std::span<T>(backup_));

    // 2. L+- at theta +- eps c s.z.
    displace(params, 0, nb, p_.eps * c);
    const double lp = evaluate(loss, params, "+eps");
    displace(params, 0, nb, -p_.eps * c);
    const double lm = evaluate(loss, params, "-eps");
    const double g = (lp - lm) / (2.0 * p_.eps);

    // 3. Virtual step theta' = theta - lr_meta c g s.z.
    const double a = -p_.lr_meta * c * g;
    displace(params, 0, nb, a);

    // 4. <grad_i L(theta'), z_i> per block.
    if constexpr (forward_only) {
      for (std::size_t i = 0; i < nb; ++i) {
        probe(params, i, a, p_.probe_eps);
        const double la = evaluate(loss, params, "block probe +");
        probe(params, i, a, -p_.probe_eps);
        const double lb = evaluate(loss, params, "block probe -");
        displace(params, i, i + 1, a);
        dots_[i] = (la - lb) / (2.0 * p_.probe_eps);
      }
    } else {
      gradient(*grad, params);
      std::fill(dots_.begin(), dots_.end(), 0.0);
      for_each_noise(params, 0, nb, [&](std::size_t i, std::uint64_t gi, T&, double z) {
        dots_[i] += static_cast<double>(gradient_[gi]) * z;
      });
    }
    // dM/ds_i, backpropagated into each network; one SGD step per network.
    for (std::size_t i = 0; i < nb; ++i) {
      double ds = -p_.lr_meta * c * g * dots_[i];
      if (p_.max_scale_gradient > 0.0) {
        ds = std::clamp(ds, -p_.max_scale_gradient, p_.max_scale_gradient);
      }
      dscale_[i] = ds;
      PertNN& net = model_.block(i).net;
      grads_[i].set_zero();
      net.backward(caches_[i], ds, grads_[i]);
      net.sgd_step(grads_[i], p_.lr_mlp);
    }

    // 5. History, then the trajectory step from theta.
    loss_plus_ = lp;
    loss_minus_ = lm;
    std::copy(scales_.begin(), scales_.end(), previous_.begin());
    const double period = static_cast<double>(p_.reset_every * p_.steps_per_epoch);
    const double lr =
        p_.lr_trajectory * std::max(0.0, 1.0 - static_cast<double>(period_step_) / period);
    const double mu = p_.momentum;
    if constexpr (forward_only) {
      const double coef = g * c;
      for_each_noise(params, 0, nb, [&](std::size_t i, std::uint64_t gi, T& x, double z) {
        const double v = mu * static_cast<double>(velocity_[gi]) + coef * scales_[i] * z;
        velocity_[gi] = static_cast<T>(v);
        x = static_cast<T>(static_cast<double>(backup_[gi]) - lr * v);
      });
    } else {
      copy_from_flat(std::span<const T>(backup_), params);
      gradient(*grad, params);
      for (const SpanView<T>& view : views) {
        for (std::size_t k = 0; k < view.size; ++k) {
          const std::size_t gi = view.offset + k;
          const double v =
              mu * static_cast<double>(velocity_[gi]) + static_cast<double>(gradient_[gi]);
          velocity_[gi] = static_cast<T>(v);
          view.data[k] = static_cast<T>(static_cast<double>(backup_[gi]) - lr * v);
        }
      }
    }
    MetaStepReport report{step_, lp, lm, g, c, lr};
    ++step_;
    ++period_step_;
    return report;
  }

  // Block i at theta'_i + h z_i (theta'_i = backup_i + a s_i z_i); the other
  // blocks stay at theta'.
  void probe(ParameterSet<T>& params, std::size_t i, double a, double h) {
    for_each_noise(params, i, i + 1, [&](std::size_t b, std::uint64_t g, T& x, double z) {
      const double virt =
          static_cast<double>(static_cast<T>(static_cast<double>(backup_[g]) + a * scales_[b] * z));
      x = static_cast<T>(virt + h * z);
    });
  }

  template <class Loss, class Grad, class OnStep>
  MetaTrainResult train_impl(Loss& loss, Grad* grad, ParameterSet<T>& params, OnStep& on_step) {
    begin(params);
    MetaTrainResult r;
    const std::uint64_t f0 = forward_passes_;
    const std::uint64_t g0 = grad_evals_;
    const std::uint64_t period = p_.reset_every * p_.steps_per_epoch;
    const std::uint64_t total = p_.epochs * p_.steps_per_epoch;
    try {
      for (std::uint64_t k = 0; k < total; ++k) {
        if (k > 0 && k % period == 0) reset(params);
        MetaStepReport rep;
        if constexpr (std::is_same_v<std::remove_cv_t<Grad>, NoGradient>) {
          rep = meta_step_forward(loss, params);
        } else {
          rep = meta_step(loss, *grad, params);
        }
        const double mean = 0.5 * (rep.loss_plus + rep.loss_minus);
        if (k == 0) r.first_loss = mean;
        r.last_loss = mean;
        r.steps = k + 1;
        std::invoke(on_step, std::as_const(rep));
      }
    } catch (...) {
      copy_from_flat(std::span<const T>(start_), params);
      throw;
    }
    copy_from_flat(std::span<const T>(start_), params);
    r.forward_passes = forward_passes_ - f0;
    r.gradient_evaluations = grad_evals_ - g0;
    return r;
  }

  Params p_;
  PerturbationModel model_;
  std::vector<double> scales_;
  std::vector<double> previous_;
  std::vector<double> dscale_;
  std::vector<double> dots_;
  std::vector<PertNN::Cache> caches_;
  std::vector<PertNN> grads_;
  std::vector<T> start_;
  std::vector<T> backup_;
  std::vector<T> velocity_;
  std::vector<T> gradient_;
  double loss_plus_ = 0.0;
  double loss_minus_ = 0.0;
  std::uint64_t step_ = 0;
  std::uint64_t period_step_ = 0;
  std::uint64_t forward_passes_ = 0;
  std::uint64_t grad_evals_ = 0;
  bool begun_ = false;
};

}  // namespace zoopt
