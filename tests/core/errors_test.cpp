// Bad input: invalid settings and spans are rejected with the field named;
// a failing loss (NaN, Inf, or its own exception) at any evaluation point
// leaves the parameters bitwise as they were, the step counter unchanged and
// the optimizer ready for the next step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using Catch::Matchers::Contains;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

template <class Opt, class Mutate>
void expect_rejected(Mutate mutate, const std::string& field) {
  auto p = zt::make_params<Opt>(1e-3, 1e-3, 1, 0);
  mutate(p);
  INFO("field " << field);
  // "<where>: <field> <what>"
  CHECK_THROWS_MATCHES(Opt(p), std::invalid_argument, zt::WhatContains(": " + field + " "));
}

template <class Opt>
void check_common_params() {
  using P = typename Opt::Params;
  expect_rejected<Opt>([](P& p) { p.lr = -1e-3; }, "lr");
  expect_rejected<Opt>([](P& p) { p.lr = kNaN; }, "lr");
  expect_rejected<Opt>([](P& p) { p.lr = kInf; }, "lr");
  expect_rejected<Opt>([](P& p) { p.eps = 0.0; }, "eps");
  expect_rejected<Opt>([](P& p) { p.eps = -1e-3; }, "eps");
  expect_rejected<Opt>([](P& p) { p.eps = kInf; }, "eps");
  expect_rejected<Opt>([](P& p) { p.eps = kNaN; }, "eps");
  expect_rejected<Opt>([](P& p) { p.directions = 0; }, "directions");
  expect_rejected<Opt>([](P& p) { p.weight_decay = -0.1; }, "weight_decay");
  expect_rejected<Opt>([](P& p) { p.weight_decay = kNaN; }, "weight_decay");
  // Boundary values that are valid.
  auto ok = zt::make_params<Opt>(0.0, 1e-30, 1, 0, 0.0);
  CHECK_NOTHROW(Opt(ok));
}

// A finite loss of every stress value: sum_i w_i tanh(x_i) stays in
// [-sum w, sum w] whatever the magnitudes.
template <class T>
double tanh_loss(std::span<const T> x) {
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    s += (1.0 + 0.01 * static_cast<double>(i % 5)) * std::tanh(static_cast<double>(x[i]));
  }
  return s;
}

struct LossError {
  int call;
};

// Fails at its `fail_at`-th call (1-based) of a step by returning `bad`, or
// by throwing LossError when `bad` is 0.
template <class T>
struct FailingLoss {
  int fail_at;
  double bad;
  int* calls;
  double operator()(std::span<const T> x) const {
    const int c = ++*calls;
    if (c == fail_at) {
      if (bad == 0.0) throw LossError{c};
      return bad;
    }
    return tanh_loss(x);
  }
};

// For every failing call position and failure kind: exact restore, counter
// unchanged, and the next step matches a fresh optimizer's step from the same
// bits and step count (the failure left no state behind).
template <class Opt>
void check_failures(std::uint32_t n) {
  using T = typename Opt::value_type;
  using Est = typename Opt::estimator_type;
  const int calls_per_step =
      Est::evaluates_base ? static_cast<int>(n) + 1 : 2 * static_cast<int>(n);
  const auto p = zt::make_params<Opt>(1e-2, 1e-3, n, 7);
  for (const std::size_t d : {std::size_t(3), std::size_t(97)}) {
    std::vector<T> x = zt::stress_vector<T>(d);
    Opt opt(p);
    zt::quiet(opt);
    // A few good steps first, so the failing step is not step 0 and the
    // journal of earlier steps has been exercised.
    int calls = 0;
    for (int t = 0; t < 2; ++t) opt.step(FailingLoss<T>{-1, 0.0, &calls}, std::span<T>(x));
    for (int at = 1; at <= calls_per_step; ++at) {
      for (const double bad : {kNaN, kInf, -kInf, 0.0}) {
        INFO("d " << d << " failing call " << at << " of " << calls_per_step << " value " << bad);
        const std::vector<T> before = x;
        const std::uint64_t count = opt.step_count();
        calls = 0;
        if (bad == 0.0) {
          CHECK_THROWS_AS(opt.step(FailingLoss<T>{at, bad, &calls}, std::span<T>(x)), LossError);
        } else {
          CHECK_THROWS_AS(opt.step(FailingLoss<T>{at, bad, &calls}, std::span<T>(x)),
                          zoopt::NonFiniteLoss);
        }
        CHECK(calls == at);  // nothing is evaluated after the failure
        REQUIRE(zt::same_bits(x, before));
        CHECK(opt.step_count() == count);
        CHECK(opt.backend().journal_size() == 0);
      }
    }
    // The next step works, and equals a fresh optimizer's step at the same
    // step count from the same bits.
    const std::vector<T> before = x;
    Opt fresh(p);
    zt::quiet(fresh);
    fresh.set_step_count(opt.step_count());
    std::vector<T> y = x;
    calls = 0;
    const double l1 = opt.step(FailingLoss<T>{-1, 0.0, &calls}, std::span<T>(x));
    const double l2 = fresh.step(FailingLoss<T>{-1, 0.0, &calls}, std::span<T>(y));
    CHECK(l1 == l2);
    CHECK(zt::same_bits(x, y));
    CHECK_FALSE(zt::same_bits(x, before));
    CHECK(opt.step_count() == 3);
  }
}

}  // namespace

