// CpuBackend::update_and_move: the update of step t and the move to step
// t + 1's first point in one pass must give exactly what update() followed by
// move() gives: the same parameter bits, the same journal (so a later restore
// returns the same bits), for every storage type, thread count, update rule,
// with the journal off and with low-rank directions.
#include <catch2/catch.hpp>

#include <span>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using namespace exact_test;
using zoopt::Term;

// Three spans (the first and last matrices for samplers that use shapes),
// offsets with gaps, one span scaled, one without weight decay.
template <class T, class Rule, class Sampler = zoopt::GaussianSampler>
void check_fused(const zoopt::CpuBackendOptions& options, const Rule& rule) {
  using C = zoopt::compute_t<T>;
  const std::vector<std::size_t> sizes = {300 * 233, 3, 200 * 201};
  const std::vector<zoopt::MatrixShape> shapes = {{300, 233}, {}, {200, 201}};
  const std::size_t total = sizes[0] + sizes[1] + sizes[2];
  std::vector<T> a = weights<T>(total, 5);
  std::vector<T> b = a;
  auto views_of = [&](std::vector<T>& x) {
    std::vector<zoopt::SpanView<T>> v;
    std::size_t at = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      v.push_back(zoopt::SpanView<T>{x.data() + at, sizes[i], at + 5 * i, i != 1,
                                     i == 2 ? 1.5 : 1.0, shapes[i]});
      at += sizes[i];
    }
    return v;
  };
  const auto va = views_of(a);
  const auto vb = views_of(b);
  zoopt::CpuBackend<T, Sampler> plain(options);
  zoopt::CpuBackend<T, Sampler> fused(options);
  std::vector<C> state_a(Rule::state_size * (total + 10), C(0));
  std::vector<C> state_b = state_a;
  const double h = 1e-3;
  const std::uint64_t seed = 17;
  const std::vector<Term> first = {{0, 0.0, h}};
  plain.move(va, seed, 0, first);
  fused.move(vb, seed, 0, first);
  for (std::uint64_t t = 0; t < 4; ++t) {
    INFO("step " << t);
    for (auto* backend : {&plain, &fused}) {
      const auto& v = backend == &plain ? va : vb;
      backend->move(v, seed, t, std::vector<Term>{{0, h, -h}});
      backend->move(v, seed, t, std::vector<Term>{{0, -h, 0.0}, {1, 0.0, 2 * h}});
    }
    const std::vector<Term> fin = {{0, 0.0, 0.37}, {1, 2 * h, -1.25}};
    const double lr = t == 2 ? 0.0 : 1e-2;  // one step with a zero update
    const std::vector<Term> next = {{0, 0.0, h}, {1, 0.0, -0.5 * h}};
    if constexpr (Rule::state_size == 0) {
      plain.update(va, seed, t, fin, lr, 0.05);
      fused.update_and_move(vb, seed, t, fin, lr, 0.05, t + 1, next);
    } else {
      plain.template update<Rule::state_size>(va, seed, t, fin, lr, 0.05, rule.template at<C>(t),
                                              state_a.data());
      fused.template update_and_move<Rule::state_size>(
          vb, seed, t, fin, lr, 0.05, rule.template at<C>(t), state_b.data(), t + 1, next);
    }
    plain.move(va, seed, t + 1, next);
    REQUIRE(first_difference<T>(a, b) == -1);
    REQUIRE(plain.journal_size() == fused.journal_size());
    // The next step's first point, as a step that starts there expects.
    plain.move(va, seed, t + 1, std::vector<Term>{{0, h, h}, {1, -0.5 * h, 0.0}});
    fused.move(vb, seed, t + 1, std::vector<Term>{{0, h, h}, {1, -0.5 * h, 0.0}});
    REQUIRE(first_difference<T>(a, b) == -1);
  }
  CHECK(first_difference<C>(state_a, state_b) == -1);
  // Both restore the same (exact) pre-step bits from their journals.
  plain.restore(va, seed, 4, first);
  fused.restore(vb, seed, 4, first);
  REQUIRE(first_difference<T>(a, b) == -1);
  if (options.exact_restore) CHECK(plain.journal_size() == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("exact: update_and_move equals update then move, bit for bit", "[exact][fused]",
                   float, double, zoopt::half, zoopt::bfloat16) {
  for (unsigned threads : {1U, 3U}) {
    INFO("threads " << threads);
    check_fused<TestType>(zoopt::CpuBackendOptions{.threads = threads}, zoopt::SgdUpdate{});
    check_fused<TestType>(zoopt::CpuBackendOptions{.threads = threads},
                          zoopt::MomentumUpdate{.beta = 0.9});
  }
  check_fused<TestType>(zoopt::CpuBackendOptions{.exact_restore = false}, zoopt::SgdUpdate{});
  // Low-rank directions (V kept 3 steps: the fused pass crosses a redraw).
  check_fused<TestType, zoopt::SgdUpdate, zoopt::LowRankSampler<2, 3>>(
      zoopt::CpuBackendOptions{.threads = 3}, zoopt::SgdUpdate{});
}

TEST_CASE("exact: update_and_move rejects next terms that do not start at the update",
          "[exact][fused]") {
  std::vector<float> x = weights<float>(64, 1);
  const std::vector<float> before = x;
  const std::vector<zoopt::SpanView<float>> v = {{x.data(), x.size(), 0, true, 1.0}};
  zoopt::CpuBackend<float, zoopt::GaussianSampler> backend;
  const std::vector<Term> fin = {{0, 0.0, 0.5}};
  const std::vector<Term> bad = {{0, 1e-3, 1e-3}};
  REQUIRE_THROWS_WITH(backend.update_and_move(v, 1, 0, fin, 0.1, 0.0, 1, bad),
                      Catch::Contains("next_terms"));
  CHECK(first_difference<float>(x, before) == -1);
}
