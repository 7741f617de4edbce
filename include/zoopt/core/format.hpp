// Number formatting shared by names in logs, checkpoints and messages.
#pragma once

#include <charconv>
#include <string>

namespace zoopt::detail {

/// The shortest text that reads back as the same double ("0.9", "1e-08").
inline std::string shortest(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace zoopt::detail
