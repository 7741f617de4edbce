// Weight decay with a per-span opt-out.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace {

// With a constant loss every projected gradient is 0, so the update is
// theta = theta0 - eta (0 + lambda theta0) on spans that opt in, computed as
// fl(t0 - fl(eta fl(lambda t0))) with eta and lambda themselves rounded to
// the compute type: five relative errors <= u, four of them scaled by
// eta lambda, give |x - t0 (1 - eta lambda)| <= (1 + 4 eta lambda) u |t0|
// <= 2 u |t0| for eta lambda <= 1/4, plus one subnormal ulp when eta lambda
// t0 underflows.
// Spans that opt out keep their exact bits (-0.0 and subnormals included).
template <class Opt>
void check_constant_loss(std::uint32_t n) {
  using T = typename Opt::value_type;
  const double lr = 0.05, wd = 0.3;
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const T tiny = std::numeric_limits<T>::denorm_min();
  std::vector<T> w = zt::stress_vector<T>(53), bias = zt::stress_vector<T>(29);
  std::vector<T> w2 = zt::stress_vector<T>(17);
  zoopt::ParameterSet<T> set;
  set.add("w", std::span<T>(w))
      .add("bias", std::span<T>(bias), {.weight_decay = false})
      .add("w2", std::span<T>(w2), {.weight_decay = true});
  const auto w0 = w, b0 = bias, w20 = w2;
  Opt opt(zt::make_params<Opt>(lr, 1e-3, n, 21, wd));
  zt::quiet(opt);
  opt.step([] { return 2.5; }, set);
  for (const auto& [now, was] : {std::pair{&w, &w0}, std::pair{&w2, &w20}}) {
    for (std::size_t i = 0; i < now->size(); ++i) {
      const long double t0 = (*was)[i];
      const long double want = t0 * (1.0L - static_cast<long double>(lr) * wd);
      INFO("element " << i << " theta0 " << static_cast<double>(t0));
      CHECK(std::abs(static_cast<long double>((*now)[i]) - want) <=
            2 * u * std::abs(t0) + static_cast<long double>(tiny));
    }
  }
  CHECK(zt::same_bits(bias, b0));
  // Many steps: the opted-out span never moves.
  for (int t = 0; t < 10; ++t) opt.step([] { return 2.5; }, set);
  CHECK(zt::same_bits(bias, b0));
  CHECK(std::abs(static_cast<double>(w[8])) < std::abs(static_cast<double>(w0[8])));
}

// A real loss: one step with weight decay against the same step without it.
// Both evaluate the same points (theta0 is the same), so the estimates agree
// and x_wd - x_0 = -eta lambda theta0 up to the roundings of both updates:
// the final differences (u |x_wd| + u |x_0|), the products and the sum
// g + lambda t0, each scaled by eta (eta |g| ~ |t0 - x_0|), and eta, lambda
// rounded: together <= 4u (|x_wd| + |x_0| + |t0|). Opted-out spans are
// bit-identical between the two runs.
template <class Opt>
void check_against_no_decay(std::uint32_t n) {
  using T = typename Opt::value_type;
  const double lr = 0.02, wd = 0.5;
  const double u = std::numeric_limits<T>::epsilon() / 2;
  auto fill = [](std::size_t d, double phase) {
    std::vector<T> v(d);
    for (std::size_t i = 0; i < d; ++i) v[i] = static_cast<T>(1.5 * std::sin(phase + 0.9 * i));
    return v;
  };
  std::vector<T> a1 = fill(40, 0.1), b1 = fill(13, 2.0), a2 = a1, b2 = b1;
  const auto a0 = a1, bb0 = b1;
  zoopt::ParameterSet<T> s1, s2;
  s1.add("a", std::span<T>(a1)).add("b", std::span<T>(b1), {.weight_decay = false});
  s2.add("a", std::span<T>(a2)).add("b", std::span<T>(b2), {.weight_decay = false});
  auto loss = [](const zoopt::ParameterSet<T>& s) {
    double v = 0.0;
    s.for_each([&](const std::string&, std::span<T> x) {
      for (const T e : x) v += (static_cast<double>(e) - 0.3) * (static_cast<double>(e) - 0.3);
    });
    return v;
  };
  Opt with(zt::make_params<Opt>(lr, 1e-3, n, 33, wd));
  Opt without(zt::make_params<Opt>(lr, 1e-3, n, 33, 0.0));
  const double l1 = with.step(loss, s1);
  const double l2 = without.step(loss, s2);
  CHECK(l1 == l2);
  CHECK(zt::same_bits(b1, b2));
  CHECK_FALSE(zt::same_bits(b1, bb0));  // the opted-out span still learns
  for (std::size_t i = 0; i < a1.size(); ++i) {
    const double t0 = a0[i];
    const double diff = static_cast<double>(a1[i]) - static_cast<double>(a2[i]);
    const double tol = 4 * u * (std::abs(a1[i]) + std::abs(a2[i]) + std::abs(t0));
    CHECK(std::abs(diff + lr * wd * t0) <= tol);
  }
  // A plain span: weight decay applies to all of it.
  std::vector<T> x1 = fill(16, 0.5), x2 = x1;
  const auto x0 = x1;
  Opt w2(zt::make_params<Opt>(lr, 1e-3, n, 34, wd));
  Opt wo2(zt::make_params<Opt>(lr, 1e-3, n, 34, 0.0));
  auto span_loss = [](std::span<const T> x) {
    double v = 0.0;
    for (const T e : x) v += static_cast<double>(e) * static_cast<double>(e);
    return v;
  };
  w2.step(span_loss, std::span<T>(x1));
  wo2.step(span_loss, std::span<T>(x2));
  for (std::size_t i = 0; i < x1.size(); ++i) {
    const double t0 = x0[i];
    const double diff = static_cast<double>(x1[i]) - static_cast<double>(x2[i]);
    CHECK(std::abs(diff + lr * wd * t0) <=
          4 * u * (std::abs(x1[i]) + std::abs(x2[i]) + std::abs(t0)));
  }
}

}  // namespace

TEST_CASE("core.weight_decay constant loss decays opted-in spans only", "[core][weight_decay]") {
  using FD = zoopt::ForwardDifference;
  using G = zoopt::GaussianSampler;
  for (std::uint32_t n : {1u, 3u}) {
    check_constant_loss<zoopt::MeZO<float>>(n);
    check_constant_loss<zoopt::MeZO<double>>(n);
    check_constant_loss<zoopt::MeZO<float, zoopt::RademacherSampler, FD>>(n);
    check_constant_loss<zoopt::KerZOO<float>>(n);
    check_constant_loss<zoopt::KerZOO<double>>(n);
    check_constant_loss<zoopt::KerZOO<double, G, FD>>(n);
  }
}

TEST_CASE("core.weight_decay matches the run without decay up to lr wd theta",
          "[core][weight_decay]") {
  for (std::uint32_t n : {1u, 3u}) {
    check_against_no_decay<zoopt::MeZO<float>>(n);
    check_against_no_decay<zoopt::MeZO<double>>(n);
    check_against_no_decay<zoopt::KerZOO<float>>(n);
    check_against_no_decay<zoopt::KerZOO<double, zoopt::RademacherSampler>>(n);
  }
}
