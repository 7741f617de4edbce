// TorchScript: the example transformer exported from Python
// (examples/torch/export_torchscript.py) loads with torch::jit::load, has the
// C++ definition's tensors in the same order, computes the same function, and
// zoopt perturbs and restores its parameters in place bit-exactly.
#include <catch2/catch.hpp>

#include <zoopt/kerzoo.hpp>
#include <zoopt/torch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "patch_transformer.hpp"

namespace {

std::vector<unsigned char> bytes_of(const std::vector<at::Tensor>& tensors) {
  std::vector<unsigned char> out;
  for (const auto& t : tensors) {
    const auto* b = static_cast<const unsigned char*>(t.data_ptr());
    out.insert(out.end(), b, b + t.numel() * t.element_size());
  }
  return out;
}

}  // namespace

TEST_CASE("torchscript: the exported transformer binds and matches the C++ definition",
          "[torch][torchscript]") {
  torch::jit::Module script = torch::jit::load(ZOOPT_TORCHSCRIPT_MODULE);
  vit::PatchTransformer native;
  auto from_script = zoopt::torch::bind<float>(script);
  auto from_native = zoopt::torch::bind<float>(native);
  const auto& a = from_script.parameters();
  const auto& b = from_native.parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(b.name(i));
    REQUIRE(a.name(i) == b.name(i));
    REQUIRE(a.span(i).size() == b.span(i).size());
    REQUIRE(a.options(i).weight_decay == b.options(i).weight_decay);
  }
  REQUIRE(a.elements() == 231365);

  // Same weights (copied by position) -> same logits, up to the order of
  // float sums inside libtorch's kernels (|logits| ~ 1, 1e-4 is ~1000 ulp).
  {
    const torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::memcpy(b.span(i).data(), a.span(i).data(), a.span(i).size_bytes());
    }
    torch::manual_seed(5);
    const torch::Tensor x = torch::rand({8, 784});
    const torch::Tensor ls = script.forward({x}).toTensor();
    const torch::Tensor ln = native->forward(x);
    INFO("max |difference| " << (ls - ln).abs().max().item<double>());
    REQUIRE(torch::allclose(ls, ln, 0.0, 1e-4));
  }
}

TEST_CASE("torchscript: a ZO step perturbs the loaded module in place and restores it exactly",
          "[torch][torchscript]") {
  torch::jit::Module script = torch::jit::load(ZOOPT_TORCHSCRIPT_MODULE);
  script.eval();
  auto binding = zoopt::torch::bind<float>(script);
  const auto before = bytes_of(binding.tensors());
  torch::manual_seed(6);
  const torch::Tensor x = torch::rand({32, 784});
  const torch::Tensor y = torch::randint(0, 5, {32});
  const double l0 = [&] {
    const torch::NoGradGuard g;
    return torch::nn::functional::cross_entropy(script.forward({x}).toTensor(), y).item<double>();
  }();
  std::vector<double> seen;
  auto loss = binding.loss([&] {
    seen.push_back(
        torch::nn::functional::cross_entropy(script.forward({x}).toTensor(), y).item<double>());
    return seen.back();
  });
  zoopt::FZOO<float> frozen({.lr = 0.0, .eps = 1e-3, .directions = 4, .seed = 7});
  frozen.step(loss, binding.parameters());
  REQUIRE(seen.size() == 5);
  REQUIRE(seen[0] == l0);  // the base point is the unperturbed module
  bool moved = false;
  for (std::size_t i = 1; i < seen.size(); ++i) moved = moved || seen[i] != l0;
  REQUIRE(moved);  // the forward pass saw the perturbations
  REQUIRE(bytes_of(binding.tensors()) == before);

  zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .seed = 8});
  opt.optimize(loss, binding.parameters(), 30);
  REQUIRE(bytes_of(binding.tensors()) != before);  // and it trains the module's own memory
}
