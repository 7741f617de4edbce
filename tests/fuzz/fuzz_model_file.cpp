// Learned-model (ZO Fine-tuner network) reader: any bytes either parse or
// throw zoopt::ModelFileError; a parsed version-2 file serializes to the
// same bytes, a parsed version-1 file to a version-2 file of the same model.
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
  if (size > 8 && data[8] == 1) {
    const auto reparsed = zoopt::PerturbationModel::deserialize(again, "fuzz");
    zoopt_fuzz::require(reparsed.serialize() == again,
                        "model file: a version-1 model does not round-trip as version 2");
    return 0;
  }
  zoopt_fuzz::require(again.size() == size && std::equal(again.begin(), again.end(), data),
                      "model file: serialize(deserialize(bytes)) != bytes");
  return 0;
}
