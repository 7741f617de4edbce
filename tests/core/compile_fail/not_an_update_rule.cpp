// Must not compile: the last template argument is not an update rule (it
// lacks state_size, name(), check(), init() and at<C>(k)).
#include <zoopt/kerzoo.hpp>

struct HalfStep {
  double factor = 0.5;
};

int main() {
  zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference,
              zoopt::CpuBackend<float, zoopt::GaussianSampler>, HalfStep>
      opt;
  return static_cast<int>(opt.step_count());
}
