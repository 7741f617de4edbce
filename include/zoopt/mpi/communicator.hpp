// The collectives zoopt::mpi needs, each with a deadline.
//
// MPI's blocking collectives wait forever when a peer hangs or never calls
// them. Every collective here is nonblocking (MPI_Iallgatherv, MPI_Ibcast,
// MPI_Comm_idup), polled with MPI_Test until it completes or its deadline
// passes. A collective that misses its deadline, or an MPI error, prints one
// line starting with "zoopt::mpi:" to stderr and calls MPI_Abort, which ends
// every process of the job: after a missed collective the communicator is
// unusable, so there is nothing to recover.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "zoopt/core/error.hpp"

namespace zoopt::mpi {

/// Payload bytes that collectives had to move for this rank. `sent` counts
/// this rank's contribution once per rank that receives it; `received` counts
/// the other ranks' contributions that reach this rank. MPI's headers and
/// the forwarding done by its collective algorithms (ring, tree) are not
/// counted: the figures depend only on what zoopt exchanges.
struct Traffic {
  std::uint64_t sent = 0;         ///< payload bytes this rank contributed to others
  std::uint64_t received = 0;     ///< payload bytes this rank received from others
  std::uint64_t collectives = 0;  ///< collectives completed
  double wait_seconds = 0.0;      ///< wall time spent inside collectives (incl. waiting for peers)

  Traffic& operator+=(const Traffic& o) noexcept {
    sent += o.sent;
    received += o.received;
    collectives += o.collectives;
    wait_seconds += o.wait_seconds;
    return *this;
  }
  friend Traffic operator-(Traffic a, const Traffic& b) noexcept {
    a.sent -= b.sent;
    a.received -= b.received;
    a.collectives -= b.collectives;
    a.wait_seconds -= b.wait_seconds;
    return a;
  }
};

/// A private duplicate of a communicator with deadline-bounded collectives
/// and payload counters. Construction is collective over `comm` (it calls
/// MPI_Comm_idup) and needs MPI to be initialised.
class Communicator {
 public:
  /// Default deadline of one collective, in seconds. It bounds how long a
  /// rank waits for the slowest peer to reach the same exchange, so it must
  /// exceed the worst skew between ranks (forward passes, data loading).
  static constexpr double default_timeout_seconds = 600.0;
  /// Exit code passed to MPI_Abort on a missed deadline or an MPI error.
  static constexpr int default_abort_code = 70;

