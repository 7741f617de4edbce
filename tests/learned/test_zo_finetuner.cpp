// ZOFineTuner (frozen networks): MeZO bit for bit with a unit model, the
// block-scaled perturbation and update, the network inputs, and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "zoopt/optimizer/mezo.hpp"
#include "zoopt/optimizer/zo_finetuner.hpp"
#include "zoopt/replay/update_log.hpp"

namespace {

// Three spans; "bias" opts out of weight decay.
template <class T>
struct Net {
  std::vector<T> x;
  zoopt::ParameterSet<T> set;
  explicit Net(std::uint64_t seed, std::size_t a = 7, std::size_t b = 5, std::size_t c = 9)
      : x(a + b + c) {
    std::mt19937_64 g(seed);
    for (T& v : x) v = static_cast<T>(static_cast<double>(g() >> 11) * 0x1p-53 - 0.5);
    set.add("w1", std::span<T>(x.data(), a));
    set.add("bias", std::span<T>(x.data() + a, b), zoopt::SpanOptions{false});
    set.add("w2", std::span<T>(x.data() + a + b, c));
  }
};

// A smooth non-quadratic loss.
template <class T>
double test_loss(const zoopt::ParameterSet<T>& p) {
  double s = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const auto sp = p.span(i);
    for (std::size_t k = 0; k < sp.size(); ++k) {
      const double v = static_cast<double>(sp[k]) - 0.1 * static_cast<double>(i + 1);
      s += v * v + 0.05 * v * v * v * v;
    }
  }
  return s;
}

// Networks whose output is the constant s_i (w2 = 0, b2 = s_i).
template <class T>
zoopt::PerturbationModel constant_model(const zoopt::ParameterSet<T>& set,
                                        const std::vector<double>& s) {
  zoopt::PerturbationModel m = zoopt::PerturbationModel::unit(set, 1);
  for (std::size_t i = 0; i < s.size(); ++i) m.block(i).net.b2 = s[i];
  return m;
}

template <class T>
void check_bit_exact(std::uint32_t directions, double weight_decay) {
  Net<T> a(5);
  Net<T> b(5);
  typename zoopt::MeZO<T>::Params pm;
  pm.lr = 1e-2;
  pm.eps = 1e-3;
  pm.seed = 1234;
  pm.directions = directions;
  pm.weight_decay = weight_decay;
  typename zoopt::ZOFineTuner<T>::Params pf;
  pf.lr = pm.lr;
  pf.eps = pm.eps;
  pf.seed = pm.seed;
  pf.directions = directions;
  pf.weight_decay = weight_decay;
  zoopt::MeZO<T> mezo(pm);
  zoopt::ZOFineTuner<T> ft(pf, zoopt::PerturbationModel::unit(b.set, 99), b.set);
  for (int t = 0; t < 25; ++t) {
    const double la = mezo.step(test_loss<T>, a.set);
    const double lb = ft.step(test_loss<T>, b.set);
    REQUIRE(std::memcmp(&la, &lb, sizeof(double)) == 0);
    REQUIRE(std::memcmp(a.x.data(), b.x.data(), a.x.size() * sizeof(T)) == 0);
    for (const double s : ft.scales()) REQUIRE(s == 1.0);
    REQUIRE(ft.normaliser() == 1.0);
  }
  CHECK(ft.forward_passes() == mezo.forward_passes());
  CHECK(test_loss(b.set) < test_loss(Net<T>(5).set));  // it did optimise
}

}  // namespace

TEST_CASE("learned: ZOFineTuner with a unit model is MeZO bit for bit", "[learned][finetuner]") {
  check_bit_exact<float>(1, 0.0);
  check_bit_exact<double>(1, 0.0);
  check_bit_exact<float>(3, 0.01);
  check_bit_exact<double>(2, 0.01);
}

