// Settings of zoopt::mpi::Distributed, and how the directions of a step are
// split across ranks.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "zoopt/core/error.hpp"
#include "zoopt/mpi/communicator.hpp"

namespace zoopt::mpi {

/// How a step is split across ranks.
enum class Parallelism : std::uint8_t {
  data = 0,       ///< each rank: all directions on its own data shard
  directions = 1  ///< each rank: a contiguous block of directions, same batch
};

/// Settings of a Distributed driver, the same on every rank.
struct Options {
  Parallelism parallelism = Parallelism::data;  ///< how a step is split across ranks
  /// Compare a hash of every replica's parameters every this many steps of
  /// this driver (0: never; the first step always checks). A mismatch throws
  /// ReplicaDivergence on every rank. Costs one read of the parameters and
  /// one allgather of 8 * 11 bytes per rank.
  std::uint64_t check_every = 100;
  /// Deadline of each collective in seconds (finite, > 0); a rank that waits
  /// longer aborts the job with a "zoopt::mpi: ... timed out" message.
  double timeout_seconds = Communicator::default_timeout_seconds;
  /// Exit code given to MPI_Abort on a missed deadline or an MPI error.
  int abort_code = Communicator::default_abort_code;
  /// The ranks taking part (duplicated internally; the user's messages on it
  /// never mix with zoopt's).
  MPI_Comm comm = MPI_COMM_WORLD;

  /// Throws std::invalid_argument naming the first invalid field.
  void check() const {
    zoopt::detail::require(
        parallelism == Parallelism::data || parallelism == Parallelism::directions,
        "zoopt::mpi::Options", "parallelism", "must be data or directions");
    zoopt::detail::require(std::isfinite(timeout_seconds) && timeout_seconds > 0.0,
                           "zoopt::mpi::Options", "timeout_seconds", "must be finite and > 0");
  }
};

/// Contiguous block [first, last) of the n directions owned by `rank` of
/// `ranks`: the first n % ranks ranks get one direction more than the others.
[[nodiscard]] inline std::pair<std::uint32_t, std::uint32_t> direction_block(std::uint32_t n,
                                                                             int rank,
                                                                             int ranks) noexcept {
  const auto p = static_cast<std::uint32_t>(ranks);
  const auto r = static_cast<std::uint32_t>(rank);
  const std::uint32_t base = n / p;
  const std::uint32_t extra = n % p;
  const std::uint32_t first = r * base + std::min(r, extra);
  return {first, first + base + (r < extra ? 1u : 0u)};
}

}  // namespace zoopt::mpi
