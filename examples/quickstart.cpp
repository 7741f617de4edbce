// Quickstart: fine-tune a vector with MeZO and KerZOO through the one header.
#include <zoopt/kerzoo.hpp>

#include <cstdio>
#include <span>
#include <vector>

int main() {
  // Your loss: zoopt calls it with the parameters already perturbed in place.
  auto loss = [](std::span<const float> p) {
    double s = 0.0;
    for (float v : p) s += 0.5 * double(v) * v;
    return s;
  };

  std::vector<float> a(200, 1.0f);
  zoopt::MeZO<float> mezo({.lr = 3e-3, .eps = 1e-3, .seed = 42});
  const auto rm = mezo.optimize(loss, std::span<float>(a), 1000, zoopt::ProgressBar("mezo  "));

  std::vector<float> b(200, 1.0f);
  zoopt::KerZOO<float> kerzoo({.lr = 3e-3, .eps = 1e-3, .directions = 3, .seed = 42});
  const auto rk = kerzoo.optimize(loss, std::span<float>(b), 1000, zoopt::ProgressBar("kerzoo"));

  std::printf("initial loss %.1f\n", 100.0);
  std::printf("MeZO   loss %.4f after %llu forward passes\n", rm.final_loss,
              static_cast<unsigned long long>(rm.forward_passes));
  std::printf("KerZOO loss %.4f after %llu forward passes\n", rk.final_loss,
              static_cast<unsigned long long>(rk.forward_passes));
  return 0;
}
