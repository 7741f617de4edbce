// Measurements quoted in tests/exact/README.md (hidden: run with
//   zoopt_exact_tests "[.report]"
// ). They print figures; the assertions only guard the set-up.
#include <catch2/catch.hpp>

#include <cstdio>

#include "common.hpp"

using namespace exact_test;
using zoopt::bfloat16;
using zoopt::half;

namespace {

// Journal entries per step of the central-difference cycle, as a share of
// the elements: after the +eps z pass and at the update (after -eps z).
template <class T>
void journal_share(const char* name) {
  constexpr std::size_t d = std::size_t{1} << 20;
  constexpr int steps = 10;
  auto x = weights<T>(d, 2024, 0.02, false);
  const auto base = x;
  zoopt::CpuBackend<T, zoopt::GaussianSampler> b;
  const std::vector<zoopt::SpanView<T>> views = {{x.data(), d, 0, true, 1.0}};
  const double eps = 1e-3;
  double plus = 0.0;
  double minus = 0.0;
  std::size_t peak = 0;
  for (int t = 0; t < steps; ++t) {
    const zoopt::Term up[] = {{0, 0.0, eps}};
    const zoopt::Term down[] = {{0, eps, -eps}};
    const zoopt::Term back[] = {{0, -eps, 0.0}};
    b.move(views, 1, static_cast<std::uint64_t>(t), up);
    plus += static_cast<double>(b.journal_size());
    b.move(views, 1, static_cast<std::uint64_t>(t), down);
    minus += static_cast<double>(b.journal_size());
    peak = std::max(peak, b.journal_size());
    b.restore(views, 1, static_cast<std::uint64_t>(t), back);
  }
  REQUIRE(first_difference(base, x) == -1);
  std::printf(
      "journal  %-8s d = %zu, theta ~ N(0, 0.02^2), eps = 1e-3: after +eps z %.5f%%, at the "
      "update %.5f%% of the elements (peak %zu entries = %zu bytes in two buffers)\n",
      name, d, 100.0 * plus / steps / d, 100.0 * minus / steps / d, peak,
      peak * 2 * (sizeof(std::uint64_t) + sizeof(T)));
}

// Share of elements whose bits differ from the start after `cycles`
// perturbation cycles with lr = 0: the naive +eps z, -2 eps z, +eps z
// sequence in storage precision, and zoopt's MeZO steps.
template <class T>
void drift(const char* name) {
  using C = zoopt::compute_t<T>;
  constexpr std::size_t d = 16384;
  constexpr std::uint64_t cycles = 10000;
  const auto base = weights<T>(d, 7, 0.02, false);
  auto naive = base;
  for (std::uint64_t t = 0; t < cycles; ++t) {
    for (std::size_t blk = 0; blk < d / 4; ++blk) {
      C z[4];
      zoopt::noise_block<zoopt::GaussianSampler>(zoopt::NoiseKey{3, t, 0}, blk, z);
      for (int k = 0; k < 4; ++k) {
        T& x = naive[blk * 4 + static_cast<std::size_t>(k)];
        const C e = C(1e-3) * z[k];
        x = static_cast<T>(static_cast<C>(x) + e);
        x = static_cast<T>(static_cast<C>(x) - C(2) * e);
        x = static_cast<T>(static_cast<C>(x) + e);
      }
    }
  }
  auto ours = base;
  zoopt::MeZO<T> opt({.lr = 0.0, .eps = 1e-3, .directions = 1, .seed = 3});
  for (std::uint64_t t = 0; t < cycles; ++t) opt.step([] { return 1.0; }, std::span<T>(ours));
  std::size_t naive_changed = 0;
  std::size_t ours_changed = 0;
  for (std::size_t i = 0; i < d; ++i) {
    naive_changed +=
        std::bit_cast<zoopt::bits_t<T>>(naive[i]) != std::bit_cast<zoopt::bits_t<T>>(base[i]);
    ours_changed +=
        std::bit_cast<zoopt::bits_t<T>>(ours[i]) != std::bit_cast<zoopt::bits_t<T>>(base[i]);
  }
  double max_rel = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    const double b0 = to_double(base[i]);
    if (b0 != 0.0) max_rel = std::max(max_rel, std::abs(to_double(naive[i]) - b0) / std::abs(b0));
  }
  REQUIRE(ours_changed == 0);
  std::printf(
      "drift    %-8s d = %zu, %llu cycles, eps = 1e-3: naive cycle changed %.2f%% of the elements "
      "(max relative change %.3g); zoopt changed %.2f%%\n",
      name, d, static_cast<unsigned long long>(cycles), 100.0 * naive_changed / d, max_rel,
      100.0 * ours_changed / d);
}

// Update-log file size for 20,000 KerZOO steps (n = 3).
void log_size() {
  std::vector<float> p = weights<float>(64, 1, 0.02, false);
  zoopt::KerZOO<float> opt({.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 1});
  auto log = zoopt::UpdateLog::for_optimizer(opt, std::span<const float>(p));
  opt.optimize(Quadratic{}, std::span<float>(p), 20000, log.recorder(opt));
  std::printf("log      KerZOO n = 3, 20000 steps: %zu bytes\n", log.serialize().size());
}

}  // namespace

TEST_CASE("exact: report journal size and naive drift", "[.report]") {
  log_size();
  journal_share<double>("double");
  journal_share<float>("float");
  journal_share<half>("half");
  journal_share<bfloat16>("bfloat16");
  drift<float>("float");
  drift<half>("half");
  drift<bfloat16>("bfloat16");
}
