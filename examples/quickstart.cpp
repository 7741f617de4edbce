#include <zoopt/kerzoo.hpp>
#include <cstdio>
#include <vector>
int main() {
  std::vector<float> x(1000, 1.0f);
  auto loss = [](std::span<const float> p) { double s = 0; for (float v : p) s += double(v) * v; return s; };
  zoopt::MeZO<float> m({.lr = 1e-4, .eps = 1e-3});
  auto r = m.optimize(loss, std::span<float>(x), 500, zoopt::EarlyStop({.patience=0,.target=1.0}));
  std::printf("mezo %g\n", r.final_loss);
  zoopt::KerZOO<float> k({.lr = 1e-4, .eps = 1e-3});
  std::vector<float> y(1000, 1.0f);
  r = k.optimize(loss, std::span<float>(y), 500);
  std::printf("kerzoo %g journal %zu\n", r.final_loss, k.backend().journal_size());
  zoopt::ParameterSet<double> ps; std::vector<double> a(10,1), b(7,2);
  ps.add("a", a).add("b", b, {.weight_decay=false});
  zoopt::MeZO<double, zoopt::RademacherSampler> md({.lr=1e-2});
  md.step([] { return 1.0; }, ps);
}