TEST_CASE("core.errors invalid params name the field", "[core][errors]") {
  check_common_params<zoopt::MeZO<float>>();
  check_common_params<zoopt::MeZO<double, zoopt::RademacherSampler>>();
  check_common_params<zoopt::KerZOO<float>>();
  check_common_params<zoopt::KerZOO<double>>();
  using K = zoopt::KerZOO<double>;
  using P = K::Params;
  expect_rejected<K>([](P& p) { p.C = 0.0; }, "C");
  expect_rejected<K>([](P& p) { p.C = -1.0; }, "C");
  expect_rejected<K>([](P& p) { p.C = kNaN; }, "C");
  expect_rejected<K>([](P& p) { p.C = kInf; }, "C");
  expect_rejected<K>([](P& p) { p.range.a_min = 0.0; }, "range.a_min");
  expect_rejected<K>([](P& p) { p.range.a_min = -0.5; }, "range.a_min");
  expect_rejected<K>([](P& p) { p.range.a_min = 1.5; }, "range.a_min");
  expect_rejected<K>([](P& p) { p.range.a_min = kNaN; }, "range.a_min");
}

TEST_CASE("core.errors empty and overlapping parameters", "[core][errors]") {
  zoopt::MeZO<float> opt;
  auto loss = [] { return 1.0; };
  CHECK_THROWS_MATCHES(opt.step(loss, std::span<float>{}), std::invalid_argument,
                       zt::WhatContains("params"));
  zoopt::ParameterSet<float> empty;
  CHECK_THROWS_MATCHES(opt.step(loss, empty), std::invalid_argument, zt::WhatContains("params"));
  CHECK(opt.step_count() == 0);

  std::vector<float> buf(100, 1.0f), other(10, 2.0f);
  zoopt::ParameterSet<float> set;
  set.add("a", std::span<float>(buf).subspan(0, 40));
  set.add("b", std::span<float>(buf).subspan(40, 30));  // adjacent: fine
  CHECK(set.size() == 2);
  // Empty span, empty name, duplicate name.
  CHECK_THROWS_MATCHES(set.add("c", std::span<float>{}), std::invalid_argument,
                       zt::WhatContains("data"));
  CHECK_THROWS_MATCHES(set.add("", std::span<float>(other)), std::invalid_argument,
                       zt::WhatContains("name"));
  CHECK_THROWS_MATCHES(set.add("a", std::span<float>(other)), std::invalid_argument,
                       zt::WhatContains("name"));
  // Overlaps: identical span, partial overlap at either end, containment,
  // one element shared.
  const std::span<float> all(buf);
  CHECK_THROWS_MATCHES(set.add("c", all.subspan(0, 40)), std::invalid_argument,
                       zt::WhatContains("overlaps"));
  CHECK_THROWS_MATCHES(set.add("c", all.subspan(30, 20)), std::invalid_argument,
                       zt::WhatContains("overlaps"));
  CHECK_THROWS_MATCHES(set.add("c", all.subspan(69, 10)), std::invalid_argument,
                       zt::WhatContains("overlaps"));
  CHECK_THROWS_MATCHES(set.add("c", all.subspan(10, 5)), std::invalid_argument,
                       zt::WhatContains("overlaps"));
  CHECK_THROWS_MATCHES(set.add("c", all), std::invalid_argument, zt::WhatContains("overlaps"));
  // A failed add leaves the set unchanged; a disjoint one is accepted.
  CHECK(set.size() == 2);
  CHECK(set.elements() == 70);
  set.add("c", all.subspan(70, 30)).add("d", std::span<float>(other));
  CHECK(set.size() == 4);
  CHECK(set.elements() == 110);
  CHECK(set.index_of("d") == 3);
  CHECK_THROWS_AS(set.index_of("zz"), std::out_of_range);
}

