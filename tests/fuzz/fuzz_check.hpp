// What every fuzz harness asserts besides "no crash, no sanitizer report":
// a reader may only reject input with its documented exception type.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace zoopt_fuzz {

/// Stops the run (libFuzzer records the input) when an invariant fails.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "zoopt fuzz: invariant violated: %s\n", what);
  std::abort();
}

inline void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

}  // namespace zoopt_fuzz
