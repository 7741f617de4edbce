// FZOO: N one-sided directions around one shared base loss, optionally
// sigma-normalised. The math of a step, its moments, its cost and its
// errors.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "test_util.hpp"

namespace {

using zt::same_bits;

/// Records every loss value a step evaluates, in call order.
struct RecordingLinear {
  std::vector<double> a;
  std::vector<double>* seen;
  double operator()(std::span<const double> x) const {
    double s = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) s += a[i] * x[i];
    seen->push_back(s);
    return s;
  }
};

std::vector<double> ramp(std::size_t d, double lo, double hi) {
  std::vector<double> v(d);
  for (std::size_t i = 0; i < d; ++i) v[i] = lo + (hi - lo) * static_cast<double>(i) / (d - 1);
  return v;
}

}  // namespace

TEST_CASE("core.fzoo: one step is g = (1/(eps N)) sum (Li - L0) u_i around one base loss") {
  constexpr std::size_t d = 37;
  constexpr std::uint32_t n = 5;
  const double eps = 1e-3;
  const double lr = 0.01;
  std::vector<double> x = ramp(d, -0.5, 0.7);
  const std::vector<double> x0 = x;
  std::vector<double> seen;
  const RecordingLinear loss{ramp(d, 1.0, -2.0), &seen};
  zoopt::FZOO<double> opt({.lr = lr, .eps = eps, .directions = n, .seed = 11});
  opt.step(loss, std::span<double>(x));

  // N + 1 evaluations: the base first, then one per direction.
  REQUIRE(seen.size() == n + 1);
  double l0 = 0.0;
  for (std::size_t i = 0; i < d; ++i) l0 += loss.a[i] * x0[i];
  REQUIRE(seen[0] == l0);
  REQUIRE(opt.forward_passes() == n + 1);
  REQUIRE(zoopt::FZOO<double>::evaluations_per_step(n) == n + 1);
  REQUIRE(zoopt::FZOO<double>::passes_per_step(n) == n + 1);

  // Coefficients c_i = (Li - L0) / eps / N, and the update uses them.
  const auto c = opt.last_coefficients();
  REQUIRE(c.size() == n);
  std::vector<double> expected(d);
  for (std::uint32_t i = 0; i < n; ++i) {
    CHECK(c[i] == (seen[i + 1] - seen[0]) / eps * (1.0 / n));
    for (std::size_t j = 0; j < d; ++j) {
      const double u =
          zoopt::noise_at<zoopt::RademacherSampler, double>(zoopt::NoiseKey{11, 0, i}, j);
      REQUIRE(std::abs(u) == 1.0);
      expected[j] += c[i] * u;
    }
  }
  // The projected gradient of a linear loss is exact up to the rounding of
  // x0 + eps u (|x0| < 1: 2^-53 relative): |c_i - (a.u_i)/N| <= ~1e-12.
  for (std::uint32_t i = 0; i < n; ++i) {
    double au = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
      au += loss.a[j] *
            zoopt::noise_at<zoopt::RademacherSampler, double>(zoopt::NoiseKey{11, 0, i}, j);
    }
    CHECK(std::abs(c[i] - au / n) < 1e-9);
  }
  for (std::size_t j = 0; j < d; ++j) CHECK(std::abs(x[j] - (x0[j] - lr * expected[j])) < 1e-15);
}

TEST_CASE("core.fzoo: the estimate is unbiased for a linear loss (Rademacher and Gaussian)") {
  // E[(a.u) u] = a for E[u u^T] = I. Component j of one direction's estimate
  // has variance sum_{k != j} a_k^2 (Rademacher; Gaussian adds 2 a_j^2 from
  // E[u^4] = 3); the mean over T steps of N directions has standard error
  // sqrt(that / (N T)). Allow 5 of them.
  constexpr std::size_t d = 12;
  constexpr std::uint32_t n = 8;
  constexpr int steps = 3000;
  const std::vector<double> a = ramp(d, -1.0, 2.0);
  double norm2 = 0.0;
  for (double v : a) norm2 += v * v;
  auto run = [&]<class Sampler>(Sampler) {
    std::vector<double> x(d, 0.25);
    std::vector<double> seen;
    const RecordingLinear loss{a, &seen};
    zoopt::FZOO<double, Sampler> opt({.lr = 0.0, .eps = 1e-3, .directions = n, .seed = 3});
    std::vector<double> mean(d, 0.0);
    for (int t = 0; t < steps; ++t) {
      opt.step(loss, std::span<double>(x));
      const auto c = opt.last_coefficients();
      for (std::uint32_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
          mean[j] += c[i] * zoopt::noise_at<Sampler, double>(
                                zoopt::NoiseKey{3, static_cast<std::uint64_t>(t), i}, j);
        }
      }
    }
    REQUIRE(same_bits(x, std::vector<double>(d, 0.25)));  // lr = 0: untouched
    for (std::size_t j = 0; j < d; ++j) {
      mean[j] /= steps;
      const double extra = std::is_same_v<Sampler, zoopt::GaussianSampler> ? 2.0 * a[j] * a[j] : 0;
      const double se = std::sqrt((norm2 - a[j] * a[j] + extra) / (n * double(steps)));
      INFO("component " << j << ": mean " << mean[j] << ", a " << a[j] << ", se " << se);
      CHECK(std::abs(mean[j] - a[j]) < 5.0 * se);
    }
  };
  run(zoopt::RademacherSampler{});
  run(zoopt::GaussianSampler{});
}