TEST_CASE("core.errors failing loss restores the exact bits mezo", "[core][errors]") {
  using G = zoopt::GaussianSampler;
  using R = zoopt::RademacherSampler;
  using FD = zoopt::ForwardDifference;
  for (std::uint32_t n : {1u, 3u}) {
    check_failures<zoopt::MeZO<float>>(n);
    check_failures<zoopt::MeZO<double>>(n);
    check_failures<zoopt::MeZO<float, R>>(n);
    check_failures<zoopt::MeZO<float, G, FD>>(n);
    check_failures<zoopt::MeZO<double, R, FD>>(n);
  }
}

TEST_CASE("core.errors failing loss restores the exact bits kerzoo", "[core][errors]") {
  using G = zoopt::GaussianSampler;
  using R = zoopt::RademacherSampler;
  using FD = zoopt::ForwardDifference;
  for (std::uint32_t n : {1u, 3u}) {
    check_failures<zoopt::KerZOO<float>>(n);
    check_failures<zoopt::KerZOO<double>>(n);
    check_failures<zoopt::KerZOO<double, R>>(n);
    check_failures<zoopt::KerZOO<float, G, FD>>(n);
    check_failures<zoopt::KerZOO<double, G, FD>>(n);
  }
}

TEST_CASE("core.errors failing loss on a parameter set restores every span", "[core][errors]") {
  using T = float;
  std::vector<T> a = zt::stress_vector<T>(31), b = zt::stress_vector<T>(50);
  std::reverse(b.begin(), b.end());
  zoopt::ParameterSet<T> set;
  set.add("a", std::span<T>(a)).add("b", std::span<T>(b), {.weight_decay = false});
  zoopt::KerZOO<T> opt(zt::make_params<zoopt::KerZOO<T>>(1e-2, 1e-3, 3, 9, 0.1));
  zt::quiet(opt);
  int calls = 0;
  auto loss = [&calls](const zoopt::ParameterSet<T>& s) {
    if (++calls == 5) return kNaN;  // direction 2, +h
    double v = 0.0;
    s.for_each([&](const std::string&, std::span<T> x) { v += tanh_loss<T>(x); });
    return v;
  };
  const auto a0 = a, b0 = b;
  CHECK_THROWS_AS(opt.step(loss, set), zoopt::NonFiniteLoss);
  CHECK(zt::same_bits(a, a0));
  CHECK(zt::same_bits(b, b0));
  CHECK(opt.step_count() == 0);
  calls = 100;
  opt.step(loss, set);
  CHECK(opt.step_count() == 1);
  CHECK_FALSE(zt::same_bits(a, a0));
}

TEST_CASE("core.errors nonfinite loss message says where", "[core][errors]") {
  std::vector<double> x(8, 1.0);
  zoopt::MeZO<double> opt(zt::make_params<zoopt::MeZO<double>>(1e-3, 1e-3, 1, 1));
  int calls = 0;
  auto loss = [&calls] { return ++calls == 2 ? kNaN : 1.0; };
  CHECK_THROWS_MATCHES(opt.step(loss, std::span<double>(x)), zoopt::NonFiniteLoss,
                       zt::WhatContains("-h") && zt::WhatContains("restored"));
}
