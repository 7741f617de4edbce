// UpdateLog and replay(): a run recorded as a few numbers per step, replayed
// onto the base parameters, reproduces the fine-tuned parameters bit-exactly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "common.hpp"

using namespace exact_test;
using zoopt::bfloat16;
using zoopt::half;

namespace {

/// Runs `steps` steps of opt on a two-span parameter set (the second span
/// without weight decay), recording through an optimize() callback, then
/// replays the log onto a copy of the base parameters.
template <class T, class Opt>
void check_replay(Opt& opt, int steps) {
  auto a = weights<T>(389, 17);
  auto b = weights<T>(250, 18, 0.1);
  const auto a0 = a;
  const auto b0 = b;
  zoopt::ParameterSet<T> set;
  set.add("w", std::span<T>(a)).add("bias", std::span<T>(b), {.weight_decay = false});
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  std::size_t journal_at_update = 0;
  auto loss = [&](const zoopt::ParameterSet<T>& p) {
    journal_at_update = std::max(journal_at_update, opt.backend().journal_size());
    return Quadratic{}(p);
  };
  opt.optimize(loss, set, steps, log.recorder(opt));
  REQUIRE(log.size() == static_cast<std::size_t>(steps));
  REQUIRE(first_difference(a0, a) != -1);  // training moved the parameters
  // The update pass ran on journaled elements too (theta0 from the journal).
  REQUIRE(journal_at_update > 0);

  auto ra = a0;
  auto rb = b0;
  zoopt::ParameterSet<T> replayed;
  replayed.add("w", std::span<T>(ra)).add("bias", std::span<T>(rb), {.weight_decay = false});
  zoopt::replay(log, replayed);
  INFO("first difference: w " << first_difference(a, ra) << ", bias " << first_difference(b, rb));
  REQUIRE(first_difference(a, ra) == -1);
  REQUIRE(first_difference(b, rb) == -1);

  // Through the file format as well.
  TempFile file("replay.zlog");
  log.save(file.path);
  const auto loaded = zoopt::UpdateLog::load(file.path);
  REQUIRE(loaded == log);
  ra = a0;
  rb = b0;
  zoopt::replay(loaded, replayed);
  REQUIRE(first_difference(a, ra) == -1);
  REQUIRE(first_difference(b, rb) == -1);
}

}  // namespace

TEMPLATE_TEST_CASE("exact: replaying a MeZO log reproduces the parameters bit-exactly",
                   "[exact][replay]", float, double, half, bfloat16) {
  using T = TestType;
  SECTION("one direction, central difference (the update merges the -eps term), weight decay") {
    zoopt::MeZO<T> opt({.lr = 2e-3, .eps = 1e-3, .directions = 1, .seed = 3, .weight_decay = 0.05});
    check_replay<T>(opt, 150);
  }
  SECTION("three directions, forward difference, Rademacher") {
    zoopt::MeZO<T, zoopt::RademacherSampler, zoopt::ForwardDifference> opt(
        {.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 4, .weight_decay = 0.01});
    check_replay<T>(opt, 100);
  }
  SECTION("two directions, packed signs (one per bit)") {
    zoopt::MeZO<T, zoopt::PackedRademacherSampler> opt(
        {.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 10, .weight_decay = 0.01});
    check_replay<T>(opt, 100);
  }
  if constexpr (zoopt::is_low_precision_v<T>) {
    SECTION("round-to-nearest updates") {
      zoopt::MeZO<T> opt({.lr = 2e-3, .eps = 1e-3, .directions = 2, .seed = 5},
                         zoopt::CpuBackend<T, zoopt::GaussianSampler>(
                             zoopt::CpuBackendOptions{.rounding = zoopt::Rounding::nearest}));
      check_replay<T>(opt, 100);
    }
  }
}

TEMPLATE_TEST_CASE("exact: replaying a KerZOO log reproduces the parameters bit-exactly",
                   "[exact][replay]", float, double, half, bfloat16) {
  using T = TestType;
  typename zoopt::KerZOO<T>::Params p;
  p.lr = 1e-3;
  p.seed = 6;
  p.weight_decay = 0.02;
  p.range.decay_steps = 60;  // a_t changes during the run
  zoopt::KerZOO<T> opt(p);
  check_replay<T>(opt, 120);
}

