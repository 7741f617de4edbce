// Statistical quality of zoopt's gradient estimators on functions with known
// gradients: bias, variance and cosine to the true gradient, as benchmark
// counters (the time per iteration is the cost of one estimate).
//
// One iteration = one optimizer step from the same point theta0 with lr = 1
// in double precision, so the estimate is ghat = theta0 - theta_after (no
// weight decay). The step counter advances, so every iteration draws fresh
// directions from the fixed seed. Counters, with g the true gradient:
//   bias_rel    = |mean(ghat) - g| / |g|
//   bias_se_rel = sqrt(tr Cov(ghat) / M) / |g|: Monte-Carlo noise of the
//                 bias figure (a bias below ~2 bias_se_rel is not resolved)
//   var_rel     = tr Cov(ghat) / |g|^2   (per-estimate variance)
//   cosine      = mean of cos(ghat, g)
// KerZOO runs with C = 1, so its mean is g (not C g).
//
// Usage: zoopt_bench_estimator [--samples=M] [benchmark flags]
//   --samples=M  estimates per configuration (default 50000)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include <zoopt/kerzoo.hpp>

namespace {

constexpr std::size_t kDim = 16;

/// An analytic test function: value, gradient, and the point theta0.
struct Problem {
  std::string name;
  std::function<double(std::span<const double>)> f;
  std::function<void(std::span<const double>, std::span<double>)> grad;
  std::vector<double> x0;
};

/// Ill-conditioned quadratic 0.5 sum a_i x_i^2, a_i from 1 to 100
/// (log-spaced). Third derivatives vanish: every estimator is unbiased.
Problem quadratic() {
  auto a = std::make_shared<std::vector<double>>(kDim);
  std::vector<double> x(kDim);
  for (std::size_t i = 0; i < kDim; ++i) {
    (*a)[i] = std::pow(100.0, static_cast<double>(i) / (kDim - 1));
    x[i] = (i % 2 == 0 ? 0.5 : -0.5);
  }
  return {"quadratic",
          [a](std::span<const double> p) {
            double s = 0;
            for (std::size_t i = 0; i < p.size(); ++i) s += 0.5 * (*a)[i] * p[i] * p[i];
            return s;
          },
          [a](std::span<const double> p, std::span<double> g) {
            for (std::size_t i = 0; i < p.size(); ++i) g[i] = (*a)[i] * p[i];
          },
          x};
}

/// Cubic sum a_i x_i^3 near the origin: the gradient 3 a_i x_i^2 is small
/// and the third derivative 6 a_i large, so MeZO's eps^2 bias
/// (eps^2/6) E[D3f[u,u,u] u] = eps^2 a_i E[u^4] is visible.
Problem cubic() {
  auto a = std::make_shared<std::vector<double>>(kDim);
  std::vector<double> x(kDim);
  for (std::size_t i = 0; i < kDim; ++i) {
    (*a)[i] = 1.0 + 0.5 * std::sin(static_cast<double>(i));
    x[i] = 0.1 * (1.0 + static_cast<double>(i % 3)) * (i % 2 == 0 ? 1.0 : -1.0);
  }
  return {"cubic",
          [a](std::span<const double> p) {
            double s = 0;
            for (std::size_t i = 0; i < p.size(); ++i) s += (*a)[i] * p[i] * p[i] * p[i];
            return s;
          },
          [a](std::span<const double> p, std::span<double> g) {
            for (std::size_t i = 0; i < p.size(); ++i) g[i] = 3.0 * (*a)[i] * p[i] * p[i];
          },
          x};
}

/// Logistic regression loss mean_k log(1 + exp(-y_k w.x_k)) on 64 fixed
/// synthetic examples (features from a fixed Philox stream).
Problem logistic() {
  constexpr std::size_t m = 64;
  auto data = std::make_shared<std::vector<double>>(m * kDim);
  auto labels = std::make_shared<std::vector<double>>(m);
  for (std::size_t k = 0; k < m; ++k) {
    for (std::size_t i = 0; i < kDim; ++i) {
      (*data)[k * kDim + i] =
          zoopt::noise_at<zoopt::GaussianSampler, double>(zoopt::NoiseKey{77, 0, 0}, k * kDim + i);
    }
    (*labels)[k] = zoopt::noise_at<zoopt::RademacherSampler, double>(zoopt::NoiseKey{77, 1, 0}, k);
  }
  std::vector<double> x(kDim);
  for (std::size_t i = 0; i < kDim; ++i) x[i] = 0.3 * std::cos(static_cast<double>(i));
  auto margin = [data, labels](std::span<const double> w, std::size_t k) {
    double s = 0;
    for (std::size_t i = 0; i < kDim; ++i) s += w[i] * (*data)[k * kDim + i];
    return (*labels)[k] * s;
  };
  return {"logistic",
          [margin](std::span<const double> w) {
            double s = 0;
            for (std::size_t k = 0; k < m; ++k) s += std::log1p(std::exp(-margin(w, k)));
            return s / m;
          },
          [margin, data, labels](std::span<const double> w, std::span<double> g) {
            std::fill(g.begin(), g.end(), 0.0);
            for (std::size_t k = 0; k < m; ++k) {
              const double c = -(*labels)[k] / (1.0 + std::exp(margin(w, k))) / m;
              for (std::size_t i = 0; i < kDim; ++i) g[i] += c * (*data)[k * kDim + i];
            }
          },
          x};
}

/// Rosenbrock sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 at a point off the
/// valley: quartic terms, non-zero third and fourth derivatives.
Problem rosenbrock() {
  std::vector<double> x(kDim);
  for (std::size_t i = 0; i < kDim; ++i) x[i] = 0.5 + 0.3 * std::sin(1.7 * static_cast<double>(i));
  return {"rosenbrock",
          [](std::span<const double> p) {
            double s = 0;
            for (std::size_t i = 0; i + 1 < p.size(); ++i) {
              const double a = p[i + 1] - p[i] * p[i];
              s += 100.0 * a * a + (1.0 - p[i]) * (1.0 - p[i]);
            }
            return s;
          },
          [](std::span<const double> p, std::span<double> g) {
            std::fill(g.begin(), g.end(), 0.0);
            for (std::size_t i = 0; i + 1 < p.size(); ++i) {
              const double a = p[i + 1] - p[i] * p[i];
              g[i] += -400.0 * a * p[i] - 2.0 * (1.0 - p[i]);
              g[i + 1] += 200.0 * a;
            }
          },
          x};
}

std::size_t g_samples = 50000;

/// Runs `samples` steps of `opt` from problem.x0 and reports the counters.
template <class Opt>
void measure(benchmark::State& state, const Problem& problem, Opt opt) {
  const std::size_t d = problem.x0.size();
  std::vector<double> truth(d);
  problem.grad(problem.x0, truth);
  double truth_norm2 = 0;
  for (double v : truth) truth_norm2 += v * v;
  const double truth_norm = std::sqrt(truth_norm2);

  std::vector<double> theta(d);
  std::vector<double> sum(d, 0.0);
  double sum_sq = 0.0;
  double sum_cos = 0.0;
  auto loss = [&](std::span<const double> p) { return problem.f(p); };
  for (auto _ : state) {
    theta = problem.x0;
    opt.step(loss, std::span<double>(theta));
    double norm2 = 0.0;
    double dot = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
      const double gi = problem.x0[i] - theta[i];  // lr = 1
      sum[i] += gi;
      norm2 += gi * gi;
      dot += gi * truth[i];
    }
    sum_sq += norm2;
    sum_cos += norm2 > 0 ? dot / (std::sqrt(norm2) * truth_norm) : 0.0;
  }
  const double m = static_cast<double>(state.iterations());
  double bias2 = 0.0;
  double mean2 = 0.0;
  for (std::size_t i = 0; i < d; ++i) {
    const double mean = sum[i] / m;
    bias2 += (mean - truth[i]) * (mean - truth[i]);
    mean2 += mean * mean;
  }
  const double var = m > 1 ? (sum_sq - m * mean2) / (m - 1) : 0.0;
  state.counters["bias_rel"] = std::sqrt(bias2) / truth_norm;
  state.counters["bias_se_rel"] = std::sqrt(var / m) / truth_norm;
  state.counters["var_rel"] = var / truth_norm2;
  state.counters["cosine"] = sum_cos / m;
}

