// optimize() and its callbacks: CsvLogger, EarlyStop, ProgressBar and the
// counts optimize() returns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "test_util.hpp"

namespace {

using Catch::Matchers::Contains;

// Records every report optimize() hands out.
struct Recorder {
  std::vector<zoopt::StepReport> reports;
  std::size_t begun = 0;
  int ended = 0;
  zoopt::OptimizeResult end_result;
  void on_begin(std::size_t total) { begun = total; }
  void on_step(const zoopt::StepReport& r) { reports.push_back(r); }
  void on_end(const zoopt::OptimizeResult& r) {
    ++ended;
    end_result = r;
  }
};

double sq(std::span<const double> x) {
  double s = 0.0;
  for (const double v : x) s += v * v;
  return s;
}

std::filesystem::path temp_file(const std::string& tag) {
  return std::filesystem::temp_directory_path() /
         ("zoopt_core_" + tag + "_" + std::to_string(::getpid()) + ".csv");
}

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("core.callbacks optimize returns the right counts", "[core][callbacks]") {
  std::vector<double> x(12, 1.0);
  zoopt::MeZO<double> opt(zt::make_params<zoopt::MeZO<double>>(5e-2, 1e-3, 2, 1));
  opt.step(sq, std::span<double>(x));  // one step before: counts are per call
  Recorder rec;
  const auto r = opt.optimize(sq, std::span<double>(x), 25, rec);
  CHECK(r.steps == 25);
  CHECK_FALSE(r.stopped_early);
  CHECK(r.forward_passes == 25 * 4);
  CHECK(opt.forward_passes() == 26 * 4);
  CHECK(opt.step_count() == 26);
  CHECK(r.seconds >= 0.0);
  REQUIRE(rec.reports.size() == 25);
  CHECK(rec.begun == 25);
  CHECK(rec.ended == 1);
  CHECK(rec.end_result.steps == 25);
  double best = rec.reports.front().loss;
  for (std::size_t i = 0; i < rec.reports.size(); ++i) {
    const auto& rep = rec.reports[i];
    CHECK(rep.iteration == i);
    CHECK(rep.total == 25);
    CHECK(rep.step == i + 2);
    CHECK(rep.forward_passes == (i + 2) * 4);
    if (i > 0) CHECK(rep.seconds >= rec.reports[i - 1].seconds);
    best = std::min(best, rep.loss);
  }
  CHECK(r.final_loss == rec.reports.back().loss);
  CHECK(r.best_loss == best);
  CHECK(r.final_loss < rec.reports.front().loss);  // it descends

  // A parameter set and zero steps.
  zoopt::ParameterSet<double> set;
  set.add("x", std::span<double>(x));
  Recorder none;
  const auto r0 = opt.optimize([] { return 1.0; }, set, 0, none);
  CHECK(r0.steps == 0);
  CHECK(r0.forward_passes == 0);
  CHECK(none.reports.empty());
  CHECK(none.ended == 1);
}

TEST_CASE("core.callbacks csv logger writes a header and one row per step", "[core][callbacks]") {
  const auto path = temp_file("log");
  std::vector<double> x(6, 0.5);
  zoopt::KerZOO<double> opt(zt::make_params<zoopt::KerZOO<double>>(1e-2, 1e-3, 3, 2));
  Recorder rec;
  {
    zoopt::CsvLogger log(path.string());
    opt.optimize(sq, std::span<double>(x), 7, log, rec);
  }
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 8);
  CHECK(lines[0] == "step,loss,forward_passes,seconds");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::istringstream row(lines[i]);
    std::string step, loss, passes, secs;
    std::getline(row, step, ',');
    std::getline(row, loss, ',');
    std::getline(row, passes, ',');
    std::getline(row, secs, ',');
    CHECK(std::stoull(step) == i);
    CHECK(std::stoull(passes) == 6 * i);
    // 10 significant digits are written.
    CHECK(std::stod(loss) == Approx(rec.reports[i - 1].loss).epsilon(1e-9));
    CHECK(std::stod(secs) >= 0.0);
  }
  std::filesystem::remove(path);

  // every = 3 over 7 steps: iterations 3, 6 and the last one.
  {
    zoopt::CsvLogger log(path.string(), 3);
    opt.optimize(sq, std::span<double>(x), 7, log);
  }
  const auto sparse = read_lines(path);
  REQUIRE(sparse.size() == 4);
  CHECK(sparse[1].rfind("10,", 0) == 0);
  CHECK(sparse[2].rfind("13,", 0) == 0);
  CHECK(sparse[3].rfind("14,", 0) == 0);
  std::filesystem::remove(path);

  CHECK_THROWS_MATCHES(zoopt::CsvLogger("/nonexistent-dir-zoopt/x.csv"), std::runtime_error,
                       zt::WhatContains("/nonexistent-dir-zoopt/x.csv"));
}

