// Update-log reader: any bytes either parse or throw zoopt::FormatError; a
// parsed log survives serialize -> deserialize unchanged.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "zoopt/replay/update_log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = zoopt_fuzz::parse_update_log(data, size);
  if (!parsed) return 0;
  const zoopt::UpdateLog& log = *parsed;
  const zoopt::UpdateLog again = zoopt::UpdateLog::deserialize(log.serialize(), "fuzz-again");
  zoopt_fuzz::require(again == log, "update log: deserialize(serialize(log)) != log");
  for (std::size_t i = 0; i < log.size(); ++i) {
    zoopt_fuzz::require(log[i].scales.size() == log.header().spans.size(),
                        "update log: a record's scales do not cover every span");
    zoopt_fuzz::require(!log[i].coefficients.empty(), "update log: a record has no coefficients");
  }
  return 0;
}
