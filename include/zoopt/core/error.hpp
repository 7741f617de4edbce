// Exceptions thrown by zoopt and the helper that builds argument errors.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace zoopt {

/// Base of every exception zoopt throws: `catch (const zoopt::Error&)` catches
/// them all. Each concrete type also derives from the standard exception it
/// has always been (std::invalid_argument for a bad argument,
/// std::runtime_error for a failed loss or a corrupt file, ...), so catch
/// clauses written for those keep working; what() is the standard one.
class Error {
 public:
  virtual ~Error() = default;
  [[nodiscard]] virtual const char* what() const noexcept = 0;

 protected:
  Error() = default;
  Error(const Error&) = default;
  Error& operator=(const Error&) = default;
};

/// A zoopt::Error that is also the standard exception `Std`.
template <class Std>
class StdError : public Std, public Error {
 public:
  using Std::Std;
  [[nodiscard]] const char* what() const noexcept override { return Std::what(); }
};

/// An argument or setting is invalid; the message names it.
using InvalidArgument = StdError<std::invalid_argument>;
/// A call made in the wrong state (e.g. recording a step that never ran).
using LogicError = StdError<std::logic_error>;
/// A lookup by name or index found nothing.
using OutOfRange = StdError<std::out_of_range>;
/// A counter reached its limit (see max_steps).
using OverflowError = StdError<std::overflow_error>;
/// A value computed from valid inputs left its domain (e.g. a learned scale).
using DomainError = StdError<std::domain_error>;
/// An operating-system or I/O failure (a file that cannot be written).
using RuntimeError = StdError<std::runtime_error>;

/// Thrown when the user's loss returns NaN or +-Inf. By the time it is thrown
/// the parameters hold their exact pre-step bits again.
class NonFiniteLoss : public StdError<std::runtime_error> {
 public:
  using StdError<std::runtime_error>::StdError;
};

/// A NonFiniteLoss whose cause is the parameters themselves: they held a NaN
/// or an infinity before the step began. The message names the span (by its
/// ParameterSet name, or "params" for a bare span), the element and its
/// value. The parameters hold their pre-step bits.
class NonFiniteParameters : public NonFiniteLoss {
 public:
  using NonFiniteLoss::NonFiniteLoss;
};

/// Thrown when the loss wrote to the parameters it was given (found by the
/// CPU backend's write check, on by default in builds without NDEBUG; see
/// CpuBackendOptions::check_loss_writes). A loss must only read them: zoopt
/// rebuilds the pre-step values from the perturbation it applied. By the time
/// it is thrown the parameters hold their pre-step bits again.
class LossModifiedParameters : public StdError<std::logic_error> {
 public:
  using StdError<std::logic_error>::StdError;
};

namespace detail {

/// Throws InvalidArgument("<where>: <field> <what>") unless `ok`.
/// The const char* overload builds no string on success, so checks on the
/// step path allocate nothing.
inline void require(bool ok, const char* where, const char* field, const char* what) {
  if (!ok) {
    throw InvalidArgument(std::string(where) + ": " + field + " " + what);
  }
}
inline void require(bool ok, const char* where, const char* field, const std::string& what) {
  require(ok, where, field, what.c_str());
}

/// Most directions per step any optimizer accepts. A step reserves O(n)
/// scratch up front (about 40 bytes per direction) and every update pass
/// draws n noise values per element, so a larger n is a mistake, not a
/// setting; the limit turns it into a clear error instead of bad_alloc.
inline constexpr std::uint32_t max_directions = std::uint32_t{1} << 20;

/// Steps 0 .. max_steps - 1 have distinct noise: the noise key holds the low
/// 32 bits of the step counter (random/philox.hpp), so step 2^32 would draw
/// step 0's directions again.
inline constexpr std::uint64_t max_steps = std::uint64_t{1} << 32;

/// The checks every optimizer's Params share: lr finite and >= 0, eps
/// finite and > 0, 1 <= directions <= max_directions, weight_decay finite
/// and >= 0.
inline void check_step_params(const char* where, double lr, double eps, std::uint32_t directions,
                              double weight_decay) {
  require(std::isfinite(lr) && lr >= 0.0, where, "lr", "must be finite and >= 0");
  require(std::isfinite(eps) && eps > 0.0, where, "eps", "must be finite and > 0");
  require(directions >= 1, where, "directions", "must be >= 1");
  require(directions <= max_directions, where, "directions",
          "must be <= 2^20 = 1048576 (got " + std::to_string(directions) + ")");
  require(std::isfinite(weight_decay) && weight_decay >= 0.0, where, "weight_decay",
          "must be finite and >= 0");
}

/// Throws std::overflow_error naming `step_count` when step t would reuse
/// the noise of step t - 2^32 (see max_steps). Nothing has been touched yet.
inline void check_step_counter(std::uint64_t step) {
  if (step >= max_steps) {
    throw OverflowError(
        "zoopt: step_count is " + std::to_string(step) +
        ": the noise key holds 32 bits of the step, so steps from 2^32 on would repeat the "
        "directions of step 0, 1, ...; continue with a new seed and set_step_count(0)");
  }
}

}  // namespace detail
}  // namespace zoopt
