// optimize_pipelined(): every step's update fused with the next step's first
// perturbation. It must give optimize()'s bits (parameters, counters,
// coefficients, update logs) while making 2n passes per step instead of
// 2n + 1, and leave the parameters at the completed steps' values when it
// returns, stops early, or a loss or callback throws.
#include <catch2/catch.hpp>

#include <cmath>
#include <span>
#include <stdexcept>
#include <vector>

#include "common.hpp"

namespace {

using namespace exact_test;

// CpuBackend that counts its passes.
template <class T, class Sampler>
struct CountingBackend : zoopt::CpuBackend<T, Sampler> {
  using Base = zoopt::CpuBackend<T, Sampler>;
  using Base::Base;
  std::uint64_t passes = 0;
  template <class... A>
  void move(A&&... a) {
    ++passes;
    Base::move(std::forward<A>(a)...);
  }
  template <std::size_t S = 0, class... A>
  void update(A&&... a) {
    ++passes;
    if constexpr (sizeof...(A) == 6) {
      Base::update(std::forward<A>(a)...);
    } else {
      Base::template update<S>(std::forward<A>(a)...);
    }
  }
  template <std::size_t S = 0, class... A>
  void update_and_move(A&&... a) {
    ++passes;
    if constexpr (sizeof...(A) == 8) {
      Base::update_and_move(std::forward<A>(a)...);
    } else {
      Base::template update_and_move<S>(std::forward<A>(a)...);
    }
  }
  template <class... A>
  void restore(A&&... a) {
    ++passes;
    Base::restore(std::forward<A>(a)...);
  }
};

// A quadratic over three spans of a model's parameters.
template <class T>
struct Model {
  std::vector<T> w = weights<T>(5000 + 7 + 3000, 3, 0.5);
  zoopt::ParameterSet<T> set;
  Model() {
    set.add("a", std::span<T>(w.data(), 5000))
        .add("b", std::span<T>(w.data() + 5000, 7), {.weight_decay = false})
        .add("c", std::span<T>(w.data() + 5007, 3000));
  }
  double loss() const {
    double s = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double d = to_double(w[i]) - 0.1 * static_cast<double>(i % 7);
      s += (1.0 + static_cast<double>(i % 3)) * d * d;
    }
    return s / static_cast<double>(w.size());
  }
};

template <class Opt>
void check_same_as_optimize(const typename Opt::Params& p, std::size_t steps,
                            std::uint32_t directions) {
  using T = typename Opt::value_type;
  Model<T> plain_model;
  Model<T> fused_model;
  Opt plain(p);
  Opt fused(p);
  auto plain_log = zoopt::UpdateLog::for_optimizer(plain, plain_model.set);
  auto fused_log = zoopt::UpdateLog::for_optimizer(fused, fused_model.set);
  plain.optimize([&] { return plain_model.loss(); }, plain_model.set, steps,
                 plain_log.recorder(plain));
  const zoopt::OptimizeResult r = fused.optimize_pipelined(
      [&] { return fused_model.loss(); }, fused_model.set, steps, fused_log.recorder(fused));
  REQUIRE(first_difference<T>(plain_model.w, fused_model.w) == -1);
  CHECK(r.steps == steps);
  CHECK(fused.step_count() == plain.step_count());
  CHECK(fused.forward_passes() == plain.forward_passes());
  REQUIRE(fused_log.size() == plain_log.size());
  for (std::size_t i = 0; i < plain_log.size(); ++i) {
    const auto a = plain_log[i].coefficients;
    const auto b = fused_log[i].coefficients;
    CHECK(plain_log[i].lr == fused_log[i].lr);
    REQUIRE(std::vector<double>(a.begin(), a.end()) == std::vector<double>(b.begin(), b.end()));
  }
  // Passes: 2n per step + the first move + the final restore, against 2n + 1.
  const std::uint64_t n = directions;
  CHECK(plain.backend().passes == (2 * n + 1) * steps);
  CHECK(fused.backend().passes == 2 * n * steps + 2);
}

template <class T, class Sampler = zoopt::GaussianSampler>
using CountedMeZO = zoopt::MeZO<T, Sampler, zoopt::CentralDifference, CountingBackend<T, Sampler>>;

}  // namespace

TEMPLATE_TEST_CASE("exact: optimize_pipelined gives optimize()'s bits in 2n passes per step",
                   "[exact][pipelined]", float, double, zoopt::half, zoopt::bfloat16) {
  using T = TestType;
  SECTION("MeZO, one direction, weight decay") {
    check_same_as_optimize<CountedMeZO<T>>(
        {.lr = 1e-2, .eps = 1e-3, .seed = 4, .weight_decay = 1e-2}, 12, 1);
  }
  SECTION("MeZO, three Rademacher directions, cosine schedule") {
    typename CountedMeZO<T, zoopt::RademacherSampler>::Params p{
        .lr = 1e-2, .eps = 1e-3, .directions = 3, .seed = 9};
    p.schedule = zoopt::LrSchedule::warmup_cosine(3, 12, 0.1);
    check_same_as_optimize<CountedMeZO<T, zoopt::RademacherSampler>>(p, 12, 3);
  }
}

