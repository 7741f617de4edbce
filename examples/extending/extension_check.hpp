// The checks each extension example runs on itself, so that a user's own
// sampler, update rule or schedule can be held to the same guarantees as
// zoopt's: it trains, a checkpoint resumes it bit for bit, and its update log
// replays bit for bit (in two pieces, so that any state carries over).
#pragma once

#include <zoopt/kerzoo.hpp>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace extending {

/// Counts failed expectations; main() returns failures() != 0.
inline int& failure_count() {
  static int n = 0;
  return n;
}
inline int failures() { return failure_count(); }

inline void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failure_count();
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// L(x) = 1/2 sum_j a_j (x_j - c_j)^2 with curvatures a_j in [1, 4]
/// (condition number 4) and optimum c_j in [0.25, 0.75]; L = 0 at c.
template <class T>
struct Quadratic {
  std::size_t d = 128;

  [[nodiscard]] double curvature(std::size_t j) const {
    return 1.0 + 3.0 * static_cast<double>(j) / static_cast<double>(d - 1);
  }
  [[nodiscard]] static double optimum(std::size_t j) {
    return 0.5 + 0.25 * std::sin(static_cast<double>(j));
  }
  [[nodiscard]] std::vector<T> start() const { return std::vector<T>(d, T(0)); }
  [[nodiscard]] double operator()(const zoopt::ParameterSet<T>& p) const {
    double f = 0.0;
    const auto x = p.span(0);
    for (std::size_t j = 0; j < x.size(); ++j) {
      const double r = static_cast<double>(x[j]) - optimum(j);
      f += 0.5 * curvature(j) * r * r;
    }
    return f;
  }
};

template <class T>
zoopt::ParameterSet<T> one_span(std::vector<T>& x) {
  zoopt::ParameterSet<T> set;
  set.add("x", std::span<T>(x));
  return set;
}

/// Runs `steps` steps of Opt(p) on the quadratic and checks that
///  1. the loss falls to `target` times its start value or below;
///  2. stopping after steps/3, saving a checkpoint (through its byte format)
///     and resuming in a fresh optimizer gives the same bits;
///  3. replay_log(log, params, range), called for [0, steps/2) and then
///     [steps/2, steps) on the start values, gives the same bits.
/// Returns the forward passes the run took.
template <class Opt, class ReplayLog>
std::uint64_t check_trains_resumes_replays(const typename Opt::Params& p, std::size_t steps,
                                           double target, ReplayLog&& replay_log) {
  using T = typename Opt::value_type;
  const Quadratic<T> loss;

  auto x = loss.start();
  auto set = one_span(x);
  const double start_loss = loss(set);
  Opt opt(p);
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  const auto run = opt.optimize(loss, set, steps, log.recorder(opt));
  const double end_loss = loss(set);
  char line[160];
  std::snprintf(line, sizeof line,
                "trains: loss %.4g -> %.4g in %zu steps (target <= %.3g x start)", start_loss,
                end_loss, steps, target);
  expect(end_loss <= target * start_loss, line);

  auto part = loss.start();
  auto part_set = one_span(part);
  Opt first(p);
  first.optimize(loss, part_set, steps / 3);
  const auto bytes = zoopt::checkpoint::serialize(zoopt::checkpoint::capture(first, part_set));
  auto resumed = loss.start();
  auto resumed_set = one_span(resumed);
  Opt second(p);
  zoopt::checkpoint::restore(zoopt::checkpoint::deserialize(bytes), second, resumed_set);
  second.optimize(loss, resumed_set, steps - steps / 3);
  expect(same_bits(resumed, x),
         "checkpoint after " + std::to_string(steps / 3) + " steps resumes bit-identically");

  auto replayed = loss.start();
  auto replayed_set = one_span(replayed);
  const auto loaded = zoopt::UpdateLog::deserialize(log.serialize());
  replay_log(loaded, replayed_set, zoopt::ReplayRange{0, steps / 2});
  replay_log(loaded, replayed_set, zoopt::ReplayRange{steps / 2, steps});
  expect(same_bits(replayed, x), "update log replays bit-identically in two pieces");
  return run.forward_passes;
}

}  // namespace extending