TEST_CASE("learned: the perturbation and update of block i are scaled by c s_i",
          "[learned][finetuner]") {
  const std::vector<double> s{0.5, 3.0, 1.25};
  for (const bool normalise : {true, false}) {
    Net<double> n(8);
    const std::vector<double> theta0 = n.x;
    zoopt::PerturbationModel model = constant_model(n.set, s);
    model.set_normaliser_size("w2", 2.0);  // d_i override: 7, 5, 2
    zoopt::ZOFineTuner<double>::Params p;
    p.lr = 0.05;
    p.eps = 1e-2;
    p.seed = 42;
    p.normalise = normalise;
    zoopt::ZOFineTuner<double> ft(p, model);
    std::vector<std::vector<double>> seen;
    std::vector<double> values;
    auto loss = [&](const zoopt::ParameterSet<double>& q) {
      seen.push_back(n.x);
      values.push_back(test_loss(q));
      return values.back();
    };
    ft.step(loss, n.set);
    REQUIRE(seen.size() == 2);

    const double c =
        normalise ? std::sqrt((7.0 + 5.0 + 2.0) / (7.0 * 0.25 + 5.0 * 9.0 + 2.0 * 1.5625)) : 1.0;
    CHECK(ft.normaliser() == Approx(c).epsilon(1e-15));
    for (std::size_t i = 0; i < 3; ++i) CHECK(ft.scales()[i] == s[i]);
    const double g = (values[0] - values[1]) / (2.0 * p.eps);
    std::size_t at = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t k = 0; k < n.set.span(i).size(); ++k, ++at) {
        const double z =
            zoopt::noise_at<zoopt::GaussianSampler, double>(zoopt::NoiseKey{p.seed, 0, 0}, at);
        const double v = c * s[i] * z;
        // Each point is one rounding of theta0 + eps v: error <= 1 ulp of
        // the result (~1e-16), 1e-14 leaves room for c's own rounding.
        CHECK(seen[0][at] == Approx(theta0[at] + p.eps * v).margin(1e-14));
        CHECK(seen[1][at] == Approx(theta0[at] - p.eps * v).margin(1e-14));
        CHECK(n.x[at] == Approx(theta0[at] - p.lr * g * v).margin(1e-13));
      }
    }
  }
}

TEST_CASE("learned: the networks see the block statistics, the last losses and scales",
          "[learned][finetuner]") {
  Net<double> n(3);
  zoopt::PerturbationModel model = zoopt::PerturbationModel::unit(n.set, 2);
  std::mt19937_64 g(5);
  for (std::size_t i = 0; i < model.size(); ++i) {
    for (int k = 0; k < 64; ++k)
      model.block(i).net.w2(k) = static_cast<double>(g() >> 11) * 0x1p-53 - 0.5;
    model.block(i).net.b2 = 2.0;  // keeps the output well away from 0
  }
  zoopt::ZOFineTuner<double>::Params p;
  p.lr = 0.02;
  p.seed = 8;
  zoopt::ZOFineTuner<double> ft(p, model, n.set);
  std::vector<double> values;
  auto loss = [&](const zoopt::ParameterSet<double>& q) {
    values.push_back(test_loss(q));
    return values.back();
  };
  std::vector<double> prev{1.0, 1.0, 1.0};
  double lp = 0.0;
  double lm = 0.0;
  for (int t = 0; t < 4; ++t) {
    std::vector<double> expect(3);
    for (std::size_t i = 0; i < 3; ++i) {
      const auto st = zoopt::block_stats(std::span<const double>(n.set.span(i)));
      expect[i] = model.block(i).net.forward(zoopt::pert_features(st, lp, lm, prev[i]));
    }
    values.clear();
    ft.step(loss, n.set);
    for (std::size_t i = 0; i < 3; ++i) CHECK(ft.scales()[i] == expect[i]);
    lp = values[0];
    lm = values[1];
    prev = expect;
    CHECK(ft.previous_losses() == std::pair<double, double>(lp, lm));
  }
  // A failed step (NaN loss) restores the parameters and leaves the history.
  const std::vector<double> before = n.x;
  auto bad = [](const zoopt::ParameterSet<double>&) { return std::nan(""); };
  CHECK_THROWS_AS(ft.step(bad, n.set), zoopt::NonFiniteLoss);
  CHECK(std::memcmp(before.data(), n.x.data(), before.size() * sizeof(double)) == 0);
  CHECK(ft.previous_losses() == std::pair<double, double>(lp, lm));
  // reset_history() goes back to L+- = 0, s = 1.
  ft.reset_history();
  CHECK(ft.previous_losses() == std::pair<double, double>(0.0, 0.0));
}

