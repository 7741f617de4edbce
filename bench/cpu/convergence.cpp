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
//   * every method makes one direction per step (2 forward passes), so
//     steps and forward passes differ by the same factor for every method.
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
#include "zoft_model.hpp"

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// One optimisation problem over a float parameter vector split into named
/// blocks (the spans of a ParameterSet).
struct Problem {
  std::string name;
  std::string description;
  std::vector<std::pair<std::string, std::size_t>> blocks;
  std::vector<float> x0;
  std::function<double(std::span<const float>)> f;
  /// Gradient (double), used only to meta-train the ZO Fine-tuner's model.
  std::function<void(std::span<const float>, std::span<double>)> grad;
  double f_star = 0.0;
  double tol = 1e-2;
  double eps = 1e-3;
  double base_lr = 1e-3;
  std::size_t max_steps = 10000;
  std::size_t check_every = 1;

  [[nodiscard]] double target() const { return f_star + tol * (f(x0) - f_star); }
};

std::vector<std::pair<std::string, std::size_t>> even_blocks(std::size_t d, std::size_t count) {
  std::vector<std::pair<std::string, std::size_t>> b;
  for (std::size_t i = 0; i < count; ++i) b.emplace_back("block" + std::to_string(i), d / count);
  return b;
}

/// 0.5 sum a_i x_i^2, a_i log-spaced from 1 to 100 (condition number 100),
/// four blocks of 16 (curvature grows block by block).
Problem quad_ill() {
  constexpr std::size_t d = 64;
  auto a = std::make_shared<std::vector<double>>(d);
  for (std::size_t i = 0; i < d; ++i) (*a)[i] = std::pow(100.0, static_cast<double>(i) / (d - 1));
  Problem p;
  p.name = "quad-ill";
  p.description = "0.5 sum a_i x_i^2, d=64, a_i in [1,100] log-spaced, x0=1, eps=1e-3";
  p.blocks = even_blocks(d, 4);
  p.x0.assign(d, 1.0f);
  p.f = [a](std::span<const float> x) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += 0.5 * (*a)[i] * double(x[i]) * double(x[i]);
    return s;
  };
  p.grad = [a](std::span<const float> x, std::span<double> g) {
    for (std::size_t i = 0; i < x.size(); ++i) g[i] = (*a)[i] * double(x[i]);
  };
  p.f_star = 0.0;
  p.tol = 1e-3;
  double tr = 0;
  for (double v : *a) tr += v;
  p.base_lr = 1.0 / (tr + 2.0 * 100.0);
  p.max_steps = 60000;
  p.check_every = 4;
  return p;
}

/// sum a_i (exp(x_i) - x_i - 1): all derivatives are a_i e^{x_i}, so the
/// third derivative is as strong as the curvature. Gaussian smoothing moves
/// the minimiser of each term to -eps^2/2: MeZO's eps^2 bias, which the
/// cubic and quintic kernels remove.
Problem exp_sum(double eps) {
  constexpr std::size_t d = 64;
  auto a = std::make_shared<std::vector<double>>(d);
  for (std::size_t i = 0; i < d; ++i) (*a)[i] = 1.0 + 9.0 * static_cast<double>(i) / (d - 1);
  Problem p;
  char name[64];
  std::snprintf(name, sizeof name, "exp-sum-eps%g", eps);
  p.name = name;
  std::snprintf(name, sizeof name, "%g", eps);
  p.description =
      std::string("sum a_i (e^x_i - x_i - 1), d=64, a_i in [1,10], x0=+-1, eps=") + name;
  p.blocks = even_blocks(d, 4);
  p.x0.resize(d);
  for (std::size_t i = 0; i < d; ++i) p.x0[i] = i % 2 == 0 ? 1.0f : -1.0f;
  p.f = [a](std::span<const float> x) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += (*a)[i] * (std::expm1(double(x[i])) - x[i]);
    return s;
  };
  p.grad = [a](std::span<const float> x, std::span<double> g) {
    for (std::size_t i = 0; i < x.size(); ++i) g[i] = (*a)[i] * std::expm1(double(x[i]));
  };
  p.f_star = 0.0;
  // With eps = 0.5 the smoothed minimiser of MeZO sits at x_i = -eps^2/2,
  // where f = 0.0075 sum a_i = 2.6 (tol 1.4e-2): a target of tol = 1e-2
  // (1.9) lies below MeZO's bias floor but above the linear kernel's (3/5 of
  // the shift) and far above the cubic/quintic kernels' O(eps^4) floor.
  p.tol = eps >= 0.1 ? 1e-2 : 1e-3;
  p.eps = eps;
  double tr = 0;
  for (double v : *a) tr += v;
  p.base_lr = 1.0 / (tr + 2.0 * 10.0);
  p.max_steps = 40000;
  p.check_every = 4;
  return p;
}

