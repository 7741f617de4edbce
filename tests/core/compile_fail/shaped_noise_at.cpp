// Must not compile: a LowRankSampler's entries depend on the span's shape,
// so noise by global index alone (noise_at) is refused with a readable
// message.
#include <zoopt/kerzoo.hpp>

int main() {
  return static_cast<int>(
      zoopt::noise_at<zoopt::LowRankSampler<>, float>(zoopt::NoiseKey{1, 2, 3}, 7) > 0.0f);
}
