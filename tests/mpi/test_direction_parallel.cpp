// Direction parallelism: the n directions are split into contiguous blocks,
// one per rank, evaluated on the same batch; the ranks gather the n
// coefficients and apply the full update. The result must equal the
// single-process n-direction step bit for bit: same coefficients, same
// parameters, same mean loss.
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <cstdio>

#include "harness.hpp"
#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

namespace {

constexpr std::uint64_t check_bytes = 8 * 11;  // one replica-check fingerprint

template <class Opt>
void direction_case(const char* name, typename Opt::Params params) {
  using T = typename Opt::value_type;
  using Estimator = typename Opt::estimator_type;
  const int p = world_size();
  const int me = world_rank();
  const std::size_t d = 301;
  const std::size_t bias = 13;
  const int steps = 5;
  const std::uint64_t check_every = 3;
  const std::uint32_t n = params.directions;
  const auto shards = all_shards(2, d);  // the same batch on every rank
  Replica<T> mine(d, bias, 21);
  Replica<T> ref(d, bias, 21);
  Opt opt(params);
  Opt ref_opt(params);
  zm::Distributed driver(opt, {.parallelism = zm::Parallelism::directions,
                               .check_every = check_every,
                               .timeout_seconds = 30.0});
  auto my_loss = [&] { return mean_loss<T>(shards, mine.values()); };
  auto ref_loss = [&] { return mean_loss<T>(shards, ref.values()); };

  // Payload values per rank: status, its loss values, its coefficients.
  auto payload = [&](int r) {
    const auto [f, l] = zm::direction_block(n, r, p);
    const std::uint64_t k = l - f;
    return 1 + (Estimator::evaluates_base ? 1 : 0) + k * Estimator::points_per_direction + k;
  };
  std::uint64_t others = 0;
  for (int r = 0; r < p; ++r) others += r == me ? 0 : payload(r);
  const std::uint64_t peers = static_cast<std::uint64_t>(p - 1);

  bool same_loss = true;
  bool same_params = true;
  bool same_coefficients = true;
  bool bytes_ok = true;
  for (int s = 0; s < steps; ++s) {
    const double a = driver.step(my_loss, mine.set);
    const double b = ref_opt.step(ref_loss, ref.set);
    same_loss = same_loss && bitwise_equal(a, b);
    same_params = same_params && bitwise_equal(mine.values(), ref.values());
    same_coefficients =
        same_coefficients && bitwise_equal(driver.last_coefficients(), ref_opt.last_coefficients());
    const std::uint64_t checks = (s == 0 ? 1 : 0) + ((s + 1) % check_every == 0 ? 1 : 0);
    const std::uint64_t extra = checks * check_bytes * peers;
    const zm::Traffic& t = driver.last_step_traffic();
    if (t.sent != 8 * payload(me) * peers + extra || t.received != 8 * others + extra) {
      bytes_ok = false;
      std::fprintf(stderr, "%s step %d: sent %llu received %llu\n", name, s,
                   static_cast<unsigned long long>(t.sent),
                   static_cast<unsigned long long>(t.received));
    }
  }
  const auto [first, last] = zm::direction_block(n, me, p);
  const std::uint64_t local_evaluations =
      (Estimator::evaluates_base ? 1 : 0) + (last - first) * Estimator::points_per_direction;
  std::printf("[rank %d] %s: directions [%u, %u) of %u, %d steps checked\n", me, name, first, last,
              n, steps);
  ZCHECK(same_loss);
  ZCHECK(same_params);
  ZCHECK(same_coefficients);
  ZCHECK(driver.last_coefficients().size() == n);
  ZCHECK(bytes_ok);
  ZCHECK(opt.step_count() == static_cast<std::uint64_t>(steps));
  ZCHECK(opt.forward_passes() == static_cast<std::uint64_t>(steps) * local_evaluations);
  ZCHECK(same_on_all_ranks(zm::parameter_hash<T>(mine.set.views())));
}

void block_partition() {
  bool ok = true;
  for (std::uint32_t n = 0; n <= 9; ++n) {
    for (int p = 1; p <= 5; ++p) {
      std::uint32_t next = 0;
      for (int r = 0; r < p; ++r) {
        const auto [f, l] = zm::direction_block(n, r, p);
        const std::uint32_t k = l - f;
        ok = ok && f == next && l >= f && k >= n / static_cast<std::uint32_t>(p) &&
             k <= n / static_cast<std::uint32_t>(p) + 1;
        next = l;
      }
      ok = ok && next == n;
    }
  }
  ZCHECK(ok);
  // The first n % p ranks take the extra direction.
  ZCHECK((zm::direction_block(5, 0, 3) == std::pair<std::uint32_t, std::uint32_t>{0, 2}));
  ZCHECK((zm::direction_block(5, 1, 3) == std::pair<std::uint32_t, std::uint32_t>{2, 4}));
  ZCHECK((zm::direction_block(5, 2, 3) == std::pair<std::uint32_t, std::uint32_t>{4, 5}));
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    using zoopt::ForwardDifference;
    using zoopt::GaussianSampler;
    using zoopt::RademacherSampler;
    block_partition();
    direction_case<zoopt::KerZOO<float>>(
        "kerzoo float n=3 cubic",
        {.lr = 1e-4, .eps = 1e-3, .directions = 3, .seed = 3, .weight_decay = 1e-2});
    direction_case<zoopt::KerZOO<double>>("kerzoo double n=5 cubic",
                                          {.lr = 1e-4, .eps = 1e-3, .directions = 5, .seed = 4});
    direction_case<zoopt::MeZO<float>>("mezo float n=4",
                                       {.lr = 1e-4, .eps = 1e-3, .directions = 4, .seed = 5});
    // With 3 ranks one rank owns no direction and contributes only a status.
    direction_case<zoopt::KerZOO<float>>("kerzoo float n=2",
                                         {.lr = 1e-4, .eps = 1e-3, .directions = 2, .seed = 6});
    direction_case<zoopt::KerZOO<double, GaussianSampler, ForwardDifference>>(
        "kerzoo double n=3 forward", {.lr = 1e-4, .eps = 1e-3, .directions = 3, .seed = 7});
    direction_case<zoopt::KerZOO<float, RademacherSampler>>(
        "kerzoo float n=4 rademacher quintic range", {.lr = 1e-4,
                                                      .eps = 1e-3,
                                                      .directions = 4,
                                                      .seed = 8,
                                                      .kernel = zoopt::Kernel::quintic(),
                                                      .range = {.decay_steps = 4}});
  }
  const int rc = finish("mpi_direction_parallel");
  MPI_Finalize();
  return rc;
}
