// Data parallelism: every rank evaluates all directions on its own shard and
// the loss values are all-reduced in rank order. The result must equal, bit
// for bit, a single process whose loss is the mean of the same shards' losses
// (summed in shard order, divided once).
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <cstdio>

#include "harness.hpp"
#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

namespace {

constexpr std::uint64_t check_bytes = 8 * 11;  // one replica-check fingerprint

template <class Opt, bool UseSpan = false>
void data_case(const char* name, typename Opt::Params params, std::uint64_t check_every) {
  using T = typename Opt::value_type;
  const int p = world_size();
  const int me = world_rank();
  const std::size_t d = 301;
  const std::size_t bias = 13;
  const int steps = 5;
  const auto shards = all_shards(p, d);
  Replica<T> mine(d, bias, 11);
  Replica<T> ref(d, bias, 11);
  const std::vector<T> initial = mine.storage;
  Opt opt(params);
  Opt ref_opt(params);
  zm::Distributed driver(
      opt,
      {.parallelism = zm::Parallelism::data, .check_every = check_every, .timeout_seconds = 30.0});
  auto my_loss = [&] { return shard_loss<T>(shards[static_cast<std::size_t>(me)], mine.values()); };
  auto ref_loss = [&] { return mean_loss<T>(shards, ref.values()); };
  const std::uint64_t m = Opt::evaluations_per_step(params.directions);
  const std::uint64_t peers = static_cast<std::uint64_t>(p - 1);
  bool same_loss = true;
  bool same_params = true;
  bool same_coefficients = true;
  bool bytes_ok = true;
  for (int s = 0; s < steps; ++s) {
    double a = 0.0;
    if constexpr (UseSpan) {
      a = driver.step(
          [&](std::span<const T> theta) {
            return shard_loss<T>(shards[static_cast<std::size_t>(me)], theta);
          },
          std::span<T>(mine.storage));
    } else {
      a = driver.step(my_loss, mine.set);
    }
    const double b = ref_opt.step(ref_loss, ref.set);
    same_loss = same_loss && bitwise_equal(a, b);
    same_params = same_params && bitwise_equal(mine.values(), ref.values());
    same_coefficients =
        same_coefficients && bitwise_equal(driver.last_coefficients(), ref_opt.last_coefficients());
    // The first step checks the setup before evaluating; every check_every-th
    // step checks the replicas after its update.
    const std::uint64_t checks =
        (s == 0 ? 1 : 0) + (check_every != 0 && (s + 1) % check_every == 0 ? 1 : 0);
    const std::uint64_t expected = 8 * (1 + m) * peers + checks * check_bytes * peers;
    const zm::Traffic& t = driver.last_step_traffic();
    if (t.sent != expected || t.received != expected) {
      bytes_ok = false;
      std::fprintf(stderr, "%s step %d: sent %llu received %llu expected %llu\n", name, s,
                   static_cast<unsigned long long>(t.sent),
                   static_cast<unsigned long long>(t.received),
                   static_cast<unsigned long long>(expected));
    }
  }
  std::printf("[rank %d] %s: %d steps checked\n", me, name, steps);
  ZCHECK(same_loss);
  ZCHECK(same_params);
  ZCHECK(same_coefficients);
  ZCHECK(bytes_ok);
  ZCHECK(!bitwise_equal(mine.values(), std::span<const T>(initial)));  // the steps moved
  ZCHECK(opt.step_count() == static_cast<std::uint64_t>(steps));
  ZCHECK(opt.forward_passes() == static_cast<std::uint64_t>(steps) * m);
  ZCHECK(same_on_all_ranks(zm::parameter_hash<T>(mine.set.views())));
  // A different shard mix gives a different trajectory: the averaging matters.
  if (p > 1) {
    Replica<T> solo(d, bias, 11);
    Opt solo_opt(params);
    auto solo_loss = [&] { return shard_loss<T>(shards[0], solo.values()); };
    for (int s = 0; s < steps; ++s) solo_opt.step(solo_loss, solo.set);
    ZCHECK(!bitwise_equal(solo.values(), ref.values()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    using zoopt::CentralDifference;
    using zoopt::ForwardDifference;
    using zoopt::GaussianSampler;
    data_case<zoopt::KerZOO<float>>(
        "kerzoo float n=3 cubic",
        {.lr = 1e-4, .eps = 1e-3, .directions = 3, .seed = 7, .weight_decay = 1e-2}, 2);
    data_case<zoopt::MeZO<double>, true>("mezo double n=1 (span)",
                                         {.lr = 1e-4, .eps = 1e-3, .directions = 1, .seed = 9}, 1);
    data_case<zoopt::KerZOO<double, GaussianSampler, ForwardDifference>>(
        "kerzoo double n=2 forward quintic",
        {.lr = 1e-4, .eps = 1e-3, .directions = 2, .seed = 5, .kernel = zoopt::Kernel::quintic()},
        0);
  }
  const int rc = finish("mpi_data_parallel");
  MPI_Finalize();
  return rc;
}
