// Update rules (momentum, Adam-like, the KerZOO code's acceleration): the
// math of each against an independent reference on a quadratic, the
// degenerate settings that must equal SGD bit for bit, checkpoints, logs and
// replay of the rule's state, thread-count invariance, and the errors.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "test_util.hpp"

namespace {

using zt::same_bits;
using zt::WhatContains;

// f(x) = 1/2 sum_j h_j (x_j - c_j)^2 with h_j in [0.5, 3].
zt::DiagQuadratic quadratic(std::size_t d) {
  zt::DiagQuadratic q;
  for (std::size_t j = 0; j < d; ++j) {
    q.lambda.push_back(0.5 + 2.5 * static_cast<double>(j) / static_cast<double>(d));
    q.center.push_back(0.3 - 0.05 * static_cast<double>(j % 7));
    q.b.push_back(0.0);
  }
  return q;
}

std::vector<double> start(std::size_t d) {
  std::vector<double> x(d);
  for (std::size_t j = 0; j < d; ++j) x[j] = 0.8 - 0.11 * static_cast<double>(j % 13);
  return x;
}

// The estimate the step applied, element by element: g_j = sum_i c_i z_ij
// (the same noise as the optimizer: noise_at of the step's key).
template <class Sampler>
std::vector<double> estimate(std::span<const double> c, std::uint64_t seed, std::uint64_t step,
                             std::size_t d) {
  std::vector<double> g(d, 0.0);
  for (std::uint32_t i = 0; i < c.size(); ++i) {
    for (std::size_t j = 0; j < d; ++j) {
      g[j] += c[i] * zoopt::noise_at<Sampler, double>(zoopt::NoiseKey{seed, step, i}, j);
    }
  }
  return g;
}

// Runs `steps` steps of MeZO<double, Gaussian, central, CPU, Rule> on the
// quadratic and, beside it, the rule written out independently from the
// estimates the optimizer applied; returns the largest difference.
template <class Rule, class Reference>
double max_deviation(Rule rule, Reference reference, int steps) {
  using Opt = zoopt::MeZO<double, zoopt::GaussianSampler, zoopt::CentralDifference,
                          zoopt::CpuBackend<double, zoopt::GaussianSampler>, Rule>;
  constexpr std::size_t d = 24;
  const auto loss = quadratic(d);
  auto x = start(d);
  auto ref = x;
  typename Opt::Params p;
  p.lr = 0.05;
  p.directions = 2;
  p.seed = 7;
  p.weight_decay = 0.01;
  p.update = rule;
  Opt opt(p);
  reference.init(ref);
  double worst = 0.0;
  for (int t = 0; t < steps; ++t) {
    opt.step(loss, std::span<double>(x));
    auto g = estimate<zoopt::GaussianSampler>(opt.last_coefficients(), 7, t, d);
    for (std::size_t j = 0; j < d; ++j) g[j] += 0.01 * ref[j];
    reference.step(ref, g, 0.05, t);
    for (std::size_t j = 0; j < d; ++j) worst = std::max(worst, std::abs(x[j] - ref[j]));
  }
  return worst;
}

struct MomentumReference {
  double beta;
  std::vector<double> m;
  void init(const std::vector<double>& x) { m.assign(x.size(), 0.0); }
  void step(std::vector<double>& x, const std::vector<double>& g, double lr, int) {
    for (std::size_t j = 0; j < x.size(); ++j) {
      m[j] = beta * m[j] + g[j];
      x[j] -= lr * m[j];
    }
  }
};

struct AdamReference {
  double b1, b2, delta;
  std::vector<double> m, v;
  void init(const std::vector<double>& x) {
    m.assign(x.size(), 0.0);
    v.assign(x.size(), 0.0);
  }
  void step(std::vector<double>& x, const std::vector<double>& g, double lr, int t) {
    for (std::size_t j = 0; j < x.size(); ++j) {
      m[j] = b1 * m[j] + (1 - b1) * g[j];
      v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
      const double mh = m[j] / (1 - std::pow(b1, t + 1));
      const double vh = v[j] / (1 - std::pow(b2, t + 1));
      x[j] -= lr * mh / (std::sqrt(vh) + delta);
    }
  }
};

// c <- c - lr g; x <- c / b_t + (1 - 1/b_t) x; theta = c / b_{t+1} + (1 - 1/b_{t+1}) x.
struct AcceleratedReference {
  double growth;
  std::vector<double> copy, average;
  void init(const std::vector<double>& x) {
    copy = x;
    average = x;
  }
  void step(std::vector<double>& theta, const std::vector<double>& g, double lr, int t) {
    const double b = 1.0 + t / growth;
    const double bn = 1.0 + (t + 1) / growth;
    for (std::size_t j = 0; j < theta.size(); ++j) {
      copy[j] -= lr * g[j];
      average[j] = copy[j] / b + (1 - 1 / b) * average[j];
      theta[j] = copy[j] / bn + (1 - 1 / bn) * average[j];
    }
  }
};

template <class Rule, class T = float, class Sampler = zoopt::GaussianSampler>
using MeZOWith =
    zoopt::MeZO<T, Sampler, zoopt::CentralDifference, zoopt::CpuBackend<T, Sampler>, Rule>;

}  // namespace

