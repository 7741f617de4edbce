// zoopt::torch: binding libtorch modules' parameters zero-copy, stepping
// them in place bit-exactly, and the errors for tensors that cannot be bound.
#include <catch2/catch.hpp>

#include <zoopt/kerzoo.hpp>
#include <zoopt/torch.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

/// A small regression model: Linear(8, 16) -> LayerNorm(16) -> ReLU ->
/// Linear(16, 2), with fixed data.
struct Net {
  torch::nn::Sequential model;
  torch::Tensor x;
  torch::Tensor y;
  Net() {
    torch::manual_seed(3);
    model = torch::nn::Sequential(torch::nn::Linear(8, 16),
                                  torch::nn::LayerNorm(torch::nn::LayerNormOptions({16})),
                                  torch::nn::ReLU(), torch::nn::Linear(16, 2));
    x = torch::randn({64, 8});
    y = torch::randn({64, 2});
  }
  [[nodiscard]] double loss() { return torch::mse_loss(model->forward(x), y).item<double>(); }
};

/// Bytes of every parameter, in order.
std::vector<unsigned char> snapshot(torch::nn::Module& m) {
  std::vector<unsigned char> out;
  for (const auto& p : m.parameters()) {
    const auto* b = static_cast<const unsigned char*>(p.data_ptr());
    out.insert(out.end(), b, b + p.numel() * p.element_size());
  }
  return out;
}

template <class Matcher>
void require_invalid(const std::function<void()>& f, Matcher m) {
  REQUIRE_THROWS_AS(f(), zoopt::InvalidArgument);
  REQUIRE_THROWS_WITH(f(), m);
}

}  // namespace

TEST_CASE(
    "torch: bind takes every parameter zero-copy, in order, biases without weight decay, matrices "
    "with their shape",
    "[torch]") {
  Net net;
  auto binding = zoopt::torch::bind<float>(net.model);
  const auto& set = binding.parameters();
  const std::vector<std::string> names = {"0.weight", "0.bias",   "1.weight",
                                          "1.bias",   "3.weight", "3.bias"};
  REQUIRE(set.size() == names.size());
  std::size_t i = 0;
  for (const auto& p : net.model->named_parameters()) {
    INFO(p.key());
    REQUIRE(set.name(i) == names[i]);
    REQUIRE(set.name(i) == p.key());
    REQUIRE(static_cast<void*>(set.span(i).data()) == p.value().data_ptr());
    REQUIRE(set.span(i).size() == static_cast<std::size_t>(p.value().numel()));
    REQUIRE(set.options(i).weight_decay == (p.value().dim() > 1));
    const zoopt::MatrixShape shape =
        p.value().dim() > 1
            ? zoopt::MatrixShape{static_cast<std::uint64_t>(p.value().size(0)),
                                 static_cast<std::uint64_t>(p.value().numel() / p.value().size(0))}
            : zoopt::MatrixShape{};
    REQUIRE(set.options(i).shape == shape);
    ++i;
  }
  REQUIRE(set.elements() == 8 * 16 + 16 + 16 + 16 + 16 * 2 + 2);
}

TEST_CASE("torch: a MeZO step perturbs the module in place and restores it bit-exactly",
          "[torch]") {
  Net net;
  auto binding = zoopt::torch::bind<float>(net.model);
  const auto before = snapshot(*net.model);
  std::vector<double> seen;
  bool perturbed_inside = false;
  auto loss = binding.loss([&] {
    perturbed_inside = perturbed_inside || snapshot(*net.model) != before;
    REQUIRE_FALSE(torch::GradMode::is_enabled());  // the wrapper turned autograd off
    return net.loss();
  });
  zoopt::MeZO<float> frozen({.lr = 0.0, .eps = 1e-3, .directions = 2, .seed = 1});
  frozen.step(loss, binding.parameters());
  REQUIRE(perturbed_inside);                // the forward pass saw theta +- eps z
  REQUIRE(snapshot(*net.model) == before);  // lr = 0: every bit back

  SECTION("training lowers the loss") {
    const double l0 = net.loss();
    zoopt::FZOO<float> opt({.lr = 2e-3, .eps = 1e-3, .directions = 8, .seed = 2});
    opt.optimize(loss, binding.parameters(), 300);
    INFO("loss " << l0 << " -> " << net.loss());
    REQUIRE(net.loss() < 0.9 * l0);
    REQUIRE(torch::GradMode::is_enabled());  // restored after each call
  }
  SECTION("select freezes the rest: only the head moves") {
    auto head = zoopt::torch::bind<float>(
        net.model, {.select = [](const std::string& n) { return n.rfind("3.", 0) == 0; }});
    REQUIRE(head.parameters().size() == 2);
    const auto body = net.model->named_parameters()["0.weight"].clone();
    zoopt::MeZO<float> opt({.lr = 1e-2, .eps = 1e-3, .seed = 3});
    opt.optimize(head.loss([&] { return net.loss(); }), head.parameters(), 20);
    REQUIRE(torch::equal(body, net.model->named_parameters()["0.weight"]));
    REQUIRE(snapshot(*net.model) != before);
  }
}

