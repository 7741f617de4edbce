// Convergence of MeZO and KerZOO on an ill-conditioned quadratic
// (condition number 100) at the ZO-SGD rate.
//
// f(x) = 1/2 sum_i lambda_i x_i^2, lambda log-spaced in [1, 100] (mu = 1,
// L = 100). The central difference is exact on a quadratic, so one
// direction's estimate is s u (u'g) with s = rho K(rho) (MeZO: s = 1) and the
// n-direction step is x+ = x - eta ghat. Then
//   E f(x+) = f - eta |g|^2 + (eta^2 / 2) E[ghat' A ghat],
//   E[ghat' A ghat] = (1/n) m2 E[(u'g)^2 u'Au] + (1 - 1/n) g'Ag
//                  <= [m2 (tr A + 2L) / n + L] |g|^2 =: B |g|^2,
// using E[(u'g)^2 u'Au] = tr(A)|g|^2 + 2 g'Ag for Gaussian u (Rademacher:
// the same minus 2 sum_i A_ii g_i^2, so the bound holds) and m2 = E[(rho K)^2].
// With eta = 1/B: E f(x+) <= f - |g|^2 / (2B) <= (1 - mu/B) f, since
// |g|^2 >= 2 mu f. After N steps E f_N <= (1 - mu/B)^N f_0 <= 1e-3 f_0 for
// N = ceil(ln(1000) B / mu). Markov's inequality then bounds one trajectory:
// P(f_N > 1e-2 f_0) <= 0.1, and the fixed seeds make the test deterministic.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace {

constexpr std::size_t kDim = 16;

std::vector<double> lambdas() {
  std::vector<double> l(kDim);
  for (std::size_t i = 0; i < kDim; ++i) l[i] = std::pow(100.0, double(i) / double(kDim - 1));
  return l;
}

template <class Opt>
void check_rate(typename Opt::Params p, double m2) {
  using T = typename Opt::value_type;
  const std::vector<double> lam = lambdas();
  const double mu = lam.front(), L = lam.back();
  REQUIRE(L / mu >= 100.0 * (1 - 1e-12));
  double trace = 0.0;
  for (const double v : lam) trace += v;
  const double n = p.directions;
  const double B = m2 * (trace + 2 * L) / n + L;
  // KerZOO's step is C * (rho K) u (u'g): eta = lr * C.
  double C = 1.0;
  if constexpr (requires { p.C; }) C = p.C;
  p.lr = 1.0 / (B * C);
  const auto steps = static_cast<std::size_t>(std::ceil(std::log(1000.0) * B / mu));

  zt::DiagQuadratic f;
  f.lambda = lam;
  f.center.assign(kDim, 0.0);
  f.b.assign(kDim, 0.0);
  std::vector<T> x(kDim);
  for (std::size_t i = 0; i < kDim; ++i) x[i] = static_cast<T>(i % 2 == 0 ? 1.0 : -1.0);
  const double f0 = f(std::span<const T>(x));
  Opt opt(p);
  for (std::size_t t = 0; t < steps; ++t) opt.step(f, std::span<T>(x));
  const double fN = f(std::span<const T>(x));
  INFO("steps " << steps << " lr " << p.lr << " f0 " << f0 << " fN " << fN);
  CHECK(fN <= 1e-2 * f0);
  CHECK(std::isfinite(fN));
}

}  // namespace

TEST_CASE("core.convergence mezo on a quadratic with condition number 100", "[core][convergence]") {
  check_rate<zoopt::MeZO<float>>(zt::make_params<zoopt::MeZO<float>>(0, 1e-3, 1, 301), 1.0);
  check_rate<zoopt::MeZO<double>>(zt::make_params<zoopt::MeZO<double>>(0, 1e-3, 1, 302), 1.0);
  using R = zoopt::MeZO<double, zoopt::RademacherSampler>;
  check_rate<R>(zt::make_params<R>(0, 1e-3, 4, 303), 1.0);
}

TEST_CASE("core.convergence kerzoo on a quadratic with condition number 100",
          "[core][convergence]") {
  const double m2 = zoopt::Kernel::cubic().second_moment();
  using KF = zoopt::KerZOO<float>;
  using KD = zoopt::KerZOO<double>;
  check_rate<KF>(zt::make_params<KF>(0, 1e-3, 3, 304), m2);
  auto p = zt::make_params<KD>(0, 1e-3, 3, 305);
  p.C = 4.0;  // the lr is divided by C: same trajectory law
  check_rate<KD>(p, m2);
  using R = zoopt::KerZOO<double, zoopt::RademacherSampler>;
  check_rate<R>(zt::make_params<R>(0, 1e-3, 3, 306), m2);
}
