// Resident memory of this process, from /proc/self/status (Linux).
#pragma once

#include <fstream>
#include <string>

namespace run_memory {

/// The value of `field` ("VmRSS", "VmHWM": current and peak resident set)
/// in bytes; 0 where /proc is not available.
inline double bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == field + ":") {
      double kib = 0.0;
      in >> kib;
      return kib * 1024.0;
    }
    std::getline(in, key);
  }
  return 0.0;
}

}  // namespace run_memory