TEMPLATE_TEST_CASE("exact: replaying an FZOO log with a schedule reproduces the parameters",
                   "[exact][replay]", float, double, half, bfloat16) {
  using T = TestType;
  SECTION("plain, warm-up + cosine decay (lr changes every step)") {
    zoopt::FZOO<T> opt({.lr = 2e-3,
                        .eps = 1e-3,
                        .directions = 4,
                        .seed = 8,
                        .weight_decay = 0.02,
                        .schedule = zoopt::LrSchedule::warmup_cosine(10, 90, 0.1)});
    check_replay<T>(opt, 100);
  }
  SECTION("sigma-normalised, Gaussian, the KerZOO range schedule") {
    zoopt::FZOO<T, zoopt::GaussianSampler> opt({.lr = 1e-4,
                                                .eps = 1e-3,
                                                .directions = 3,
                                                .seed = 9,
                                                .normalize = true,
                                                .schedule = zoopt::LrSchedule::kerzoo_range(80)});
    check_replay<T>(opt, 100);
  }
}

TEMPLATE_TEST_CASE("exact: replaying a MeZO log with a linear decay reproduces the parameters",
                   "[exact][replay]", float, half) {
  using T = TestType;
  zoopt::MeZO<T> opt({.lr = 2e-3,
                      .eps = 1e-3,
                      .directions = 1,
                      .seed = 10,
                      .schedule = zoopt::LrSchedule::warmup_linear(5, 60, 0.0)});
  check_replay<T>(opt, 80);  // 20 steps at lr 0 after the decay: the bits stay
}

TEST_CASE("exact: a 20,000-step log is a few hundred KB and replays exactly", "[exact][replay]") {
  // MeZO, n = 1, constant settings: 13 bytes per step (flags, one f64
  // coefficient, CRC-32) plus the header, lr in the first record (8 bytes)
  // and the end record.
  std::vector<float> p = weights<float>(64, 1, 0.02, false);
  const auto base = p;
  zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 1});
  auto log = zoopt::UpdateLog::for_optimizer(opt, std::span<const float>(p));
  opt.optimize(Quadratic{}, std::span<float>(p), 20000, log.recorder(opt));
  const auto bytes = log.serialize();
  const std::size_t header =
      8 + 4 + 4 + (2 + 4) + (2 + 8) + (2 + 7) + 1 + 1 + 4 + 8 + 4 + (2 + 6 + 8 + 1) + 4;
  REQUIRE(bytes.size() == header + 8 + 20000 * 13 + 13);
  WARN("update log, MeZO n = 1, 20000 steps: " << bytes.size() << " bytes");
  auto r = base;
  zoopt::replay(log, std::span<float>(r));
  REQUIRE(first_difference(p, r) == -1);
}

TEST_CASE("exact: the log records non-default fields only when they change", "[exact][replay]") {
  zoopt::UpdateLog::Header h;
  h.optimizer = "test";
  h.sampler = "gaussian";
  h.estimator = "central";
  h.storage = 1;
  h.directions = 2;
  h.seed = 9;
  h.spans = {{"a", 3, true}, {"b", 2, false}};
  zoopt::UpdateLog log(h);
  const double c2[] = {0.5, -0.25};
  const double c3[] = {1.0, 2.0, 3.0};
  const double s[] = {0.5, 2.0};
  log.append(9, 0, 1e-3, 0.0, c2);      // lr differs from the initial 0
  log.append(9, 1, 1e-3, 0.0, c2);      // nothing but coefficients
  log.append(10, 5, 1e-3, 0.1, c3, s);  // seed, step, wd, directions, scales
  log.append(10, 6, 1e-3, 0.1, c3, s);  // same scales: not repeated
  log.append(10, 7, 1e-3, 0.1, c3);     // back to ones: written
  const auto bytes = log.serialize();
  const std::size_t header_end =
      8 + 4 + 4 + (2 + 4) + (2 + 8) + (2 + 7) + 1 + 1 + 4 + 8 + 4 + (2 + 1 + 8 + 1) * 2 + 4;
  const std::size_t records = (1 + 8 + 16 + 4) + (1 + 16 + 4) + (1 + 8 + 8 + 8 + 4 + 16 + 24 + 4) +
                              (1 + 24 + 4) + (1 + 16 + 24 + 4);
  REQUIRE(bytes.size() == header_end + records + 13);
  const auto back = zoopt::UpdateLog::deserialize(bytes);
  REQUIRE(back == log);
  REQUIRE(back[2].scales[1] == 2.0);
  REQUIRE(back[4].scales[0] == 1.0);
  REQUIRE(back[3].step == 6);
}

