// Extending zoopt with a direction sampler: sparse random signs.
//
// A sampler maps the four 32-bit words of one Philox block to the direction
// entries of four consecutive elements (the WordSampler concept in
// zoopt/sampler/noise.hpp); any law with E[z] = 0 and E[z^2] = 1 keeps the
// estimator's scale. This one keeps an element with probability 1/4 and then
// gives it a fair sign of size 2:
//   P(z = 2) = P(z = -2) = 1/8,  P(z = 0) = 3/4,
//   E[z] = 0,  E[z^2] = 1,  E[z^4] = 4 (Gaussian: 3, Rademacher: 1),
// so its estimate has more variance than either built-in sampler; what a
// sparse law buys is a direction that moves only a quarter of the
// parameters. Nothing in zoopt/ changes: the sampler is named in the
// optimizer's type (which requires its backend to draw with the same one)
// and in replay<>(), and its `name` goes into logs and checkpoints.
#include <zoopt/kerzoo.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "extension_check.hpp"

struct SparseRademacherSampler {
  static constexpr const char* name = "sparse-rademacher-1/4";

  /// Word k decides element k: its two top bits keep it (both zero, 1 in 4)
  /// and bit 29 is its sign. Only exact operations: the same bits on every
  /// CPU and GPU.
  template <class C>
  ZOOPT_HD static void generate(const std::uint32_t (&w)[4], C (&z)[4]) {
    for (int k = 0; k < 4; ++k) {
      const bool kept = (w[k] >> 30) == 0u;
      const bool negative = ((w[k] >> 29) & 1u) != 0u;
      z[k] = kept ? (negative ? C(-2) : C(2)) : C(0);
    }
  }
};

using SparseMeZO = zoopt::MeZO<float, SparseRademacherSampler, zoopt::CentralDifference,
                               zoopt::CpuBackend<float, SparseRademacherSampler>>;

int main() {
  using extending::expect;

  // Its law, from 2^20 draws of one key: each moment within 5 standard
  // errors of its value (Var z = 1, Var z^2 = E z^4 - 1 = 3, and a kept
  // fraction p = 1/4 has variance p(1 - p)).
  constexpr std::uint64_t n = 1u << 20;
  double sum = 0.0, sum_sq = 0.0, kept = 0.0;
  for (std::uint64_t g = 0; g < n; ++g) {
    const double z = zoopt::noise_at<SparseRademacherSampler, double>(zoopt::NoiseKey{5, 0, 0}, g);
    sum += z;
    sum_sq += z * z;
    kept += z != 0.0 ? 1.0 : 0.0;
  }
  const double se = 1.0 / std::sqrt(static_cast<double>(n));
  expect(std::abs(sum / n) <= 5.0 * se, "E[z] = 0 within 5 standard errors");
  expect(std::abs(sum_sq / n - 1.0) <= 5.0 * std::sqrt(3.0) * se,
         "E[z^2] = 1 within 5 standard errors");
  expect(std::abs(kept / n - 0.25) <= 5.0 * std::sqrt(0.25 * 0.75) * se,
         "a quarter of the entries are nonzero, within 5 standard errors");

  // Trains, resumes and replays like a built-in sampler. replay() without a
  // sampler type only knows the built-in ones and says so, naming the log.
  SparseMeZO::Params p;
  p.lr = 2e-3;
  p.eps = 1e-3;
  p.seed = 11;
  const auto passes = extending::check_trains_resumes_replays<SparseMeZO>(
      p, 3000, 0.01, [](const zoopt::UpdateLog& log, auto& params, zoopt::ReplayRange range) {
        zoopt::replay<SparseRademacherSampler>(log, params, range);
      });
  std::printf("%llu forward passes\n", static_cast<unsigned long long>(passes));

  std::vector<float> x(128, 0.0f);
  SparseMeZO opt(p);
  auto set = extending::one_span(x);
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  opt.optimize(extending::Quadratic<float>{}, set, 2, log.recorder(opt));
  bool named = false;
  try {
    zoopt::replay(log, set);
  } catch (const zoopt::InvalidArgument& e) {
    named = std::string(e.what()).find("sparse-rademacher-1/4") != std::string::npos;
  }
  expect(named, "replay() without the sampler type names the log's sampler");
  return extending::failures() == 0 ? 0 : 1;
}