TEST_CASE("learned: ZOFineTuner rejects bad settings and mismatched models untouched",
          "[learned][finetuner]") {
  Net<float> n(4);
  const zoopt::PerturbationModel model = zoopt::PerturbationModel::unit(n.set);
  using P = zoopt::ZOFineTuner<float>::Params;
  auto with = [](auto f) {
    P p;
    f(p);
    return p;
  };
  CHECK_THROWS_WITH(zoopt::ZOFineTuner<float>(with([](P& p) { p.lr = -1.0; }), model),
                    Catch::Contains("lr"));
  CHECK_THROWS_WITH(zoopt::ZOFineTuner<float>(with([](P& p) { p.eps = 0.0; }), model),
                    Catch::Contains("eps"));
  CHECK_THROWS_WITH(zoopt::ZOFineTuner<float>(with([](P& p) { p.directions = 0; }), model),
                    Catch::Contains("directions"));
  CHECK_THROWS_WITH(
      zoopt::ZOFineTuner<float>(with([](P& p) { p.weight_decay = std::nan(""); }), model),
      Catch::Contains("weight_decay"));
  CHECK_THROWS_WITH(zoopt::ZOFineTuner<float>(P{}, zoopt::PerturbationModel{}),
                    Catch::Contains("model"));

  // A parameter set whose middle span is larger than the model's block.
  Net<float> other(4, 7, 6, 9);
  CHECK_THROWS_WITH(zoopt::ZOFineTuner<float>(P{}, model, other.set), Catch::Contains("'bias'"));
  zoopt::ZOFineTuner<float> ft(P{}, model);
  const std::vector<float> before = other.x;
  CHECK_THROWS_AS(ft.step(test_loss<float>, other.set), std::invalid_argument);
  CHECK_THROWS_WITH(ft.step(test_loss<float>, other.set), Catch::Contains("'bias'"));
  CHECK(std::memcmp(before.data(), other.x.data(), before.size() * sizeof(float)) == 0);
  CHECK(ft.step_count() == 0);
  CHECK(ft.forward_passes() == 0);
  // A lone span against a three-block model.
  std::vector<float> lone(7, 1.0f);
  CHECK_THROWS_WITH(ft.step([](std::span<const float>) { return 0.0; }, std::span<float>(lone)),
                    Catch::Contains("3 blocks"));
  CHECK(lone == std::vector<float>(7, 1.0f));
}

TEST_CASE("learned: ZOFineTuner resumes from its state bit for bit", "[learned][finetuner]") {
  // Networks that depend on their inputs, so the loss/scale history matters:
  // a resumed run that forgot it would see L+- = 0 and s = 1 and diverge.
  Net<float> probe(3);
  zoopt::PerturbationModel model = zoopt::PerturbationModel::unit(probe.set, 2);
  std::mt19937_64 g(11);
  for (std::size_t i = 0; i < model.size(); ++i) {
    for (int k = 0; k < 64; ++k)
      model.block(i).net.w2(k) = static_cast<double>(g() >> 11) * 0x1p-53 - 0.5;
    model.block(i).net.b2 = 2.0;
  }
  zoopt::ZOFineTuner<float>::Params p;
  p.lr = 0.02;
  p.seed = 21;
  auto loss = [](const zoopt::ParameterSet<float>& q) { return test_loss(q); };

  Net<float> straight(3);
  zoopt::ZOFineTuner<float> a(p, model, straight.set);
  for (int t = 0; t < 10; ++t) a.step(loss, straight.set);

  Net<float> resumed(3);
  zoopt::OptimizerState state;
  {
    zoopt::ZOFineTuner<float> first(p, model, resumed.set);
    for (int t = 0; t < 4; ++t) first.step(loss, resumed.set);
    state = first.state();
    REQUIRE(state.extra.size() == model.size() + 2);
  }
  zoopt::ZOFineTuner<float> second(p, model, resumed.set);
  second.set_state(state);
  for (int t = 4; t < 10; ++t) second.step(loss, resumed.set);
  CHECK(std::memcmp(straight.x.data(), resumed.x.data(), straight.x.size() * sizeof(float)) == 0);
  CHECK(second.step_count() == a.step_count());

  // Forgetting the history changes the trajectory (the test can fail).
  Net<float> forgetful(3);
  {
    zoopt::ZOFineTuner<float> first(p, model, forgetful.set);
    for (int t = 0; t < 4; ++t) first.step(loss, forgetful.set);
  }
  zoopt::ZOFineTuner<float> fresh(p, model, forgetful.set);
  fresh.set_step_count(4);
  for (int t = 4; t < 10; ++t) fresh.step(loss, forgetful.set);
  CHECK(std::memcmp(straight.x.data(), forgetful.x.data(), straight.x.size() * sizeof(float)) != 0);

  std::vector<double> wrong(model.size(), 0.0);
  CHECK_THROWS_WITH(second.set_state(zoopt::OptimizerState{4, 0, wrong}), Catch::Contains("extra"));
}

