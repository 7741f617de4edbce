// Checkpoint reader: any bytes either parse or throw zoopt::FormatError; a
// parsed checkpoint serializes back to the same bytes after one round.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "zoopt/checkpoint/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<unsigned char> bytes(data, data + size);
  zoopt::checkpoint::Contents c;
  try {
    c = zoopt::checkpoint::deserialize(bytes, "fuzz");
  } catch (const zoopt::FormatError&) {
    return 0;
  }
  // The format has no redundant encodings: what parsed is what is written.
  zoopt_fuzz::require(zoopt::checkpoint::serialize(c) == bytes,
                      "checkpoint: serialize(deserialize(bytes)) != bytes");
  const std::size_t width = c.storage == 2 ? 8 : c.storage == 1 ? 4 : 2;
  for (const auto& s : c.spans) {
    zoopt_fuzz::require(s.bits.size() == s.size * width, "checkpoint: span bits != size * width");
  }
  return 0;
}
