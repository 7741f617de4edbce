// Checkpoint and resume: stopping after k steps and resuming from
// (parameters, state) or from (base + update log, state) is bit-identical to
// an uninterrupted run.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>

#include "common.hpp"

using namespace exact_test;
using zoopt::bfloat16;
using zoopt::half;

namespace {

/// An optimizer with state beyond the counters, shaped like the ZO
/// Fine-tuner: per-span scales computed at the start of each step from the
/// previous step's scales (the fine-tuner's s_{t-1} input), exposed through
/// save_extra_state / load_extra_state.
template <class T>
class ScaledToy : public zoopt::ZerothOrderOptimizer<ScaledToy<T>, T, zoopt::GaussianSampler,
                                                     zoopt::CentralDifference,
                                                     zoopt::CpuBackend<T, zoopt::GaussianSampler>> {
  using Base =
      zoopt::ZerothOrderOptimizer<ScaledToy<T>, T, zoopt::GaussianSampler, zoopt::CentralDifference,
                                  zoopt::CpuBackend<T, zoopt::GaussianSampler>>;
  friend Base;

 public:
  static constexpr const char* name = "scaled-toy";
  ScaledToy(std::uint64_t seed, std::size_t blocks) : Base(1), seed_(seed), prev_(blocks, 1.0) {}

  void save_extra_state(std::vector<double>& out) const { out.assign(prev_.begin(), prev_.end()); }
  void load_extra_state(std::span<const double> in) {
    zoopt::detail::require(in.size() == prev_.size(), "ScaledToy::load_extra_state", "extra",
                           "must hold one scale per block");
    prev_.assign(in.begin(), in.end());
  }

 private:
  std::span<const zoopt::SpanView<T>> prepare(std::span<const zoopt::SpanView<T>> views) {
    views_.assign(views.begin(), views.end());
    for (std::size_t i = 0; i < views_.size(); ++i) {
      const double x = prev_[i] * 3.7 + 0.1 * static_cast<double>(i + 1);
      prev_[i] = 0.5 + (x - std::floor(x));
      views_[i].scale = prev_[i];
    }
    return views_;
  }
  [[nodiscard]] zoopt::StepSettings settings(std::uint64_t step) const {
    return zoopt::StepSettings{seed_, step, 1, 1e-3, 2e-3, 0.0};
  }
  [[nodiscard]] zoopt::DirectionDraw draw(std::uint64_t, std::uint32_t) const {
    return zoopt::DirectionDraw{1e-3, 1.0};
  }

  std::uint64_t seed_;
  std::vector<double> prev_;
  std::vector<zoopt::SpanView<T>> views_;
};

template <class T>
struct Model {
  std::vector<T> a;
  std::vector<T> b;
  zoopt::ParameterSet<T> set;
  Model(const std::vector<T>& a0, const std::vector<T>& b0) : a(a0), b(b0) {
    set.add("w", std::span<T>(a)).add("bias", std::span<T>(b), {.weight_decay = false});
  }
  Model(const Model&) = delete;
};

template <class T, class Make>
void check_resume(Make make, int total, int k) {
  const auto a0 = weights<T>(301, 5);
  const auto b0 = weights<T>(77, 6, 0.1);

  Model<T> full(a0, b0);
  auto opt = make();
  auto log = zoopt::UpdateLog::for_optimizer(opt, full.set);
  opt.optimize(Quadratic{}, full.set, total, log.recorder(opt));

  TempFile with_params("resume.zckp");
  TempFile state_only("state.zckp");
  {
    Model<T> first(a0, b0);
    auto o = make();
    o.optimize(Quadratic{}, first.set, k);
    zoopt::checkpoint::save(with_params.path, o, first.set);
    zoopt::checkpoint::save_state(state_only.path, o);
  }
  SECTION("resume from parameters + state") {
    Model<T> resumed(std::vector<T>(a0.size()), std::vector<T>(b0.size()));
    auto o = make();
    zoopt::checkpoint::load(with_params.path, o, resumed.set);
    REQUIRE(o.step_count() == static_cast<std::uint64_t>(k));
    o.optimize(Quadratic{}, resumed.set, total - k);
    REQUIRE(first_difference(full.a, resumed.a) == -1);
    REQUIRE(first_difference(full.b, resumed.b) == -1);
    REQUIRE(o.step_count() == opt.step_count());
    REQUIRE(o.forward_passes() == opt.forward_passes());
  }
  SECTION("resume from base + update log + state") {
    Model<T> resumed(a0, b0);
    auto o = make();
    zoopt::replay(log, resumed.set, {0, static_cast<std::size_t>(k)});
    zoopt::checkpoint::load_state(state_only.path, o);
    o.optimize(Quadratic{}, resumed.set, total - k);
    REQUIRE(first_difference(full.a, resumed.a) == -1);
    REQUIRE(first_difference(full.b, resumed.b) == -1);
    REQUIRE(o.forward_passes() == opt.forward_passes());
  }
  SECTION("the full log replays onto the base") {
    Model<T> replayed(a0, b0);
    zoopt::replay(log, replayed.set);
    REQUIRE(first_difference(full.a, replayed.a) == -1);
    REQUIRE(first_difference(full.b, replayed.b) == -1);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("exact: MeZO resumes bit-identically", "[exact][checkpoint]", float, half) {
  using T = TestType;
  check_resume<T>(
      [] {
        return zoopt::MeZO<T>(
            {.lr = 2e-3, .eps = 1e-3, .directions = 2, .seed = 21, .weight_decay = 0.05});
      },
      90, 37);
}

TEMPLATE_TEST_CASE("exact: KerZOO with a range schedule resumes bit-identically",
                   "[exact][checkpoint]", double, bfloat16) {
  using T = TestType;
  check_resume<T>(
      [] {
        typename zoopt::KerZOO<T>::Params p;
        p.lr = 1e-3;
        p.seed = 22;
        p.range.decay_steps = 50;  // a_t depends on the step across the split
        p.range.a_min = 0.2;
        return zoopt::KerZOO<T>(p);
      },
      80, 33);
}

TEMPLATE_TEST_CASE("exact: FZOO with a scheduled lr resumes bit-identically", "[exact][checkpoint]",
                   float, half) {
  using T = TestType;
  check_resume<T>(
      [] {
        return zoopt::FZOO<T>({.lr = 2e-3,
                               .eps = 1e-3,
                               .directions = 5,
                               .seed = 24,
                               .weight_decay = 0.05,
                               .normalize = true,
                               .schedule = zoopt::LrSchedule::warmup_cosine(20, 70)});
      },
      80, 31);  // the split falls inside the decay; the run ends past it
}

TEMPLATE_TEST_CASE("exact: extra optimizer state (fine-tuner-like scales) resumes and replays",
                   "[exact][checkpoint]", float, half) {
  using T = TestType;
  check_resume<T>([] { return ScaledToy<T>(23, 2); }, 60, 25);
}

TEST_CASE("exact: checkpoints reject other optimizers, other layouts and corrupt files",
          "[exact][checkpoint]") {
  std::vector<float> p = weights<float>(50, 1);
  zoopt::ParameterSet<float> set;
  set.add("p", std::span<float>(p));
  zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
  opt.optimize(Quadratic{}, set, 3);
  const auto contents = zoopt::checkpoint::capture(opt, set);
  const auto bytes = zoopt::checkpoint::serialize(contents);
  const auto before = p;

  SECTION("configuration mismatches name the field") {
    zoopt::MeZO<float> seed5({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 5});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, seed5, set), Catch::Contains("seed"));
    zoopt::MeZO<float> two({.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 4});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, two, set),
                        Catch::Contains("directions"));
    zoopt::KerZOO<float> ker({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, ker, set),
                        Catch::Contains("optimizer") && Catch::Contains("kerzoo/cubic"));
    zoopt::MeZO<float> scheduled({.lr = 1e-3,
                                  .eps = 1e-3,
                                  .directions = 1,
                                  .seed = 4,
                                  .schedule = zoopt::LrSchedule::warmup(10)});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, scheduled, set),
                        Catch::Contains("optimizer") && Catch::Contains("mezo+warmup(10)"));
    zoopt::FZOO<float> fzoo({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, fzoo, set),
                        Catch::Contains("optimizer") && Catch::Contains("fzoo"));
    zoopt::MeZO<double> dbl({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore_state(contents, dbl),
                        Catch::Contains("storage"));
    std::vector<float> q(51);
    zoopt::ParameterSet<float> other;
    other.add("p", std::span<float>(q));
    zoopt::MeZO<float> same({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(contents, same, other),
                        Catch::Contains("spans"));
    REQUIRE(same.step_count() == 0);  // nothing changed
    auto state_only = contents;
    state_only.has_params = false;
    state_only.spans.clear();
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore(state_only, same, set),
                        Catch::Contains("load_state"));
    auto extra = contents;
    extra.state.extra = {1.0};
    REQUIRE_THROWS_WITH(zoopt::checkpoint::restore_state(extra, same), Catch::Contains("extra"));
    REQUIRE(same.step_count() == 0);
  }
  SECTION("every truncation and every bit flip is a FormatError") {
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
      INFO("length " << n);
      REQUIRE_THROWS_AS(zoopt::checkpoint::deserialize(cut), zoopt::FormatError);
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = bytes;
        bad[i] ^= static_cast<unsigned char>(1u << bit);
        INFO("byte " << i << " bit " << bit);
        REQUIRE_THROWS_AS(zoopt::checkpoint::deserialize(bad), zoopt::FormatError);
      }
    }
    auto bad = bytes;
    bad[0] = 'Y';
    REQUIRE_THROWS_WITH(zoopt::checkpoint::deserialize(bad, "m.zckp"),
                        Catch::Contains("m.zckp") && Catch::Contains("bad magic"));
    bad = bytes;
    bad[bytes.size() - 7] ^= 1;
    REQUIRE_THROWS_WITH(zoopt::checkpoint::deserialize(bad), Catch::Contains("CRC mismatch"));
    REQUIRE_THROWS_WITH(zoopt::checkpoint::deserialize({bytes.begin(), bytes.end() - 1}),
                        Catch::Contains("truncated"));
  }
  SECTION("a round trip restores state and parameters exactly") {
    std::vector<float> r(50);
    zoopt::ParameterSet<float> rset;
    rset.add("p", std::span<float>(r));
    zoopt::MeZO<float> fresh({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 4});
    zoopt::checkpoint::restore(zoopt::checkpoint::deserialize(bytes), fresh, rset);
    REQUIRE(first_difference(before, r) == -1);
    REQUIRE(fresh.step_count() == 3);
    REQUIRE(fresh.forward_passes() == 6);
  }
}
