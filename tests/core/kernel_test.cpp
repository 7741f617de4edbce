// KerZOO kernels: values and moments against ALGORITHMS.md, quadrature of
// user kernels, normalisation checks, and the law of the rho actually drawn.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "test_util.hpp"

namespace {

using Catch::Matchers::Contains;
using zoopt::Kernel;

// Polynomials as coefficient vectors (p[k] multiplies rho^k), written here
// independently of Kernel's own evaluation.
using Poly = std::vector<double>;

Poly mul(const Poly& a, const Poly& b) {
  Poly c(a.size() + b.size() - 1, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < b.size(); ++j) c[i + j] += a[i] * b[j];
  return c;
}
// E[p(rho)] for rho ~ U[-1, 1]: E[rho^k] = 1 / (k + 1) for even k, 0 for odd.
double expect(const Poly& p) {
  double s = 0.0;
  for (std::size_t k = 0; k < p.size(); k += 2) s += p[k] / static_cast<double>(k + 1);
  return s;
}
Poly rho_pow(int k) {
  Poly p(k + 1, 0.0);
  p[k] = 1.0;
  return p;
}
double eval(const Poly& p, double x) {
  double v = 0.0, xp = 1.0;
  for (const double c : p) {
    v += c * xp;
    xp *= x;
  }
  return v;
}

// The table of ALGORITHMS.md, C = 1.
const Poly kLinear = {0, 3};
const Poly kCubic = {0, 15.0 / 4 * 5, 0, -15.0 / 4 * 7};
const Poly kQuintic = {0, 105.0 / 64 * 35, 0, -105.0 / 64 * 126, 0, 105.0 / 64 * 99};

void check_against(const Kernel& k, const Poly& p) {
  for (const double x : {-1.0, -0.73, -0.5, -0.1, 0.0, 0.2, 0.5, 0.9, 1.0}) {
    CHECK(k(x) == Approx(eval(p, x)).margin(1e-12));
  }
  for (int m = 0; m <= 7; ++m) {
    CHECK(k.moment(m) == Approx(expect(mul(rho_pow(m), p))).margin(1e-12));
  }
  const Poly rk = mul(rho_pow(1), p);
  CHECK(k.second_moment() == Approx(expect(mul(rk, rk))).epsilon(1e-12));
}

}  // namespace

TEST_CASE("core.kernel built-in moments match the table", "[core][kernel]") {
  const Kernel lin = Kernel::linear(), cub = Kernel::cubic(), qui = Kernel::quintic();
  // E[rK] = 1 for all three.
  CHECK(lin.moment(1) == Approx(1.0).margin(1e-14));
  CHECK(cub.moment(1) == Approx(1.0).margin(1e-14));
  CHECK(qui.moment(1) == Approx(1.0).margin(1e-14));
  // E[r^3 K]: 3/5, 0, 0.
  CHECK(lin.moment(3) == Approx(3.0 / 5).margin(1e-14));
  CHECK(cub.moment(3) == Approx(0.0).margin(1e-14));
  CHECK(qui.moment(3) == Approx(0.0).margin(1e-14));
  // E[r^5 K]: 3/7, -5/21, 0.
  CHECK(lin.moment(5) == Approx(3.0 / 7).margin(1e-14));
  CHECK(cub.moment(5) == Approx(-5.0 / 21).margin(1e-14));
  CHECK(qui.moment(5) == Approx(0.0).margin(1e-14));
  // Even moments of an odd kernel vanish.
  for (int m : {0, 2, 4}) {
    CHECK(lin.moment(m) == 0.0);
    CHECK(cub.moment(m) == 0.0);
    CHECK(qui.moment(m) == 0.0);
  }
  // Variance price E[(rK)^2]: 9/5, 25/4, and for the quintic
  // (105/64)^2 E[(99r^6 - 126r^4 + 35r^2)^2] = (105/64)^2 * 64/13 = 11025/832.
  CHECK(lin.second_moment() == Approx(9.0 / 5).epsilon(1e-13));
  CHECK(cub.second_moment() == Approx(25.0 / 4).epsilon(1e-13));
  CHECK(qui.second_moment() == Approx(11025.0 / 832).epsilon(1e-13));
  CHECK(qui.second_moment() == Approx(13.2).margin(0.06));

  // Values and all moments up to 7 against the formulas of the table.
  check_against(lin, kLinear);
  check_against(cub, kCubic);
  check_against(qui, kQuintic);

  const Kernel id = Kernel::identity();
  CHECK_FALSE(id.draws_r());
  CHECK(lin.draws_r());
  for (int m = 0; m <= 5; ++m) CHECK(id.moment(m) == 1.0);
  CHECK(id.second_moment() == 1.0);
}

