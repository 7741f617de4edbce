// Learning-rate schedules: their values, their names, and that every
// optimizer steps with lr * schedule(t).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

#include "test_util.hpp"

TEST_CASE("core.schedule: the factors follow their formulas") {
  using zoopt::LrSchedule;
  const LrSchedule constant;
  for (std::uint64_t t : {0ull, 1ull, 123456789ull}) REQUIRE(constant(t) == 1.0);

  const auto w = LrSchedule::warmup(4);
  CHECK(w(0) == 0.25);
  CHECK(w(3) == 1.0);
  CHECK(w(1000) == 1.0);

  const auto cos = LrSchedule::warmup_cosine(10, 110, 0.1);
  CHECK(cos(0) == 0.1);  // (0 + 1) / 10
  CHECK(cos(9) == 1.0);
  CHECK(cos(10) == 1.0);                    // p = 0
  CHECK(std::abs(cos(60) - 0.55) < 1e-15);  // p = 1/2: m + (1 - m) / 2
  CHECK(std::abs(cos(35) - (0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi / 4)))) < 1e-15);
  CHECK(cos(110) == 0.1);
  CHECK(cos(5000) == 0.1);

  const auto lin = LrSchedule::warmup_linear(0, 100);
  CHECK(lin(0) == 1.0);
  CHECK(lin(25) == 0.75);
  CHECK(lin(100) == 0.0);

  // kerzoo_range: (25 a^2 - 21 a^4) / 4 with a = max(1 - t/T, a_min); it is
  // E[r K(r)] of the cubic kernel at r = a rho, rho ~ U[-1, 1]. Check that
  // expectation by Simpson's rule with h = 2/2000 on U[-1, 1]: its error
  // is (2/180) h^4 max|f''''| / 2 with f = a rho K(a rho), f'''' = 24 (105/4)
  // a^4 <= 630, so below 4e-11.
  const auto kz = LrSchedule::kerzoo_range(400, 1e-4);
  const zoopt::Kernel K = zoopt::Kernel::cubic();
  for (std::uint64_t t : {0ull, 50ull, 160ull, 300ull, 399ull}) {
    const double a = 1.0 - static_cast<double>(t) / 400.0;
    const int m = 2000;
    double s = 0.0;
    for (int k = 0; k <= m; ++k) {
      const double rho = -1.0 + 2.0 * k / m;
      const double wk = (k == 0 || k == m) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
      s += wk * (a * rho) * K(a * rho);
    }
    const double expectation = s * (2.0 / m) / 3.0 / 2.0;  // mean over U[-1, 1]
    INFO("t = " << t);
    CHECK(std::abs(kz(t) - expectation) < 4e-11);
  }
  CHECK(kz(0) == 1.0);
  CHECK(kz(400) == kz(100000));  // held at a_min
  CHECK(kz(400) < 1e-6);
  // The peak, 625/336 at a^2 = 25/42, is a warm-up of 1.86x.
  double peak = 0.0;
  for (std::uint64_t t = 0; t < 400; ++t) peak = std::max(peak, kz(t));
  CHECK(peak <= 625.0 / 336.0);
  CHECK(peak > 625.0 / 336.0 - 1e-3);
}

TEST_CASE("core.schedule: names, checks and custom schedules") {
  using zoopt::LrSchedule;
  CHECK(LrSchedule{}.name() == "constant");
  CHECK(LrSchedule::warmup(7).name() == "warmup(7)");
  CHECK(LrSchedule::warmup_cosine(100, 10000, 0.1).name() == "warmup-cosine(100,10000,0.1)");
  CHECK(LrSchedule::warmup_linear(0, 50).name() == "warmup-linear(0,50,0)");
  CHECK(LrSchedule::kerzoo_range().name() == "kerzoo-range(4000,1e-04)");

  CHECK_THROWS_MATCHES(LrSchedule::warmup(0).check("X"), zoopt::InvalidArgument,
                       zt::WhatContains("X.schedule: warmup_steps"));
  CHECK_THROWS_MATCHES(LrSchedule::warmup_linear(5, 5).check("X"), zoopt::InvalidArgument,
                       zt::WhatContains("total_steps"));
  CHECK_THROWS_MATCHES(LrSchedule::warmup_cosine(0, 5, 1.5).check("X"), zoopt::InvalidArgument,
                       zt::WhatContains("final_factor"));
  CHECK_THROWS_MATCHES(LrSchedule::kerzoo_range(10, 0.0).check("X"), zoopt::InvalidArgument,
                       zt::WhatContains("a_min"));
  CHECK_THROWS_MATCHES(LrSchedule::custom("", [](std::uint64_t) { return 1.0; }).check("X"),
                       zoopt::InvalidArgument, zt::WhatContains("name"));
  CHECK_THROWS_MATCHES(LrSchedule::custom("x", nullptr).check("X"), zoopt::InvalidArgument,
                       zt::WhatContains("factor"));

  const auto halving = LrSchedule::custom(
      "halve-every-10", [](std::uint64_t t) { return std::ldexp(1.0, -static_cast<int>(t / 10)); });
  CHECK(halving.name() == "custom:halve-every-10");
  CHECK(halving(25) == 0.25);

  SECTION("a custom factor that is negative fails the step and leaves the parameters") {
    std::vector<float> x = {1.0f, -2.0f, 0.5f};
    const auto x0 = x;
    zoopt::MeZO<float> opt({.lr = 0.1,
                            .eps = 1e-3,
                            .seed = 1,
                            .schedule = LrSchedule::custom(
                                "bad", [](std::uint64_t t) { return t < 2 ? 1.0 : -1.0; })});
    auto loss = [](std::span<const float> v) { return double(v[0]) * v[0] + v[1] * v[1]; };
    opt.step(loss, std::span<float>(x));
    opt.step(loss, std::span<float>(x));
    const auto x2 = x;
    CHECK_THROWS_MATCHES(opt.step(loss, std::span<float>(x)), zoopt::InvalidArgument,
                         zt::WhatContains("custom 'bad' returned"));
    REQUIRE(zt::same_bits(x, x2));
    REQUIRE(opt.step_count() == 2);
    REQUIRE(!zt::same_bits(x, x0));
  }
}

TEMPLATE_TEST_CASE("core.schedule: an optimizer steps with lr * schedule(t)", "",
                   zoopt::MeZO<float>, zoopt::KerZOO<float>, zoopt::FZOO<float>) {
  // Two optimizers with the same seed: one scheduled, one whose constant lr
  // is set to lr * f(t) before each step. Same noise, same lr each step:
  // the same bits.
  using Opt = TestType;
  const auto sched = zoopt::LrSchedule::warmup_cosine(3, 12, 0.2);
  auto p = zt::make_params<Opt>(0.05, 1e-3, 2, 7);
  p.schedule = sched;
  Opt scheduled(p);
  std::vector<float> x = {0.3f, -1.2f, 0.8f, 2.0f, -0.1f};
  std::vector<float> y = x;
  auto loss = [](std::span<const float> v) {
    double s = 0.0;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i + 1.0) * v[i] * v[i];
    return s;
  };
  for (std::uint64_t t = 0; t < 15; ++t) {
    scheduled.step(loss, std::span<float>(x));
    auto q = zt::make_params<Opt>(0.05 * sched(t), 1e-3, 2, 7);
    Opt manual(q);
    manual.set_step_count(t);
    manual.step(loss, std::span<float>(y));
    INFO("step " << t);
    REQUIRE(zt::same_bits(x, y));
  }
  REQUIRE(zoopt::optimizer_identity(scheduled).find("+warmup-cosine(3,12,0.2)") !=
          std::string::npos);
}
