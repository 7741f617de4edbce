// The loss call forms, and what the loss sees: the parameters perturbed in
// place to theta0 +- h_i z_i in the documented order, then the update from
// the recorded loss values.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace {

template <class T>
struct Recorder {
  std::vector<std::vector<T>>* seen;
  std::vector<double>* values;
  const T* expected_data;
  double operator()(std::span<const T> x) {
    CHECK(x.data() == expected_data);  // in place, not a copy
    seen->emplace_back(x.begin(), x.end());
    double v = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double e = static_cast<double>(x[i]) - 0.1 * static_cast<double>(i % 3);
      v += e * e * (1.0 + 0.5 * static_cast<double>(i % 2));
    }
    values->push_back(v);
    return v;
  }
};

// Every evaluation point and the update of one step. Points are computed in
// long double from theta0, h_i (draw_at) and z_i (noise_at): the parameters
// hold fl(theta0 + fl(h z)) with h rounded to the compute type, three
// relative errors <= u, so |seen - (theta0 + h z)| <= 2u (|theta0| + |h z|)
// plus a subnormal ulp.
template <class Opt>
void check_points(std::uint32_t n) {
  using T = typename Opt::value_type;
  using C = zoopt::compute_t<T>;
  using Sampler = typename Opt::sampler_type;
  constexpr bool forward = Opt::estimator_type::evaluates_base;
  const long double u = std::numeric_limits<T>::epsilon() / 2;
  const long double tiny = std::numeric_limits<T>::denorm_min();
  const std::size_t d = 23;
  const double lr = 0.01, eps = 1e-2;
  std::vector<T> x(d);
  for (std::size_t i = 0; i < d; ++i) x[i] = static_cast<T>(std::cos(0.4 * i));
  const std::vector<T> x0 = x;
  const std::uint64_t seed = 5150;
  Opt opt(zt::make_params<Opt>(lr, eps, n, seed));
  opt.set_step_count(7);
  const std::uint64_t step = 7;

  std::vector<std::vector<T>> seen;
  std::vector<double> values;
  const double mean = opt.step(Recorder<T>{&seen, &values, x.data()}, std::span<T>(x));
  const std::size_t calls = forward ? n + 1 : 2 * n;
  REQUIRE(seen.size() == calls);

  auto z = [&](std::uint32_t i, std::size_t g) {
    return static_cast<long double>(zoopt::noise_at<Sampler, C>(zoopt::NoiseKey{seed, step, i}, g));
  };
  auto check_point = [&](const std::vector<T>& got, std::uint32_t i, double sign) {
    const long double h = sign * opt.draw_at(step, i).h;
    std::size_t moved = 0;
    for (std::size_t g = 0; g < d; ++g) {
      const long double t0 = x0[g];
      const long double want = t0 + h * z(i, g);
      CHECK(std::abs(static_cast<long double>(got[g]) - want) <=
            2 * u * (std::abs(t0) + std::abs(h * z(i, g))) + tiny);
      moved += got[g] != x0[g];
    }
    CHECK(moved >= d - 1);
  };
  std::size_t k = 0;
  if (forward) {
    CHECK(zt::same_bits(seen[k++], x0));  // the base point is theta0 itself
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    check_point(seen[k++], i, +1.0);
    if (!forward) check_point(seen[k++], i, -1.0);
  }

  // The step returns the mean loss it evaluated.
  double sum = 0.0;
  for (const double v : values) sum += v;
  CHECK(mean == Approx(sum / static_cast<double>(values.size())).epsilon(1e-14));

  // Coefficients c_i = g_i * weight_i / n from the recorded values.
  const auto c = opt.last_coefficients();
  REQUIRE(c.size() == n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const double plus = forward ? values[1 + i] : values[2 * i];
    const double other = forward ? values[0] : values[2 * i + 1];
    const double g = forward ? (plus - other) / eps : (plus - other) / (2 * eps);
    CHECK(c[i] == Approx(g * opt.draw_at(step, i).weight / n).epsilon(1e-12));
  }
  // The update theta = theta0 - lr sum_i c_i z_i: the sum of n rounded terms
  // and the rounded product and difference stay within
  // (n + 3) u (|theta0| + lr sum_i |c_i z_i|).
  for (std::size_t g = 0; g < d; ++g) {
    long double step_sum = 0, step_abs = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      step_sum += c[i] * z(i, g);
      step_abs += std::abs(c[i] * z(i, g));
    }
    const long double t0 = x0[g];
    const long double want = t0 - lr * step_sum;
    CHECK(std::abs(static_cast<long double>(x[g]) - want) <=
          (n + 3) * u * (std::abs(t0) + lr * step_abs) + tiny);
  }
  CHECK_FALSE(zt::same_bits(x, x0));
  CHECK(opt.step_count() == 8);
}

}  // namespace