TEST_CASE("core.kernel custom quadrature and polynomial kernels", "[core][kernel]") {
  // A user polynomial kernel given as a function: 64-point Gauss-Legendre on
  // each half interval is exact for these degrees, so only rounding remains.
  const Kernel cub_fn = Kernel::custom("cubic-fn", [](double r) { return eval(kCubic, r); });
  const Kernel qui_fn = Kernel::custom("quintic-fn", [](double r) { return eval(kQuintic, r); });
  for (int m = 0; m <= 9; ++m) {
    CHECK(cub_fn.moment(m) == Approx(expect(mul(rho_pow(m), kCubic))).margin(1e-12));
    CHECK(qui_fn.moment(m) == Approx(expect(mul(rho_pow(m), kQuintic))).margin(1e-12));
  }
  CHECK(cub_fn.second_moment() == Approx(25.0 / 4).epsilon(1e-12));
  CHECK(qui_fn.second_moment() == Approx(11025.0 / 832).epsilon(1e-12));
  CHECK(cub_fn.name() == "cubic-fn");
  CHECK(cub_fn.draws_r());

  // A non-polynomial kernel with closed-form moments: K = (pi^2/4) sin(pi r/2).
  // int_0^1 r sin(a r) dr = 1/a^2 and int_0^1 r^3 sin(a r) dr = 3/a^2 - 6/a^4
  // at a = pi/2, so E[rK] = 1 and E[r^3 K] = 3 - 24/pi^2.
  const double pi = std::numbers::pi;
  const Kernel sine =
      Kernel::custom("sine", [pi](double r) { return pi * pi / 4 * std::sin(pi * r / 2); });
  CHECK(sine.moment(1) == Approx(1.0).margin(1e-13));
  CHECK(sine.moment(3) == Approx(3.0 - 24.0 / (pi * pi)).margin(1e-13));
  CHECK(sine.moment(2) == Approx(0.0).margin(1e-13));

  // Kernel::polynomial: exact moments of a normalised polynomial.
  Kernel::Polynomial c{};
  std::copy(kCubic.begin(), kCubic.end(), c.begin());
  const Kernel cub_poly = Kernel::polynomial("mine", c);
  for (int m = 0; m <= 7; ++m)
    CHECK(cub_poly.moment(m) == Approx(Kernel::cubic().moment(m)).margin(1e-14));
  // A kernel mixing even and odd terms is accepted if E[rK] = 1: K = 1 + 3r
  // has E[rK] = 1, E[K] = 1.
  const Kernel mixed = Kernel::polynomial("mixed", {1, 3, 0, 0, 0, 0});
  CHECK(mixed.moment(0) == Approx(1.0));
  CHECK(mixed.moment(1) == Approx(1.0));
}

