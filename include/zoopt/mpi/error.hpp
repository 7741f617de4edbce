// Exceptions of the zoopt::mpi component. Each is thrown on every rank of the
// communicator with the same message, so ranks never disagree about whether a
// step happened.
#pragma once

#include <stdexcept>
#include <string>

#include "zoopt/core/error.hpp"

namespace zoopt::mpi {

/// The loss threw on some rank (a NaN/Inf loss is reported as
/// zoopt::NonFiniteLoss instead). Thrown on every rank with the same message,
/// after every rank restored its parameters to their pre-step bits.
class RemoteFailure : public zoopt::StdError<std::runtime_error> {
 public:
  RemoteFailure(int origin, const std::string& message)
      : zoopt::StdError<std::runtime_error>(message), origin_(origin) {}
  /// The lowest rank whose loss failed.
  [[nodiscard]] int origin() const noexcept { return origin_; }

 private:
  int origin_;
};

/// The replicas' parameters are no longer bitwise identical (the periodic
/// hash check found different hashes), or were not identical at the first
/// step. Thrown on every rank.
class ReplicaDivergence : public zoopt::StdError<std::runtime_error> {
 public:
  using zoopt::StdError<std::runtime_error>::StdError;
};

/// The ranks disagree about the optimizer's settings, the parallel mode or
/// the parameter count (checked before the first step, where a disagreement
/// would otherwise make collectives mismatch). Thrown on every rank.
class SetupMismatch : public zoopt::StdError<std::runtime_error> {
 public:
  using zoopt::StdError<std::runtime_error>::StdError;
};

}  // namespace zoopt::mpi
