// Faults: a NaN/Inf loss or an exception on one rank must stop every rank
// with the same error and the parameters restored bit for bit; replicas that
// drift apart and ranks with mismatched settings must be reported on every
// rank, never hang.
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "harness.hpp"
#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

namespace {

using Opt = zoopt::KerZOO<float>;
constexpr std::size_t d = 301;
constexpr std::size_t bias = 13;

Opt::Params params(std::uint32_t n = 3, std::uint64_t seed = 17) {
  return {.lr = 1e-4, .eps = 1e-3, .directions = n, .seed = seed};
}

zm::Options options(zm::Parallelism mode, std::uint64_t check_every = 100) {
  return {.parallelism = mode, .check_every = check_every, .timeout_seconds = 30.0};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A failure injected on `bad_rank` at its `bad_call`-th loss call of step
// `bad_step`; the loss otherwise averages the same data as the reference.
void failure_case(const char* name, zm::Parallelism mode, int bad_rank, int bad_call,
                  double bad_value, bool throw_instead, bool two_ranks_fail) {
  const int p = world_size();
  const int me = world_rank();
  const auto shards = all_shards(p, d);
  Replica<float> mine(d, bias, 31);
  Replica<float> ref(d, bias, 31);
  Opt opt(params());
  Opt ref_opt(params());
  zm::Distributed driver(opt, options(mode));
  const bool by_data = mode == zm::Parallelism::data;
  int calls = 0;
  bool inject = false;
  auto healthy = [&] {
    return by_data ? shard_loss<float>(shards[static_cast<std::size_t>(me)], mine.values())
                   : mean_loss<float>(shards, mine.values());
  };
  auto loss = [&]() -> double {
    const double v = healthy();
    const bool bad = inject && (me == bad_rank || (two_ranks_fail && me == p - 1));
    if (bad && ++calls == bad_call) {
      if (throw_instead) throw std::runtime_error("injected failure on rank " + std::to_string(me));
      return bad_value;
    }
    return v;
  };
  auto ref_loss = [&] {
    return by_data ? mean_loss<float>(shards, ref.values())
                   : mean_loss<float>(shards, ref.values());
  };
  for (int s = 0; s < 2; ++s) {
    driver.step(loss, mine.set);
    ref_opt.step(ref_loss, ref.set);
  }
  const std::vector<float> before = mine.storage;
  inject = true;
  std::string message;
  bool right_type = false;
  int origin = -1;
  try {
    driver.step(loss, mine.set);
  } catch (const zm::RemoteFailure& e) {
    message = e.what();
    right_type = throw_instead;
    origin = e.origin();
  } catch (const zoopt::NonFiniteLoss& e) {
    message = e.what();
    right_type = !throw_instead;
  } catch (const std::exception& e) {
    message = std::string("wrong exception type: ") + e.what();
  }
  inject = false;
  if (me == 0) std::printf("%s: every rank caught: %s\n", name, message.c_str());
  const int expected_origin = two_ranks_fail ? std::min(bad_rank, p - 1) : bad_rank;
  ZCHECK(right_type);
  ZCHECK(!message.empty());
  ZCHECK(same_on_all_ranks(text_hash(message)));
  ZCHECK(contains(message, "rank " + std::to_string(expected_origin) + " of " + std::to_string(p)));
  ZCHECK(contains(message, "failed at step 2"));
  if (throw_instead) {
    ZCHECK(origin == expected_origin);
    ZCHECK(contains(message, "injected failure on rank " + std::to_string(expected_origin)));
  } else {
    ZCHECK(contains(message, std::isnan(bad_value) ? "nan" : "inf"));
  }
  ZCHECK(bitwise_equal(mine.values(), std::span<const float>(before)));
  ZCHECK(opt.step_count() == 2);
  // Training goes on from the restored parameters as if nothing happened.
  for (int s = 0; s < 2; ++s) {
    driver.step(loss, mine.set);
    ref_opt.step(ref_loss, ref.set);
  }
  ZCHECK(bitwise_equal(mine.values(), ref.values()));
  ZCHECK(opt.step_count() == 4);
}

void divergence_case() {
  const int p = world_size();
  const int me = world_rank();
  const auto shards = all_shards(p, d);
  Replica<float> mine(d, bias, 41);
  Opt opt(params());
  zm::Distributed driver(opt, options(zm::Parallelism::data, 2));
  auto loss = [&] {
    return shard_loss<float>(shards[static_cast<std::size_t>(me)], mine.values());
  };
  driver.step(loss, mine.set);
  driver.check_replicas(mine.set);  // identical so far: must not throw
  ZCHECK(true);
  // One ulp on the last rank: the next check (after step 2) must catch it.
  if (me == p - 1) mine.storage[7] = std::nextafter(mine.storage[7], 10.0f);
  std::string message;
  try {
    driver.step(loss, mine.set);
  } catch (const zm::ReplicaDivergence& e) {
    message = e.what();
  }
  if (me == 0) std::printf("divergence: every rank caught: %s\n", message.c_str());
  ZCHECK(contains(message, "the parameter hash"));
  ZCHECK(same_on_all_ranks(text_hash(message)));
  // check_replicas() on request reports it too.
  bool thrown = false;
  try {
    driver.check_replicas(mine.set);
  } catch (const zm::ReplicaDivergence&) {
    thrown = true;
  }
  ZCHECK(thrown);
}

// Ranks that disagree on settings fail before any evaluation, on every rank.
void mismatch_case(const char* name, zm::Parallelism mode, Opt::Params last_rank_params,
                   const char* field, std::size_t last_rank_d = d) {
  const int p = world_size();
  const int me = world_rank();
  const bool odd = me == p - 1;
  const std::size_t size = odd ? last_rank_d : d;
  Replica<float> mine(size, bias, 51);
  const std::vector<float> before = mine.storage;
  const auto shard = make_shard(me, size);
  Opt opt(odd ? last_rank_params : params());
  zm::Distributed driver(opt, options(mode));
  int calls = 0;
  auto loss = [&] {
    ++calls;
    return shard_loss<float>(shard, mine.values());
  };
  std::string message;
  try {
    driver.step(loss, mine.set);
  } catch (const zm::SetupMismatch& e) {
    message = e.what();
  }
  if (me == 0) std::printf("%s: every rank caught: %s\n", name, message.c_str());
  ZCHECK(contains(message, field));
  ZCHECK(same_on_all_ranks(text_hash(message)));
  ZCHECK(calls == 0);
  ZCHECK(bitwise_equal(mine.values(), std::span<const float>(before)));
}

void options_case() {
  Opt opt(params());
  bool thrown = false;
  try {
    zm::Distributed driver(opt, {.timeout_seconds = 0.0});
  } catch (const std::invalid_argument& e) {
    thrown = contains(e.what(), "timeout_seconds");
  }
  ZCHECK(thrown);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    const int p = world_size();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    // NaN on the last rank at its 2nd evaluation (direction 0, -h).
    failure_case("nan, data", zm::Parallelism::data, p - 1, 2, nan, false, false);
    // An exception on rank 0 at its 1st evaluation.
    failure_case("throw, directions", zm::Parallelism::directions, 0, 1, 0.0, true, false);
    // NaN on the last rank, whose block in directions mode is its own.
    failure_case("nan, directions", zm::Parallelism::directions, p - 1, 2, nan, false, false);
    // Inf on rank 0 and the last rank at once: rank 0's error is reported.
    failure_case("inf on two ranks, data", zm::Parallelism::data, 0, 3, inf, false, true);
    divergence_case();
    mismatch_case("seed mismatch", zm::Parallelism::data, params(3, 99), "the seed");
    mismatch_case("directions mismatch", zm::Parallelism::directions, params(4),
                  "the number of directions");
    mismatch_case("size mismatch", zm::Parallelism::data, params(), "the parameter count", d + 1);
    options_case();
  }
  const int rc = finish("mpi_faults");
  MPI_Finalize();
  return rc;
}