TEST_CASE("core.kernel rejects non-normalised weights", "[core][kernel]") {
  // K = r: E[rK] = 1/3.
  CHECK_THROWS_MATCHES(Kernel::polynomial("bad", {0, 1, 0, 0, 0, 0}), std::invalid_argument,
                       zt::WhatContains("coeffs"));
  // The quintic with the published 195/64: E[rK] = 13/7.
  constexpr double c = 195.0 / 64;
  CHECK_THROWS_MATCHES(Kernel::polynomial("paper-quintic", {0, 35 * c, 0, -126 * c, 0, 99 * c}),
                       std::invalid_argument, zt::WhatContains("coeffs"));
  // Off by 1e-6: above the 1e-12 tolerance.
  CHECK_THROWS_AS(Kernel::polynomial("close", {0, 3 * (1 + 1e-6), 0, 0, 0, 0}),
                  std::invalid_argument);
  CHECK_THROWS_MATCHES(Kernel::custom("bad", [](double r) { return r; }), std::invalid_argument,
                       zt::WhatContains("weight"));
  CHECK_THROWS_MATCHES(Kernel::custom("bad", [](double r) { return 2 * 3 * r; }),
                       std::invalid_argument, zt::WhatContains("weight"));
  CHECK_THROWS_MATCHES(Kernel::custom("empty", std::function<double(double)>{}),
                       std::invalid_argument, zt::WhatContains("weight"));
}

TEST_CASE("core.kernel rho drawn by KerZOO is uniform on -1 to 1", "[core][kernel]") {
  zoopt::KerZOO<double>::Params p;
  p.seed = 77;
  p.eps = 1e-3;
  p.C = 1.0;
  const zoopt::KerZOO<double> opt(p);
  const Kernel& k = p.kernel;  // cubic

  constexpr std::uint64_t steps = 100000;
  constexpr std::uint32_t dirs = 3;
  const double n = static_cast<double>(steps * dirs);
  double s1 = 0, s2 = 0, srk = 0, sr3k = 0;
  std::vector<double> all;
  all.reserve(steps * dirs);
  for (std::uint64_t t = 0; t < steps; ++t) {
    for (std::uint32_t i = 0; i < dirs; ++i) {
      const double rho = opt.rho(t, i);
      REQUIRE(rho >= -1.0);
      REQUIRE(rho < 1.0);
      // The draw a step uses is built from exactly this rho: h = eps rho
      // (no range schedule) and weight = C K(rho).
      const zoopt::DirectionDraw d = opt.draw_at(t, i);
      REQUIRE(d.h == p.eps * rho);
      REQUIRE(d.weight == p.C * k(rho));
      s1 += rho;
      s2 += rho * rho;
      srk += rho * k(rho);
      sr3k += rho * rho * rho * k(rho);
      all.push_back(rho);
    }
  }
  // rho ~ U[-1,1]: E rho = 0, Var rho = 1/3          -> SE = sqrt(1/(3N))
  // E rho^2 = 1/3, Var rho^2 = 1/5 - 1/9 = 4/45     -> SE = sqrt(4/(45N))
  // E[rho K] = 1, Var = E[(rho K)^2] - 1 = 25/4 - 1 -> SE = sqrt(21/(4N))
  // E[rho^3 K] = 0, Var = E[rho^6 K^2] (exact polynomial moment below)
  const Poly r3k = mul(rho_pow(3), kCubic);
  const double var_r3k = expect(mul(r3k, r3k));
  CHECK(std::abs(s1 / n) <= 5 * std::sqrt(1.0 / (3 * n)));
  CHECK(std::abs(s2 / n - 1.0 / 3) <= 5 * std::sqrt(4.0 / (45 * n)));
  CHECK(std::abs(srk / n - 1.0) <= 5 * std::sqrt((k.second_moment() - 1.0) / n));
  CHECK(std::abs(sr3k / n) <= 5 * std::sqrt(var_r3k / n));

  // Kolmogorov-Smirnov: sup |F_N - F| < 1.95 / sqrt(N) at level 0.001.
  std::sort(all.begin(), all.end());
  double ks = 0.0;
  for (std::size_t j = 0; j < all.size(); ++j) {
    const double f = (all[j] + 1.0) / 2.0;
    ks = std::max({ks, std::abs(f - static_cast<double>(j) / n),
                   std::abs(f - static_cast<double>(j + 1) / n)});
  }
  CHECK(ks < 1.95 / std::sqrt(n));

  // Directions within a step draw different rho; the identity kernel draws
  // none (rho = 1).
  CHECK(opt.rho(5, 0) != opt.rho(5, 1));
  zoopt::KerZOO<double>::Params pid = p;
  pid.kernel = Kernel::identity();
  const zoopt::KerZOO<double> id(pid);
  CHECK(id.rho(5, 0) == 1.0);
  CHECK(id.draw_at(5, 2).h == p.eps);
  CHECK(id.draw_at(5, 2).weight == 1.0);
}

