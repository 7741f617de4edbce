// Low-precision updates: seeded stochastic rounding (unbiased, replayable)
// and the eps-below-half-an-ulp warning.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include "common.hpp"

using namespace exact_test;
using zoopt::bfloat16;
using zoopt::half;

namespace {

/// The two neighbours lo, hi of v in H (by magnitude, same sign as v) for a
/// v that H cannot represent.
template <class H>
std::pair<H, H> neighbours(float v) {
  const H a(v);
  const auto nb = a.to_bits();
  const bool up = std::fabs(static_cast<float>(a)) < std::fabs(v);
  return {H::from_bits(up ? nb : static_cast<std::uint16_t>(nb - 1)),
          H::from_bits(up ? static_cast<std::uint16_t>(nb + 1) : nb)};
}

}  // namespace

TEMPLATE_TEST_CASE(
    "exact: stochastic_round picks a neighbour with probability proportional to "
    "proximity",
    "[exact][rounding]", half, bfloat16) {
  using H = TestType;
  // v between two neighbours lo < |v| < hi; frac = (|v| - lo) / (hi - lo).
  // The result is hi iff r < frac * 2^32, so P(hi) = ceil(frac 2^32) / 2^32:
  // check the threshold exactly on both sides.
  const float values[] = {1.0f + 0x1p-12f, -1.0f - 0x1p-11f, 3.0e-6f,  -7.5e-8f, 0.0205f,
                          1.9999f,         65000.0f,         1.0e-30f, -1.5e-3f};
  for (const float v : values) {
    const H a = H(v);
    const float fa = static_cast<float>(a);
    if (fa == v || std::isinf(fa)) continue;
    const auto [lo, hi] = neighbours<H>(v);
    const double dlo = std::fabs(static_cast<double>(static_cast<float>(lo)));
    const double dhi = std::fabs(static_cast<double>(static_cast<float>(hi)));
    const double frac = (std::fabs(static_cast<double>(v)) - dlo) / (dhi - dlo);
    REQUIRE(frac > 0.0);
    REQUIRE(frac < 1.0);
    const auto threshold = static_cast<std::uint64_t>(std::ceil(frac * 0x1p32));
    INFO("v = " << v);
    REQUIRE(zoopt::stochastic_round<H>(v, static_cast<std::uint32_t>(threshold - 1)).to_bits() ==
            hi.to_bits());
    REQUIRE(zoopt::stochastic_round<H>(v, static_cast<std::uint32_t>(threshold)).to_bits() ==
            lo.to_bits());
    REQUIRE(zoopt::stochastic_round<H>(v, 0u).to_bits() == hi.to_bits());
    REQUIRE(zoopt::stochastic_round<H>(v, 0xffffffffu).to_bits() == lo.to_bits());
  }
  // Representable values, NaN, Inf and overflow.
  for (std::uint32_t r : {0u, 0x80000000u, 0xffffffffu}) {
    REQUIRE(zoopt::stochastic_round<H>(0.5f, r).to_bits() == H(0.5f).to_bits());
    REQUIRE(zoopt::stochastic_round<H>(-0.0f, r).to_bits() == H(-0.0f).to_bits());
    REQUIRE(std::isnan(static_cast<float>(zoopt::stochastic_round<H>(std::nanf(""), r))));
    REQUIRE(std::isinf(static_cast<float>(zoopt::stochastic_round<H>(-INFINITY, r))));
    if constexpr (std::is_same_v<H, half>) {
      // Beyond the round-to-nearest overflow threshold: Inf, as with nearest.
      REQUIRE(std::isinf(static_cast<float>(zoopt::stochastic_round<H>(7e4f, r))));
      // Between the largest finite value and that threshold: saturates.
      REQUIRE(zoopt::stochastic_round<H>(65510.0f, r).to_bits() == 0x7bffu);
    }
  }
}

