// Learned-model (ZO Fine-tuner network) reader: any bytes either parse or
// throw zoopt::ModelFileError; a parsed model serializes to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "zoopt/learned/perturbation_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> bytes(data, size);
  zoopt::PerturbationModel m;
  try {
    m = zoopt::PerturbationModel::deserialize(bytes, "fuzz");
  } catch (const zoopt::ModelFileError&) {
    return 0;
  }
  zoopt_fuzz::require(!m.empty(), "model file: parsed a model without blocks");
  const auto again = m.serialize();
  zoopt_fuzz::require(again.size() == size && std::equal(again.begin(), again.end(), data),
                      "model file: serialize(deserialize(bytes)) != bytes");
  return 0;
}
