// A small MLP (784 -> hidden -> 10, ReLU, softmax cross-entropy) on
// Fashion-MNIST, shared by the demo and the convergence suite: forward pass
// over a minibatch, hand-written backprop for the first-order pre-training
// and for the ZO Fine-tuner's meta-training.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <zoopt/params/parameter_set.hpp>

#include "fashion_mnist.hpp"

namespace fmnist {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXf>;

/// All weights in one contiguous vector, laid out as the spans of the
/// parameter set: W1 (hidden x 784), b1 (hidden), W2 (10 x hidden), b2 (10).
/// The element order is the global index order the optimizers see.
struct Mlp {
  static constexpr std::size_t inputs = 784;
  static constexpr std::size_t classes = 10;
  std::size_t hidden = 32;
  std::vector<float> weights;

  explicit Mlp(std::size_t h = 32) : hidden(h), weights(size(h), 0.0f) {}

  static std::size_t size(std::size_t h) { return h * inputs + h + classes * h + classes; }
  [[nodiscard]] std::size_t w1_at() const { return 0; }
  [[nodiscard]] std::size_t b1_at() const { return hidden * inputs; }
  [[nodiscard]] std::size_t w2_at() const { return b1_at() + hidden; }
  [[nodiscard]] std::size_t b2_at() const { return w2_at() + classes * hidden; }

  /// The parameter set over the four tensors (biases opt out of weight
  /// decay).
  zoopt::ParameterSet<float> parameter_set() {
    zoopt::ParameterSet<float> p;
    float* w = weights.data();
    p.add("fc1.weight", {w + w1_at(), hidden * inputs}, {.shape = {hidden, inputs}});
    p.add("fc1.bias", {w + b1_at(), hidden}, {.weight_decay = false});
    p.add("fc2.weight", {w + w2_at(), classes * hidden}, {.shape = {classes, hidden}});
    p.add("fc2.bias", {w + b2_at(), classes}, {.weight_decay = false});
    return p;
  }

  /// He-uniform initialisation from a seed (a simple 64-bit LCG stream).
  void init(std::uint64_t seed) {
    std::uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    auto uniform = [&] {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<float>((s >> 40) * 0x1p-24) * 2.0f - 1.0f;
    };
    const float a1 = std::sqrt(6.0f / inputs);
    const float a2 = std::sqrt(6.0f / static_cast<float>(hidden));
    for (std::size_t i = 0; i < hidden * inputs; ++i) weights[w1_at() + i] = a1 * uniform();
    for (std::size_t i = 0; i < classes * hidden; ++i) weights[w2_at() + i] = a2 * uniform();
    std::fill(weights.begin() + b1_at(), weights.begin() + w2_at(), 0.0f);
    std::fill(weights.begin() + b2_at(), weights.end(), 0.0f);
  }
};

/// A minibatch: images copied into one contiguous (B x 784) matrix.
struct Batch {
  RowMatrix x;
  std::vector<std::uint8_t> y;

  void gather(const fmnist::Split& split, std::span<const std::uint32_t> rows) {
    x.resize(static_cast<Eigen::Index>(rows.size()), Mlp::inputs);
    y.resize(rows.size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::copy_n(split.image(rows[r]), Mlp::inputs, x.row(static_cast<Eigen::Index>(r)).data());
      y[r] = split.labels[rows[r]];
    }
  }
};

/// Forward pass, mean cross-entropy; optionally counts correct predictions.
/// The scratch matrices are reused between calls (no allocation once sized).
class Evaluator {
 public:
  double loss(const Mlp& m, const RowMatrix& x, std::span<const std::uint8_t> y,
              std::size_t* correct = nullptr) {
    forward(m, x);
    double total = 0.0;
    std::size_t ok = 0;
    for (Eigen::Index r = 0; r < logits_.rows(); ++r) {
      const auto row = logits_.row(r);
      Eigen::Index arg = 0;
      const float mx = row.maxCoeff(&arg);
      const double lse = mx + std::log((row.array() - mx).exp().sum());
      total += lse - row(y[static_cast<std::size_t>(r)]);
      ok += static_cast<std::size_t>(arg) == y[static_cast<std::size_t>(r)] ? 1 : 0;
    }
    if (correct != nullptr) *correct = ok;
    return total / static_cast<double>(logits_.rows());
  }

