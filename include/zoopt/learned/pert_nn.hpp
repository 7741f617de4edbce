// The ZO Fine-tuner's per-block network "PertNN" and the block statistics it
// reads: Linear(5 -> 64) -> tanh -> Linear(64 -> 1) -> |.|, 449 weights.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/random/philox.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Mean and Bessel-corrected variance of one block (one span).
struct BlockStats {
  double mean = 0.0;
  double variance = 0.0;  ///< sum (x - mean)^2 / (n - 1); 0 for a one-element block
};

/// One read of `x`, accumulated in double around the first element (a shift
/// that keeps the sum of squares well conditioned). Cost: one pass, O(1)
/// memory.
template <class T>
BlockStats block_stats(std::span<const T> x) {
  BlockStats s;
  const std::size_t n = x.size();
  if (n == 0) return s;
  const auto k = static_cast<double>(static_cast<compute_t<T>>(x[0]));
  double sum = 0.0;
  double sum2 = 0.0;
  for (const T v : x) {
    const double d = static_cast<double>(static_cast<compute_t<T>>(v)) - k;
    sum += d;
    sum2 += d * d;
  }
  const double nd = static_cast<double>(n);
  s.mean = k + sum / nd;
  if (n > 1) s.variance = std::max(0.0, (sum2 - sum * sum / nd) / (nd - 1.0));
  return s;
}

/// The five inputs of a block's network at step t:
/// [mean(theta_i), var(theta_i), L+_{t-1}, L-_{t-1}, s_{t-1}^(i)].
/// Before the first step: L+- = 0 and s = 1.
using PertFeatures = Eigen::Matrix<double, 5, 1>;

/// Builds the feature vector of one block.
inline PertFeatures pert_features(const BlockStats& stats, double loss_plus, double loss_minus,
                                  double previous_scale) {
  PertFeatures x;
  x << stats.mean, stats.variance, loss_plus, loss_minus, previous_scale;
  return x;
}

/// One block's network: s = | w2 . tanh(W1 x + b1) + b2 |.
/// Weights are double and fixed-size (449 of them, 3.5 KiB); a forward pass
/// costs about 1.4k flops, a backward pass about 1k.
class PertNN {
 public:
  static constexpr int inputs = 5;
  static constexpr int hidden = 64;
  /// Number of weights: 64*5 + 64 + 64 + 1.
  static constexpr std::size_t parameter_count = std::size_t{hidden} * inputs + hidden + hidden + 1;

  using Hidden = Eigen::Matrix<double, hidden, 1>;

  Eigen::Matrix<double, hidden, inputs> w1 = Eigen::Matrix<double, hidden, inputs>::Zero();
  Hidden b1 = Hidden::Zero();
  Eigen::Matrix<double, 1, hidden> w2 = Eigen::Matrix<double, 1, hidden>::Zero();
  double b2 = 0.0;

  /// Intermediate values of a forward pass, kept for backward().
  struct Cache {
    PertFeatures x = PertFeatures::Zero();
    Hidden h = Hidden::Zero();  ///< tanh(W1 x + b1)
    double pre = 0.0;           ///< w2 . h + b2 (the output is |pre|)
  };

