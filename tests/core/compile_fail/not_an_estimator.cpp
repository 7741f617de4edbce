// Must not compile: the estimator claims two points per direction and a
// shared base loss at once (a stencil the step cannot evaluate).
#include <zoopt/kerzoo.hpp>

struct Inconsistent {
  static constexpr const char* name = "inconsistent";
  static constexpr bool evaluates_base = true;
  static constexpr int points_per_direction = 2;
  static double projected(double a, double b, double eps) { return (a - b) / eps; }
};

int main() {
  zoopt::MeZO<float, zoopt::GaussianSampler, Inconsistent> opt;
  return static_cast<int>(opt.step_count());
}