TEST_CASE("core.loss span loss sees theta0 +- h z in order", "[core][loss]") {
  using R = zoopt::RademacherSampler;
  using G = zoopt::GaussianSampler;
  using FD = zoopt::ForwardDifference;
  for (std::uint32_t n : {1u, 3u}) {
    check_points<zoopt::MeZO<float>>(n);
    check_points<zoopt::MeZO<double>>(n);
    check_points<zoopt::MeZO<float, R>>(n);
    check_points<zoopt::MeZO<double, G, FD>>(n);
    check_points<zoopt::KerZOO<float>>(n);
    check_points<zoopt::KerZOO<double>>(n);
    check_points<zoopt::KerZOO<double, R>>(n);
    check_points<zoopt::KerZOO<float, G, FD>>(n);
  }
}

TEST_CASE("core.loss loss with no arguments", "[core][loss]") {
  std::vector<float> x(10, 1.0f);
  int calls = 0;
  // A mutable lambda returning float: any callable returning something
  // convertible to double works.
  auto loss = [&calls, &x]() mutable -> float {
    ++calls;
    float s = 0.0f;
    for (const float v : x) s += v * v;  // reads the perturbed values itself
    return s;
  };
  zoopt::MeZO<float> mezo(zt::make_params<zoopt::MeZO<float>>(1e-2, 1e-3, 2, 3));
  const auto before = x;
  mezo.step(loss, std::span<float>(x));
  CHECK(calls == 4);
  CHECK_FALSE(zt::same_bits(x, before));
  zoopt::KerZOO<float> ker(zt::make_params<zoopt::KerZOO<float>>(1e-2, 1e-3, 3, 3));
  const auto r = ker.optimize(loss, std::span<float>(x), 5);
  CHECK(calls == 4 + 5 * 6);
  CHECK(r.steps == 5);
}

TEST_CASE("core.loss parameter set loss sees the perturbed set", "[core][loss]") {
  using T = double;
  std::vector<T> a(5, 1.0), b(9, -2.0), c(2, 0.5);
  zoopt::ParameterSet<T> set;
  set.add("a", std::span<T>(a)).add("b", std::span<T>(b)).add("c", std::span<T>(c));
  const auto a0 = a, b0 = b, c0 = c;
  const std::uint64_t seed = 8;
  const double eps = 1e-3;
  const double u = std::numeric_limits<T>::epsilon() / 2;
  zoopt::MeZO<T> opt(zt::make_params<zoopt::MeZO<T>>(1e-2, eps, 1, seed));
  int calls = 0;
  auto loss = [&](const zoopt::ParameterSet<T>& s) {
    CHECK(&s == &set);
    const double sign = calls++ == 0 ? 1.0 : -1.0;
    // Global index g runs over a, b, c in order; element g holds
    // theta0 + sign eps z(g): 2u relative as above (|eps z| << |theta0|),
    // plus u for rounding `want` here.
    std::size_t g = 0;
    double v = 0.0;
    s.for_each([&](const std::string& name, std::span<T> part) {
      const std::vector<T>& orig = name == "a" ? a0 : name == "b" ? b0 : c0;
      for (std::size_t i = 0; i < part.size(); ++i, ++g) {
        const double want = orig[i] + sign * eps *
                                          zoopt::noise_at<zoopt::GaussianSampler, double>(
                                              zoopt::NoiseKey{seed, 0, 0}, g);
        CHECK(part[i] == Approx(want).epsilon(3 * u).margin(0));
        v += part[i] * part[i];
      }
    });
    CHECK(g == 16);
    return v;
  };
  opt.step(loss, set);
  CHECK(calls == 2);
  CHECK_FALSE(zt::same_bits(a, a0));
  CHECK_FALSE(zt::same_bits(c, c0));

  // A set with a no-argument loss.
  int plain = 0;
  opt.step([&plain] { return static_cast<double>(++plain); }, set);
  CHECK(plain == 2);
}
