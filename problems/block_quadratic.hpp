// A seeded family of block-diagonal quadratic problems for the ZO Fine-tuner
// examples and tests: one "base model" (the starting weights theta0, the
// block layout and the per-block curvature scales) and many "tasks"
// (members) that differ in their optima and jittered curvatures.
//
//   L(theta) = (1/200) sum_i h_i || theta_i - theta*_i ||^2
//
// (the factor keeps L of order 1 at the start, like a cross-entropy).
//
// Block i has d_i elements, curvature h_i = H_i exp(0.25 n), n ~ N(0, 1)
// (H spans 100x across blocks), and optimum theta*_i = theta0_i + o_i + 0.5
// O_i m with o_i = O_i u, u ~ U[-1, 1] shared by the block, m ~ N(0, I) per
// element (O_i: the block's offset scale, different per block).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "zoopt/learned/learned.hpp"
#include "zoopt/optimizer/mezo.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt_examples {

/// The block layout shared by every member of the family.
struct BlockLayout {
  std::vector<std::string> names{"embed", "attn", "mlp", "head"};
  std::vector<std::size_t> sizes{24, 40, 16, 32};
  std::vector<double> curvature{100.0, 10.0, 1.0, 30.0};  ///< H_i (100x spread)
  std::vector<double> offset{0.02, 0.05, 2.0, 0.05};      ///< O_i
  [[nodiscard]] std::size_t elements() const {
    std::size_t d = 0;
    for (const std::size_t s : sizes) d += s;
    return d;
  }
};

/// Portable N(0,1) and U[-1,1] from a 64-bit engine (std::normal_distribution
/// differs between standard libraries; this does not).
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : gen_(seed) {}
  double uniform() {  // [-1, 1)
    return 2.0 * static_cast<double>(gen_() >> 11) * 0x1p-53 - 1.0;
  }
  double normal() {
    const double u1 = (static_cast<double>(gen_() >> 11) + 1.0) * 0x1p-53;
    const double u2 = static_cast<double>(gen_() >> 11) * 0x1p-53;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::mt19937_64 gen_;
};

/// The base model's starting weights theta0 (drawn once from `seed`).
inline std::vector<double> base_weights(const BlockLayout& layout, std::uint64_t seed) {
  Draw r(seed);
  std::vector<double> w;
  w.reserve(layout.elements());
  for (std::size_t i = 0; i < layout.sizes.size(); ++i) {
    const double centre = 0.2 * r.uniform();
    for (std::size_t k = 0; k < layout.sizes[i]; ++k) w.push_back(centre + 0.05 * r.normal());
  }
  return w;
}

/// One task of the family.
struct BlockQuadratic {
  std::vector<double> h;       ///< curvature per block
  std::vector<double> target;  ///< theta*, element by element
  std::vector<std::size_t> block_of;
  static constexpr double scale = 1.0 / 200.0;  ///< L = scale sum_i h_i ||.||^2

  /// Member `seed` of the family around the base weights `theta0`.
  BlockQuadratic(const BlockLayout& layout, std::span<const double> theta0, std::uint64_t seed) {
    Draw r(seed * 0x9E3779B97F4A7C15ull + 12345u);
    target.reserve(theta0.size());
    std::size_t g = 0;
    for (std::size_t i = 0; i < layout.sizes.size(); ++i) {
      h.push_back(layout.curvature[i] * std::exp(0.25 * r.normal()));
      const double o = layout.offset[i] * r.uniform();
      for (std::size_t k = 0; k < layout.sizes[i]; ++k, ++g) {
        target.push_back(theta0[g] + o + 0.5 * layout.offset[i] * r.normal());
        block_of.push_back(i);
      }
    }
  }

  /// L over a parameter set laid out as the family's blocks.
  template <class T>
  double loss(const zoopt::ParameterSet<T>& p) const {
    double sum = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      const auto s = p.span(i);
      const std::size_t off = p.views()[i].offset;
      double b = 0.0;
      for (std::size_t k = 0; k < s.size(); ++k) {
        const double e = static_cast<double>(s[k]) - target[off + k];
        b += e * e;
      }
      sum += scale * h[i] * b;
    }
    return sum;
  }

  /// dL/dtheta into `out` (global index order).
  template <class T>
  void gradient(const zoopt::ParameterSet<T>& p, std::span<T> out) const {
    for (std::size_t i = 0; i < p.size(); ++i) {
      const auto s = p.span(i);
      const std::size_t off = p.views()[i].offset;
      for (std::size_t k = 0; k < s.size(); ++k) {
        out[off + k] =
            static_cast<T>(2.0 * scale * h[i] * (static_cast<double>(s[k]) - target[off + k]));
      }
    }
  }
};

