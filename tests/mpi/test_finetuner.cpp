// The ZO Fine-tuner under zoopt::mpi::Distributed: its per-block scales and
// loss history take part in the distributed step, so a distributed run
// equals the single-process run bit for bit in both parallel modes (and is
// not MeZO), and its update log (with the per-step scales) replays exactly.
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"
#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

namespace {

// Networks whose outputs depend on their inputs (block statistics, last
// losses, last scale), so a step that ignored the model or its history
// would take a different path.
zoopt::PerturbationModel responsive_model(const zoopt::ParameterSet<double>& set) {
  zoopt::PerturbationModel m = zoopt::PerturbationModel::unit(set, 5);
  Stream g(77);
  for (std::size_t i = 0; i < m.size(); ++i) {
    for (int k = 0; k < 64; ++k) m.block(i).net.w2(k) = 0.5 * g.next();
    m.block(i).net.b2 = 1.0 + 0.5 * static_cast<double>(i);
  }
  return m;
}

void finetuner_case(zm::Parallelism mode, std::uint32_t directions) {
  const std::size_t d = 157;
  const int steps = 6;
  const bool by_data = mode == zm::Parallelism::data;
  const auto shards = all_shards(by_data ? world_size() : 2, d);
  const std::vector<Shard> own = by_data ? std::vector<Shard>{shards[world_rank()]} : shards;
  const zoopt::ZOFineTuner<double>::Params params{
      .lr = 2e-3, .eps = 1e-3, .directions = directions, .seed = 9};

  Replica<double> mine(d, 17, 41);
  Replica<double> ref(d, 17, 41);
  Replica<double> mezo_x(d, 17, 41);
  const zoopt::PerturbationModel model = responsive_model(mine.set);
  zoopt::ZOFineTuner<double> opt(params, model, mine.set);
  zoopt::ZOFineTuner<double> ref_opt(params, model, ref.set);
  zoopt::MeZO<double> mezo({.lr = 2e-3, .eps = 1e-3, .directions = directions, .seed = 9});
  const std::vector<double> base = mine.storage;

  auto log = zoopt::UpdateLog::for_optimizer(opt, mine.set);
  zm::Distributed driver(opt, {.parallelism = mode, .timeout_seconds = 30.0});
  auto my_loss = [&] { return mean_loss<double>(own, mine.values()); };
  auto ref_loss = [&] { return mean_loss<double>(shards, ref.values()); };
  auto mezo_loss = [&] { return mean_loss<double>(shards, mezo_x.values()); };
  driver.optimize(my_loss, mine.set, steps, log.recorder(opt));
  ref_opt.optimize(ref_loss, ref.set, steps);
  mezo.optimize(mezo_loss, mezo_x.set, steps);

  Replica<double> replayed(d, 17, 41);
  std::copy(base.begin(), base.end(), replayed.storage.begin());
  zoopt::replay(log, replayed.set);

  bool scaled = false;
  for (const double s : opt.scales()) scaled = scaled || s != 1.0;
  const bool same = bitwise_equal(mine.values(), ref.values());
  std::printf("[rank %d] zo-finetuner %s n=%u: %s single process\n", world_rank(),
              by_data ? "data" : "directions", directions, same ? "equals" : "DIFFERS from");
  ZCHECK(same);
  ZCHECK(bitwise_equal(opt.scales(), ref_opt.scales()));
  ZCHECK(opt.previous_losses() == ref_opt.previous_losses());
  ZCHECK(scaled);
  ZCHECK(!bitwise_equal(mine.values(), mezo_x.values()));  // not plain MeZO
  ZCHECK(log.header().optimizer == "zo-finetuner");
  ZCHECK(bitwise_equal(std::span<const double>(replayed.storage), mine.values()));
  ZCHECK(same_on_all_ranks(zm::parameter_hash<double>(mine.set.views())));
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  for (const auto mode : {zm::Parallelism::data, zm::Parallelism::directions}) {
    finetuner_case(mode, 1);
    finetuner_case(mode, 3);
  }
  const int rc = finish("mpi_finetuner");
  MPI_Finalize();
  return rc;
}