TEST_CASE("exact: corrupt or truncated update logs throw clear errors", "[exact][replay]") {
  std::vector<double> p = weights<double>(40, 2);
  zoopt::MeZO<double> opt({.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 1});
  zoopt::ParameterSet<double> set;
  set.add("p", std::span<double>(p));
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  opt.optimize(Quadratic{}, set, 4, log.recorder(opt));
  const auto bytes = log.serialize();

  SECTION("every truncation") {
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      const std::vector<unsigned char> cut(bytes.begin(), bytes.begin() + static_cast<long>(n));
      INFO("length " << n);
      REQUIRE_THROWS_AS(zoopt::UpdateLog::deserialize(cut), zoopt::FormatError);
    }
    const std::vector<unsigned char> cut(bytes.begin(), bytes.end() - 13);
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::deserialize(cut, "run.zlog"),
                        Catch::Contains("run.zlog") && Catch::Contains("end record is missing"));
  }
  SECTION("every single-bit flip") {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        auto bad = bytes;
        bad[i] ^= static_cast<unsigned char>(1u << bit);
        INFO("byte " << i << " bit " << bit);
        REQUIRE_THROWS_AS(zoopt::UpdateLog::deserialize(bad), zoopt::FormatError);
      }
    }
  }
  SECTION("messages name the problem") {
    auto bad = bytes;
    bad[0] = 'X';
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::deserialize(bad), Catch::Contains("bad magic"));
    bad = bytes;
    bad[8] = 3;  // versions 1 and 2 exist
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::deserialize(bad),
                        Catch::Contains("unsupported format version 3"));
    bad = bytes;
    bad[bytes.size() - 30] ^= 0x40;  // inside the last record's coefficients
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::deserialize(bad), Catch::Contains("CRC mismatch"));
    bad = bytes;
    bad.push_back(0);
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::deserialize(bad), Catch::Contains("after the end"));
    REQUIRE_THROWS_WITH(zoopt::UpdateLog::load("/nonexistent/dir/x.zlog"),
                        Catch::Contains("cannot open"));
  }
}

TEST_CASE("exact: replay and record reject mismatches", "[exact][replay]") {
  std::vector<float> p = weights<float>(40, 2);
  zoopt::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .directions = 1, .seed = 1});
  zoopt::ParameterSet<float> set;
  set.add("p", std::span<float>(p));
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  REQUIRE_THROWS_AS(log.record(opt), std::logic_error);  // no step yet
  opt.step(Quadratic{}, set);
  log.record(opt);
  REQUIRE_THROWS_AS(log.record(opt), std::logic_error);  // same step twice

  REQUIRE_THROWS_WITH(zoopt::replay<zoopt::RademacherSampler>(log, set),
                      Catch::Contains("Sampler") && Catch::Contains("gaussian"));
  std::vector<half> hp(40);
  zoopt::ParameterSet<half> hset;
  hset.add("p", std::span<half>(hp));
  REQUIRE_THROWS_WITH(zoopt::replay(log, hset),
                      Catch::Contains("params") && Catch::Contains("half"));
  std::vector<float> other(41);
  zoopt::ParameterSet<float> wrong;
  wrong.add("p", std::span<float>(other));
  REQUIRE_THROWS_WITH(zoopt::replay(log, wrong), Catch::Contains("41 elements"));
  zoopt::ParameterSet<float> renamed;
  renamed.add("q", std::span<float>(p));
  REQUIRE_THROWS_WITH(zoopt::replay(log, renamed), Catch::Contains("'q'"));

  auto h = log.header();
  h.sampler = "mine";
  zoopt::UpdateLog custom(h);
  REQUIRE_THROWS_WITH(zoopt::replay(custom, set), Catch::Contains("replay<ThatSampler>"));
  const double c[] = {1.0};
  const double bad_scales[] = {1.0, 2.0};
  REQUIRE_THROWS_WITH(custom.append(1, 0, 1e-3, 0.0, c, bad_scales), Catch::Contains("scales"));
  REQUIRE_THROWS_WITH(custom.append(1, 0, 1e-3, 0.0, {}), Catch::Contains("coefficients"));
  h.directions = 0;
  REQUIRE_THROWS_WITH(zoopt::UpdateLog(h), Catch::Contains("directions"));
}
