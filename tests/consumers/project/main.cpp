// A consumer of zoopt: only the umbrella header. Exits non-zero if either
// optimizer fails to lower the loss.
#include <zoopt/kerzoo.hpp>

namespace {

// The user's loss: a weighted least-squares fit of a target vector.
struct FitTarget {
  std::vector<float> target;
  double operator()(std::span<const float> w) const {
    double s = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double e = static_cast<double>(w[i]) - target[i];
      s += (1.0 + static_cast<double>(i % 4)) * e * e;
    }
    return s;
  }
};

template <class Opt>
bool fine_tune(const char* name, Opt opt, const FitTarget& loss) {
  std::vector<float> w(loss.target.size(), 0.0f);
  const double before = loss(w);
  opt.optimize(loss, std::span<float>(w), 600);
  const double after = loss(w);
  std::cout << name << ": loss " << before << " -> " << after << '\n';
  return after < 0.5 * before;
}

}  // namespace

int main() {
  FitTarget loss;
  for (int i = 0; i < 32; ++i) loss.target.push_back(0.1f * static_cast<float>(i % 7) - 0.3f);
  const bool mezo =
      fine_tune("MeZO", zoopt::MeZO<float>({.lr = 2e-3, .eps = 1e-3, .seed = 1}), loss);
  const bool kerzoo = fine_tune(
      "KerZOO", zoopt::KerZOO<float>({.lr = 1e-3, .eps = 1e-3, .directions = 3, .seed = 2}), loss);
  return mezo && kerzoo ? 0 : 1;
}