TEST_CASE("exact: optimize_pipelined with low-rank directions", "[exact][pipelined]") {
  using Opt = zoopt::MeZO<float, zoopt::LowRankSampler<2, 4>, zoopt::CentralDifference,
                          CountingBackend<float, zoopt::LowRankSampler<2, 4>>>;
  std::vector<float> a = weights<float>(50 * 60 + 9, 6, 0.5);
  std::vector<float> b = a;
  auto set_of = [](std::vector<float>& w) {
    zoopt::ParameterSet<float> s;
    s.add("w", std::span<float>(w.data(), 50 * 60), {.shape = {50, 60}})
        .add("bias", std::span<float>(w.data() + 50 * 60, 9));
    return s;
  };
  zoopt::ParameterSet<float> sa = set_of(a);
  zoopt::ParameterSet<float> sb = set_of(b);
  auto q = [](const std::vector<float>& w) {
    double s = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i)
      s += (w[i] - 0.01 * (i % 5)) * (w[i] - 0.01 * (i % 5));
    return s;
  };
  const Opt::Params p{.lr = 1e-2, .eps = 1e-3, .directions = 2, .seed = 12};
  Opt plain(p);
  Opt fused(p);
  plain.optimize([&] { return q(a); }, sa, 10);
  fused.optimize_pipelined([&] { return q(b); }, sb, 10);
  REQUIRE(first_difference<float>(a, b) == -1);
  CHECK(fused.backend().passes == 4 * 10 + 2);
}

TEST_CASE("exact: optimize_pipelined with KerZOO, momentum and threads", "[exact][pipelined]") {
  using Backend = CountingBackend<float, zoopt::GaussianSampler>;
  using K = zoopt::KerZOO<float, zoopt::GaussianSampler, zoopt::CentralDifference, Backend,
                          zoopt::MomentumUpdate>;
  K::Params p;
  p.lr = 1e-2;
  p.directions = 2;
  p.seed = 5;
  p.range = zoopt::RangeSchedule{.decay_steps = 10, .a_min = 0.2};
  p.update = zoopt::MomentumUpdate{.beta = 0.8};
  check_same_as_optimize<K>(p, 15, 2);
}

TEST_CASE("exact: optimize_pipelined leaves the completed steps' values on stop and on errors",
          "[exact][pipelined]") {
  using Opt = zoopt::MeZO<float>;
  const Opt::Params p{.lr = 1e-2, .eps = 1e-3, .seed = 2};
  // The reference: k plain steps.
  auto after = [&](std::size_t k) {
    Model<float> m;
    Opt opt(p);
    opt.optimize([&] { return m.loss(); }, m.set, k);
    return m.w;
  };
  SECTION("a callback stops after 6 steps") {
    Model<float> m;
    Opt opt(p);
    struct StopAt {
      std::size_t at;
      bool on_step(const zoopt::StepReport& r) const { return r.iteration + 1 == at; }
    };
    const auto r = opt.optimize_pipelined([&] { return m.loss(); }, m.set, 20, StopAt{6});
    CHECK(r.stopped_early);
    CHECK(opt.step_count() == 6);
    REQUIRE(first_difference<float>(m.w, after(6)) == -1);
  }
  SECTION("a callback throws after 4 steps") {
    Model<float> m;
    Opt opt(p);
    struct Thrower {
      void on_step(const zoopt::StepReport& r) const {
        if (r.iteration == 3) throw std::runtime_error("callback");
      }
    } thrower;
    REQUIRE_THROWS_WITH(opt.optimize_pipelined([&] { return m.loss(); }, m.set, 20, thrower),
                        "callback");
    CHECK(opt.step_count() == 4);
    REQUIRE(first_difference<float>(m.w, after(4)) == -1);
  }
  SECTION("the loss fails at the first point of step 5, which a fused pass moved to") {
    Model<float> m;
    Opt opt(p);
    int calls = 0;
    auto loss = [&] { return ++calls == 2 * 5 + 1 ? std::nan("") : m.loss(); };
    REQUIRE_THROWS_AS(opt.optimize_pipelined(loss, m.set, 20), zoopt::NonFiniteLoss);
    CHECK(opt.step_count() == 5);
    REQUIRE(first_difference<float>(m.w, after(5)) == -1);
  }
  SECTION("a single span") {
    std::vector<float> a = weights<float>(3001, 8);
    std::vector<float> b = a;
    auto q = [](const std::vector<float>& w) {
      double s = 0.0;
      for (float x : w) s += (x - 0.3) * (x - 0.3);
      return s;
    };
    Opt plain(p);
    Opt fused(p);
    plain.optimize([&] { return q(a); }, std::span<float>(a), 9);
    fused.optimize_pipelined([&] { return q(b); }, std::span<float>(b), 9);
    REQUIRE(first_difference<float>(a, b) == -1);
  }
}
