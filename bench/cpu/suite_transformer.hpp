// The convergence suite's transformer problem (built into
// zoopt_convergence_torch when libtorch is found): the patch transformer of
// examples/torch, pre-trained first-order on Fashion-MNIST classes 0-4, then
// a new head for classes 5-9 and every LayerNorm fine-tuned on minibatches,
// as in bench/RESULTS.md §5, at a width that keeps a forward pass near a
// millisecond so that the suite's lr grid and seeds fit in minutes.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <zoopt/random/philox.hpp>

#include "fashion_mnist.hpp"
#include "patch_transformer.hpp"
#include "suite_problems.hpp"

// OpenBLAS (libtorch's BLAS on Debian with libopenblas0-pthread) starts its
// own thread pool, which torch::set_num_threads does not size; a weak
// reference, null when another BLAS is loaded.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace suite {

namespace detail {

/// Images (N, 784) and labels 0..4 of the rows of `s` whose label is in
/// [first, first + 5).
inline std::pair<torch::Tensor, torch::Tensor> five_classes(const fmnist::Split& s, int first) {
  std::vector<std::int64_t> rows;
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < s.count; ++i) {
    if (s.labels[i] >= first && s.labels[i] < first + 5) {
      rows.push_back(static_cast<std::int64_t>(i));
      labels.push_back(s.labels[i] - first);
    }
  }
  const torch::Tensor all = torch::from_blob(const_cast<float*>(s.pixels.data()),
                                             {static_cast<std::int64_t>(s.count), 784});
  return {all.index_select(0, torch::tensor(rows)).clone(), torch::tensor(labels)};
}

/// Row i of the minibatch of step t of a run with seed s: a pure function of
/// (s, t), the same for every evaluation of the step.
inline torch::Tensor batch_rows(std::uint64_t seed, std::uint64_t step, std::int64_t batch,
                                std::int64_t pool) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(batch));
  for (std::int64_t k = 0; k < batch; k += 4) {
    const auto w =
        zoopt::random::philox_block(zoopt::NoiseKey{seed ^ 0x7a45ULL, step, 0},
                                    static_cast<std::uint64_t>(k / 4), zoopt::random::Stream::user);
    for (std::int64_t j = 0; j < 4 && k + j < batch; ++j) {
      rows[static_cast<std::size_t>(k + j)] = static_cast<std::int64_t>(
          (std::uint64_t{w.v[j]} * static_cast<std::uint64_t>(pool)) >> 32);
    }
  }
  return torch::tensor(rows);
}

}  // namespace detail