  /// A network whose output is exactly 1 for every input: W1 and b1 drawn
  /// uniformly from +-1/sqrt(5) and +-1/8 (the usual fan-in bounds) from
  /// `seed` and `stream_id`, w2 = 0, b2 = 1. With every block's network
  /// built this way the ZO Fine-tuner is MeZO; it is also the starting
  /// point of meta-training (the hidden layer already carries signal, so
  /// the first SGD step on w2 is informative).
  static PertNN unit(std::uint64_t seed = 0, std::uint32_t stream_id = 0) {
    PertNN n;
    const double bound1 = 1.0 / std::sqrt(static_cast<double>(inputs));
    const double boundb = 1.0 / std::sqrt(static_cast<double>(hidden));
    std::uint64_t counter = 0;
    std::array<double, 2> u{};
    int have = 0;
    auto uniform = [&]() {
      if (have == 0) {
        const auto r =
            random::philox_block(NoiseKey{seed, 0, stream_id}, counter++, random::Stream::user);
        u[0] = random::uniform01(r.v[0], r.v[1]);
        u[1] = random::uniform01(r.v[2], r.v[3]);
        have = 2;
      }
      return u[static_cast<std::size_t>(--have)];
    };
    for (int i = 0; i < hidden; ++i) {
      for (int j = 0; j < inputs; ++j) n.w1(i, j) = bound1 * (2.0 * uniform() - 1.0);
    }
    for (int i = 0; i < hidden; ++i) n.b1(i) = boundb * (2.0 * uniform() - 1.0);
    n.w2.setZero();
    n.b2 = 1.0;
    return n;
  }

  /// s = |w2 . tanh(W1 x + b1) + b2|.
  [[nodiscard]] double forward(const PertFeatures& x) const {
    const Hidden h = (w1 * x + b1).array().tanh().matrix();
    return std::abs(w2.dot(h.transpose()) + b2);
  }

  /// As forward(x), keeping what backward() needs in `cache`.
  double forward(const PertFeatures& x, Cache& cache) const {
    cache.x = x;
    cache.h = (w1 * x + b1).array().tanh().matrix();
    cache.pre = w2.dot(cache.h.transpose()) + b2;
    return std::abs(cache.pre);
  }

  /// Backward pass of the forward() that filled `cache`: adds
  /// d(objective)/d(weight) to `grad` for d(objective)/ds = `ds`.
  /// d|p|/dp is taken as +1 at p >= 0 and -1 below (the subgradient +1 at
  /// p = 0).
  void backward(const Cache& cache, double ds, PertNN& grad) const {
    const double dpre = cache.pre >= 0.0 ? ds : -ds;
    grad.b2 += dpre;
    grad.w2 += dpre * cache.h.transpose();
    // d tanh(a)/da = 1 - tanh(a)^2
    const Hidden da =
        (dpre * w2.transpose()).cwiseProduct((1.0 - cache.h.array().square()).matrix());
    grad.b1 += da;
    grad.w1 += da * cache.x.transpose();
  }

  /// this -= lr * grad.
  void sgd_step(const PertNN& grad, double lr) {
    w1 -= lr * grad.w1;
    b1 -= lr * grad.b1;
    w2 -= lr * grad.w2;
    b2 -= lr * grad.b2;
  }

  void set_zero() {
    w1.setZero();
    b1.setZero();
    w2.setZero();
    b2 = 0.0;
  }

  /// All weights in the file order: W1 row-major (64 x 5), b1, w2, b2.
  void write_to(std::span<double, parameter_count> out) const {
    std::size_t k = 0;
    for (int i = 0; i < hidden; ++i) {
      for (int j = 0; j < inputs; ++j) out[k++] = w1(i, j);
    }
    for (int i = 0; i < hidden; ++i) out[k++] = b1(i);
    for (int i = 0; i < hidden; ++i) out[k++] = w2(i);
    out[k] = b2;
  }

  /// Inverse of write_to().
  void read_from(std::span<const double, parameter_count> in) {
    std::size_t k = 0;
    for (int i = 0; i < hidden; ++i) {
      for (int j = 0; j < inputs; ++j) w1(i, j) = in[k++];
    }
    for (int i = 0; i < hidden; ++i) b1(i) = in[k++];
    for (int i = 0; i < hidden; ++i) w2(i) = in[k++];
    b2 = in[k];
  }

  /// True if every weight is finite.
  [[nodiscard]] bool finite() const {
    return w1.allFinite() && b1.allFinite() && w2.allFinite() && std::isfinite(b2);
  }

  EIGEN_MAKE_ALIGNED_OPERATOR_NEW
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
