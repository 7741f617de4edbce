// zoopt convergence suite: steps and forward passes each optimizer needs to
// reach a target loss on a fixed set of problems, over several seeds.
//
// Protocol (the same for every method):
//   * lr grid: base_lr(problem) * 2^k, k = -4..4 (9 values), with
//     base_lr = 1 / (tr H + 2 lambda_max(H)), H the Hessian at the minimiser:
//     the largest stable step of two-point ZO-SGD (Gaussian directions) on
//     the quadratic model. It depends on the problem only.
//   * tuning: for each method, the lr with the lowest median steps-to-target
//     over the tuning seeds (1001..1000+tune_seeds) wins (ties: lower lr);
//     a run that does not reach the target counts as infinitely long. A
//     tuning run is cut off once it exceeds the best median so far (it
//     could not change the choice).
//   * evaluation: the chosen lr on the evaluation seeds 1..seeds (disjoint
//     from the tuning seeds). The table gives median, quartiles and min/max.
//   * target: f(theta) - f* <= tol (f(theta0) - f*), with f the exact
//     (unperturbed) loss checked every `check_every` steps; these checks are
//     not counted as forward passes. A run stops at max_steps or when the
//     loss diverges (non-finite or > 1e3 f(theta0)).
//   * methods differ in forward passes per step (MeZO and KerZOO: 2 with one
//     direction; FZOO with N directions: N + 1), so the table compares
//     forward passes to target; within one method passes are steps times a
//     constant, so the lr choice is the same by either measure. The exact
//     loss is checked every `check_every` MeZO steps' worth of passes (every
//     step for methods with more passes per step than that), so no method
//     is rounded up by more than one check interval.
//   * wall time: each run times its optimizer steps only (not the exact-loss
//     checks); the table gives the median over the evaluation seeds of the
//     mean ms per step. It depends on the machine and its load: compare
//     methods within one run.
//   * memory: the update rule's state in bytes per parameter (0 for SGD;
//     momentum and Adam keep d or 2d values), read from the optimizer.
//   * when the chosen lr lies on an edge of the grid, the grid is widened by
//     two points on that side, and downwards when every lr missed (up to
//     k = -16..16: the sigma-normalised step divides by sigma ~ eps |g|, so
//     its lr sits a factor of about eps |g| below an unnormalised one).
//   * methods with a decaying schedule (*-cosine: warm-up over 5% of a
//     horizon H, cosine decay to 0 at H) also tune H, on the tuning seeds
//     only: the method at constant lr is tuned first (median steps S), then
//     the lr for each H in {S/2, S, 2S}, runs cut at H; the best (H, lr)
//     pair is evaluated.
//
// Usage: zoopt_convergence [--seeds N] [--tune-seeds N] [--problems a,b,...]
//                          [--methods a,b,...] [--out DIR] [--data DIR]
//                          [--smoke] [--help]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <zoopt/kerzoo.hpp>
#include <zoopt/optimizer/zo_finetuner.hpp>

#include "fashion_mnist.hpp"
#include "suite_problems.hpp"
#include "zoft_model.hpp"
#ifdef ZOOPT_SUITE_WITH_TORCH
#include "suite_transformer.hpp"
#endif

