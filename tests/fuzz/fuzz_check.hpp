// What every fuzz harness asserts besides "no crash, no sanitizer report":
// a reader may only reject input with its documented exception type.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <vector>

#include "zoopt/replay/update_log.hpp"

namespace zoopt_fuzz {

/// Stops the run (libFuzzer records the input) when an invariant fails.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "zoopt fuzz: invariant violated: %s\n", what);
  std::abort();
}

inline void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

/// The update log in the input, or nothing when the reader rejects it (with
/// FormatError, the only exception it may throw).
inline std::optional<zoopt::UpdateLog> parse_update_log(const std::uint8_t* data,
                                                        std::size_t size) {
  try {
    return zoopt::UpdateLog::deserialize(std::vector<unsigned char>(data, data + size), "fuzz");
  } catch (const zoopt::FormatError&) {
    return std::nullopt;
  }
}

}  // namespace zoopt_fuzz