/// Owns a copy of the weights and a ParameterSet over them.
template <class T>
struct Model {
  std::vector<T> weights;
  zoopt::ParameterSet<T> params;

  Model(const BlockLayout& layout, std::span<const double> theta0)
      : weights(theta0.begin(), theta0.end()) {
    std::size_t at = 0;
    for (std::size_t i = 0; i < layout.sizes.size(); ++i) {
      params.add(layout.names[i], std::span<T>(weights.data() + at, layout.sizes[i]));
      at += layout.sizes[i];
    }
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
};

/// Meta-trainer settings used by the demo and the tests for this family:
/// 6 epochs of 100 meta-steps, reset every 2, on each training member.
/// The gradient and forward-only variants differ in lr_meta, lr_mlp and the
/// trajectory lr (the forward-only trajectory is zeroth-order).
template <class T>
typename zoopt::MetaTrainer<T>::Params meta_params(bool forward_only) {
  typename zoopt::MetaTrainer<T>::Params p;
  p.epochs = 6;
  p.reset_every = 2;
  p.steps_per_epoch = 100;
  p.seed = 0;
  p.lr_meta = forward_only ? 3e-2 : 1e-2;
  p.lr_mlp = forward_only ? 100.0 : 300.0;
  p.lr_trajectory = forward_only ? 0.02 : 0.05;
  return p;
}

/// Meta-trains networks on the members `tasks` of the family (one full
/// schedule per member, in order) and returns them.
template <class T>
zoopt::PerturbationModel meta_train(const BlockLayout& layout, std::span<const double> theta0,
                                    std::span<const std::uint64_t> tasks, bool forward_only) {
  Model<T> m(layout, theta0);
  zoopt::MetaTrainer<T> trainer(meta_params<T>(forward_only), m.params);
  for (const std::uint64_t task : tasks) {
    const BlockQuadratic q(layout, theta0, task);
    auto loss = [&](const zoopt::ParameterSet<T>& p) { return q.loss(p); };
    auto grad = [&](const zoopt::ParameterSet<T>& p, std::span<T> out) { q.gradient(p, out); };
    if (forward_only) {
      trainer.train_forward(loss, m.params);
    } else {
      trainer.train(loss, grad, m.params);
    }
  }
  return trainer.model();
}

/// Loss after `steps` steps (2 loss evaluations each) of MeZO (model ==
/// nullptr) or the ZO Fine-tuner from theta0 on member `task`, noise seed
/// `seed`. A run that diverges (non-finite loss) scores +infinity.
template <class T>
double final_loss(const BlockLayout& layout, std::span<const double> theta0, std::uint64_t task,
                  const zoopt::PerturbationModel* model, double lr, std::size_t steps,
                  std::uint64_t seed) {
  const BlockQuadratic q(layout, theta0, task);
  Model<T> m(layout, theta0);
  auto loss = [&](const zoopt::ParameterSet<T>& p) { return q.loss(p); };
  try {
    if (model == nullptr) {
      typename zoopt::MeZO<T>::Params p;
      p.lr = lr;
      p.seed = seed;
      zoopt::MeZO<T> opt(p);
      opt.optimize(loss, m.params, steps);
    } else {
      typename zoopt::ZOFineTuner<T>::Params p;
      p.lr = lr;
      p.seed = seed;
      zoopt::ZOFineTuner<T> opt(p, *model, m.params);
      opt.optimize(loss, m.params, steps);
    }
  } catch (const zoopt::NonFiniteLoss&) {
    return std::numeric_limits<double>::infinity();
  }
  const double v = q.loss(m.params);
  return std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
}

/// The learning-rate grid shared by both methods.
inline std::vector<double> lr_grid() { return {1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2}; }

/// The lr of the grid with the lowest mean final loss over members `tasks`.
template <class T>
double best_lr(const BlockLayout& layout, std::span<const double> theta0,
               std::span<const std::uint64_t> tasks, const zoopt::PerturbationModel* model,
               std::size_t steps) {
  double best = lr_grid().front();
  double best_loss = std::numeric_limits<double>::infinity();
  for (const double lr : lr_grid()) {
    double sum = 0.0;
    for (const std::uint64_t t : tasks)
      sum += final_loss<T>(layout, theta0, t, model, lr, steps, t);
    if (sum < best_loss) {
      best_loss = sum;
      best = lr;
    }
  }
  return best;
}

}  // namespace zoopt_examples
