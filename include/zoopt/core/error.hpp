// Exceptions thrown by zoopt and the helper that builds argument errors.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace zoopt {

/// Thrown when the user's loss returns NaN or +-Inf. By the time it is thrown
/// the parameters hold their exact pre-step bits again.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// Throws std::invalid_argument("<where>: <field> <what>") unless `ok`.
/// The const char* overload builds no string on success, so checks on the
/// step path allocate nothing.
inline void require(bool ok, const char* where, const char* field, const char* what) {
  if (!ok) {
    throw std::invalid_argument(std::string(where) + ": " + field + " " + what);
  }
}
inline void require(bool ok, const char* where, const char* field, const std::string& what) {
  require(ok, where, field, what.c_str());
}

/// The checks every optimizer's Params share: lr finite and >= 0, eps
/// finite and > 0, directions >= 1, weight_decay finite and >= 0.
inline void check_step_params(const char* where, double lr, double eps, std::uint32_t directions,
                              double weight_decay) {
  require(std::isfinite(lr) && lr >= 0.0, where, "lr", "must be finite and >= 0");
  require(std::isfinite(eps) && eps > 0.0, where, "eps", "must be finite and > 0");
  require(directions >= 1, where, "directions", "must be >= 1");
  require(std::isfinite(weight_decay) && weight_decay >= 0.0, where, "weight_decay",
          "must be finite and >= 0");
}

}  // namespace detail
}  // namespace zoopt