TEST_CASE("core.callbacks early stop on target and on patience", "[core][callbacks]") {
  // Target, raw losses (smoothing 0): stops at the first step whose loss is
  // at or below the target.
  std::vector<double> x(8, 1.0);
  zoopt::MeZO<double> opt(zt::make_params<zoopt::MeZO<double>>(5e-2, 1e-3, 1, 3));
  Recorder rec;
  const double target = 4.0;  // starts at 8
  const auto r = opt.optimize(sq, std::span<double>(x), 1000, rec,
                              zoopt::EarlyStop({.patience = 0, .target = target, .smoothing = 0}));
  REQUIRE(r.stopped_early);
  const auto first = std::find_if(rec.reports.begin(), rec.reports.end(),
                                  [&](const auto& rep) { return rep.loss <= target; });
  REQUIRE(first != rec.reports.end());
  CHECK(r.steps == static_cast<std::size_t>(first - rec.reports.begin()) + 1);
  CHECK(rec.reports.size() == r.steps);
  CHECK(r.final_loss <= target);

  // Patience: a constant loss improves once (from +inf) and then never, so
  // with patience p the run stops after p + 1 steps.  With smoothing 0 the
  // "smoothed" loss is the raw loss exactly.
  for (std::size_t patience : {1u, 5u}) {
    const auto rp = opt.optimize([] { return 3.0; }, std::span<double>(x), 100,
                                 zoopt::EarlyStop({.patience = patience, .smoothing = 0}));
    CHECK(rp.stopped_early);
    CHECK(rp.steps == patience + 1);
  }
  // min_delta: improvements of 1e-3 per step, below min_delta = 1e-2, do not
  // reset the counter: step 1 sets the best, steps 2..5 count to 4.
  double level = 10.0;
  auto slow = [&level] { return level -= 1e-3; };
  const auto rd =
      opt.optimize(slow, std::span<double>(x), 100,
                   zoopt::EarlyStop({.patience = 4, .min_delta = 1e-2, .smoothing = 0}));
  CHECK(rd.steps == 5);
  CHECK(rd.stopped_early);
  // Patience 0 and no target: never stops.
  const auto rn =
      opt.optimize([] { return 3.0; }, std::span<double>(x), 30, zoopt::EarlyStop({.patience = 0}));
  CHECK(rn.steps == 30);
  CHECK_FALSE(rn.stopped_early);
  // Stopping on the very last step is not "early".
  const auto rl = opt.optimize([] { return 3.0; }, std::span<double>(x), 3,
                               zoopt::EarlyStop({.patience = 2, .smoothing = 0}));
  CHECK(rl.steps == 3);
  CHECK_FALSE(rl.stopped_early);

  CHECK_THROWS_MATCHES(zoopt::EarlyStop({.smoothing = 1.0}), std::invalid_argument,
                       zt::WhatContains("smoothing"));
  CHECK_THROWS_MATCHES(zoopt::EarlyStop({.min_delta = -1.0}), std::invalid_argument,
                       zt::WhatContains("min_delta"));
}

TEST_CASE("core.callbacks progress bar on a non-terminal stream", "[core][callbacks]") {
  std::ostringstream out;
  std::vector<double> x(4, 1.0);
  zoopt::MeZO<double> opt(zt::make_params<zoopt::MeZO<double>>(1e-2, 1e-3, 1, 4));
  opt.optimize(sq, std::span<double>(x), 20, zoopt::ProgressBar("train", out, 10));
  const std::string s = out.str();
  // Not a terminal: a plain line every 10%, no carriage returns.
  CHECK(s.find('\r') == std::string::npos);
  CHECK(std::count(s.begin(), s.end(), '\n') == 10);
  std::istringstream lines(s);
  int k = 0;
  for (std::string line; std::getline(lines, line);) {
    ++k;
    CHECK(line.rfind("train [", 0) == 0);
    CHECK_THAT(line, Contains(std::to_string(2 * k) + "/20"));
    CHECK_THAT(line, Contains("loss"));
  }
  CHECK_THAT(s, Contains("[##########] 20/20"));
  CHECK_THAT(s, Contains("[#####.....] 10/20"));
}