TEST_CASE("core.update_rule: each rule follows its formula on a quadratic") {
  // The reference recomputes the rule in double from the estimates the
  // optimizer applied; the two differ only by rounding order (a few ulps of
  // |x| <= 1 per step, 40 steps): 1e-12 is far above that and far below any
  // error in the formula (the first step alone moves x by ~0.05 |g|).
  CHECK(max_deviation(zoopt::MomentumUpdate{0.9}, MomentumReference{0.9, {}}, 40) < 1e-12);
  CHECK(max_deviation(zoopt::AdamUpdate{0.8, 0.99, 1e-6}, AdamReference{0.8, 0.99, 1e-6, {}, {}},
                      40) < 1e-12);
  CHECK(max_deviation(zoopt::AcceleratedUpdate{6.0}, AcceleratedReference{6.0, {}, {}}, 40) <
        1e-12);
  // A wrong formula is caught: momentum 0.9 against a 0.8 reference.
  CHECK(max_deviation(zoopt::MomentumUpdate{0.9}, MomentumReference{0.8, {}}, 40) > 1e-4);
}

TEST_CASE("core.update_rule: momentum 0 and acceleration with beta = 1 are SGD bit for bit") {
  constexpr std::size_t d = 3000;
  const auto loss = quadratic(d);
  auto run = [&]<class Opt>(typename Opt::Params p) {
    std::vector<float> x(d);
    for (std::size_t j = 0; j < d; ++j) x[j] = static_cast<float>(start(d)[j]);
    Opt opt(p);
    for (int t = 0; t < 12; ++t) {
      opt.step([&](std::span<const float> v) { return loss(v); }, std::span<float>(x));
    }
    return x;
  };
  auto params = [](auto rule) {
    typename MeZOWith<decltype(rule)>::Params p;
    p.lr = 0.02;
    p.directions = 3;
    p.seed = 5;
    p.weight_decay = 0.1;
    p.update = rule;
    return p;
  };
  const auto sgd = run.operator()<MeZOWith<zoopt::SgdUpdate>>(params(zoopt::SgdUpdate{}));
  const auto momentum =
      run.operator()<MeZOWith<zoopt::MomentumUpdate>>(params(zoopt::MomentumUpdate{0.0}));
  // growth = 1e300: 1 / beta_k rounds to 1 for every k, so c = x = theta.
  const auto accelerated =
      run.operator()<MeZOWith<zoopt::AcceleratedUpdate>>(params(zoopt::AcceleratedUpdate{1e300}));
  CHECK(same_bits(sgd, momentum));
  CHECK(same_bits(sgd, accelerated));
  const auto real =
      run.operator()<MeZOWith<zoopt::MomentumUpdate>>(params(zoopt::MomentumUpdate{0.5}));
  CHECK(!same_bits(sgd, real));
}