TEST_CASE("torch: TorchScript modules bind the same way", "[torch]") {
  torch::jit::Module m("Affine");
  m.register_parameter("weight", torch::ones({3, 4}), false);
  m.register_parameter("bias", torch::zeros({3}), false);
  auto binding = zoopt::torch::bind<float>(m);
  REQUIRE(binding.parameters().size() == 2);
  REQUIRE(binding.parameters().name(0) == "weight");
  REQUIRE(binding.parameters().options(1).weight_decay == false);
  const torch::Tensor x = torch::ones({4});
  auto loss = binding.loss([&] {
    const torch::Tensor out =
        torch::matmul(m.attr("weight").toTensor(), x) + m.attr("bias").toTensor();
    return out.pow(2).sum().item<double>();
  });
  const double l0 = loss();
  zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .seed = 4});
  opt.optimize(loss, binding.parameters(), 100);
  REQUIRE(loss() < 0.5 * l0);
}

TEST_CASE("torch: float16 and bfloat16 tensors bind as zoopt::half and zoopt::bfloat16",
          "[torch]") {
  // The bit layouts agree: converting the same floats gives the same bits.
  std::vector<float> values = {0.0f,     -0.0f, 1.0f, -2.5f,       1e-3f, 65504.0f,
                               3.14159f, 1e-7f, 0.1f, 1.0f / 3.0f, 1e30f, -6.1e-5f};
  for (float v : values) {
    INFO(v);
    const at::Half th(v);
    const zoopt::half zh(v);
    std::uint16_t a = 0;
    std::uint16_t b = 0;
    std::memcpy(&a, &th, 2);
    std::memcpy(&b, &zh, 2);
    REQUIRE(a == b);
    const at::BFloat16 tb(v);
    const zoopt::bfloat16 zb(v);
    std::memcpy(&a, &tb, 2);
    std::memcpy(&b, &zb, 2);
    REQUIRE(a == b);
  }
  auto check = [&]<class T>(T, c10::ScalarType dtype) {
    Net net;
    net.model->to(dtype);
    auto binding = zoopt::torch::bind<T>(net.model);
    const auto before = snapshot(*net.model);
    // CPU libtorch 1.13 has no half matmul: the loss reads the parameters
    // in float (what matters here is what the step writes).
    auto loss = binding.loss([&] {
      double s = 0.0;
      for (const auto& p : net.model->parameters()) {
        s += (p.to(torch::kFloat) - 0.5).pow(2).sum().item<double>();
      }
      return s;
    });
    zoopt::MeZO<T> frozen({.lr = 0.0, .eps = 1e-2, .directions = 2, .seed = 5});
    frozen.set_warning_sink([](const std::string&) {});
    frozen.step(loss, binding.parameters());
    REQUIRE(snapshot(*net.model) == before);
    // Hessian 2I over d = 210 elements: ZO-SGD is stable for lr < 1/(2d + 4) ~ 2.4e-3.
    zoopt::MeZO<T> opt({.lr = 5e-4, .eps = 1e-2, .seed = 6});
    opt.set_warning_sink([](const std::string&) {});
    const double l0 = loss();
    opt.optimize(loss, binding.parameters(), 100);
    INFO("loss " << l0 << " -> " << loss());
    REQUIRE(loss() < 0.9 * l0);
  };
  check(zoopt::half{}, torch::kHalf);
  check(zoopt::bfloat16{}, torch::kBFloat16);
}

TEST_CASE("torch: tensors that cannot be bound are named, and moved storage is caught", "[torch]") {
  using zoopt::torch::bind;
  SECTION("dtype") {
    Net net;
    net.model->to(torch::kDouble);
    require_invalid([&] { (void)bind<float>(net.model); },
                    Catch::Matchers::Contains("'0.weight'") && Catch::Matchers::Contains("dtype"));
    REQUIRE(bind<double>(net.model).parameters().size() == 6);
  }
  SECTION("strides") {
    torch::nn::Module m;
    m.register_parameter("w_t", torch::ones({4, 3}).t());
    require_invalid([&] { (void)bind<float>(m); },
                    Catch::Matchers::Contains("'w_t'") && Catch::Matchers::Contains("contiguous"));
  }
  SECTION("device") {
    Net net;
    require_invalid([&] { (void)bind<float>(net.model, {.device = true}); },
                    Catch::Matchers::Contains("CUDA tensor"));
  }
  SECTION("nothing selected") {
    Net net;
    require_invalid(
        [&] { (void)bind<float>(net.model, {.select = [](const std::string&) { return false; }}); },
        Catch::Matchers::Contains("select"));
  }
  SECTION("storage replaced after bind") {
    Net net;
    auto binding = bind<float>(net.model);
    auto loss = binding.loss([&] { return net.loss(); });
    net.model->named_parameters()["3.bias"].set_data(torch::zeros({2}));
    zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .seed = 6});
    REQUIRE_THROWS_AS(opt.step(loss, binding.parameters()), zoopt::LogicError);
    REQUIRE_THROWS_WITH(opt.step(loss, binding.parameters()),
                        Catch::Matchers::Contains("'3.bias'"));
    REQUIRE(opt.step_count() == 0);
  }
}
