// Threaded passes (CpuBackendOptions::threads) and the pass loop's
// instruction set (CpuBackendOptions::dispatch): every element's noise,
// point and rounding bits depend only on its global index, and the AVX2
// loop is the same code without FMA, so points, journals, restores and whole
// trajectories are bit-identical for 1, 2, 3 and 7 threads (and the
// automatic setting), portable or AVX2. The parameters span enough
// elements that each thread count really splits the pass (kElementsPerThread
// per part), in uneven spans whose boundaries fall inside Philox blocks and
// noise chunks; theta ~ N(0, 0.02^2) puts several percent of the elements in
// the restore journal (tests/exact/README.md).
#include <catch2/catch.hpp>

#include <array>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "zoopt/backend/pass_threads.hpp"

namespace {

using namespace exact_test;

constexpr std::array<std::size_t, 6> kSpanSizes = {120001, 1, 97, 90005, 3, 89999};
// The first configuration is the reference: one thread, portable loop.
// automatic is AVX-512 where the CPU has it, so avx2 is listed as well.
const std::array<zoopt::CpuBackendOptions, 9> kConfigs = {{
    {.threads = 1, .dispatch = zoopt::CpuDispatch::portable},
    {.threads = 1, .dispatch = zoopt::CpuDispatch::automatic},
    {.threads = 1, .dispatch = zoopt::CpuDispatch::avx2},
    {.threads = 2},
    {.threads = 2, .dispatch = zoopt::CpuDispatch::avx2},
    {.threads = 3, .dispatch = zoopt::CpuDispatch::portable},
    {.threads = 3},
    {.threads = 7},
    {.threads = 0},
}};

std::string describe(const zoopt::CpuBackendOptions& o) {
  return "threads = " + std::to_string(o.threads) + ", dispatch " +
         (o.dispatch == zoopt::CpuDispatch::portable ? "portable"
          : o.dispatch == zoopt::CpuDispatch::avx2   ? "avx2"
                                                     : "automatic");
}

template <class T>
struct Model {
  std::vector<std::vector<T>> spans;
  zoopt::ParameterSet<T> set;
  explicit Model(std::uint64_t seed) {
    std::size_t total = 0;
    for (const std::size_t n : kSpanSizes) total += n;
    const std::vector<T> all = weights<T>(total, seed);
    std::size_t at = 0;
    for (const std::size_t n : kSpanSizes) {
      spans.emplace_back(all.begin() + static_cast<long>(at),
                         all.begin() + static_cast<long>(at + n));
      at += n;
    }
    for (std::size_t k = 0; k < spans.size(); ++k) {
      set.add("s" + std::to_string(k), std::span<T>(spans[k]), {.weight_decay = k % 2 == 0});
    }
  }
  [[nodiscard]] std::vector<T> joined() const {
    std::vector<T> out;
    for (const auto& s : spans) out.insert(out.end(), s.begin(), s.end());
    return out;
  }
};

template <class T>
using Backend = zoopt::CpuBackend<T, zoopt::GaussianSampler>;

// The passes of one central-difference step by hand, then an abort, then the
// same step's update with two directions' coefficients: every intermediate
// point, the journal size and the end points are the single thread's.
template <class T>
void check_passes() {
  const Model<T> reference_model(11);
  const std::vector<T> start = reference_model.joined();
  std::vector<std::vector<T>> plus;
  std::vector<std::vector<T>> minus;
  std::vector<std::size_t> journal_sizes;
  std::vector<std::vector<T>> updated;
  for (const zoopt::CpuBackendOptions& options : kConfigs) {
    Model<T> m(11);
    Backend<T> b(options);
    const auto views = m.set.views();
    const double h = 1e-3;
    const std::array<zoopt::Term, 1> up{{{0, 0.0, h}}};
    const std::array<zoopt::Term, 1> across{{{0, h, -h}}};
    b.move(views, 5, 3, up);
    plus.push_back(m.joined());
    b.move(views, 5, 3, across);
    minus.push_back(m.joined());
    journal_sizes.push_back(b.journal_size());
    b.restore(views, 5, 3, std::array<zoopt::Term, 1>{{{0, -h, 0.0}}});
    REQUIRE(first_difference<T>(m.joined(), start) == -1);  // the abort is exact

    b.move(views, 5, 3, up);
    const std::array<zoopt::Term, 2> finish{{{0, h, 0.37}, {1, 0.0, -1.9}}};
    b.update(views, 5, 3, finish, 1e-2, 0.1);
    REQUIRE(b.journal_size() == 0);
    updated.push_back(m.joined());
  }
  REQUIRE(journal_sizes[0] > 1000);  // the journal is exercised
  for (std::size_t k = 1; k < kConfigs.size(); ++k) {
    INFO(describe(kConfigs[k]));
    CHECK(first_difference<T>(plus[k], plus[0]) == -1);
    CHECK(first_difference<T>(minus[k], minus[0]) == -1);
    CHECK(journal_sizes[k] == journal_sizes[0]);
    CHECK(first_difference<T>(updated[k], updated[0]) == -1);
  }
}

// A cheap loss over all spans: sum c_i (x_i - 0.01)^2 with c_i in [1, 4).
template <class T>
double loss_of(const zoopt::ParameterSet<T>& set) {
  double sum = 0.0;
  std::size_t i = 0;
  for (const auto& v : set.views()) {
    for (std::size_t k = 0; k < v.size; ++k, ++i) {
      const double x = to_double(v.data[k]) - 0.01;
      sum += (1.0 + static_cast<double>(i % 3)) * x * x;
    }
  }
  return sum;
}

template <class Opt>
void check_trajectory(typename Opt::Params p) {
  using T = typename Opt::value_type;
  using B = typename Opt::backend_type;
  std::vector<std::vector<T>> ends;
  for (const zoopt::CpuBackendOptions& options : kConfigs) {
    Model<T> m(23);
    Opt opt(p, B(options));
    for (int t = 0; t < 4; ++t) opt.step([&] { return loss_of(m.set); }, m.set);
    ends.push_back(m.joined());
  }
  for (std::size_t k = 1; k < kConfigs.size(); ++k) {
    INFO(describe(kConfigs[k]));
    CHECK(first_difference<T>(ends[k], ends[0]) == -1);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("exact: threaded passes give the single thread's points, journal and update",
                   "[exact][threads]", float, double, zoopt::half, zoopt::bfloat16) {
  check_passes<TestType>();
}

TEST_CASE("exact: the dispatch option is resolved and named", "[exact][threads]") {
  const Backend<float> portable(zoopt::CpuBackendOptions{.dispatch = zoopt::CpuDispatch::portable});
  CHECK(std::string(portable.dispatch()) == "portable");
  const Backend<float> automatic{zoopt::CpuBackendOptions{}};
  const Backend<float> at_most_avx2(zoopt::CpuBackendOptions{.dispatch = zoopt::CpuDispatch::avx2});
  const bool avx2 = zoopt::detail::cpu_has_avx2();
  const bool avx512 = avx2 && zoopt::detail::cpu_has_avx512();
  CHECK(std::string(automatic.dispatch()) == (avx512 ? "avx512" : avx2 ? "avx2" : "portable"));
  CHECK(std::string(at_most_avx2.dispatch()) == (avx2 ? "avx2" : "portable"));
  if (!avx2)
    WARN("no AVX2 dispatch here: the dispatch cases compare the portable loop with itself");
  else if (!avx512)
    WARN("no AVX-512 dispatch here: automatic and avx2 run the same loop");
}

TEST_CASE(
    "exact: MeZO and FZOO trajectories (Gaussian, signs, packed signs) are bit-identical "
    "for 1, 2, 3, 7 threads",
    "[exact][threads]") {
  check_trajectory<zoopt::MeZO<float>>({.lr = 1e-3, .eps = 1e-3, .seed = 4});
  check_trajectory<zoopt::MeZO<zoopt::bfloat16>>({.lr = 1e-2, .eps = 1e-2, .seed = 5});
  check_trajectory<zoopt::FZOO<float>>({.lr = 1e-3, .eps = 1e-3, .directions = 4, .seed = 6});
  check_trajectory<zoopt::FZOO<float, zoopt::PackedRademacherSampler>>(
      {.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 8});
  check_trajectory<zoopt::FZOO<zoopt::half>>(
      {.lr = 1e-2, .eps = 1e-2, .directions = 3, .seed = 7, .weight_decay = 0.1});
  check_trajectory<zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference,
                               Backend<float>, zoopt::AdamUpdate>>(
      {.lr = 1e-3, .eps = 1e-3, .seed = 9, .weight_decay = 0.1});
}

TEST_CASE("exact: CpuBackendOptions::threads is checked and resolved", "[exact][threads]") {
  CHECK(Backend<float>(zoopt::CpuBackendOptions{.threads = 3}).threads() == 3);
  CHECK(Backend<float>(zoopt::CpuBackendOptions{.threads = 0}).threads() >= 1);
  CHECK(Backend<float>(zoopt::CpuBackendOptions{.threads = 0}).threads() <=
        Backend<float>::kAutomaticThreadsMax);
  CHECK_THROWS_WITH(
      Backend<float>(zoopt::CpuBackendOptions{.threads = Backend<float>::kThreadsMax + 1}),
      Catch::Contains("CpuBackendOptions: threads must be at most 256"));
}

TEST_CASE("exact: a task's exception reaches run(), and the workers stay usable",
          "[exact][threads]") {
  zoopt::detail::PassThreads pool(3);
  std::array<int, 4> hits{};
  auto failing = [&](unsigned id) {
    ++hits[id];
    if (id == 2) throw std::runtime_error("task 2 failed");
  };
  CHECK_THROWS_WITH(pool.run(4, failing), "task 2 failed");
  auto counting = [&](unsigned id) { ++hits[id]; };
  pool.run(4, counting);
  CHECK(hits == std::array<int, 4>{2, 2, 2, 2});  // every task ran once per run
}