/// Binary logistic regression on Fashion-MNIST (Pullover vs Coat), full
/// batch on the first `m` training images of the two classes, 7x7
/// average-pooled and standardised features plus a bias. f* from Newton's
/// method in double.
Problem fmnist_logreg(const fmnist::Dataset& data, std::size_t m) {
  constexpr std::size_t k = 49;
  auto X = std::make_shared<Eigen::MatrixXf>(m, k);
  auto y = std::make_shared<Eigen::VectorXf>(m);
  std::size_t row = 0;
  for (std::size_t i = 0; i < data.train.count && row < m; ++i) {
    const int label = data.train.labels[i];
    if (label != 2 && label != 4) continue;
    const float* img = data.train.image(i);
    for (std::size_t by = 0; by < 7; ++by) {
      for (std::size_t bx = 0; bx < 7; ++bx) {
        float s = 0;
        for (std::size_t dy = 0; dy < 4; ++dy) {
          for (std::size_t dx = 0; dx < 4; ++dx) s += img[(4 * by + dy) * 28 + 4 * bx + dx];
        }
        (*X)(row, by * 7 + bx) = s / 16.0f;
      }
    }
    (*y)(row) = label == 4 ? 1.0f : -1.0f;
    ++row;
  }
  if (row < m) throw std::runtime_error("fmnist-logreg: not enough training images");
  for (std::size_t j = 0; j < k; ++j) {
    const float mean = X->col(j).mean();
    X->col(j).array() -= mean;
    const float sd = std::sqrt(X->col(j).squaredNorm() / m);
    if (sd > 0) X->col(j) /= sd;
  }
  Problem p;
  p.name = "fmnist-logreg";
  p.description = "logistic regression, Fashion-MNIST Pullover vs Coat, " + std::to_string(m) +
                  " images, 7x7 pooled + bias (d=50), full batch, eps=1e-3";
  p.blocks = {{"weight", k}, {"bias", 1}};
  p.x0.assign(k + 1, 0.0f);
  p.f = [X, y, m](std::span<const float> w) {
    const Eigen::Map<const Eigen::VectorXf> wv(w.data(), k);
    const Eigen::VectorXf z = (*X) * wv;
    double s = 0;
    for (std::size_t i = 0; i < m; ++i) {
      const double margin = (*y)(i) * (double(z(i)) + w[k]);
      s += margin > 0 ? std::log1p(std::exp(-margin)) : -margin + std::log1p(std::exp(margin));
    }
    return s / m;
  };
  p.grad = [X, y, m](std::span<const float> w, std::span<double> g) {
    const Eigen::Map<const Eigen::VectorXf> wv(w.data(), k);
    const Eigen::VectorXf z = (*X) * wv;
    Eigen::VectorXf c(m);
    for (std::size_t i = 0; i < m; ++i) {
      const double margin = (*y)(i) * (double(z(i)) + w[k]);
      c(i) = static_cast<float>(-(*y)(i) / (1.0 + std::exp(margin)) / m);
    }
    const Eigen::VectorXf gw = X->transpose() * c;
    for (std::size_t j = 0; j < k; ++j) g[j] = gw(j);
    g[k] = c.sum();
  };
  // Newton's method in double for f*, and the curvature bound for base_lr.
  const Eigen::MatrixXd Xd = X->cast<double>();
  Eigen::MatrixXd A(m, k + 1);
  A << Xd, Eigen::VectorXd::Ones(m);
  const Eigen::VectorXd yd = y->cast<double>();
  Eigen::VectorXd w = Eigen::VectorXd::Zero(k + 1);
  for (int it = 0; it < 50; ++it) {
    const Eigen::ArrayXd margin = yd.array() * (A * w).array();
    const Eigen::ArrayXd sig = 1.0 / (1.0 + margin.exp());  // sigma(-margin)
    const Eigen::VectorXd g = -(A.transpose() * (yd.array() * sig).matrix()) / double(m);
    const Eigen::ArrayXd h = sig * (1.0 - sig);
    const Eigen::MatrixXd H = A.transpose() * h.matrix().asDiagonal() * A / double(m) +
                              1e-12 * Eigen::MatrixXd::Identity(k + 1, k + 1);
    const Eigen::VectorXd step = H.ldlt().solve(g);
    w -= step;
    if (step.norm() < 1e-12) break;
  }
  std::vector<float> wf(k + 1);
  for (std::size_t j = 0; j <= k; ++j) wf[j] = static_cast<float>(w(j));
  p.f_star = std::min(p.f(wf), p.f(std::vector<float>(k + 1, 0.0f)));
  const Eigen::ArrayXd margin = yd.array() * (A * w).array();
  const Eigen::ArrayXd sig = 1.0 / (1.0 + margin.exp());
  const Eigen::MatrixXd H =
      A.transpose() * (sig * (1.0 - sig)).matrix().asDiagonal() * A / double(m);
  const double lmax = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(H).eigenvalues().maxCoeff();
  p.base_lr = 1.0 / (H.trace() + 2.0 * lmax);
  p.tol = 0.02;
  p.max_steps = 20000;
  p.check_every = 5;
  return p;
}

