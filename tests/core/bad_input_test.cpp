// Bad input that is not a bad setting: non-finite parameters, a loss that
// writes to its parameters, counters at their limits. Each gives an error
// naming the cause and leaves the parameters bitwise as they were.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <vector>

#include "test_util.hpp"

namespace {

using Catch::Matchers::Contains;

double quadratic(std::span<const float> x) {
  double s = 0.0;
  for (const float v : x) s += 0.5 * double(v) * v;
  return s;
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.01f * static_cast<float>(i) - 0.3f;
  return v;
}

}  // namespace

TEST_CASE("core.bad_input: a NaN parameter is named by span and element", "[core]") {
  std::vector<float> w = ramp(40);
  std::vector<float> b = ramp(7);
  b[5] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> w0 = w;
  const std::vector<float> b0 = b;
  zoopt::ParameterSet<float> set;
  set.add("fc.weight", std::span<float>(w)).add("fc.bias", std::span<float>(b));
  zoopt::MeZO<float> opt({.lr = 1e-2, .eps = 1e-3, .directions = 2, .seed = 3});
  auto loss = [](const zoopt::ParameterSet<float>& p) {
    double s = 0.0;
    p.for_each([&](const std::string&, std::span<float> x) { s += quadratic(x); });
    return s;
  };
  CHECK_THROWS_MATCHES(opt.step(loss, set), zoopt::NonFiniteParameters,
                       zt::WhatContains("span 'fc.bias' holds a non-finite value before step 0 "
                                        "(element 5 is nan)"));
  CHECK(zt::same_bits(w, w0));
  CHECK(zt::same_bits(b, b0));
  CHECK(opt.step_count() == 0);
  // Still a NonFiniteLoss for code that catches that.
  CHECK_THROWS_AS(opt.step(loss, set), zoopt::NonFiniteLoss);
}

TEST_CASE("core.bad_input: an infinite parameter in a bare span is named", "[core]") {
  std::vector<float> x = ramp(300);
  x[257] = -std::numeric_limits<float>::infinity();
  const std::vector<float> x0 = x;
  zoopt::KerZOO<float> opt({.lr = 1e-2, .eps = 1e-3, .directions = 1, .seed = 1});
  CHECK_THROWS_MATCHES(opt.step(quadratic, std::span<float>(x)), zoopt::NonFiniteParameters,
                       zt::WhatContains("params holds a non-finite value before step 0 (element "
                                        "257 is -inf)"));
  CHECK(zt::same_bits(x, x0));
}

TEST_CASE("core.bad_input: a NaN loss with finite parameters stays a plain NonFiniteLoss",
          "[core]") {
  std::vector<float> x = ramp(16);
  zoopt::MeZO<float> opt({.lr = 1e-2, .eps = 1e-3});
  auto loss = [](std::span<const float>) { return std::nan(""); };
  try {
    opt.step(loss, std::span<float>(x));
    FAIL("no exception");
  } catch (const zoopt::NonFiniteParameters&) {
    FAIL("finite parameters reported as the cause");
  } catch (const zoopt::NonFiniteLoss& e) {
    CHECK_THAT(std::string(e.what()), Contains("loss returned nan"));
  }
}

TEST_CASE("core.bad_input: a loss that writes to its parameters is caught and undone", "[core]") {
  for (const bool on_minus : {false, true}) {
    std::vector<float> x = ramp(500);
    const std::vector<float> x0 = x;
    zoopt::MeZO<float> opt({.lr = 1e-2, .eps = 1e-3, .directions = 2, .seed = 9},
                           zoopt::CpuBackend<float, zoopt::GaussianSampler>(
                               zoopt::CpuBackendOptions{.check_loss_writes = true}));
    int calls = 0;
    const int culprit = on_minus ? 4 : 1;  // the second direction's -h, or the very first call
    auto loss = [&](std::span<const float> p) {
      if (++calls == culprit) x[123] = 7.0f;  // writes through the user's own vector
      return quadratic(p);
    };
    INFO("write at call " << culprit);
    CHECK_THROWS_MATCHES(opt.step(loss, std::span<float>(x)), zoopt::LossModifiedParameters,
                         zt::WhatContains("span 0, element 123"));
    CHECK(zt::same_bits(x, x0));
    CHECK(opt.step_count() == 0);
  }
}

TEST_CASE("core.bad_input: with the write check off a step is unchanged", "[core]") {
  // The check only observes: on and off give the same bits.
  std::vector<float> a = ramp(300);
  std::vector<float> b = a;
  using B = zoopt::CpuBackend<float, zoopt::GaussianSampler>;
  zoopt::MeZO<float> on({.lr = 1e-2, .directions = 3, .seed = 4},
                        B(zoopt::CpuBackendOptions{.check_loss_writes = true}));
  zoopt::MeZO<float> off({.lr = 1e-2, .directions = 3, .seed = 4},
                         B(zoopt::CpuBackendOptions{.check_loss_writes = false}));
  for (int t = 0; t < 5; ++t) {
    on.step(quadratic, std::span<float>(a));
    off.step(quadratic, std::span<float>(b));
  }
  CHECK(zt::same_bits(a, b));
}

TEST_CASE("core.bad_input: the step counter stops before the noise would repeat", "[core]") {
  std::vector<float> x = ramp(32);
  zoopt::MeZO<float> opt({.lr = 1e-2});
  opt.set_step_count(zoopt::detail::max_steps - 1);  // the last step with fresh noise
  CHECK_NOTHROW(opt.step(quadratic, std::span<float>(x)));
  CHECK(opt.step_count() == zoopt::detail::max_steps);
  const std::vector<float> x1 = x;
  CHECK_THROWS_MATCHES(opt.step(quadratic, std::span<float>(x)), std::overflow_error,
                       zt::WhatContains("step_count is 4294967296"));
  CHECK(zt::same_bits(x, x1));
  CHECK(opt.step_count() == zoopt::detail::max_steps);
  CHECK(opt.forward_passes() == 2);
}

TEST_CASE("core.bad_input: more directions than the limit is a named error", "[core]") {
  CHECK_THROWS_MATCHES(zoopt::MeZO<float>({.directions = zoopt::detail::max_directions + 1}),
                       std::invalid_argument,
                       zt::WhatContains("MeZO::Params: directions must be <= 2^20"));
  CHECK_THROWS_MATCHES(zoopt::KerZOO<float>({.directions = 4294967295u}), std::invalid_argument,
                       zt::WhatContains(": directions "));
  CHECK_NOTHROW(zoopt::MeZO<float>({.directions = zoopt::detail::max_directions}));
}

TEST_CASE("core.bad_input: an update log refuses steps whose noise would repeat", "[core]") {
  std::vector<float> x = ramp(8);
  zoopt::MeZO<float> opt({.lr = 1e-2});
  auto log = zoopt::UpdateLog::for_optimizer(opt, std::span<const float>(x));
  const double c[1] = {0.5};
  CHECK_THROWS_MATCHES(log.append(0, zoopt::detail::max_steps, 1e-2, 0.0, c), std::invalid_argument,
                       zt::WhatContains("UpdateLog::append: step "));
  CHECK(log.empty());
}