/// vit-finetune: a 2-layer patch transformer (d = 32, 4 heads, MLP width 64;
/// examples/torch/patch_transformer.hpp) pre-trained with Adam (lr 1e-3,
/// batch 128, 600 steps) on the training images of classes 0-4; then a new
/// head for classes 5-9 (freshly initialised from a fixed seed) and every
/// LayerNorm (485 parameters in 12 blocks) are fine-tuned on minibatches of
/// 64 training images of classes 5-9 drawn from (seed, step); the rest stays
/// pre-trained. f = cross-entropy on the first 1000 test images of classes
/// 5-9. f* = the lowest f of first-order fine-tuning of the same tensors
/// from the same start (Adam lr 1e-2, batch 64, 2000 steps, f checked every
/// 100); tol = 0.5 asks for half of its loss reduction. base_lr = 4e-3, the
/// MeZO lr tuned on the larger model of RESULTS.md §5. One libtorch thread
/// (the suite runs one run at a time). `smoke`: 100 pre-training steps,
/// 200 for f* and runs of at most 100 steps, for CI's check that it runs.
inline Problem vit_finetune(const fmnist::Dataset& data, bool smoke = false) {
  torch::set_num_threads(1);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  constexpr std::int64_t batch = 64;
  constexpr std::int64_t eval_count = 1000;

  struct State {
    vit::PatchTransformer model{nullptr};
    std::vector<torch::Tensor> trained;  // head + LayerNorms, in block order
    torch::Tensor train_x, train_y, eval_x, eval_y;
    torch::Tensor step_x, step_y;
    std::uint64_t batch_seed = ~std::uint64_t{0};
    std::uint64_t batch_step = ~std::uint64_t{0};

    void load(std::span<const float> x) {
      std::size_t at = 0;
      for (torch::Tensor& t : trained) {
        const auto n = static_cast<std::size_t>(t.numel());
        std::memcpy(t.data_ptr<float>(), x.data() + at, n * sizeof(float));
        at += n;
      }
    }
    double forward_loss(const torch::Tensor& images, const torch::Tensor& y) {
      const torch::NoGradGuard no_grad;
      return torch::nn::functional::cross_entropy(model->forward(images), y).item<double>();
    }
    double loss(std::span<const float> x, const torch::Tensor& images, const torch::Tensor& y) {
      load(x);
      return forward_loss(images, y);
    }
    /// Gradient of the evaluation loss with respect to the trained tensors,
    /// in block order (autograd; the ZO Fine-tuner's meta-training uses it).
    void eval_gradient(std::span<const float> x, std::span<double> g) {
      load(x);
      for (torch::Tensor& t : trained) t.set_requires_grad(true);
      const torch::AutoGradMode grad_on(true);
      const std::vector<torch::Tensor> grads = torch::autograd::grad(
          {torch::nn::functional::cross_entropy(model->forward(eval_x), eval_y)}, trained);
      std::size_t at = 0;
      for (const torch::Tensor& gt : grads) {
        const torch::Tensor c = gt.contiguous();
        const float* v = c.data_ptr<float>();
        for (std::int64_t i = 0; i < c.numel(); ++i) g[at++] = v[i];
      }
      for (torch::Tensor& t : trained) t.set_requires_grad(false);
    }
    void draw(std::uint64_t seed, std::uint64_t step) {
      if (seed == batch_seed && step == batch_step) return;
      batch_seed = seed;
      batch_step = step;
      const torch::Tensor rows = detail::batch_rows(seed, step, batch, train_x.size(0));
      step_x = train_x.index_select(0, rows);
      step_y = train_y.index_select(0, rows);
    }
  };
  auto st = std::make_shared<State>();

  // Pre-training on classes 0-4 (first-order; not part of any count).
  torch::manual_seed(0);
  st->model = vit::PatchTransformer(vit::Config{.d_model = 32, .heads = 4, .layers = 2});
  {
    const auto [x, y] = detail::five_classes(data.train, 0);
    torch::optim::Adam adam(st->model->parameters(), torch::optim::AdamOptions(1e-3));
    for (std::uint64_t t = 0; t < (smoke ? 100 : 600); ++t) {
      const torch::Tensor rows = detail::batch_rows(17, t, 128, x.size(0));
      adam.zero_grad();
      torch::nn::functional::cross_entropy(st->model->forward(x.index_select(0, rows)),
                                           y.index_select(0, rows))
          .backward();
      adam.step();
    }
  }
  // The new task: a fresh head for classes 5-9.
  torch::manual_seed(1);
  st->model->head = st->model->replace_module("head", torch::nn::Linear(32, 5));
  std::tie(st->train_x, st->train_y) = detail::five_classes(data.train, 5);
  std::tie(st->eval_x, st->eval_y) = detail::five_classes(data.test, 5);
  st->eval_x = st->eval_x.narrow(0, 0, eval_count).contiguous();
  st->eval_y = st->eval_y.narrow(0, 0, eval_count).contiguous();

  Problem p;
  p.name = "vit-finetune";
  p.description =
      "patch transformer d=32, 2 layers, pre-trained on classes 0-4; new head + LayerNorms (485 "
      "parameters) fine-tuned on classes 5-9, minibatches of 64, f = cross-entropy on 1000 test "
      "images, eps=1e-3";
  for (const auto& item : st->model->named_parameters()) {
    const std::string& name = item.key();
    if (name.rfind("head.", 0) != 0 && name.find("norm") == std::string::npos) continue;
    torch::Tensor t = item.value();
    st->trained.push_back(t);
    p.blocks.emplace_back(name, static_cast<std::size_t>(t.numel()));
    p.shapes.push_back(t.dim() == 2 ? zoopt::MatrixShape{static_cast<std::size_t>(t.size(0)),
                                                         static_cast<std::size_t>(t.size(1))}
                                    : zoopt::MatrixShape{});
    const float* v = t.data_ptr<float>();
    p.x0.insert(p.x0.end(), v, v + t.numel());
  }
  p.f = [st](std::span<const float> x) { return st->loss(x, st->eval_x, st->eval_y); };
  p.step_f = [st](std::span<const float> x, std::uint64_t seed, std::uint64_t step) {
    st->draw(seed, step);
    return st->loss(x, st->step_x, st->step_y);
  };
  p.grad = [st](std::span<const float> x, std::span<double> g) { st->eval_gradient(x, g); };
  // f*: first-order fine-tuning of the same tensors from the same start
  // (the other tensors stay frozen); then the start is put back.
  {
    for (torch::Tensor& t : st->model->parameters()) t.set_requires_grad(false);
    for (torch::Tensor& t : st->trained) t.set_requires_grad(true);
    torch::optim::Adam adam(st->trained, torch::optim::AdamOptions(1e-2));
    double best = p.f(p.x0);
    for (std::uint64_t t = 1; t <= (smoke ? 200 : 2000); ++t) {
      st->draw(0xf0f0, t);
      const torch::AutoGradMode grad_on(true);
      adam.zero_grad();
      torch::nn::functional::cross_entropy(st->model->forward(st->step_x), st->step_y).backward();
      adam.step();
      if (t % 100 == 0) best = std::min(best, st->forward_loss(st->eval_x, st->eval_y));
    }
    for (torch::Tensor& t : st->trained) t.set_requires_grad(false);
    st->load(p.x0);
    p.f_star = best;
  }
  p.tol = 0.5;
  p.eps = 1e-3;
  p.base_lr = 4e-3;
  p.max_steps = smoke ? 100 : 8000;
  p.check_every = 50;
  return p;
}

}  // namespace suite