/// A method of the suite: builds an optimizer for (lr, eps, seed) and runs
/// it on a problem.
struct Method {
  std::string name;
  /// Returns steps to target (kInf if not reached) and forward passes used.
  std::function<std::pair<double, std::uint64_t>(const Problem&, double lr, std::uint64_t seed)>
      run;
};

/// Runs `opt` on `problem` until the target, max_steps or divergence.
template <class Opt>
std::pair<double, std::uint64_t> drive(Opt& opt, const Problem& problem) {
  std::vector<float> x = problem.x0;
  zoopt::ParameterSet<float> params;
  std::size_t offset = 0;
  for (const auto& [name, size] : problem.blocks) {
    params.add(name, std::span<float>(x.data() + offset, size));
    offset += size;
  }
  const double target = problem.target();
  const double blowup = 1e3 * std::max(1.0, problem.f(problem.x0));
  const std::span<const float> view(x);
  auto loss = [&] { return problem.f(view); };
  for (std::size_t t = 1; t <= problem.max_steps; ++t) {
    try {
      opt.step(loss, params);
    } catch (const zoopt::NonFiniteLoss&) {
      return {kInf, opt.forward_passes()};
    }
    if (t % problem.check_every == 0 || t == problem.max_steps) {
      const double f = problem.f(view);
      if (!std::isfinite(f) || f > blowup) return {kInf, opt.forward_passes()};
      if (f <= target) return {static_cast<double>(t), opt.forward_passes()};
    }
  }
  return {kInf, opt.forward_passes()};
}

std::vector<Method> all_methods(bool smoke) {
  std::vector<Method> m;
  m.push_back({"mezo", [](const Problem& p, double lr, std::uint64_t seed) {
                 zoopt::MeZO<float> opt({.lr = lr, .eps = p.eps, .directions = 1, .seed = seed});
                 return drive(opt, p);
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
           return drive(opt, p);
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
                 if (model->empty()) return std::pair<double, std::uint64_t>{kInf, 0};
                 zoopt::ZOFineTuner<float> opt(
                     {.lr = lr, .eps = p.eps, .directions = 1, .seed = seed}, *model);
                 try {
                   return drive(opt, p);
                 } catch (const std::domain_error&) {  // a network's scale became non-finite
                   return std::pair<double, std::uint64_t>{kInf, opt.forward_passes()};
                 }
               }});
  return m;
}

