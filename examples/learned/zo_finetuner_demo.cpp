// ZO Fine-tuner demo: meta-train the per-block networks once on members of a
// block-quadratic family (curvature spanning 100x across blocks), freeze
// them, save and reload them, and compare with MeZO on held-out members with
// the same number of loss evaluations.
//
// Usage: zo_finetuner_demo [steps=1000]
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "block_quadratic.hpp"
#include "zoopt/kerzoo.hpp"

namespace ex = zoopt_examples;
using T = double;

int main(int argc, char** argv) {
  const std::size_t steps = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  const ex::BlockLayout layout;
  const std::vector<double> theta0 = ex::base_weights(layout, 7);
  const std::array<std::uint64_t, 4> train{0, 1, 2, 3};
  const std::array<std::uint64_t, 2> select{0, 1};
  const std::array<std::uint64_t, 6> held_out{100, 101, 102, 103, 104, 105};

  std::printf("Blocks (name, elements, curvature scale H, offset scale O):\n");
  for (std::size_t i = 0; i < layout.sizes.size(); ++i) {
    std::printf("  %-6s %3zu  H=%6.1f  O=%.2f\n", layout.names[i].c_str(), layout.sizes[i],
                layout.curvature[i], layout.offset[i]);
  }

  std::array<zoopt::PerturbationModel, 2> models;
  for (int v = 0; v < 2; ++v) {
    models[v] = ex::meta_train<T>(layout, theta0, train, v == 1);
    // Round trip through the saved-model file, as a deployment would.
    const auto path = (std::filesystem::temp_directory_path() /
                       (v == 0 ? "zoopt_demo_grad.zpnn" : "zoopt_demo_fwd.zpnn"))
                          .string();
    models[v].save(path);
    ex::Model<T> m(layout, theta0);
    models[v] = zoopt::PerturbationModel::load(path, m.params);
    std::filesystem::remove(path);
  }

  // Scales the frozen networks give at the start of a run (theta0, L+- = 0,
  // s = 1) and after the run on member 100.
  const double lr_mezo = ex::best_lr<T>(layout, theta0, select, nullptr, steps);
  std::array<double, 2> lr_ft{};
  for (int v = 0; v < 2; ++v) lr_ft[v] = ex::best_lr<T>(layout, theta0, select, &models[v], steps);
  for (int v = 0; v < 2; ++v) {
    ex::Model<T> m(layout, theta0);
    zoopt::ZOFineTuner<T>::Params p;
    p.lr = lr_ft[v];
    p.seed = 100;
    zoopt::ZOFineTuner<T> opt(p, models[v], m.params);
    const ex::BlockQuadratic q(layout, theta0, 100);
    auto loss = [&](const zoopt::ParameterSet<T>& s) { return q.loss(s); };
    opt.step(loss, m.params);
    std::printf("\nLearned scales c*s_i (%s meta-trainer)\n  %-6s %10s %10s\n",
                v == 0 ? "gradient" : "forward-only", "block", "step 1", "last step");
    std::vector<double> first(opt.scales().begin(), opt.scales().end());
    const double c0 = opt.normaliser();
    opt.optimize(loss, m.params, steps - 1);
    for (std::size_t i = 0; i < first.size(); ++i) {
      std::printf("  %-6s %10.4f %10.4f\n", layout.names[i].c_str(), c0 * first[i],
                  opt.normaliser() * opt.scales()[i]);
    }
  }

  std::printf("\nFinal loss after %zu steps (%zu loss evaluations) on held-out members\n", steps,
              2 * steps);
  std::printf(
      "lr chosen per method on training members 0,1 from {1e-3..5e-2}: MeZO %g, "
      "ZO-FT(grad) %g, ZO-FT(fwd) %g\n",
      lr_mezo, lr_ft[0], lr_ft[1]);
  std::printf("  %-7s %10s %12s %12s %12s %12s\n", "member", "initial", "MeZO", "ZO-FT(grad)",
              "ZO-FT(fwd)", "MeZO/grad");
  for (const std::uint64_t t : held_out) {
    const ex::BlockQuadratic q(layout, theta0, t);
    ex::Model<T> m(layout, theta0);
    const double l0 = q.loss(m.params);
    const double a = ex::final_loss<T>(layout, theta0, t, nullptr, lr_mezo, steps, t);
    const double b = ex::final_loss<T>(layout, theta0, t, &models[0], lr_ft[0], steps, t);
    const double c = ex::final_loss<T>(layout, theta0, t, &models[1], lr_ft[1], steps, t);
    std::printf("  %-7llu %10.4g %12.4g %12.4g %12.4g %12.1f\n", static_cast<unsigned long long>(t),
                l0, a, b, c, a / b);
  }
  return 0;
}
