// Exceptions thrown by zoopt and the helper that builds argument errors.
#pragma once

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

}  // namespace detail
}  // namespace zoopt