template <class Sampler>
void register_all(const std::vector<Problem>& problems, const char* sampler) {
  const double eps_values[] = {1e-3, 0.1, 0.5};
  const std::uint32_t n_values[] = {1, 4};
  const std::pair<const char*, zoopt::Kernel> kernels[] = {{"linear", zoopt::Kernel::linear()},
                                                           {"cubic", zoopt::Kernel::cubic()},
                                                           {"quintic", zoopt::Kernel::quintic()}};
  for (const Problem& p : problems) {
    for (const double eps : eps_values) {
      for (const std::uint32_t n : n_values) {
        char tail[64];
        std::snprintf(tail, sizeof tail, "/%s/eps:%g/n:%u", sampler, eps, n);
        const std::uint64_t seed = 1234;
        benchmark::RegisterBenchmark(
            ("estimator/" + p.name + "/mezo" + tail).c_str(),
            [p, eps, n, seed](benchmark::State& s) {
              measure(s, p,
                      zoopt::MeZO<double, Sampler>(
                          {.lr = 1.0, .eps = eps, .directions = n, .seed = seed}));
            })
            ->Iterations(static_cast<benchmark::IterationCount>(g_samples))
            ->Unit(benchmark::kMicrosecond);
        for (const auto& [kname, kernel] : kernels) {
          benchmark::RegisterBenchmark(("estimator/" + p.name + "/kerzoo_" + kname + tail).c_str(),
                                       [p, eps, n, seed, kernel = kernel](benchmark::State& s) {
                                         measure(s, p,
                                                 zoopt::KerZOO<double, Sampler>({.lr = 1.0,
                                                                                 .eps = eps,
                                                                                 .directions = n,
                                                                                 .seed = seed,
                                                                                 .kernel = kernel,
                                                                                 .C = 1.0}));
                                       })
              ->Iterations(static_cast<benchmark::IterationCount>(g_samples))
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Take --samples=M out of argv before Google Benchmark parses the rest.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--samples=", 10) == 0) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i] + 10, &end, 10);
      if (end == argv[i] + 10 || *end != '\0' || v < 2) {
        std::fprintf(stderr, "zoopt_bench_estimator: --samples needs an integer >= 2, got '%s'\n",
                     argv[i] + 10);
        return 2;
      }
      g_samples = static_cast<std::size_t>(v);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  const std::vector<Problem> problems = {quadratic(), cubic(), logistic(), rosenbrock()};
  register_all<zoopt::GaussianSampler>(problems, "gaussian");
  register_all<zoopt::RademacherSampler>(problems, "rademacher");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