TEMPLATE_TEST_CASE("exact: stochastic_round is unbiased (mean within CLT bounds)",
                   "[exact][rounding]", half, bfloat16) {
  using H = TestType;
  std::mt19937 gen(2024);
  constexpr int n = 200000;
  for (const float v : {1.0f + 0x1p-13f, -0.3f, 2.5e-7f, 1.0f / 3.0f, 6.1e-5f}) {
    const float fa = static_cast<float>(H(v));
    if (fa == v) continue;
    const auto [lo_h, hi_h] = neighbours<H>(v);
    const double lo = static_cast<float>(lo_h);
    const double hi = static_cast<float>(hi_h);
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      const auto x = zoopt::stochastic_round<H>(v, gen());
      REQUIRE((x.to_bits() == lo_h.to_bits() || x.to_bits() == hi_h.to_bits()));
      sum += static_cast<float>(x);
    }
    // Two outcomes with P(hi) = p: sd of the mean = (hi - lo) sqrt(p(1-p)/n).
    const double p = (static_cast<double>(v) - lo) / (hi - lo);
    const double sd = std::fabs(hi - lo) * std::sqrt(p * (1 - p) / n);
    INFO("v = " << v << " mean = " << sum / n << " sd = " << sd);
    REQUIRE(p > 0.0);
    REQUIRE(p < 1.0);
    REQUIRE(std::fabs(sum / n - static_cast<double>(v)) <= 5.0 * sd);
  }
}

TEST_CASE("exact: backend rounding defaults and options", "[exact][rounding]") {
  CHECK(zoopt::CpuBackend<half, zoopt::GaussianSampler>{}.rounding() ==
        zoopt::Rounding::stochastic);
  CHECK(zoopt::CpuBackend<bfloat16, zoopt::GaussianSampler>{}.rounding() ==
        zoopt::Rounding::stochastic);
  CHECK(zoopt::CpuBackend<float, zoopt::GaussianSampler>{}.rounding() == zoopt::Rounding::nearest);
  CHECK(zoopt::CpuBackend<half, zoopt::GaussianSampler>(
            zoopt::CpuBackendOptions{.rounding = zoopt::Rounding::nearest})
            .rounding() == zoopt::Rounding::nearest);
  REQUIRE_THROWS_WITH((zoopt::CpuBackend<double, zoopt::GaussianSampler>(
                          zoopt::CpuBackendOptions{.rounding = zoopt::Rounding::stochastic})),
                      Catch::Contains("rounding"));
}

TEMPLATE_TEST_CASE("exact: sub-half-ulp updates survive in expectation with stochastic rounding",
                   "[exact][rounding]", half, bfloat16) {
  using T = TestType;
  using Backend = zoopt::CpuBackend<T, zoopt::GaussianSampler>;
  constexpr std::size_t d = 65536;
  // |update| = lr * 0.7 * |z| <= lr * 3.9 (|z| < 5.6 for 24-bit Box-Muller
  // uniforms), below half the spacing just below 1.0 (half: 2^-12, bf16:
  // 2^-9), so round-to-nearest loses every update.
  const double lr = std::is_same_v<T, half> ? 5e-5 : 4e-4;
  const double coef = 0.7;
  const std::vector<T> base(d, T(1.0f));
  const std::vector<zoopt::Term> terms = {{0, 0.0, coef}};
  auto run = [&](zoopt::Rounding r, std::uint64_t seed) {
    std::vector<T> x = base;
    Backend b(zoopt::CpuBackendOptions{.rounding = r});
    const std::vector<zoopt::SpanView<T>> views = {{x.data(), d, 0, true, 1.0}};
    b.update(views, seed, 3, terms, lr, 0.0);
    return x;
  };
  // Nearest: every update is below half an ulp and vanishes.
  REQUIRE(first_difference(base, run(zoopt::Rounding::nearest, 1)) == -1);
  // Stochastic: the mean of (x - exact) is within 5 sd of 0, with the sd
  // from each element's two-point rounding law.
  const auto x = run(zoopt::Rounding::stochastic, 1);
  double err = 0.0;
  double var = 0.0;
  double moved = 0.0;
  for (std::size_t g = 0; g < d; ++g) {
    const float z = zoopt::noise_at<zoopt::GaussianSampler, float>(zoopt::NoiseKey{1, 3, 0}, g);
    const float exact = 1.0f - static_cast<float>(lr) * (static_cast<float>(coef) * z);
    if (static_cast<float>(T(exact)) == exact) continue;
    const auto [lo, hi] = neighbours<T>(exact);
    const double flo = static_cast<float>(lo);
    const double gap = std::fabs(static_cast<double>(static_cast<float>(hi)) - flo);
    const double p = std::fabs(static_cast<double>(exact) - flo) / gap;  // P(hi)
    var += gap * gap * p * (1 - p);
    err += static_cast<double>(static_cast<float>(x[g])) - exact;
    if (x[g].to_bits() != base[g].to_bits()) moved += 1;
  }
  INFO("mean error " << err / d << ", sd " << std::sqrt(var) / d << ", moved " << moved / d);
  REQUIRE(moved > 0.01 * d);
  REQUIRE(std::fabs(err) <= 5.0 * std::sqrt(var));
  // Deterministic from the seed; another seed gives other bits.
  REQUIRE(first_difference(x, run(zoopt::Rounding::stochastic, 1)) == -1);
  REQUIRE(first_difference(x, run(zoopt::Rounding::stochastic, 2)) != -1);
}

