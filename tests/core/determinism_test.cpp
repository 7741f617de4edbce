// Determinism: same seed -> bit-identical, different seed -> different,
// resuming from a step count continues the same trajectory, and KerZOO with
// the identity kernel and C = 1 is MeZO bit for bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace {

zt::DiagQuadratic make_loss(std::size_t d) {
  zt::DiagQuadratic f;
  for (std::size_t i = 0; i < d; ++i) {
    f.lambda.push_back(0.5 + static_cast<double>(i % 7));
    f.center.push_back(std::cos(0.37 * static_cast<double>(i)));
    f.b.push_back(0.0);
  }
  return f;
}

template <class T>
std::vector<T> start(std::size_t d) {
  std::vector<T> x(d);
  for (std::size_t i = 0; i < d; ++i) x[i] = static_cast<T>(std::sin(1.3 * static_cast<double>(i)));
  return x;
}

template <class Opt>
std::vector<typename Opt::value_type> run(typename Opt::Params p, int steps,
                                          std::uint64_t first_step = 0,
                                          std::vector<typename Opt::value_type> x = {}) {
  using T = typename Opt::value_type;
  const std::size_t d = 203;
  if (x.empty()) x = start<T>(d);
  const auto f = make_loss(d);
  Opt opt(p);
  opt.set_step_count(first_step);
  for (int t = 0; t < steps; ++t) opt.step(f, std::span<T>(x));
  return x;
}

template <class Opt>
void check_determinism() {
  using T = typename Opt::value_type;
  const auto p = zt::make_params<Opt>(1e-3, 1e-3, 2, 4242, 0.01);
  const auto a = run<Opt>(p, 30);
  const auto b = run<Opt>(p, 30);
  CHECK(zt::same_bits(a, b));
  CHECK_FALSE(zt::same_bits(a, start<T>(203)));

  // Another seed moves almost every element differently.
  auto q = p;
  q.seed = 4243;
  const auto c = run<Opt>(q, 30);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != c[i];
  CHECK(differ > a.size() * 9 / 10);

  // Resuming: 12 steps, then a fresh optimizer at step_count 12 for 18 more
  // equals 30 steps in one go.
  const auto half = run<Opt>(p, 12);
  const auto resumed = run<Opt>(p, 18, 12, half);
  CHECK(zt::same_bits(resumed, a));
}

template <class T, class Sampler, class Estimator>
void check_identity_is_mezo(std::uint32_t n, double wd) {
  using M = zoopt::MeZO<T, Sampler, Estimator>;
  using K = zoopt::KerZOO<T, Sampler, Estimator>;
  auto pm = zt::make_params<M>(2e-3, 1e-3, n, 99, wd);
  auto pk = zt::make_params<K>(2e-3, 1e-3, n, 99, wd);
  pk.kernel = zoopt::Kernel::identity();
  pk.C = 1.0;
  const std::size_t d = 203;
  const auto f = make_loss(d);
  std::vector<T> xm = start<T>(d), xk = start<T>(d);
  M mezo(pm);
  K ker(pk);
  for (int t = 0; t < 40; ++t) {
    const double lm = mezo.step(f, std::span<T>(xm));
    const double lk = ker.step(f, std::span<T>(xk));
    REQUIRE(lm == lk);
    REQUIRE(zt::same_bits(xm, xk));
  }
  CHECK_FALSE(zt::same_bits(xm, start<T>(d)));
  // The cubic kernel does not reproduce MeZO.
  pk.kernel = zoopt::Kernel::cubic();
  K cub(pk);
  std::vector<T> xc = start<T>(d);
  for (int t = 0; t < 5; ++t) cub.step(f, std::span<T>(xc));
  CHECK_FALSE(zt::same_bits(xc, run<M>(pm, 5)));
}

}  // namespace

TEST_CASE("core.determinism same seed same bits and other seed differs", "[core][determinism]") {
  check_determinism<zoopt::MeZO<float>>();
  check_determinism<zoopt::MeZO<double>>();
  check_determinism<zoopt::MeZO<float, zoopt::RademacherSampler>>();
  check_determinism<zoopt::KerZOO<float>>();
  check_determinism<zoopt::KerZOO<double>>();
  check_determinism<zoopt::KerZOO<double, zoopt::RademacherSampler, zoopt::ForwardDifference>>();
}

TEST_CASE("core.determinism kerzoo identity kernel with C=1 is mezo", "[core][determinism]") {
  using G = zoopt::GaussianSampler;
  using R = zoopt::RademacherSampler;
  using CD = zoopt::CentralDifference;
  using FD = zoopt::ForwardDifference;
  check_identity_is_mezo<float, G, CD>(1, 0.0);
  check_identity_is_mezo<double, G, CD>(1, 0.0);
  check_identity_is_mezo<float, G, CD>(3, 0.01);
  check_identity_is_mezo<double, R, CD>(3, 0.0);
  check_identity_is_mezo<float, R, FD>(2, 0.0);
  check_identity_is_mezo<double, G, FD>(1, 0.01);
}
