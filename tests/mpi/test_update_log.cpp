// Update logs of distributed runs: Distributed::optimize with
// UpdateLog::recorder records what every step applied (the gathered
// coefficients, not a stale single-process step), on a fresh optimizer and
// after an ordinary step, in both parallel modes; replaying the log onto the
// base parameters reproduces the final parameters bit for bit on every rank;
// with the directions split, the run equals a single-process run bit for bit.
// Samplers that read shapes (LowRankSampler) get them on every rank.
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "harness.hpp"
#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

namespace {

template <class Opt>
void log_case(const char* name, zm::Parallelism mode, bool ordinary_step_first,
              typename Opt::Params params) {
  using T = typename Opt::value_type;
  const std::size_t d = 211;
  const int steps = 6;
  // Data mode: a shard per rank; directions mode: the same batch everywhere.
  const bool by_data = mode == zm::Parallelism::data;
  const auto shards = all_shards(by_data ? world_size() : 2, d);
  const std::vector<Shard> own = by_data ? std::vector<Shard>{shards[world_rank()]} : shards;
  // "w" (200 elements) as a 10 x 20 matrix for samplers that read shapes.
  const zoopt::MatrixShape shape = zoopt::ShapedSampler<typename Opt::sampler_type>
                                       ? zoopt::MatrixShape{10, 20}
                                       : zoopt::MatrixShape{};
  Replica<T> x(d, 11, 31, shape);
  Opt opt(params);
  opt.set_warning_sink([](const std::string&) {});
  auto shared_loss = [&] { return mean_loss<T>(shards, x.values()); };
  auto my_loss = [&] { return mean_loss<T>(own, x.values()); };
  if (ordinary_step_first) opt.step(shared_loss, x.set);  // the same on every rank

  const std::vector<T> base = x.storage;
  // A stateful update rule's state where the log starts (empty when fresh).
  auto rule_state = opt.update_state();
  auto log = zoopt::UpdateLog::for_optimizer(opt, x.set);
  zm::Distributed driver(opt, {.parallelism = mode, .timeout_seconds = 30.0});
  bool coefficients_agree = true;
  struct Agree {
    const Opt* opt;
    const zm::Distributed<Opt>* driver;
    bool* ok;
    void on_step(const zoopt::StepReport&) {
      *ok = *ok && bitwise_equal(opt->last_coefficients(), driver->last_coefficients());
    }
  };
  const zoopt::OptimizeResult r = driver.optimize(my_loss, x.set, steps, log.recorder(opt),
                                                  Agree{&opt, &driver, &coefficients_agree});

  Replica<T> target(d, 11, 31, shape);
  std::copy(base.begin(), base.end(), target.storage.begin());
  if constexpr (std::is_same_v<typename Opt::update_type, zoopt::SgdUpdate>) {
    zoopt::replay<typename Opt::sampler_type>(log, target.set);
  } else {
    zoopt::replay<typename Opt::sampler_type>(log, target.set, rule_state);
  }
  const bool same = bitwise_equal(std::span<const T>(target.storage), x.values());
  std::printf("[rank %d] %s: %zu records, replay %s\n", world_rank(), name, log.size(),
              same ? "bit-identical" : "DIFFERS");
  ZCHECK(r.steps == static_cast<std::size_t>(steps));
  ZCHECK(log.size() == static_cast<std::size_t>(steps));
  ZCHECK(log[0].step == (ordinary_step_first ? 1u : 0u));
  ZCHECK(coefficients_agree);
  ZCHECK(same);
  ZCHECK(same_on_all_ranks(zm::parameter_hash<T>(x.set.views())));

  if (!by_data) {
    // Splitting the directions changes nothing: one process taking the same
    // steps ends on the same bits.
    Replica<T> alone(d, 11, 31, shape);
    Opt single(params);
    single.set_warning_sink([](const std::string&) {});
    auto loss = [&] { return mean_loss<T>(shards, alone.values()); };
    single.optimize(loss, alone.set,
                    static_cast<std::size_t>(steps) + (ordinary_step_first ? 1 : 0));
    ZCHECK(bitwise_equal(std::span<const T>(alone.storage), x.values()));
  }
}

template <class Opt>
void all_cases(const char* name, typename Opt::Params params) {
  for (const auto mode : {zm::Parallelism::data, zm::Parallelism::directions}) {
    for (const bool first : {false, true}) {
      const std::string label = std::string(name) +
                                (mode == zm::Parallelism::data ? " data" : " directions") +
                                (first ? " after an ordinary step" : " fresh");
      log_case<Opt>(label.c_str(), mode, first, params);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    all_cases<zoopt::MeZO<float>>("mezo float n=3",
                                  {.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 1});
    all_cases<zoopt::KerZOO<double>>(
        "kerzoo double n=4",
        {.lr = 1e-3, .eps = 1e-3, .directions = 4, .seed = 2, .weight_decay = 1e-2});
    all_cases<zoopt::MeZO<float, zoopt::RademacherSampler, zoopt::ForwardDifference>>(
        "mezo float rademacher forward n=2", {.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 3});
    all_cases<zoopt::FZOO<float>>("fzoo float n=5 warm-up + cosine",
                                  {.lr = 1e-3,
                                   .eps = 1e-3,
                                   .directions = 5,
                                   .seed = 4,
                                   .schedule = zoopt::LrSchedule::warmup_cosine(2, 6)});
    all_cases<zoopt::FZOO<double, zoopt::GaussianSampler>>(
        "fzoo double gaussian n=4 normalized",
        {.lr = 1e-4, .eps = 1e-3, .directions = 4, .seed = 5, .normalize = true});
    all_cases<zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference,
                          zoopt::CpuBackend<float, zoopt::GaussianSampler>, zoopt::MomentumUpdate>>(
        "mezo float n=3 momentum",
        {.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 6, .update = {.beta = 0.8}});
    all_cases<zoopt::FZOO<double, zoopt::RademacherSampler,
                          zoopt::CpuBackend<double, zoopt::RademacherSampler>, zoopt::AdamUpdate>>(
        "fzoo double n=4 adam", {.lr = 1e-3, .eps = 1e-3, .directions = 4, .seed = 7});
    all_cases<zoopt::MeZO<float, zoopt::LowRankSampler<2, 4>>>(
        "mezo float n=3 low-rank", {.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 8});
  }
  const int rc = finish("mpi_update_log");
  MPI_Finalize();
  return rc;
}