  /// Mean cross-entropy and its gradient (same layout as Mlp::weights).
  double loss_and_gradient(const Mlp& m, const RowMatrix& x, std::span<const std::uint8_t> y,
                           std::span<float> grad) {
    forward(m, x);
    const auto b = static_cast<float>(x.rows());
    double total = 0.0;
    dlogits_.resizeLike(logits_);
    for (Eigen::Index r = 0; r < logits_.rows(); ++r) {
      const auto row = logits_.row(r);
      const float mx = row.maxCoeff();
      const Eigen::RowVectorXf e = (row.array() - mx).exp().matrix();
      const float sum = e.sum();
      total += mx + std::log(sum) - row(y[static_cast<std::size_t>(r)]);
      dlogits_.row(r) = e / (sum * b);
      dlogits_(r, y[static_cast<std::size_t>(r)]) -= 1.0f / b;
    }
    const auto h = static_cast<Eigen::Index>(m.hidden);
    const ConstMatrixMap w2(m.weights.data() + m.w2_at(), Mlp::classes, h);
    MatrixMap gw1(grad.data() + m.w1_at(), h, Mlp::inputs);
    VectorMap gb1(grad.data() + m.b1_at(), h);
    MatrixMap gw2(grad.data() + m.w2_at(), Mlp::classes, h);
    VectorMap gb2(grad.data() + m.b2_at(), Mlp::classes);
    gw2.noalias() = dlogits_.transpose() * hidden_;
    gb2 = dlogits_.colwise().sum().transpose();
    dhidden_.noalias() = dlogits_ * w2;
    dhidden_.array() *= (hidden_.array() > 0.0f).cast<float>();
    gw1.noalias() = dhidden_.transpose() * x;
    gb1 = dhidden_.colwise().sum().transpose();
    return total / static_cast<double>(x.rows());
  }

 private:
  void forward(const Mlp& m, const RowMatrix& x) {
    const auto h = static_cast<Eigen::Index>(m.hidden);
    const ConstMatrixMap w1(m.weights.data() + m.w1_at(), h, Mlp::inputs);
    const ConstVectorMap b1(m.weights.data() + m.b1_at(), h);
    const ConstMatrixMap w2(m.weights.data() + m.w2_at(), Mlp::classes, h);
    const ConstVectorMap b2(m.weights.data() + m.b2_at(), Mlp::classes);
    hidden_.noalias() = x * w1.transpose();
    hidden_.rowwise() += b1.transpose();
    hidden_ = hidden_.cwiseMax(0.0f);
    logits_.noalias() = hidden_ * w2.transpose();
    logits_.rowwise() += b2.transpose();
  }

  RowMatrix hidden_;
  RowMatrix logits_;
  RowMatrix dlogits_;
  RowMatrix dhidden_;
};

/// First-order pre-training: plain minibatch SGD (lr, batch) for `epochs`
/// passes over the first `images` training images, shuffled each epoch by a
/// seeded LCG. Deterministic for a seed.
inline Mlp pretrain(const Dataset& data, std::size_t hidden, std::size_t images, std::size_t epochs,
                    double lr, std::size_t batch_size, std::uint64_t seed) {
  Mlp m(hidden);
  m.init(seed);
  Evaluator ev;
  Batch batch;
  std::vector<float> grad(m.weights.size());
  std::vector<std::uint32_t> order(images);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  std::uint64_t s = seed + 12345;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    for (std::size_t i = order.size(); i > 1; --i) {  // Fisher-Yates with an LCG
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(order[i - 1], order[(s >> 33) % i]);
    }
    for (std::size_t b = 0; b + batch_size <= order.size(); b += batch_size) {
      batch.gather(data.train, std::span<const std::uint32_t>(order.data() + b, batch_size));
      ev.loss_and_gradient(m, batch.x, batch.y, grad);
      for (std::size_t i = 0; i < grad.size(); ++i)
        m.weights[i] -= static_cast<float>(lr) * grad[i];
    }
  }
  return m;
}

}  // namespace fmnist
