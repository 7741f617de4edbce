// Where zoopt sends warnings that are not errors.
#pragma once

#include <functional>
#include <iostream>
#include <string>

namespace zoopt {

/// Receives one warning message (no trailing newline). An empty sink means
/// the default: the message is written to std::cerr as "zoopt: warning: ...".
using WarningSink = std::function<void(const std::string&)>;

namespace detail {

inline void emit_warning(const WarningSink& sink, const std::string& message) {
  if (sink) {
    sink(message);
  } else {
    std::cerr << "zoopt: warning: " << message << '\n';
  }
}

}  // namespace detail
}  // namespace zoopt
