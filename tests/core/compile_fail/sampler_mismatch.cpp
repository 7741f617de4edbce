// Must not compile: the optimizer names one sampler, its backend draws
// another (logs, replay and checkpoints would record the wrong one).
#include <zoopt/kerzoo.hpp>

int main() {
  zoopt::MeZO<float, zoopt::RademacherSampler, zoopt::CentralDifference,
              zoopt::CpuBackend<float, zoopt::GaussianSampler>>
      opt;
  return static_cast<int>(opt.step_count());
}