struct Summary {
  double lr = 0;
  std::vector<double> steps;
  std::vector<std::uint64_t> passes;
};

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
               "                     fmnist-logreg (default: all)\n"
               "  --methods a,b      subset of: mezo, kerzoo-linear, kerzoo-cubic,\n"
               "                     kerzoo-quintic, zo-finetuner (default: all)\n"
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
  try {
    const std::vector<std::string> known = {"quad-ill", "exp-sum-eps0.001", "exp-sum-eps0.5",
                                            "fmnist-logreg"};
    for (const auto& n : problem_names) {
      if (std::find(known.begin(), known.end(), n) == known.end()) {
        std::fprintf(stderr, "zoopt_convergence: unknown problem '%s' (see --help)\n", n.c_str());
        return 2;
      }
    }
    if (wanted(problem_names, "quad-ill")) problems.push_back(quad_ill());
    if (wanted(problem_names, "exp-sum-eps0.001")) problems.push_back(exp_sum(1e-3));
    if (wanted(problem_names, "exp-sum-eps0.5")) problems.push_back(exp_sum(0.5));
    if (wanted(problem_names, "fmnist-logreg")) {
      problems.push_back(fmnist_logreg(fmnist::load(data_dir), smoke ? 200 : 1000));
    }
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
    runs_csv << "problem,method,phase,lr,seed,steps_to_target,forward_passes\n";
  }

  std::ostringstream table;
  table << "| problem | method | lr (grid k) | reached | steps median | steps IQR | steps min-max "
           "| fwd passes median |\n"
        << "|---|---|---|---|---|---|---|---|\n";
  const auto t_start = std::chrono::steady_clock::now();
  for (const Problem& p : problems) {
    std::printf("# %s: %s\n#   f(x0)=%.6g f*=%.6g target=%.6g base_lr=%.4g max_steps=%zu\n",
                p.name.c_str(), p.description.c_str(), p.f(p.x0), p.f_star, p.target(), p.base_lr,
                p.max_steps);
    std::fflush(stdout);
    for (const Method& m : methods) {
      // Tuning.
      double best_median = kInf;
      int best_k = grid.back();
      // Centre first, then outwards, so the cut-off bites early.
      std::vector<int> order = grid;
      std::stable_sort(order.begin(), order.end(),
                       [](int a, int b) { return std::abs(a) < std::abs(b); });
      for (const int k : order) {
        const double lr = p.base_lr * std::ldexp(1.0, k);
        std::vector<double> steps;
        Problem capped = p;
        if (std::isfinite(best_median)) {
          capped.max_steps = std::min(p.max_steps, static_cast<std::size_t>(best_median));
        }
        for (std::size_t s = 0; s < tune_seeds; ++s) {
          const auto [st, fp] = m.run(capped, lr, 1001 + s);
          steps.push_back(st);
          if (runs_csv) {
            runs_csv << p.name << ',' << m.name << ",tune," << lr << ',' << 1001 + s << ','
                     << fmt_steps(st) << ',' << fp << '\n';
          }
        }
        const double med = quantile(steps, 0.5);
        if (med < best_median || (med == best_median && k < best_k)) {
          best_median = med;
          best_k = k;
        }
      }
      // Evaluation.
      const double lr = p.base_lr * std::ldexp(1.0, best_k);
      std::vector<double> steps;
      std::vector<double> passes;
      std::size_t reached = 0;
      for (std::size_t s = 1; s <= seeds; ++s) {
        const auto [st, fp] = m.run(p, lr, s);
        steps.push_back(st);
        passes.push_back(std::isfinite(st) ? static_cast<double>(fp) : kInf);
        reached += std::isfinite(st) ? 1 : 0;
        if (runs_csv) {
          runs_csv << p.name << ',' << m.name << ",eval," << lr << ',' << s << ',' << fmt_steps(st)
                   << ',' << fp << '\n';
        }
      }
      const double mn = *std::min_element(steps.begin(), steps.end());
      const double mx = *std::max_element(steps.begin(), steps.end());
      char lrs[48];
      std::snprintf(lrs, sizeof lrs, "%.3g (%+d)", lr, best_k);
      std::ostringstream row;
      row << "| " << p.name << " | " << m.name << " | " << lrs << " | " << reached << '/' << seeds
          << " | " << fmt_steps(quantile(steps, 0.5)) << " | " << fmt_steps(quantile(steps, 0.25))
          << "-" << fmt_steps(quantile(steps, 0.75)) << " | " << fmt_steps(mn) << "-"
          << fmt_steps(mx) << " | " << fmt_steps(quantile(passes, 0.5)) << " |\n";
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