TEMPLATE_TEST_CASE("exact: rounding bits depend on the element index, not on the span split",
                   "[exact][rounding]", half, bfloat16) {
  using T = TestType;
  auto one = weights<T>(1000, 4);
  auto two = one;
  zoopt::MeZO<T> a({.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 8});
  zoopt::MeZO<T> b({.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 8});
  zoopt::ParameterSet<T> set;
  set.add("head", std::span<T>(two.data(), 333)).add("tail", std::span<T>(two.data() + 333, 667));
  for (int s = 0; s < 20; ++s) {
    a.step([&](std::span<const T> p) { return Quadratic{}(p); }, std::span<T>(one));
    b.step([&] { return Quadratic{}(std::span<const T>(two)); }, set);
  }
  REQUIRE(first_difference(one, two) == -1);
}

TEST_CASE("exact: eps below half an ulp warns once per optimizer", "[exact][rounding]") {
  std::vector<std::string> messages;
  auto sink = [&](const std::string& m) { messages.push_back(m); };
  SECTION("half storage with values near 8 (half an ulp = 2^-8 > eps)") {
    std::vector<half> p(512, half(8.0f));
    zoopt::MeZO<half> opt({.lr = 1e-3, .eps = 1e-3});
    opt.set_warning_sink(sink);
    for (int s = 0; s < 3; ++s) opt.step(Quadratic{}, std::span<half>(p));
    REQUIRE(messages.size() == 1);
    CHECK_THAT(messages[0], Catch::Contains("eps = 0.001") && Catch::Contains("100% ") &&
                                Catch::Contains("half"));
  }
  SECTION("half storage with realistic weights: no warning") {
    auto p = weights<half>(512, 3, 0.02, false);
    zoopt::MeZO<half> opt({.lr = 1e-3, .eps = 1e-3});
    opt.set_warning_sink(sink);
    opt.step(Quadratic{}, std::span<half>(p));
    REQUIRE(messages.empty());
  }
  SECTION("bfloat16 with eps = 5e-5 on N(0, 0.02^2) weights warns") {
    // bf16 has 8 significant bits: half an ulp is 2^-14 > 5e-5 for every
    // |theta| >= 2^-6, i.e. P(|N(0,1)| >= 0.78) ~ 43% of the elements.
    auto p = weights<bfloat16>(4096, 3, 0.02, false);
    typename zoopt::KerZOO<bfloat16>::Params kp;
    kp.lr = 1e-3;
    kp.eps = 5e-5;
    zoopt::KerZOO<bfloat16> opt(kp);
    const double share = opt.backend().fraction_below_half_ulp(
        std::vector<zoopt::SpanView<bfloat16>>{{p.data(), p.size(), 0, true, 1.0}}, 5e-5);
    opt.set_warning_sink(sink);
    opt.step(Quadratic{}, std::span<bfloat16>(p));
    REQUIRE(share > 0.1);
    REQUIRE(messages.size() == 1);
  }
  SECTION("the threshold is settable and checked") {
    std::vector<half> p(512, half(8.0f));
    zoopt::MeZO<half> opt({.lr = 1e-3, .eps = 1e-3});
    opt.set_warning_sink(sink);
    REQUIRE_THROWS_WITH(opt.set_eps_warning_share(1.5), Catch::Contains("share"));
    opt.set_eps_warning_share(1.0);
    opt.step(Quadratic{}, std::span<half>(p));
    REQUIRE(messages.empty());
  }
}
