// Extending zoopt with a learning-rate schedule: linear warm-up, then decay
// as the inverse square root of the step (the Transformer's schedule,
// Vaswani et al., 2017, with its peak normalised to 1):
//   f(t) = min((t + 1) / w, sqrt(w / (t + 1))),   step t uses lr f(t),
// so f rises to 1 at t = w - 1 and halves every time t + 1 quadruples.
//
// A schedule is a pure function of the step number (LrSchedule::custom in
// zoopt/schedule/lr_schedule.hpp): it has no state, so a checkpoint resumes
// it from the step counter, and every update-log record holds the lr it
// used, so replay() needs nothing but the log. Its name goes into logs and
// checkpoints ("custom:inverse-sqrt(100)"); give different functions
// different names. Nothing in zoopt/ changes.
#include <zoopt/kerzoo.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "extension_check.hpp"

/// The schedule above; throws naming `warmup_steps` when it is 0.
zoopt::LrSchedule inverse_sqrt(std::uint64_t warmup_steps) {
  if (warmup_steps == 0) {
    throw zoopt::InvalidArgument("inverse_sqrt: warmup_steps must be >= 1");
  }
  const double w = static_cast<double>(warmup_steps);
  return zoopt::LrSchedule::custom("inverse-sqrt(" + std::to_string(warmup_steps) + ")",
                                   [w](std::uint64_t t) {
                                     const double s = static_cast<double>(t) + 1.0;
                                     return std::min(s / w, std::sqrt(w / s));
                                   });
}

int main() {
  using extending::expect;

  // Values that are exact in binary floating point.
  const auto f = inverse_sqrt(100);
  expect(f(0) == 0.01 && f(49) == 0.5 && f(99) == 1.0 && f(399) == 0.5 && f(1599) == 0.25,
         "f(0) = 1/w, f(w/2 - 1) = 1/2, f(w - 1) = 1, f(4w - 1) = 1/2, f(16w - 1) = 1/4");
  bool named = false;
  try {
    inverse_sqrt(0);
  } catch (const zoopt::InvalidArgument& e) {
    named = std::string(e.what()).find("warmup_steps") != std::string::npos;
  }
  expect(named, "warm-up 0 is rejected naming warmup_steps");

  // Trains, resumes and replays; replay() reads each step's lr from the log.
  zoopt::MeZO<float>::Params p;
  p.lr = 4e-3;
  p.eps = 1e-3;
  p.seed = 11;
  p.schedule = inverse_sqrt(100);
  const auto passes = extending::check_trains_resumes_replays<zoopt::MeZO<float>>(
      p, 3000, 0.01, [](const zoopt::UpdateLog& log, auto& params, zoopt::ReplayRange range) {
        zoopt::replay(log, params, range);
      });
  std::printf("%llu forward passes\n", static_cast<unsigned long long>(passes));

  // The schedule is part of the optimizer's identity: a checkpoint written
  // under it does not resume an optimizer with another one.
  const extending::Quadratic<float> loss;
  auto x = loss.start();
  auto set = extending::one_span(x);
  zoopt::MeZO<float> scheduled(p);
  scheduled.optimize(loss, set, 5);
  const auto contents = zoopt::checkpoint::capture(scheduled, set);
  auto other_params = p;
  other_params.schedule = inverse_sqrt(50);
  zoopt::MeZO<float> other(other_params);
  bool refused = false;
  try {
    zoopt::checkpoint::restore_state(contents, other);
  } catch (const zoopt::InvalidArgument& e) {
    refused = std::string(e.what()).find("inverse-sqrt(100)") != std::string::npos;
  }
  expect(refused && other.step_count() == 0,
         "a checkpoint under inverse-sqrt(100) does not resume inverse-sqrt(50)");
  return extending::failures() == 0 ? 0 : 1;
}