namespace {

// Half/bfloat16 storage: the fine-tuner's block statistics read the 16-bit
// values through float; with a unit model it is MeZO bit for bit.
template <class T>
void check_low_precision() {
  auto make = [](std::vector<T>& x, zoopt::ParameterSet<T>& set) {
    std::mt19937_64 g(8);
    for (T& v : x) v = T(static_cast<float>(static_cast<double>(g() >> 11) * 0x1p-53 - 0.5));
    set.add("w", std::span<T>(x.data(), 12)).add("b", std::span<T>(x.data() + 12, 5));
  };
  auto loss = [](const zoopt::ParameterSet<T>& p) {
    double s = 0.0;
    p.for_each([&](const std::string&, std::span<T> x) {
      for (const T v : x) s += static_cast<double>(static_cast<float>(v)) * static_cast<float>(v);
    });
    return s;
  };
  std::vector<T> xa(17), xb(17);
  zoopt::ParameterSet<T> a, b;
  make(xa, a);
  make(xb, b);
  zoopt::MeZO<T> mezo({.lr = 0.05, .eps = 1e-2, .directions = 2, .seed = 5});
  zoopt::ZOFineTuner<T> ft({.lr = 0.05, .eps = 1e-2, .directions = 2, .seed = 5},
                           zoopt::PerturbationModel::unit(b, 1), b);
  const double before = loss(a);
  for (int t = 0; t < 20; ++t) {
    mezo.step(loss, a);
    ft.step(loss, b);
  }
  CHECK(std::memcmp(xa.data(), xb.data(), xa.size() * sizeof(T)) == 0);
  CHECK(loss(b) < before);
}

}  // namespace

TEST_CASE("learned: ZOFineTuner works on half and bfloat16 storage", "[learned][finetuner]") {
  check_low_precision<zoopt::half>();
  check_low_precision<zoopt::bfloat16>();
}

TEST_CASE("learned: logs and checkpoints name the fine-tuner 'zo-finetuner'",
          "[learned][finetuner]") {
  Net<float> n(4);
  zoopt::ZOFineTuner<float> ft({.lr = 0.01}, zoopt::PerturbationModel::unit(n.set), n.set);
  CHECK(zoopt::optimizer_identity(ft) == "zo-finetuner");
  CHECK(zoopt::UpdateLog::for_optimizer(ft, n.set).header().optimizer == "zo-finetuner");
}

TEST_CASE("learned: a NaN parameter is named by its block, parameters untouched",
          "[learned][finetuner]") {
  Net<float> n(6);
  n.x[7 + 2] = std::numeric_limits<float>::quiet_NaN();  // element 2 of "bias"
  const std::vector<float> before = n.x;
  zoopt::ZOFineTuner<float> ft({.lr = 0.01}, zoopt::PerturbationModel::unit(n.set), n.set);
  auto loss = [](const zoopt::ParameterSet<float>& q) { return test_loss(q); };
  try {
    ft.step(loss, n.set);
    FAIL("no exception");
  } catch (const zoopt::NonFiniteParameters& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("block 'bias'"));
    CHECK_THAT(what, Catch::Contains("element 2 is nan"));
  }
  CHECK(std::memcmp(n.x.data(), before.data(), n.x.size() * sizeof(float)) == 0);
  CHECK(ft.step_count() == 0);
}
