// replay() onto parameters: a log that parses is applied to parameters laid
// out as its header says, for its storage type. Replay must only reject a log
// with std::invalid_argument (unknown sampler), and applying records [0, k)
// then [k, n) must give the same bits as applying [0, n) at once.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "zoopt/core/half.hpp"
#include "zoopt/replay/replay.hpp"

namespace {

// Bounds that keep one input fast: total elements and noise draws.
constexpr std::uint64_t max_elements = 4096;
constexpr std::uint64_t max_draws = 1u << 18;

template <class T>
void replay_twice(const zoopt::UpdateLog& log) {
  const auto& spans = log.header().spans;
  const std::uint64_t n = log.header().elements();
  std::vector<T> whole(n), split(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    whole[i] = split[i] = T(static_cast<float>(i % 17) * 0.125f - 1.0f);
  }
  auto set_of = [&](std::vector<T>& x) {
    zoopt::ParameterSet<T> set;
    std::size_t at = 0;
    for (const auto& s : spans) {
      set.add(s.name, std::span<T>(x.data() + at, s.size),
              {.weight_decay = s.weight_decay, .shape = s.shape});
      at += s.size;
    }
    return set;
  };
  zoopt::ParameterSet<T> a = set_of(whole);
  zoopt::ParameterSet<T> b = set_of(split);
  try {
    zoopt::replay(log, a);
  } catch (const std::invalid_argument&) {
    return;  // a sampler this build does not know; nothing may have changed
  }
  const std::size_t k = log.size() / 2;
  zoopt::replay(log, b, zoopt::ReplayRange{0, k});
  zoopt::replay(log, b, zoopt::ReplayRange{k, log.size()});
  zoopt_fuzz::require(std::memcmp(whole.data(), split.data(), n * sizeof(T)) == 0,
                      "replay: [0, k) then [k, n) differs from [0, n)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = zoopt_fuzz::parse_update_log(data, size);
  if (!parsed) return 0;
  const zoopt::UpdateLog& log = *parsed;
  const auto& h = log.header();
  // Span names must be unique and non-empty to form a ParameterSet.
  for (std::size_t i = 0; i < h.spans.size(); ++i) {
    if (h.spans[i].name.empty()) return 0;
    for (std::size_t j = 0; j < i; ++j) {
      if (h.spans[j].name == h.spans[i].name) return 0;
    }
  }
  if (h.elements() > max_elements) return 0;
  std::uint64_t draws = 0;
  for (std::size_t i = 0; i < log.size(); ++i) draws += log[i].coefficients.size();
  if (draws * h.elements() > max_draws) return 0;
  switch (h.storage) {
    case 1:
      replay_twice<float>(log);
      break;
    case 2:
      replay_twice<double>(log);
      break;
    case 3:
      replay_twice<zoopt::half>(log);
      break;
    case 4:
      replay_twice<zoopt::bfloat16>(log);
      break;
    default:
      zoopt_fuzz::fail("replay: a parsed log has an unknown storage code");
  }
  return 0;
}