TEST_CASE("core.kernel range schedule keeps the moments", "[core][kernel]") {
  // r = a rho, weight C K(rho) / a: then r * weight = C rho K(rho), whatever
  // a is, so E[r w] = C and E[r^3 w] = a^2 C E[rho^3 K] = 0 exactly.
  zoopt::KerZOO<double>::Params p;
  p.seed = 3;
  p.C = 2.0;
  p.range.decay_steps = 100;
  p.range.a_min = 0.25;
  const zoopt::KerZOO<double> opt(p);
  for (std::uint64_t t : {0ULL, 10ULL, 50ULL, 99ULL, 1000ULL}) {
    const double a = p.range.at(t);
    CHECK(a == Approx(std::max(1.0 - static_cast<double>(t) / 100.0, 0.25)));
    for (std::uint32_t i = 0; i < 3; ++i) {
      const double rho = opt.rho(t, i);
      const zoopt::DirectionDraw d = opt.draw_at(t, i);
      CHECK(d.h == Approx(p.eps * a * rho).epsilon(1e-15));
      CHECK(d.h / p.eps * d.weight == Approx(p.C * rho * p.kernel(rho)).epsilon(1e-13));
    }
  }
}

TEST_CASE("core.kernel the published preset: K(a rho) not rescaled, C = 4, acceleration",
          "[core][kernel]") {
  const auto p = zoopt::kerzoo_published<double>(1e-3, 5);
  CHECK(p.C == 4.0);
  CHECK(p.directions == 1);
  CHECK(p.range.decay_steps == 4000);
  CHECK(p.range.a_min == 1e-4);
  CHECK(!p.range.rescale_kernel);
  CHECK(p.update.growth == 6.0);
  const zoopt::KerZOOPublished<double> opt(p);
  CHECK(zoopt::optimizer_identity(opt) == "kerzoo/cubic+update:accelerated(6)");
  // r = a rho and the weight is C K(r): the mean of r * weight over rho is
  // C E[a rho K(a rho)] = 25 a^2 - 21 a^4 (the cubic kernel, C = 4), the
  // factor LrSchedule::kerzoo_range(4000, 1e-4) gives (times C = 4).
  const auto hidden = zoopt::LrSchedule::kerzoo_range(4000, 1e-4);
  for (std::uint64_t t : {0ULL, 1000ULL, 2500ULL, 3999ULL, 5000ULL}) {
    const double a = p.range.at(t);
    for (std::uint32_t i = 0; i < 3; ++i) {
      const double rho = opt.rho(t, i);
      const zoopt::DirectionDraw d = opt.draw_at(t, i);
      CHECK(d.h == Approx(p.eps * a * rho).epsilon(1e-15));
      CHECK(d.weight == Approx(4.0 * p.kernel(a * rho)).epsilon(1e-13));
    }
    // E over rho ~ U[-1, 1] of r * weight: the integrand is a polynomial of
    // degree 4 in rho, so 3-point Gauss-Legendre is exact (up to rounding).
    const double node = std::sqrt(3.0 / 5.0);
    auto f = [&](double rho) { return a * rho * 4.0 * p.kernel(a * rho); };
    const double mean = 0.5 * (8.0 / 9.0 * f(0.0) + 5.0 / 9.0 * (f(node) + f(-node)));
    CHECK(mean == Approx(25 * a * a - 21 * a * a * a * a).margin(1e-12));
    CHECK(mean == Approx(4.0 * hidden(t)).margin(1e-12));
  }
  // Everything but the range keeps KerZOO's rescaled kernel by default.
  CHECK(zoopt::RangeSchedule{}.rescale_kernel);
}