TEST_CASE("core.fzoo: normalize divides the coefficients by the spread of the N losses") {
  constexpr std::size_t d = 20;
  constexpr std::uint32_t n = 6;
  std::vector<double> x = ramp(d, -1.0, 1.0);
  std::vector<double> y = x;
  std::vector<double> seen_plain;
  std::vector<double> seen_norm;
  const std::vector<double> a = ramp(d, 0.5, 3.0);
  zoopt::FZOO<double> plain({.lr = 0.0, .eps = 1e-3, .directions = n, .seed = 5});
  zoopt::FZOO<double> norm({.lr = 0.0, .eps = 1e-3, .directions = n, .seed = 5, .normalize = true});
  plain.step(RecordingLinear{a, &seen_plain}, std::span<double>(x));
  norm.step(RecordingLinear{a, &seen_norm}, std::span<double>(y));
  REQUIRE(seen_plain == seen_norm);
  double mean = 0.0;
  for (std::uint32_t i = 1; i <= n; ++i) mean += seen_plain[i];
  mean /= n;
  double ss = 0.0;
  for (std::uint32_t i = 1; i <= n; ++i) ss += (seen_plain[i] - mean) * (seen_plain[i] - mean);
  const double sigma = std::sqrt(ss / (n - 1));
  REQUIRE(sigma > 0.0);
  REQUIRE(zoopt::FZOO<double>::loss_spread(seen_plain) == sigma);
  for (std::uint32_t i = 0; i < n; ++i) {
    CHECK(norm.last_coefficients()[i] == plain.last_coefficients()[i] / sigma);
  }
  REQUIRE(zoopt::optimizer_identity(norm) == "fzoo/normalized");
  REQUIRE(zoopt::optimizer_identity(plain) == "fzoo");

  SECTION("equal losses (sigma = 0) apply no gradient and keep the bits") {
    std::vector<float> z = {0.5f, -0.25f, 1e-8f, 3.0f};
    const auto z0 = z;
    zoopt::FZOO<float> flat(
        {.lr = 1.0, .eps = 1e-3, .directions = 3, .seed = 1, .normalize = true});
    flat.step([] { return 2.0; }, std::span<float>(z));
    REQUIRE(same_bits(z, z0));
    for (const double c : flat.last_coefficients()) REQUIRE(c == 0.0);
  }
}

TEST_CASE("core.fzoo: converges on an ill-conditioned quadratic in float and bfloat16") {
  // 0.5 sum l_i x_i^2, l_i in [1, 10], d = 32, x0 = 1. ZO-SGD with N
  // directions is stable for lr < N / (tr H + 2 l_max) (1/(tr H + 2 l_max)
  // per direction, the noise of N directions averaging): lr = 0.5 of it.
  constexpr std::size_t d = 32;
  const std::vector<double> l = ramp(d, 1.0, 10.0);
  double tr = 0.0;
  for (double v : l) tr += v;
  auto f = [&](auto&& x) {
    double s = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
      const double v = static_cast<float>(x[i]);
      s += 0.5 * l[i] * v * v;
    }
    return s;
  };
  auto run = [&]<class T>(T) {
    std::vector<T> x(d, T(1.0f));
    const double f0 = f(x);
    // eps = 0.02: above half a bfloat16 ulp at |x| = 1 (2^-8), so the
    // perturbation is not rounded away.
    zoopt::FZOO<T> opt({.lr = 0.5 * 8 / (tr + 20.0), .eps = 0.02, .directions = 8, .seed = 2});
    auto loss = [&](std::span<const T> v) { return f(v); };
    opt.optimize(loss, std::span<T>(x), 400);
    INFO("f(x0) = " << f0 << ", after 400 steps " << f(x));
    CHECK(f(x) < 1e-3 * f0);
  };
  run(float{});
  run(zoopt::bfloat16{});
}

TEST_CASE("core.fzoo: invalid settings name the field and touch nothing") {
  using P = zoopt::FZOO<float>::Params;
  CHECK_THROWS_MATCHES(zoopt::FZOO<float>(P{.directions = 1, .normalize = true}),
                       zoopt::InvalidArgument, zt::WhatContains("directions"));
  CHECK_THROWS_MATCHES(zoopt::FZOO<float>(P{.eps = 0.0}), zoopt::InvalidArgument,
                       zt::WhatContains("FZOO::Params: eps"));
  CHECK_THROWS_MATCHES(zoopt::FZOO<float>(P{.schedule = zoopt::LrSchedule::warmup_cosine(10, 10)}),
                       zoopt::InvalidArgument,
                       zt::WhatContains("FZOO::Params.schedule: total_steps"));
}