namespace {

using namespace suite;

constexpr int kWidenLimit = 16;  // |k| up to which the lr grid is widened

/// One run of a method: steps to target (kInf if not reached), forward
/// passes used, the mean wall time of its steps in ms (only the steps: the
/// suite's exact-loss checks are not timed), and the bytes of update-rule
/// state per parameter at the end (momentum, Adam moments: the memory
/// beyond theta that grows with d).
struct RunResult {
  double steps = kInf;
  std::uint64_t passes = 0;
  double ms_per_step = kInf;
  double state_bytes_per_parameter = 0.0;
};

/// A method of the suite: builds an optimizer for (lr, eps, seed) and runs
/// it on a problem.
struct Method {
  std::string name;
  std::function<RunResult(const Problem&, double lr, std::uint64_t seed)> run;
  /// Set for a method with a decaying schedule over `horizon` steps (run is
  /// then unused): the suite tunes the horizon with the lr (see main()).
  std::function<RunResult(const Problem&, double lr, std::uint64_t seed, std::size_t horizon)>
      run_scheduled{};
};

/// The decaying schedule of the suite's scheduled methods: a linear warm-up
/// over the first 5% of the horizon, then a cosine decay to 0 at the horizon
/// (the usual fine-tuning schedule).
/// Horizon 0: constant (the run that sets the horizons to try).
zoopt::LrSchedule cosine(std::size_t horizon) {
  if (horizon == 0) return zoopt::LrSchedule::constant();
  const std::size_t h = std::max<std::size_t>(horizon, 20);
  return zoopt::LrSchedule::warmup_cosine(h / 20, h, 0.0);
}

/// Runs `opt` on `problem` until the target, max_steps or divergence.
template <class Opt>
RunResult drive(Opt& opt, const Problem& problem, std::uint64_t seed) {
  // Check as often in passes as for MeZO (2 passes per step).
  const std::uint64_t per_step = Opt::evaluations_per_step(opt.params().directions);
  const std::size_t check_every =
      std::max<std::size_t>(1, problem.check_every * 2 / static_cast<std::size_t>(per_step));
  std::vector<float> x = problem.x0;
  zoopt::ParameterSet<float> params;
  std::size_t offset = 0;
  for (std::size_t i = 0; i < problem.blocks.size(); ++i) {
    const auto& [name, size] = problem.blocks[i];
    const zoopt::MatrixShape shape =
        i < problem.shapes.size() ? problem.shapes[i] : zoopt::MatrixShape{};
    params.add(name, std::span<float>(x.data() + offset, size), {.shape = shape});
    offset += size;
  }
  const double target = problem.target();
  const double blowup = 1e3 * std::max(1.0, problem.f(problem.x0));
  const std::span<const float> view(x);
  auto loss = [&] {
    return problem.step_f ? problem.step_f(view, seed, opt.step_count()) : problem.f(view);
  };
  using Clock = std::chrono::steady_clock;
  Clock::duration stepping{};
  const auto result = [&](double steps, std::size_t taken) {
    const double ms = std::chrono::duration<double, std::milli>(stepping).count();
    return RunResult{
        steps, opt.forward_passes(), taken > 0 ? ms / static_cast<double>(taken) : kInf,
        static_cast<double>(opt.update_state().bytes()) / static_cast<double>(x.size())};
  };
  for (std::size_t t = 1; t <= problem.max_steps; ++t) {
    const auto before = Clock::now();
    try {
      opt.step(loss, params);
    } catch (const zoopt::NonFiniteLoss&) {
      return result(kInf, t - 1);
    }
    stepping += Clock::now() - before;
    if (t % check_every == 0 || t == problem.max_steps) {
      const double f = problem.f(view);
      if (!std::isfinite(f) || f > blowup) return result(kInf, t);
      if (f <= target) return result(static_cast<double>(t), t);
    }
  }
  return result(kInf, problem.max_steps);
}

std::vector<Method> all_methods(bool smoke) {
  std::vector<Method> m;
  m.push_back({"mezo", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float> opt({.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back({"mezo-rademacher", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, zoopt::RademacherSampler> opt(
                     {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back({"mezo-packed", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, zoopt::PackedRademacherSampler> opt(
                     {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  // FZOO: N Rademacher directions around one base loss (N + 1 passes per
  // step). Its lr grid is the same base_lr * 2^k; averaging N directions
  // lets it use a larger k.
  for (const std::uint32_t n : {2u, 3u, 4u, 8u, 16u}) {
    m.push_back(
        {"fzoo-n" + std::to_string(n), [n](const Problem& p, double lr, std::uint64_t seed) {
           zoopt::FZOO<float> opt({.lr = lr, .eps = p.eps, .directions = n, .seed = seed});
           return drive(opt, p, seed);
         }});
  }
  // The sigma-normalised step: lr is then a step length in units of
  // sigma, so the grid is offset by the loss scale; the widening rule
  // finds it.
  m.push_back({"fzoo-n8-normalized", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::FZOO<float> opt(
                     {.lr = lr, .eps = p.eps, .directions = 8, .seed = seed, .normalize = true});
                 return drive(opt, p, seed);
               }});
  // Low-rank directions (rank 2, V kept 50 steps) on the blocks with a
  // matrix shape (the MLP's weights); vectors get Gaussian noise, so on the
  // analytic problems these are MeZO and FZOO with Gaussian directions.
  using LowRank = zoopt::LowRankSampler<2, 50>;
  m.push_back({"mezo-lowrank", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, LowRank> opt(
                     {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back({"fzoo-n4-lowrank", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::FZOO<float, LowRank, zoopt::CpuBackend<float, LowRank>> opt(
                     {.lr = lr, .eps = p.eps, .directions = 4, .seed = seed});
                 return drive(opt, p, seed);
               }});
  // Update rules with O(d) state on MeZO (Gaussian) and on FZOO N = 4.
  using Backend = zoopt::CpuBackend<float, zoopt::GaussianSampler>;
  m.push_back({"mezo-momentum", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference, Backend,
                             zoopt::MomentumUpdate>
                     opt({.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back({"mezo-adam", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference, Backend,
                             zoopt::AdamUpdate>
                     opt({.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back({"mezo-accelerated", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float, zoopt::GaussianSampler, zoopt::CentralDifference, Backend,
                             zoopt::AcceleratedUpdate>
                     opt({.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p, seed);
               }});
  m.push_back(
      {"fzoo-n4-momentum", [](const Problem& p, double lr, std::uint64_t seed) {
         zoopt::FZOO<float, zoopt::RademacherSampler,
                     zoopt::CpuBackend<float, zoopt::RademacherSampler>, zoopt::MomentumUpdate>
             opt({.lr = lr, .eps = p.eps, .directions = 4, .seed = seed});
         return drive(opt, p, seed);
       }});
  // Cosine-decay variants (schedule above): MeZO, FZOO N = 4, and FZOO's
  // sigma-normalised step, whose step length otherwise never shrinks.
  m.push_back({"mezo-cosine", nullptr,
               [](const Problem& p, double lr, std::uint64_t seed, std::size_t horizon) {
                 zoopt::MeZO<float>::Params q;
                 q.lr = lr;
                 q.eps = p.eps;
                 q.seed = seed;
                 q.schedule = cosine(horizon);
                 zoopt::MeZO<float> opt(q);
                 return drive(opt, p, seed);
               }});
  for (const bool normalize : {false, true}) {
    const std::uint32_t n = normalize ? 8 : 4;
    m.push_back(
        {"fzoo-n" + std::to_string(n) + (normalize ? "-normalized" : "") + "-cosine", nullptr,
         [n, normalize](const Problem& p, double lr, std::uint64_t seed, std::size_t horizon) {
           zoopt::FZOO<float>::Params q;
           q.lr = lr;
           q.eps = p.eps;
           q.directions = n;
           q.seed = seed;
           q.normalize = normalize;
           q.schedule = cosine(horizon);
           zoopt::FZOO<float> opt(q);
           return drive(opt, p, seed);
         }});
  }
  // The public KerZOO code's settings (kerzoo_published: C = 4, K(a_t rho)
  // with a_t = max(1 - t/4000, 1e-4), acceleration); its lr factor falls to
  // ~0 at step 4000 by design.
  m.push_back({"kerzoo-published", [](const Problem& p, double lr, std::uint64_t seed) {
                 auto params = zoopt::kerzoo_published<float>(lr, seed);
                 params.eps = p.eps;
                 zoopt::KerZOOPublished<float> opt(params);
                 return drive(opt, p, seed);
               }});
  const std::pair<const char*, zoopt::Kernel> kernels[] = {
      {"kerzoo-linear", zoopt::Kernel::linear()},
      {"kerzoo-cubic", zoopt::Kernel::cubic()},
      {"kerzoo-quintic", zoopt::Kernel::quintic()}};
  for (const auto& [name, kernel] : kernels) {
    m.push_back(
        {name, [kernel = kernel](const Problem& p, double lr, std::uint64_t seed) {
           zoopt::KerZOO<float> opt(
               {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed, .kernel = kernel, .C = 1.0});
           return drive(opt, p, seed);
         }});
  }
  // The ZO Fine-tuner's model is meta-trained once per problem (on the
  // problem's own gradients, from theta0, with a seed disjoint from every run
  // seed) and cached; its cost is reported separately, not in the steps.
  auto cache = std::make_shared<std::vector<std::pair<std::string, zoopt::PerturbationModel>>>();
  m.push_back({"zo-finetuner", [cache, smoke](const Problem& p, double lr, std::uint64_t seed) {
                 const zoopt::PerturbationModel* model = nullptr;
                 for (const auto& [name, mdl] : *cache) {
                   if (name == p.name) model = &mdl;
                 }
                 if (model == nullptr) {
                   try {
                     cache->emplace_back(
                         p.name, zoft::meta_train_for(p.blocks, p.x0, p.f, p.grad, p.eps, p.base_lr,
                                                      smoke, stdout));
                   } catch (const std::exception& e) {
                     // Recorded as a failed method for this problem.
                     std::printf("#   zo-finetuner meta-training failed: %s\n", e.what());
                     cache->emplace_back(p.name, zoopt::PerturbationModel{});
                   }
                   model = &cache->back().second;
                 }
                 if (model->empty()) return RunResult{};
                 zoopt::ZOFineTuner<float> opt(
                     {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed}, *model);
                 try {
                   return drive(opt, p, seed);
                 } catch (const std::domain_error&) {  // a network's scale became non-finite
                   return RunResult{kInf, opt.forward_passes(), kInf};
                 }
               }});
  return m;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return kInf;
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = static_cast<std::size_t>(std::ceil(pos));
  if (!std::isfinite(v[hi])) return v[hi] == v[lo] ? kInf : (pos == lo ? v[lo] : kInf);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

std::string fmt_steps(double v) {
  if (!std::isfinite(v)) return "inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

/// Milliseconds with three significant digits.
std::string fmt_ms(double v) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void usage(std::FILE* to) {
  std::fprintf(to,
               "zoopt_convergence: steps and forward passes to a target loss, per optimizer.\n"
               "Options:\n"
               "  --seeds N          evaluation seeds 1..N (default 10)\n"
               "  --tune-seeds N     seeds 1001..1000+N used to pick lr (default 3)\n"
               "  --problems a,b     subset of: quad-ill, exp-sum-eps0.001, exp-sum-eps0.5,\n"
               "                     fmnist-logreg, fmnist-mlp, vit-finetune (default: all;\n"
               "                     vit-finetune only in zoopt_convergence_torch; --smoke\n"
               "                     leaves out fmnist-mlp, and vit-finetune unless named)\n"
               "  --methods a,b      subset of: mezo, mezo-rademacher, mezo-packed, fzoo-n2,\n"
               "                     fzoo-n3, fzoo-n4, fzoo-n8, fzoo-n16, fzoo-n8-normalized,\n"
               "                     mezo-lowrank,\n"
               "                     fzoo-n4-lowrank, mezo-momentum,\n"
               "                     mezo-adam, mezo-accelerated, fzoo-n4-momentum,\n"
               "                     mezo-cosine, fzoo-n4-cosine, fzoo-n8-normalized-cosine,\n"
               "                     kerzoo-published, kerzoo-linear,\n"
               "                     kerzoo-cubic, kerzoo-quintic, zo-finetuner (default: all)\n"
               "  --out DIR          write runs.csv and summary.md there (default: no files)\n"
               "  --data DIR         Fashion-MNIST folder (default $ZOOPT_FASHION_MNIST_DIR or\n"
               "                     /usr/share/datasets/fashion-mnist, Debian package\n"
               "                     dataset-fashion-mnist)\n"
               "  --smoke            tiny run for CI: 1 seed, 2 lr values, short problems\n"
               "  --help             this text\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t seeds = 10;
  std::size_t tune_seeds = 3;
  std::vector<std::string> problem_names;
  std::vector<std::string> method_names;
  std::string out_dir;
  std::string data_dir;
  bool smoke = false;
  auto need = [&](int& i) -> std::string {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "zoopt_convergence: %s needs a value (see --help)\n", argv[i]);
      std::exit(2);
    }
    return argv[++i];
  };
  auto count = [&](const std::string& flag, const std::string& v) -> std::size_t {
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 1000) {
      std::fprintf(stderr, "zoopt_convergence: %s needs an integer in [1, 1000], got '%s'\n",
                   flag.c_str(), v.c_str());
      std::exit(2);
    }
    return static_cast<std::size_t>(n);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--seeds") {
      seeds = count(a, need(i));
    } else if (a == "--tune-seeds") {
      tune_seeds = count(a, need(i));
    } else if (a == "--problems") {
      problem_names = split_list(need(i));
    } else if (a == "--methods") {
      method_names = split_list(need(i));
    } else if (a == "--out") {
      out_dir = need(i);
    } else if (a == "--data") {
      data_dir = need(i);
    } else if (a == "--smoke") {
      smoke = true;
    } else {
      std::fprintf(stderr, "zoopt_convergence: unknown option '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (smoke) {
    seeds = 1;
    tune_seeds = 1;
  }

  auto wanted = [](const std::vector<std::string>& list, const std::string& name) {
    return list.empty() || std::find(list.begin(), list.end(), name) != list.end();
  };
  std::vector<Problem> problems;
  fmnist::Dataset data;  // outlives the problems that read it
  try {
    const std::vector<std::string> known = {"quad-ill",      "exp-sum-eps0.001", "exp-sum-eps0.5",
                                            "fmnist-logreg", "fmnist-mlp",       "vit-finetune"};
    for (const auto& n : problem_names) {
      if (std::find(known.begin(), known.end(), n) == known.end()) {
        std::fprintf(stderr, "zoopt_convergence: unknown problem '%s' (see --help)\n", n.c_str());
        return 2;
      }
    }
#ifndef ZOOPT_SUITE_WITH_TORCH
    if (std::find(problem_names.begin(), problem_names.end(), "vit-finetune") !=
        problem_names.end()) {
      std::fprintf(stderr,
                   "zoopt_convergence: vit-finetune needs libtorch: run zoopt_convergence_torch "
                   "(built when libtorch is found)\n");
      return 2;
    }
#endif
    if (wanted(problem_names, "quad-ill")) problems.push_back(quad_ill());
    if (wanted(problem_names, "exp-sum-eps0.001")) problems.push_back(exp_sum(1e-3));
    if (wanted(problem_names, "exp-sum-eps0.5")) problems.push_back(exp_sum(0.5));
    const bool logreg = wanted(problem_names, "fmnist-logreg");
    const bool mlp = !smoke && wanted(problem_names, "fmnist-mlp");
#ifdef ZOOPT_SUITE_WITH_TORCH
    // --smoke runs it only when named (CI's smoke test of this binary).
    const bool vit = smoke ? std::find(problem_names.begin(), problem_names.end(),
                                       "vit-finetune") != problem_names.end()
                           : wanted(problem_names, "vit-finetune");
#else
    const bool vit = false;
#endif
    if (logreg || mlp || vit) data = fmnist::load(data_dir);
    if (logreg) problems.push_back(fmnist_logreg(data, smoke ? 200 : 1000));
    if (mlp) problems.push_back(fmnist_mlp(data));
#ifdef ZOOPT_SUITE_WITH_TORCH
    if (vit) problems.push_back(vit_finetune(data, smoke));
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zoopt_convergence: %s\n", e.what());
    return 1;
  }
  if (smoke) {
    for (Problem& p : problems) {
      p.max_steps = std::min<std::size_t>(p.max_steps, 3000);
      p.tol = std::max(p.tol, 0.3);
    }
  }
  std::vector<Method> methods;
  for (Method& m : all_methods(smoke)) {
    if (wanted(method_names, m.name)) methods.push_back(std::move(m));
  }
  for (const auto& n : method_names) {
    if (std::none_of(methods.begin(), methods.end(),
                     [&](const Method& m) { return m.name == n; })) {
      std::fprintf(stderr, "zoopt_convergence: unknown method '%s' (see --help)\n", n.c_str());
      return 2;
    }
  }
  const std::vector<int> grid =
      smoke ? std::vector<int>{-1, 0} : std::vector<int>{-4, -3, -2, -1, 0, 1, 2, 3, 4};

  std::ofstream runs_csv;
  if (!out_dir.empty()) {
    std::filesystem::create_directories(out_dir);
    runs_csv.open(std::filesystem::path(out_dir) / "runs.csv");
    if (!runs_csv) {
      std::fprintf(stderr, "zoopt_convergence: cannot write to '%s'\n", out_dir.c_str());
      return 1;
    }
    runs_csv << "problem,method,phase,lr,seed,steps_to_target,forward_passes,ms_per_step,"
                "state_bytes_per_parameter\n";
  }

  std::ostringstream table;
  table << "| problem | method | lr (grid k) | reached | steps median | steps IQR | steps min-max "
           "| fwd passes median | fwd passes IQR | MeZO passes / passes | ms/step median "
           "| state B/param |\n"
        << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const auto t_start = std::chrono::steady_clock::now();
  for (const Problem& p : problems) {
    std::printf("# %s: %s\n#   f(x0)=%.6g f*=%.6g target=%.6g base_lr=%.4g max_steps=%zu\n",
                p.name.c_str(), p.description.c_str(), p.f(p.x0), p.f_star, p.target(), p.base_lr,
                p.max_steps);
    std::fflush(stdout);
    double mezo_passes = kInf;  // MeZO's median on this problem (it runs first)
    for (const Method& m : methods) {
      using RunAt = std::function<RunResult(const Problem&, double, std::uint64_t)>;
      // Tunes the lr of `run` on the tuning seeds: centre first, then
      // outwards, so the cut-off bites early; widened while the best lr sits
      // on an edge. Returns (grid k, median steps) of the best.
      auto tune_lr = [&](const RunAt& run, const Problem& problem, const std::string& tag) {
        double best_median = kInf;
        int best_k = grid.back();
        std::vector<int> tried;
        auto tune = [&](int k) {
          tried.push_back(k);
          const double lr = problem.base_lr * std::ldexp(1.0, k);
          std::vector<double> steps;
          Problem capped = problem;
          if (std::isfinite(best_median)) {
            capped.max_steps = std::min(problem.max_steps, static_cast<std::size_t>(best_median));
          }
          for (std::size_t s = 0; s < tune_seeds; ++s) {
            const RunResult r = run(capped, lr, 1001 + s);
            steps.push_back(r.steps);
            if (runs_csv) {
              runs_csv << problem.name << ',' << m.name << tag << ",tune," << lr << ',' << 1001 + s
                       << ',' << fmt_steps(r.steps) << ',' << r.passes << ',' << r.ms_per_step
                       << ',' << r.state_bytes_per_parameter << '\n';
            }
          }
          const double med = quantile(steps, 0.5);
          if (med < best_median || (med == best_median && k < best_k)) {
            best_median = med;
            best_k = k;
          }
        };
        std::vector<int> order = grid;
        std::stable_sort(order.begin(), order.end(),
                         [](int a, int b) { return std::abs(a) < std::abs(b); });
        for (const int k : order) tune(k);
        while (!smoke) {
          const int lo = *std::min_element(tried.begin(), tried.end());
          const int hi = *std::max_element(tried.begin(), tried.end());
          if (!std::isfinite(best_median)) {  // every lr missed: look lower
            if (lo <= -kWidenLimit) break;
            tune(lo - 1);
            tune(lo - 2);
          } else if (std::abs(best_k) >= kWidenLimit) {
            break;
          } else if (best_k == hi) {
            tune(hi + 1);
            tune(hi + 2);
          } else if (best_k == lo) {
            tune(lo - 1);
            tune(lo - 2);
          } else {
            break;
          }
        }
        return std::pair<int, double>{best_k, best_median};
      };
      // A scheduled method tunes its horizon H with the lr, from the tuning
      // seeds only: H = S/2, S and 2S with S the median steps of the same
      // method at constant lr (its own tuned best; the step budget if that
      // misses), each with its own lr tuning and the run cut at H (the lr
      // is 0 from there on); the best (H, lr) by median steps wins.
      RunAt run = m.run;
      std::size_t horizon = 0;
      int best_k = 0;
      if (m.run_scheduled) {
        const auto at = [&](std::size_t h) -> RunAt {
          return [&m, h](const Problem& q, double lr, std::uint64_t seed) {
            return m.run_scheduled(q, lr, seed, h);
          };
        };
        const auto [k0, s0] = tune_lr(at(0), p, "@constant");
        const double reference = std::isfinite(s0) ? s0 : static_cast<double>(p.max_steps) / 2.0;
        double best_median = kInf;
        for (const double factor : {0.5, 1.0, 2.0}) {
          const auto h = static_cast<std::size_t>(std::ceil(factor * reference));
          Problem capped = p;
          capped.max_steps = std::min(p.max_steps, h);
          const auto [k, med] = tune_lr(at(h), capped, "@" + std::to_string(h));
          if (med < best_median) {
            best_median = med;
            best_k = k;
            horizon = h;
          }
        }
        if (horizon == 0) horizon = static_cast<std::size_t>(reference);
        run = at(horizon);
        std::printf("#   %s: horizon %zu steps (constant-lr median %s)\n", m.name.c_str(), horizon,
                    fmt_steps(s0).c_str());
      } else {
        best_k = tune_lr(run, p, "").first;
      }
      Problem evaluated = p;
      if (horizon > 0) evaluated.max_steps = std::min(p.max_steps, horizon);
      // Evaluation.
      const double lr = p.base_lr * std::ldexp(1.0, best_k);
      std::vector<double> steps;
      std::vector<double> passes;
      std::vector<double> ms_per_step;
      double state_bytes = 0.0;
      std::size_t reached = 0;
      for (std::size_t s = 1; s <= seeds; ++s) {
        const RunResult r = run(evaluated, lr, s);
        steps.push_back(r.steps);
        passes.push_back(std::isfinite(r.steps) ? static_cast<double>(r.passes) : kInf);
        ms_per_step.push_back(r.ms_per_step);
        state_bytes = std::max(state_bytes, r.state_bytes_per_parameter);
        reached += std::isfinite(r.steps) ? 1 : 0;
        if (runs_csv) {
          runs_csv << p.name << ',' << m.name << ",eval," << lr << ',' << s << ','
                   << fmt_steps(r.steps) << ',' << r.passes << ',' << r.ms_per_step << ','
                   << r.state_bytes_per_parameter << '\n';
        }
      }
      if (runs_csv) runs_csv.flush();  // a method's rows survive a later interruption
      const double passes_median = quantile(passes, 0.5);
      if (m.name == "mezo") mezo_passes = passes_median;
      std::string ratio = "-";
      if (std::isfinite(mezo_passes) && std::isfinite(passes_median)) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f", mezo_passes / passes_median);
        ratio = b;
      }
      const double mn = *std::min_element(steps.begin(), steps.end());
      const double mx = *std::max_element(steps.begin(), steps.end());
      char lrs[64];
      if (horizon > 0) {
        std::snprintf(lrs, sizeof lrs, "%.3g (%+d), H %zu", lr, best_k, horizon);
      } else {
        std::snprintf(lrs, sizeof lrs, "%.3g (%+d)", lr, best_k);
      }
      std::ostringstream row;
      row << "| " << p.name << " | " << m.name << " | " << lrs << " | " << reached << '/' << seeds
          << " | " << fmt_steps(quantile(steps, 0.5)) << " | " << fmt_steps(quantile(steps, 0.25))
          << "-" << fmt_steps(quantile(steps, 0.75)) << " | " << fmt_steps(mn) << "-"
          << fmt_steps(mx) << " | " << fmt_steps(passes_median) << " | "
          << fmt_steps(quantile(passes, 0.25)) << "-" << fmt_steps(quantile(passes, 0.75)) << " | "
          << ratio << " | " << fmt_ms(quantile(ms_per_step, 0.5)) << " | " << state_bytes << " |\n";
      table << row.str();
      std::printf("%s", row.str().c_str());
      std::fflush(stdout);
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  std::printf("\n%s\n(total %.1f s)\n", table.str().c_str(), elapsed);
  if (!out_dir.empty()) {
    std::ofstream md(std::filesystem::path(out_dir) / "summary.md");
    md << table.str();
  }
  return 0;
}
