// The names the README's code fragments use, so that tests/readme can compile
// and run every fragment as written: a small least-squares model with four
// tensors, a few minibatches, a loss over the current batch and its exact
// gradient.
#pragma once

#include <zoopt/kerzoo.hpp>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace zoopt_readme {

struct Batch {
  std::vector<float> target;  ///< what every parameter is pulled towards
};

/// Four minibatches whose targets differ a little.
struct Data {
  [[nodiscard]] std::size_t batches() const { return 4; }
  [[nodiscard]] Batch batch(std::size_t i) const {
    Batch b;
    for (std::size_t k = 0; k < 64; ++k) {
      b.target.push_back(0.1f * static_cast<float>(k % 7) + 0.01f * static_cast<float>(i));
    }
    return b;
  }
};

/// A model whose loss is 0.5 * sum_k (p_k - target_k)^2 over its parameters
/// in order (w1 | b1 | w2 | b2: 64 elements).
struct Model {
  std::vector<float> w1 = std::vector<float>(32, 0.5f);
  std::vector<float> b1 = std::vector<float>(8, 0.0f);
  std::vector<float> w2 = std::vector<float>(16, -0.5f);
  std::vector<float> b2 = std::vector<float>(8, 0.0f);

  [[nodiscard]] double loss(const Batch& batch) const {
    double s = 0.0;
    std::size_t k = 0;
    for (const std::vector<float>* t : {&w1, &b1, &w2, &b2}) {
      for (const float v : *t) {
        const double d = static_cast<double>(v) - batch.target[k++];
        s += 0.5 * d * d;
      }
    }
    return s;
  }
  zoopt::ParameterSet<float> parameters() {
    zoopt::ParameterSet<float> p;
    p.add("fc1.weight", w1).add("fc1.bias", b1, {.weight_decay = false});
    p.add("fc2.weight", w2).add("fc2.bias", b2, {.weight_decay = false});
    return p;
  }
};

}  // namespace zoopt_readme

// Declares model, data, batch, w1, b1, w2, b2, params, loss, grad and steps
// in the function that runs a fragment; the fragment runs in a nested block,
// so it may declare its own variables of the same names.
#define ZOOPT_README_CONTEXT                                                                    \
  [[maybe_unused]] zoopt_readme::Model model;                                                   \
  [[maybe_unused]] zoopt_readme::Data data;                                                     \
  [[maybe_unused]] zoopt_readme::Batch batch = data.batch(0);                                   \
  [[maybe_unused]] std::vector<float>& w1 = model.w1;                                           \
  [[maybe_unused]] std::vector<float>& b1 = model.b1;                                           \
  [[maybe_unused]] std::vector<float>& w2 = model.w2;                                           \
  [[maybe_unused]] std::vector<float>& b2 = model.b2;                                           \
  [[maybe_unused]] zoopt::ParameterSet<float> params = model.parameters();                      \
  [[maybe_unused]] auto loss = [&] { return model.loss(batch); };                               \
  [[maybe_unused]] auto grad = [&](const zoopt::ParameterSet<float>& p, std::span<float> out) { \
    std::size_t k = 0;                                                                          \
    p.for_each([&](const std::string&, std::span<float> x) {                                    \
      for (const float v : x) {                                                                 \
        out[k] = v - batch.target[k];                                                           \
        ++k;                                                                                    \
      }                                                                                         \
    });                                                                                         \
  };                                                                                            \
  [[maybe_unused]] int steps = 50;
