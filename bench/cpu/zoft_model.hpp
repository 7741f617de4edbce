// Meta-training of the ZO Fine-tuner's model for one problem of the
// convergence suite (zoopt::MetaTrainer with the problem's exact gradient).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <zoopt/learned/meta_trainer.hpp>
#include <zoopt/learned/perturbation_model.hpp>
#include <zoopt/params/parameter_set.hpp>

namespace zoft {

/// Seed of every meta-training run: disjoint from the suite's run seeds
/// (1..N for evaluation, 1001.. for tuning).
inline constexpr std::uint64_t kMetaSeed = 77777;

/// Meta-trains a PerturbationModel along a first-order trajectory that
/// starts at x0 (SGD with momentum 0.8, lr 0.5 / L with L = 1 / (base_lr
/// (d + 2)), linearly decaying, reset every 5 epochs; 15 epochs of 100
/// meta-steps, the ZO Fine-tuner paper's schedule). The virtual step uses
/// lr_meta = base_lr, the centre of the suite's lr grid; the networks take
/// SGD steps with lr_mlp = 0.01 on dM/ds clipped to [-1, 1] (the paper's
/// lr_mlp = 0.1 without clipping diverges on these problems, whose losses
/// and gradients are far larger than a language model's). Prints the
/// learned scales at x0 to `log` when it is not null.
/// `smoke` shortens the schedule to 3 epochs of 20 steps.
inline zoopt::PerturbationModel meta_train_for(
    const std::vector<std::pair<std::string, std::size_t>>& blocks, const std::vector<float>& x0,
    const std::function<double(std::span<const float>)>& f,
    const std::function<void(std::span<const float>, std::span<double>)>& grad, double eps,
    double base_lr, bool smoke, std::FILE* log = nullptr) {
  std::vector<float> x = x0;
  zoopt::ParameterSet<float> params;
  std::size_t offset = 0;
  for (const auto& [name, size] : blocks) {
    params.add(name, std::span<float>(x.data() + offset, size));
    offset += size;
  }
  const double d = static_cast<double>(x.size());
  typename zoopt::MetaTrainer<float>::Params mp;
  mp.eps = eps;
  mp.lr_meta = base_lr;
  mp.lr_mlp = 0.01;
  mp.max_scale_gradient = 1.0;
  mp.lr_trajectory = 0.2 * base_lr * (d + 2.0);
  mp.momentum = 0.8;
  mp.epochs = smoke ? 3 : 15;
  mp.reset_every = smoke ? 1 : 5;
  mp.steps_per_epoch = smoke ? 20 : 100;
  mp.seed = kMetaSeed;
  zoopt::MetaTrainer<float> trainer(mp, params);
  std::vector<double> g(x.size());
  const std::span<const float> view(x);
  auto loss = [&] { return f(view); };
  auto gradient = [&](const zoopt::ParameterSet<float>&, std::span<float> out) {
    grad(view, g);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(g[i]);
  };
  const zoopt::MetaTrainResult r = trainer.train(loss, gradient, params);
  if (log != nullptr) {
    std::vector<double> prev(params.size(), 1.0);
    std::vector<double> s(params.size(), 1.0);
    const double f0 = f(view);
    const double c =
        trainer.model().scales(std::span<const zoopt::SpanView<float>>(params.views()), f0, f0,
                               std::span<const double>(prev), std::span<double>(s), true);
    std::fprintf(log,
                 "#   zo-finetuner meta-training: %llu meta-steps, loss %.4g -> %.4g; c*s at x0:",
                 static_cast<unsigned long long>(r.steps), r.first_loss, r.last_loss);
    for (const double v : s) std::fprintf(log, " %.3g", c * v);
    std::fprintf(log, "\n");
  }
  return trainer.model();
}

}  // namespace zoft