TEST_CASE("core.update_rule: names, state size and errors naming the field") {
  CHECK(zoopt::MomentumUpdate{0.9}.name() == "momentum(0.9)");
  CHECK(zoopt::AdamUpdate{}.name() == "adam(0.9,0.999,1e-08)");
  CHECK(zoopt::AcceleratedUpdate{}.name() == "accelerated(6)");
  using M = MeZOWith<zoopt::MomentumUpdate>;
  M::Params p;
  p.update.beta = 1.0;
  CHECK_THROWS_MATCHES(M{p}, zoopt::InvalidArgument, WhatContains("MeZO::Params: update.beta"));
  using A = zoopt::FZOO<float, zoopt::RademacherSampler,
                        zoopt::CpuBackend<float, zoopt::RademacherSampler>, zoopt::AdamUpdate>;
  A::Params pa;
  pa.update.delta = 0.0;
  CHECK_THROWS_MATCHES(A{pa}, zoopt::InvalidArgument, WhatContains("FZOO::Params: update.delta"));
  pa.update = zoopt::AdamUpdate{.beta2 = -0.1};
  CHECK_THROWS_MATCHES(A{pa}, zoopt::InvalidArgument, WhatContains("update.beta2"));
  using K =
      zoopt::KerZOO<double, zoopt::GaussianSampler, zoopt::CentralDifference,
                    zoopt::CpuBackend<double, zoopt::GaussianSampler>, zoopt::AcceleratedUpdate>;
  K::Params pk;
  pk.update.growth = 0.0;
  CHECK_THROWS_MATCHES(K{pk}, zoopt::InvalidArgument,
                       WhatContains("KerZOO::Params: update.growth"));

  // The state belongs to the parameters of the first step; another size
  // throws naming params and leaves them bit-identical.
  M::Params ok;
  ok.lr = 0.01;
  M opt(ok);
  std::vector<float> x(50, 0.5F);
  const auto loss = [](std::span<const float> v) {
    double s = 0;
    for (float e : v) s += e * e;
    return s;
  };
  opt.step(loss, std::span<float>(x));
  CHECK(opt.update_state().elements() == 50);
  CHECK(opt.update_state().bytes() == 50 * sizeof(float));
  std::vector<float> y(49, 0.25F);
  const auto y0 = y;
  CHECK_THROWS_MATCHES(opt.step(loss, std::span<float>(y)), zoopt::InvalidArgument,
                       WhatContains("step: params has 49 elements"));
  CHECK(same_bits(y, y0));
  CHECK(opt.step_count() == 1);
  CHECK(zoopt::optimizer_identity(opt) == "mezo+update:momentum(0.9)");
}

TEMPLATE_TEST_CASE("core.update_rule: a logged run replays bit-exactly, also in pieces", "", float,
                   double, zoopt::half, zoopt::bfloat16) {
  using T = TestType;
  using C = zoopt::compute_t<T>;
  auto check = [&]<class Rule>(Rule rule) {
    using Opt = MeZOWith<Rule, T>;
    std::vector<T> w(300), b(40);
    for (std::size_t j = 0; j < w.size(); ++j)
      w[j] = static_cast<T>(0.3F - 0.002F * static_cast<float>(j));
    for (std::size_t j = 0; j < b.size(); ++j) b[j] = static_cast<T>(0.01F * static_cast<float>(j));
    const auto w0 = w;
    const auto b0 = b;
    zoopt::ParameterSet<T> set;
    set.add("w", std::span<T>(w)).add("b", std::span<T>(b), {.weight_decay = false});
    typename Opt::Params p;
    p.lr = 2e-3;
    p.eps = 1e-2;
    p.directions = 2;
    p.seed = 3;
    p.weight_decay = 0.05;
    p.update = rule;
    Opt opt(p);
    auto log = zoopt::UpdateLog::for_optimizer(opt, set);
    const auto loss = [](const zoopt::ParameterSet<T>& ps) {
      double f = 0.0;
      ps.for_each([&](const std::string&, std::span<T> part) {
        for (const T v : part) {
          const double u = static_cast<double>(static_cast<float>(v)) - 0.1;
          f += u * u;
        }
      });
      return f;
    };
    opt.optimize(loss, set, 15, log.recorder(opt));
    REQUIRE(!same_bits(w, w0));

    auto rw = w0;
    auto rb = b0;
    zoopt::ParameterSet<T> replayed;
    replayed.add("w", std::span<T>(rw)).add("b", std::span<T>(rb), {.weight_decay = false});
    // Without the rule's state: a clear error, nothing changed.
    CHECK_THROWS_MATCHES(zoopt::replay(log, replayed), zoopt::InvalidArgument,
                         WhatContains("replay: log was recorded with update rule"));
    CHECK(same_bits(rw, w0));
    // With a state of another rule: named.
    zoopt::UpdateRuleState<zoopt::MomentumUpdate, C> other(zoopt::MomentumUpdate{0.123});
    CHECK_THROWS_MATCHES(zoopt::replay(log, replayed, other), zoopt::InvalidArgument,
                         WhatContains("replay: state holds update rule 'momentum(0.123)'"));
    // In two pieces with one state (through the file format).
    const auto loaded = zoopt::UpdateLog::deserialize(log.serialize());
    zoopt::UpdateRuleState<Rule, C> state(rule);
    zoopt::replay(loaded, replayed, state, {0, 6});
    zoopt::replay(loaded, replayed, state, {6, 15});
    CHECK(state.updates() == 15);
    CHECK(same_bits(rw, w));
    CHECK(same_bits(rb, b));
    CHECK(same_bits(state.values(), opt.update_state().values()));
  };
  check(zoopt::MomentumUpdate{0.9});
  check(zoopt::AdamUpdate{});
  check(zoopt::AcceleratedUpdate{});
}

