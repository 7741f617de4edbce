// Extending zoopt with an update rule: Nesterov momentum on the ZO estimate.
//
// An update rule turns the step's estimate g (plus weight decay) into new
// parameters, element by element, with state_size values of per-element
// state that zoopt allocates, saves in checkpoints and rebuilds in replay
// (the UpdateRule concept in zoopt/update/update_rule.hpp). This one is
// Nesterov's momentum in the form of Sutskever et al. (2013), as PyTorch's
// SGD(nesterov=True) writes it:
//   m <- beta m + g,   theta = theta0 - eta (g + beta m),   m = 0 at first,
// one buffer m: d values of compute_t<T> (4 bytes per float parameter).
// Nothing in zoopt/ changes: the rule is the optimizer's last template
// argument, its settings are Params::update, and replay() gets an
// UpdateRuleState of it.
#include <zoopt/kerzoo.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "extension_check.hpp"

struct NesterovUpdate {
  static constexpr std::size_t state_size = 1;
  double beta = 0.9;  ///< momentum factor, in [0, 1)

  /// Goes into logs and checkpoints: the shortest decimal that reads back
  /// as beta, so that runs with different settings never share a name.
  [[nodiscard]] std::string name() const {
    char digits[32];
    for (int precision = 1; precision <= 17; ++precision) {
      std::snprintf(digits, sizeof digits, "%.*g", precision, beta);
      if (std::strtod(digits, nullptr) == beta) break;
    }
    return std::string("nesterov(") + digits + ")";
  }
  /// Throws naming `<where>.update.beta`, so a bad setting is reported as a
  /// field of the optimizer's Params.
  void check(const char* where) const {
    if (!(std::isfinite(beta) && beta >= 0.0 && beta < 1.0)) {
      throw zoopt::InvalidArgument(std::string(where) + ": update.beta must be in [0, 1), not " +
                                   std::to_string(beta));
    }
  }
  template <class C>
  void init(C, C* s) const {
    s[0] = C(0);
  }
  template <class C>
  struct Apply {
    C beta;
    C operator()(C theta0, C g, C eta, C* s) const {
      s[0] = beta * s[0] + g;
      return theta0 - eta * (g + beta * s[0]);
    }
  };
  /// The k-th update's function; this rule is the same at every k.
  template <class C>
  [[nodiscard]] Apply<C> at(std::uint64_t) const {
    return {static_cast<C>(beta)};
  }
};

template <class T>
using NesterovMeZO = zoopt::MeZO<T, zoopt::GaussianSampler, zoopt::CentralDifference,
                                 zoopt::CpuBackend<T, zoopt::GaussianSampler>, NesterovUpdate>;

// The rule's math against a plain double loop fed with the estimates the
// optimizer applied, g_j = sum_i c_i z_ij (its coefficients and the
// sampler's noise_at); returns the largest difference over 40 steps.
double deviation_from_reference(double beta) {
  NesterovMeZO<double>::Params p;
  p.lr = 2e-3;
  p.directions = 2;
  p.seed = 7;
  p.update.beta = beta;
  NesterovMeZO<double> opt(p);
  const extending::Quadratic<double> loss;
  auto x = loss.start();
  auto set = extending::one_span(x);
  auto ref = x;
  std::vector<double> m(x.size(), 0.0);
  double worst = 0.0;
  for (std::uint64_t t = 0; t < 40; ++t) {
    opt.step(loss, set);
    const auto c = opt.last_coefficients();
    for (std::size_t j = 0; j < x.size(); ++j) {
      double g = 0.0;
      for (std::uint32_t i = 0; i < c.size(); ++i) {
        g += c[i] * zoopt::noise_at<zoopt::GaussianSampler, double>(zoopt::NoiseKey{7, t, i}, j);
      }
      m[j] = 0.9 * m[j] + g;
      ref[j] -= 2e-3 * (g + 0.9 * m[j]);
      worst = std::max(worst, std::abs(x[j] - ref[j]));
    }
  }
  return worst;
}

int main() {
  using extending::expect;

  // Rounding alone separates the two loops: 40 steps of a few operations on
  // values of order 1 stay far below 1e-12. A reference with another beta
  // (0.8) must be caught, or the comparison proves nothing.
  const double d = deviation_from_reference(0.9);
  const double wrong = deviation_from_reference(0.8);
  char line[120];
  std::snprintf(line, sizeof line, "matches the formula: %.2e <= 1e-12 (beta 0.8 vs 0.9: %.2e)", d,
                wrong);
  expect(d <= 1e-12 && wrong > 1e-6, line);

  // beta = 0 is plain SGD, bit for bit (g + 0 m = g exactly).
  {
    const extending::Quadratic<float> loss;
    auto a = loss.start();
    auto b = loss.start();
    auto sa = extending::one_span(a);
    auto sb = extending::one_span(b);
    zoopt::MeZO<float> sgd({.lr = 2e-3, .seed = 3});
    NesterovMeZO<float>::Params p;
    p.lr = 2e-3;
    p.seed = 3;
    p.update.beta = 0.0;
    NesterovMeZO<float> nesterov(p);
    sgd.optimize(loss, sa, 50);
    nesterov.optimize(loss, sb, 50);
    expect(extending::same_bits(a, b), "beta = 0 equals MeZO's SGD bit for bit");
  }

  // A bad setting is an error naming the field; nothing is constructed.
  {
    NesterovMeZO<float>::Params p;
    p.update.beta = 1.0;
    bool named = false;
    try {
      NesterovMeZO<float> bad(p);
    } catch (const zoopt::InvalidArgument& e) {
      named = std::string(e.what()).find("update.beta") != std::string::npos;
    }
    expect(named, "beta = 1 is rejected naming update.beta");
  }

  // Trains, resumes (the momentum buffer is in the checkpoint) and replays
  // (one state carried from the first piece into the second).
  NesterovMeZO<float>::Params p;
  p.lr = 5e-4;
  p.eps = 1e-3;
  p.seed = 11;
  zoopt::UpdateRuleState<NesterovUpdate, float> state(p.update);
  const auto passes = extending::check_trains_resumes_replays<NesterovMeZO<float>>(
      p, 3000, 0.01, [&](const zoopt::UpdateLog& log, auto& params, zoopt::ReplayRange range) {
        zoopt::replay(log, params, state, range);
      });
  std::printf("%llu forward passes; momentum state %zu bytes\n",
              static_cast<unsigned long long>(passes), state.bytes());
  return extending::failures() == 0 ? 0 : 1;
}
