// ZO Fine-tuner (deployment): MeZO with learned per-block perturbation scales
// from frozen per-block networks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/estimator/difference.hpp"
#include "zoopt/learned/perturbation_model.hpp"
#include "zoopt/optimizer/zo_optimizer.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/schedule/lr_schedule.hpp"

namespace zoopt {

/// ZO Fine-tuner with frozen networks. Blocks are the spans of the
/// parameters (one span = one block). Per step t:
///   s_t^(i) = PertNN_i([mean(theta_i), var(theta_i), L+_{t-1}, L-_{t-1},
///             s_{t-1}^(i)])                      (s = 1, L+- = 0 at start)
///   c_t     = sqrt( sum_i d_i / sum_i d_i (s_t^(i))^2 )  (1 if !normalise)
///   v_i     = c_t s_t^(i) z_i,  z ~ N(0, I) regenerated from (seed, step, k)
///   L+- = L(theta +- eps v);  g = (L+ - L-) / (2 eps)
///   theta_i <- theta_i - lr (g c_t s_t^(i) z_i + weight_decay theta_i)
/// With n > 1 directions every direction uses the same s_t, c_t and the
/// update averages g_k v_k; the next step's L+- features are the means over
/// the directions. With a model whose networks all output 1
/// (PerturbationModel::unit) every scale is exactly 1 and the optimizer is
/// MeZO bit for bit.
///
/// Memory: the parameters, MeZO's O(n) scratch, and per block one view, s_t
/// and s_{t-1} (reserved at construction: a step allocates nothing) plus two
/// losses; the networks themselves are 449 doubles per block.
/// Cost per step: MeZO's 2n loss evaluations and 2n + 1 passes over the
/// parameters, plus one extra read of the parameters for the block
/// statistics (mean, variance) and one small network forward per block
/// (about 1.4k flops). The statistics are read from host memory
/// (CpuBackend).
///
/// Blocks are matched to spans by position and element count at every step
/// (std::invalid_argument naming the block, parameters untouched); names are
/// checked by PerturbationModel::load(path, params), check_matches() and the
/// constructor that takes the parameter set.
template <class T, class Sampler = GaussianSampler, class Backend = CpuBackend<T, Sampler>>
class ZOFineTuner : public ZerothOrderOptimizer<ZOFineTuner<T, Sampler, Backend>, T, Sampler,
                                                CentralDifference, Backend> {
  using Base = ZerothOrderOptimizer<ZOFineTuner<T, Sampler, Backend>, T, Sampler, CentralDifference,
                                    Backend>;
  friend Base;

 public:
  /// The name logs and checkpoints record (optimizer_identity).
  static constexpr const char* name = "zo-finetuner";

  /// Settings; lr and eps default to the ZO Fine-tuner paper's fine-tuning
  /// values (small problems want a much larger lr).
  struct Params {
    double lr = 1e-7;              ///< learning rate eta (>= 0)
    double eps = 1e-3;             ///< perturbation scale (> 0)
    std::uint32_t directions = 1;  ///< directions n per step (>= 1; the paper uses 1)
    std::uint64_t seed = 0;        ///< noise seed; same seed, same trajectory
    double weight_decay = 0.0;     ///< lambda (>= 0), on spans that opt in
    bool normalise = true;         ///< scale by c_t so that E||v||^2 = sum_i d_i
    LrSchedule schedule{};         ///< step t uses lr * schedule(t) (default constant)

    /// Throws std::invalid_argument naming the first invalid field.
    void check() const {
      detail::check_step_params("ZOFineTuner::Params", lr, eps, directions, weight_decay);
      schedule.check("ZOFineTuner::Params");
    }
  };

  /// Throws std::invalid_argument for invalid params or an empty model.
  ZOFineTuner(Params params, PerturbationModel model, Backend backend = Backend{})
      : Base((params.check(), check_model(model), params.directions), std::move(backend)),
        p_(std::move(params)),
        model_(std::move(model)) {
    const std::size_t b = model_.size();
    views_.resize(b);
    scales_.assign(b, 1.0);
    previous_.assign(b, 1.0);
  }

  /// As above, and checks that the model's blocks match `params` (name,
  /// element count, order); throws std::invalid_argument naming the block.
  ZOFineTuner(Params params, PerturbationModel model, const ParameterSet<T>& parameters,
              Backend backend = Backend{})
      : ZOFineTuner(std::move(params), std::move(model), std::move(backend)) {
    model_.check_matches(parameters, "ZOFineTuner");
  }

  [[nodiscard]] const Params& params() const noexcept { return p_; }
  [[nodiscard]] const PerturbationModel& model() const noexcept { return model_; }

  /// s_t^(i) of the last step prepared (1 before the first step).
  [[nodiscard]] std::span<const double> scales() const noexcept { return scales_; }
  /// c_t of the last step prepared (1 before the first step).
  [[nodiscard]] double normaliser() const noexcept { return c_; }

  /// Forgets the loss and scale history: the next step sees L+- = 0 and
  /// s_{t-1} = 1, as at the start (a new task). The step counter is kept.
  void reset_history() {
    prepared_ = false;
    loss_plus_ = 0.0;
    loss_minus_ = 0.0;
    std::fill(previous_.begin(), previous_.end(), 1.0);
  }

  /// Resumable state beyond the counters (OptimizerState::extra):
  /// [L+_{t-1}, L-_{t-1}, s_{t-1}^(0), ..., s_{t-1}^(B-1)], B + 2 values.
  void save_extra_state(std::vector<double>& out) const {
    const_cast<ZOFineTuner*>(this)->sync();  // idempotent: folds a finished step into the history
    out.clear();
    out.push_back(loss_plus_);
    out.push_back(loss_minus_);
    out.insert(out.end(), previous_.begin(), previous_.end());
  }
  /// Restores save_extra_state(); throws std::invalid_argument naming
  /// `extra` if the size does not match this model's block count.
  void load_extra_state(std::span<const double> in) {
    detail::require(in.size() == previous_.size() + 2, "ZOFineTuner::load_extra_state", "extra",
                    "must hold L+, L- and one previous scale per block (" +
                        std::to_string(previous_.size() + 2) + " values), got " +
                        std::to_string(in.size()));
    loss_plus_ = in[0];
    loss_minus_ = in[1];
    std::copy(in.begin() + 2, in.end(), previous_.begin());
    prepared_ = false;
  }

  /// The L+ and L- the next step's networks will see.
  [[nodiscard]] std::pair<double, double> previous_losses() {
    sync();
    return {loss_plus_, loss_minus_};
  }

 private:
  static int check_model(const PerturbationModel& model) {
    detail::require(!model.empty(), "ZOFineTuner", "model", "must hold at least one block");
    return 0;
  }

  // Moves the last step's scales and losses into the history if that step
  // completed (a failed step leaves the history as it was).
  void sync() {
    if (!prepared_) return;
    prepared_ = false;
    if (this->step_count() != prepared_step_ + 1) return;
    const auto losses = this->engine().losses();
    const std::size_t n = losses.size() / 2;
    if (n == 0) return;
    double lp = 0.0;
    double lm = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
      lp += losses[2 * k];
      lm += losses[2 * k + 1];
    }
    loss_plus_ = lp / static_cast<double>(n);
    loss_minus_ = lm / static_cast<double>(n);
    std::copy(scales_.begin(), scales_.end(), previous_.begin());
  }

  std::span<const SpanView<T>> prepare(std::span<const SpanView<T>> views) {
    sync();
    model_.check_matches(views, "ZOFineTuner::step");
    c_ = model_.scales(views, loss_plus_, loss_minus_, std::span<const double>(previous_),
                       std::span<double>(scales_), p_.normalise);
    for (std::size_t i = 0; i < views.size(); ++i) {
      views_[i] = views[i];
      views_[i].scale = views[i].scale * c_ * scales_[i];
    }
    prepared_ = true;
    prepared_step_ = this->step_count();
    return views_;
  }

  [[nodiscard]] StepSettings settings(std::uint64_t step) const {
    return detail::step_settings(p_, step);
  }
  [[nodiscard]] DirectionDraw draw(std::uint64_t, std::uint32_t) const {
    return DirectionDraw{p_.eps, 1.0};
  }

  Params p_;
  PerturbationModel model_;
  std::vector<SpanView<T>> views_;
  std::vector<double> scales_;
  std::vector<double> previous_;
  double loss_plus_ = 0.0;
  double loss_minus_ = 0.0;
  double c_ = 1.0;
  bool prepared_ = false;
  std::uint64_t prepared_step_ = 0;
};

}  // namespace zoopt