TEST_CASE("core.update_rule: a checkpoint resumes the rule's state bit-identically") {
  using Opt = zoopt::FZOO<float, zoopt::RademacherSampler,
                          zoopt::CpuBackend<float, zoopt::RademacherSampler>, zoopt::AdamUpdate>;
  const auto loss = quadratic(200);
  auto fresh = [] {
    std::vector<float> x(200);
    for (std::size_t j = 0; j < x.size(); ++j) x[j] = 0.5F - 0.004F * static_cast<float>(j);
    return x;
  };
  Opt::Params p;
  p.lr = 1e-2;
  p.directions = 4;
  p.seed = 9;
  auto whole = fresh();
  Opt a(p);
  a.optimize(loss, std::span<float>(whole), 20);

  auto part = fresh();
  Opt b(p);
  b.optimize(loss, std::span<float>(part), 8);
  zoopt::ParameterSet<float> set;
  set.add("x", std::span<float>(part));
  const auto bytes = zoopt::checkpoint::serialize(zoopt::checkpoint::capture(b, set));
  const auto contents = zoopt::checkpoint::deserialize(bytes);
  CHECK(contents.state.extra.size() == 2 + 2 * 200);

  auto resumed = fresh();
  zoopt::ParameterSet<float> target;
  target.add("x", std::span<float>(resumed));
  Opt c(p);
  zoopt::checkpoint::restore(contents, c, target);
  c.optimize(loss, std::span<float>(resumed), 12);
  CHECK(same_bits(resumed, whole));

  // Another rule's checkpoint does not load (identity), nor does a state
  // with the wrong number of values (nothing changes).
  MeZOWith<zoopt::MomentumUpdate> m;
  CHECK_THROWS_AS(zoopt::checkpoint::restore_state(contents, m), zoopt::InvalidArgument);
  Opt d(p);
  auto cut = contents.state;
  cut.extra.pop_back();
  CHECK_THROWS_MATCHES(d.set_state(cut), zoopt::InvalidArgument, WhatContains("extra"));
  CHECK(d.step_count() == 0);
  CHECK(d.update_state().elements() == 0);
}

TEST_CASE("core.update_rule: results do not depend on the thread count") {
  constexpr std::size_t d = 200000;  // several parts of 2^15 elements
  const auto loss = [](std::span<const float> v) {
    double s = 0;
    for (std::size_t j = 0; j < v.size(); j += 97) s += (v[j] - 0.1) * (v[j] - 0.1);
    return s;
  };
  auto run = [&](unsigned threads) {
    std::vector<float> x(d, 0.3F);
    MeZOWith<zoopt::AdamUpdate>::Params p;
    p.lr = 1e-3;
    p.seed = 2;
    MeZOWith<zoopt::AdamUpdate> opt(p, zoopt::CpuBackend<float, zoopt::GaussianSampler>(
                                           zoopt::CpuBackendOptions{.threads = threads}));
    opt.optimize(loss, std::span<float>(x), 4);
    return std::pair{x, std::vector<float>(opt.update_state().values().begin(),
                                           opt.update_state().values().end())};
  };
  const auto one = run(1);
  const auto three = run(3);
  CHECK(same_bits(one.first, three.first));
  CHECK(same_bits(one.second, three.second));
}
