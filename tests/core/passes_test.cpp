// Passes over parameter memory and loss evaluations per step, counted by a
// backend that wraps CpuBackend (the optimizers' 4th template argument).
#include <catch2/catch.hpp>

#include <cstdio>
#include <stdexcept>
#include <utility>
#include <vector>

#include "test_util.hpp"

namespace {

struct PassCounts {
  std::uint64_t moves = 0, updates = 0, restores = 0, elements = 0;
  [[nodiscard]] std::uint64_t passes() const { return moves + updates + restores; }
};

// Counts every pass and the elements it touches, then runs the CPU pass.
template <class T, class Sampler>
class CountingBackend : public zoopt::CpuBackend<T, Sampler> {
  using Base = zoopt::CpuBackend<T, Sampler>;

 public:
  CountingBackend() = default;  // not an aggregate: Backend{} calls this

  PassCounts counts;

  // Same names as CpuBackend's passes (hiding them); the arguments are
  // forwarded unchanged, the first one being the span views.
  template <class... Rest>
  void move(std::span<const zoopt::SpanView<T>> views, Rest&&... rest) {
    ++counts.moves;
    counts.elements += elements(views);
    Base::move(views, std::forward<Rest>(rest)...);
  }
  template <class... Rest>
  void update(std::span<const zoopt::SpanView<T>> views, Rest&&... rest) {
    ++counts.updates;
    counts.elements += elements(views);
    Base::update(views, std::forward<Rest>(rest)...);
  }
  template <class... Rest>
  void restore(std::span<const zoopt::SpanView<T>> views, Rest&&... rest) {
    ++counts.restores;
    counts.elements += elements(views);
    Base::restore(views, std::forward<Rest>(rest)...);
  }

 private:
  static std::uint64_t elements(std::span<const zoopt::SpanView<T>> views) {
    std::uint64_t n = 0;
    for (const auto& v : views) n += v.size;
    return n;
  }
};

struct CountingLoss {
  std::uint64_t* calls;
  template <class Arg>
  double operator()(const Arg&) const {
    ++*calls;
    return 1.0 + 1e-3 * static_cast<double>(*calls % 5);
  }
};

template <template <class, class, class, class> class Opt, class T, class Sampler, class Estimator>
PassCounts check_passes(std::uint32_t n, bool use_set) {
  using Backend = CountingBackend<T, Sampler>;
  using O = Opt<T, Sampler, Estimator, Backend>;
  constexpr bool central = !Estimator::evaluates_base;
  const std::uint64_t want_passes = central ? 2 * n + 1 : n + 1;
  const std::uint64_t want_evals = central ? 2 * n : n + 1;
  STATIC_REQUIRE(O::passes_per_step(1) == (central ? 3 : 2));
  REQUIRE(O::passes_per_step(n) == want_passes);
  REQUIRE(O::evaluations_per_step(n) == want_evals);

  std::vector<T> a(37, T(0.5)), b(64, T(-0.25));
  zoopt::ParameterSet<T> set;
  set.add("a", std::span<T>(a)).add("b", std::span<T>(b));
  const std::uint64_t d = a.size() + b.size();
  std::uint64_t calls = 0;
  const CountingLoss loss{&calls};
  O opt(zt::make_params<O>(1e-3, 1e-3, n, 5));
  const int steps = 4;
  for (int t = 0; t < steps; ++t) {
    const PassCounts before = opt.backend().counts;
    const std::uint64_t evals_before = opt.forward_passes();
    const std::uint64_t calls_before = calls;
    if (use_set) {
      opt.step(loss, set);
    } else {
      opt.step(loss, std::span<T>(b));
    }
    const PassCounts& now = opt.backend().counts;
    CHECK(now.passes() - before.passes() == want_passes);
    CHECK(now.moves - before.moves == want_passes - 1);
    CHECK(now.updates - before.updates == 1);  // restore fused with the update
    CHECK(now.restores - before.restores == 0);
    CHECK(now.elements - before.elements == want_passes * (use_set ? d : b.size()));
    CHECK(opt.forward_passes() - evals_before == want_evals);
    CHECK(calls - calls_before == want_evals);
  }
  CHECK(opt.step_count() == static_cast<std::uint64_t>(steps));

  // A failing step: the moves made so far, then one restore pass, no update.
  // The loss throws at its second call of the step.
  const PassCounts before = opt.backend().counts;
  std::uint64_t k = 0;
  auto failing = [&k]() -> double {
    if (++k == 2) throw std::runtime_error("boom");
    return 1.0;
  };
  CHECK_THROWS_AS(opt.step(failing, set), std::runtime_error);
  const PassCounts& now = opt.backend().counts;
  // Central: +h (move), call 1, -h (move), call 2 throws -> 2 moves.
  // Forward: base (call 1), +h0 (move), call 2 throws -> 1 move.
  CHECK(now.moves - before.moves == (central ? 2 : 1));
  CHECK(now.restores - before.restores == 1);
  CHECK(now.updates - before.updates == 0);
  return opt.backend().counts;
}

}  // namespace

TEST_CASE("core.passes central difference makes 2n+1 passes and 2n evaluations", "[core][passes]") {
  using G = zoopt::GaussianSampler;
  using CD = zoopt::CentralDifference;
  for (std::uint32_t n : {1u, 2u, 3u, 5u}) {
    check_passes<zoopt::MeZO, float, G, CD>(n, false);
    check_passes<zoopt::MeZO, double, G, CD>(n, true);
    check_passes<zoopt::KerZOO, float, G, CD>(n, true);
    check_passes<zoopt::KerZOO, double, zoopt::RademacherSampler, CD>(n, false);
  }
}

TEST_CASE("core.passes forward difference makes n+1 passes and n+1 evaluations", "[core][passes]") {
  using G = zoopt::GaussianSampler;
  using FD = zoopt::ForwardDifference;
  for (std::uint32_t n : {1u, 2u, 3u, 5u}) {
    check_passes<zoopt::MeZO, float, G, FD>(n, true);
    check_passes<zoopt::MeZO, double, zoopt::RademacherSampler, FD>(n, false);
    check_passes<zoopt::KerZOO, float, G, FD>(n, false);
    check_passes<zoopt::KerZOO, double, G, FD>(n, true);
  }
}

TEST_CASE("core.passes report", "[core][passes][report]") {
  using G = zoopt::GaussianSampler;
  // Per step with n = 1 and n = 3 (4 steps counted, one failing step).
  for (std::uint32_t n : {1u, 3u}) {
    const auto mc = check_passes<zoopt::MeZO, float, G, zoopt::CentralDifference>(n, false);
    const auto kc = check_passes<zoopt::KerZOO, float, G, zoopt::CentralDifference>(n, false);
    const auto mf = check_passes<zoopt::MeZO, float, G, zoopt::ForwardDifference>(n, false);
    std::printf("n=%u passes per step: MeZO central %llu, KerZOO central %llu, MeZO forward %llu\n",
                n, static_cast<unsigned long long>(zoopt::MeZO<float>::passes_per_step(n)),
                static_cast<unsigned long long>(zoopt::KerZOO<float>::passes_per_step(n)),
                static_cast<unsigned long long>(
                    zoopt::MeZO<float, G, zoopt::ForwardDifference>::passes_per_step(n)));
    std::printf("  counted over 4 steps + 1 failing step: %llu, %llu, %llu passes\n",
                static_cast<unsigned long long>(mc.passes()),
                static_cast<unsigned long long>(kc.passes()),
                static_cast<unsigned long long>(mf.passes()));
  }
  std::fflush(stdout);
}
