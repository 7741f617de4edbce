// PertNN: shape, the exact-1 network, the hand-written backward pass against
// central finite differences, and the block statistics.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "zoopt/learned/pert_nn.hpp"

namespace {

double uniform(std::mt19937_64& g, double a, double b) {
  return a + (b - a) * static_cast<double>(g() >> 11) * 0x1p-53;
}

// A network with every weight random (w2 != 0, so every weight matters).
zoopt::PertNN random_net(std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::array<double, zoopt::PertNN::parameter_count> w{};
  for (double& v : w) v = uniform(g, -0.6, 0.6);
  zoopt::PertNN n;
  n.read_from(w);
  return n;
}

}  // namespace

TEST_CASE("learned: PertNN has 449 weights and round-trips them", "[learned][pertnn]") {
  STATIC_REQUIRE(zoopt::PertNN::parameter_count == 449);
  const zoopt::PertNN n = random_net(3);
  std::array<double, 449> a{};
  std::array<double, 449> b{};
  n.write_to(a);
  zoopt::PertNN m;
  m.read_from(a);
  m.write_to(b);
  CHECK(a == b);
  CHECK(m.w1 == n.w1);
  CHECK(m.b2 == n.b2);
}

TEST_CASE("learned: PertNN::unit outputs exactly 1 for any input", "[learned][pertnn]") {
  std::mt19937_64 g(11);
  for (std::uint32_t block = 0; block < 4; ++block) {
    const zoopt::PertNN n = zoopt::PertNN::unit(5, block);
    CHECK(n.w1.cwiseAbs().maxCoeff() <= 1.0 / std::sqrt(5.0));
    CHECK(n.w1.cwiseAbs().maxCoeff() > 0.0);  // the hidden layer is random, not zero
    for (int k = 0; k < 20; ++k) {
      zoopt::PertFeatures x;
      for (int j = 0; j < 5; ++j) x(j) = uniform(g, -1e3, 1e3);
      CHECK(n.forward(x) == 1.0);
      zoopt::PertNN::Cache c;
      CHECK(n.forward(x, c) == 1.0);
    }
  }
  // Different blocks draw different hidden layers.
  CHECK(zoopt::PertNN::unit(5, 0).w1 != zoopt::PertNN::unit(5, 1).w1);
  CHECK(zoopt::PertNN::unit(5, 0).w1 == zoopt::PertNN::unit(5, 0).w1);
}

TEST_CASE("learned: PertNN backward matches central finite differences", "[learned][pertnn]") {
  // J(w) = a * s(w; x). Central differences with step h have truncation
  // error h^2/6 |J'''| (|J'''| = O(1) here: weights and inputs O(1)) and
  // rounding error ~ 1e-16 |J| / h; with h = 1e-5 both are below 1e-9, so
  // 1e-7 (absolute, the gradients are O(1)) has a wide margin.
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    zoopt::PertNN n = random_net(seed);
    std::mt19937_64 g(seed + 100);
    zoopt::PertFeatures x;
    for (int j = 0; j < 5; ++j) x(j) = uniform(g, -1.5, 1.5);
    const double a = uniform(g, 0.5, 2.0);
    zoopt::PertNN::Cache cache;
    const double s = n.forward(x, cache);
    REQUIRE(std::abs(cache.pre) > 1e-3);  // away from the kink of |.|
    CHECK(s == std::abs(cache.pre));
    zoopt::PertNN grad;
    grad.set_zero();
    n.backward(cache, a, grad);
    std::array<double, 449> gw{};
    grad.write_to(gw);
    std::array<double, 449> w{};
    n.write_to(w);
    const double h = 1e-5;
    double worst = 0.0;
    for (std::size_t k = 0; k < w.size(); ++k) {
      std::array<double, 449> wp = w;
      std::array<double, 449> wm = w;
      wp[k] += h;
      wm[k] -= h;
      zoopt::PertNN np;
      zoopt::PertNN nm;
      np.read_from(wp);
      nm.read_from(wm);
      const double fd = a * (np.forward(x) - nm.forward(x)) / (2.0 * h);
      worst = std::max(worst, std::abs(fd - gw[k]));
    }
    CHECK(worst < 1e-7);
    // backward() accumulates: a second call doubles the gradient.
    n.backward(cache, a, grad);
    std::array<double, 449> gw2{};
    grad.write_to(gw2);
    for (std::size_t k = 0; k < gw.size(); ++k) CHECK(gw2[k] == 2.0 * gw[k]);
  }
}

TEST_CASE("learned: PertNN backward through a negative pre-activation flips the sign",
          "[learned][pertnn]") {
  zoopt::PertNN n = zoopt::PertNN::unit(1, 0);
  n.b2 = -2.0;  // pre = -2 for every input: s = 2, ds/db2 = -1
  zoopt::PertNN::Cache c;
  const zoopt::PertFeatures x = zoopt::PertFeatures::Constant(0.3);
  CHECK(n.forward(x, c) == 2.0);
  zoopt::PertNN grad;
  grad.set_zero();
  n.backward(c, 1.0, grad);
  CHECK(grad.b2 == -1.0);
  CHECK(grad.w2.isApprox(-c.h.transpose()));
}

TEST_CASE("learned: block_stats gives the mean and the Bessel-corrected variance",
          "[learned][pertnn]") {
  std::mt19937_64 g(9);
  // Large offset, small spread: the naive sum of squares in float would lose
  // everything; the shifted double accumulation must not.
  std::vector<float> x(1001);
  for (float& v : x) v = static_cast<float>(1e4 + uniform(g, -1.0, 1.0));
  long double m = 0.0L;
  for (const float v : x) m += v;
  m /= static_cast<long double>(x.size());
  long double var = 0.0L;
  for (const float v : x) var += (v - m) * (v - m);
  var /= static_cast<long double>(x.size() - 1);
  const zoopt::BlockStats st = zoopt::block_stats(std::span<const float>(x));
  CHECK(st.mean == Approx(static_cast<double>(m)).epsilon(1e-12));
  // ~1/3 (uniform on [-1, 1]); relative error from double accumulation of
  // 1001 terms of size ~1 is far below 1e-9.
  CHECK(st.variance == Approx(static_cast<double>(var)).epsilon(1e-9));
  CHECK(st.variance == Approx(1.0 / 3.0).epsilon(0.1));

  const std::vector<double> one{4.5};
  const zoopt::BlockStats s1 = zoopt::block_stats(std::span<const double>(one));
  CHECK(s1.mean == 4.5);
  CHECK(s1.variance == 0.0);
  const std::vector<double> two{1.0, 3.0};
  const zoopt::BlockStats s2 = zoopt::block_stats(std::span<const double>(two));
  CHECK(s2.mean == 2.0);
  CHECK(s2.variance == 2.0);  // ((1-2)^2 + (3-2)^2) / (2 - 1)
}