  /// Duplicates `comm`. Throws std::logic_error if MPI is not initialised
  /// (or already finalised) and std::invalid_argument for a timeout that is
  /// not finite and > 0.
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD,
                        double timeout_seconds = default_timeout_seconds,
                        int abort_code = default_abort_code)
      : comm_(comm), timeout_(timeout_seconds), abort_code_(abort_code) {
    int initialized = 0;
    int finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) {
      throw zoopt::LogicError(
          "zoopt::mpi::Communicator: MPI is not initialised (call MPI_Init before creating "
          "a zoopt::mpi object and MPI_Finalize after destroying it)");
    }
    if (!(std::isfinite(timeout_seconds) && timeout_seconds > 0.0)) {
      throw zoopt::InvalidArgument(
          "zoopt::mpi::Communicator: timeout_seconds must be finite and > 0");
    }
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &size_);
    MPI_Comm dup = MPI_COMM_NULL;
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Comm_idup(comm, &dup, &request), "MPI_Comm_idup");
    wait(request, "duplicating the communicator");
    comm_ = dup;
    owned_ = true;
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    displacements_.resize(static_cast<std::size_t>(size_));
    int_counts_.resize(static_cast<std::size_t>(size_));
  }

  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  ~Communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  [[nodiscard]] MPI_Comm get() const noexcept { return comm_; }
  [[nodiscard]] double timeout_seconds() const noexcept { return timeout_; }

  /// Payload moved since construction (or the last reset_traffic()).
  [[nodiscard]] const Traffic& traffic() const noexcept { return traffic_; }
  void reset_traffic() noexcept { traffic_ = Traffic{}; }

  /// The optimizer step named in timeout and error messages (-1: none).
  void set_step(std::int64_t step) noexcept { step_ = step; }

  /// Every rank contributes counts[rank] doubles; `all` receives the blocks
  /// in rank order. counts must be the same on every rank, `mine` must hold
  /// counts[rank] values and `all` their sum.
  void allgatherv(std::span<const double> mine, std::span<const std::uint64_t> counts,
                  std::span<double> all, const char* what) {
    std::uint64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      const auto i = static_cast<std::size_t>(r);
      displacements_[i] = static_cast<int>(total);
      int_counts_[i] = static_cast<int>(counts[i]);
      total += counts[i];
    }
    if (mine.size() != counts[static_cast<std::size_t>(rank_)] || all.size() != total ||
        total > static_cast<std::uint64_t>(INT32_MAX)) {
      throw zoopt::LogicError("zoopt::mpi::Communicator::allgatherv: inconsistent sizes");
    }
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Iallgatherv(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
                          int_counts_.data(), displacements_.data(), MPI_DOUBLE, comm_, &request),
          "MPI_Iallgatherv");
    wait(request, what);
    account(mine.size() * sizeof(double) * static_cast<std::uint64_t>(size_ - 1),
            (total - mine.size()) * sizeof(double));
  }

  /// Fixed-size allgather of 64-bit words: `all` receives mine.size() words
  /// from every rank, in rank order.
  void allgather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all,
                 const char* what) {
    if (all.size() != mine.size() * static_cast<std::size_t>(size_)) {
      throw zoopt::LogicError("zoopt::mpi::Communicator::allgather: inconsistent sizes");
    }
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_UINT64_T, all.data(),
                         static_cast<int>(mine.size()), MPI_UINT64_T, comm_, &request),
          "MPI_Iallgather");
    wait(request, what);
    const std::uint64_t bytes = mine.size() * sizeof(std::uint64_t);
    account(bytes * static_cast<std::uint64_t>(size_ - 1),
            bytes * static_cast<std::uint64_t>(size_ - 1));
  }

  /// Broadcasts a string from `root` (its length first, then its bytes);
  /// returns it on every rank.
  std::string broadcast(std::string text, int root, const char* what) {
    std::uint64_t length = text.size();
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Ibcast(&length, 1, MPI_UINT64_T, root, comm_, &request), "MPI_Ibcast");
    wait(request, what);
    account_broadcast(sizeof(length), root);
    text.resize(static_cast<std::size_t>(length));
    if (length > 0) {
      check(MPI_Ibcast(text.data(), static_cast<int>(length), MPI_CHAR, root, comm_, &request),
            "MPI_Ibcast");
      wait(request, what);
      account_broadcast(length, root);
    }
    return text;
  }

  /// Prints "zoopt::mpi: rank R of P[, step T]: <message>" to stderr and aborts the
  /// whole job with the abort code.
  [[noreturn]] void fatal(const std::string& message) const {
    if (step_ >= 0) {
      std::fprintf(stderr, "zoopt::mpi: rank %d of %d, step %lld: %s\n", rank_, size_,
                   static_cast<long long>(step_), message.c_str());
    } else {
      std::fprintf(stderr, "zoopt::mpi: rank %d of %d: %s\n", rank_, size_, message.c_str());
    }
    std::fflush(stderr);
    MPI_Abort(comm_, abort_code_);
    std::abort();
  }

 private:
  void check(int rc, const char* call) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = {};
    int length = 0;
    MPI_Error_string(rc, text, &length);
    fatal(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)) +
          "; aborting the job");
  }

  // Polls `request` until it completes or the deadline passes. Tight polling
  // first, then sleeps growing to 200 us, so that a rank waiting for a slow
  // peer leaves the cores to the ranks still computing.
  void wait(MPI_Request& request, const char* what) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    // Deadlines beyond ~30 years are treated as 30 years (no overflow).
    const auto deadline = start + std::chrono::duration_cast<clock::duration>(
                                      std::chrono::duration<double>(std::min(timeout_, 1e9)));
    auto nap = std::chrono::microseconds(1);
    for (int polls = 0;; ++polls) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) break;
      const auto now = clock::now();
      if (now > deadline) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%g", timeout_);
        fatal(std::string("timed out after ") + seconds + " s waiting for " + what +
              " (a rank died, hangs, or did not reach the same exchange); aborting the job");
      }
      if (polls > 100) {
        std::this_thread::sleep_for(nap);
        nap = std::min(nap * 2, std::chrono::microseconds(200));
      }
    }
    traffic_.wait_seconds += std::chrono::duration<double>(clock::now() - start).count();
  }

  void account(std::uint64_t sent, std::uint64_t received) noexcept {
    traffic_.sent += sent;
    traffic_.received += received;
    ++traffic_.collectives;
  }

  void account_broadcast(std::uint64_t bytes, int root) noexcept {
    if (rank_ == root) {
      account(bytes * static_cast<std::uint64_t>(size_ - 1), 0);
    } else {
      account(0, bytes);
    }
  }

  MPI_Comm comm_;
  bool owned_ = false;
  int rank_ = 0;
  int size_ = 1;
  double timeout_;
  int abort_code_;
  std::int64_t step_ = -1;
  std::vector<int> displacements_;
  std::vector<int> int_counts_;
  Traffic traffic_;
};

}  // namespace zoopt::mpi
