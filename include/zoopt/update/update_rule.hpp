// Update rules: how a step turns the ZO gradient estimate into new
// parameters, theta <- rule(theta0, g, eta_t, state), where
//   g = sum_i c_i s z_i + lambda theta0   (the estimate plus weight decay)
// is computed per element in the update pass and eta_t = lr * schedule(t).
//
// A rule is a small value type (its hyper-parameters) used as the last
// template argument of MeZO, KerZOO and FZOO and stored in Params::update.
// Its per-element state (state_size values of compute_t<T> per parameter,
// e.g. a momentum buffer) lives in the optimizer's UpdateRuleState, takes
// part in state()/checkpoints, and is rebuilt by replay() from the log, so a
// run with a stateful rule is as reproducible as one with plain SGD.
//
// What a rule provides (the UpdateRule concept checks it):
//   static constexpr std::size_t state_size;    values per element (0: none)
//   std::string name() const;                   "momentum(0.9)" (logs)
//   void check(const char* where) const;        throws naming update.<field>
//   template <class C> void init(C theta0, C* s) const;
//                                               s's values before update 1
//   template <class C> Apply<C> at(std::uint64_t k) const;
//       the k-th update pass's per-element function (k = 0, 1, ... counts
//       the passes this state has seen), called as
//       C theta = apply(theta0, g, eta, s)  with s the element's state.
// A rule is applied element by element, in any order and on any thread;
// it must depend on nothing but its arguments (bit-identical results for
// any thread count and in replay).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>

#include "zoopt/core/error.hpp"
#include "zoopt/core/format.hpp"
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// theta = theta0 - eta g. No state. The default of every optimizer; its
/// update pass is the one zoopt has always run (same bits).
struct SgdUpdate {
  static constexpr std::size_t state_size = 0;
  [[nodiscard]] std::string name() const { return "sgd"; }
  void check(const char*) const {}
  template <class C>
  void init(C, C*) const {}
  template <class C>
  struct Apply {
    C operator()(C theta0, C g, C eta, C*) const { return theta0 - eta * g; }
  };
  template <class C>
  [[nodiscard]] Apply<C> at(std::uint64_t) const {
    return {};
  }
};

/// Heavy-ball momentum on the ZO estimate (ZO-SGD with momentum, as in the
/// ZO-Bench study of Zhang et al., 2024):
///   m <- beta m + g,   theta = theta0 - eta m,   m = 0 before the first step.
/// State: one buffer m, d values of compute_t<T> (4 bytes per float/half/
/// bfloat16 parameter, 8 per double).
struct MomentumUpdate {
  static constexpr std::size_t state_size = 1;
  double beta = 0.9;  ///< momentum factor, in [0, 1) (0: plain SGD)

  [[nodiscard]] std::string name() const { return "momentum(" + detail::shortest(beta) + ")"; }
  void check(const char* where) const {
    detail::require(std::isfinite(beta) && beta >= 0.0 && beta < 1.0, where, "update.beta",
                    "must be in [0, 1), not " + detail::shortest(beta));
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
      return theta0 - eta * s[0];
    }
  };
  template <class C>
  [[nodiscard]] Apply<C> at(std::uint64_t) const {
    return {static_cast<C>(beta)};
  }
};

/// An Adam-like rule on the ZO estimate (ZO-Adam; Kingma & Ba, 2015, with
/// the estimate in place of the gradient): at the k-th update (k = 1, 2, ...)
///   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
///   theta = theta0 - eta (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + delta).
/// State: two buffers m, v (2d values of compute_t<T>). The bias
/// corrections are computed once per pass in double, b^k by squaring (only
/// correctly rounded multiplications: the same bits on every platform).
struct AdamUpdate {
  static constexpr std::size_t state_size = 2;
  double beta1 = 0.9;    ///< first-moment decay, in [0, 1)
  double beta2 = 0.999;  ///< second-moment decay, in [0, 1)
  double delta = 1e-8;   ///< added to sqrt(v-hat), > 0

  [[nodiscard]] std::string name() const {
    return "adam(" + detail::shortest(beta1) + "," + detail::shortest(beta2) + "," +
           detail::shortest(delta) + ")";
  }
  void check(const char* where) const {
    detail::require(std::isfinite(beta1) && beta1 >= 0.0 && beta1 < 1.0, where, "update.beta1",
                    "must be in [0, 1), not " + detail::shortest(beta1));
    detail::require(std::isfinite(beta2) && beta2 >= 0.0 && beta2 < 1.0, where, "update.beta2",
                    "must be in [0, 1), not " + detail::shortest(beta2));
    detail::require(std::isfinite(delta) && delta > 0.0, where, "update.delta",
                    "must be finite and > 0, not " + detail::shortest(delta));
  }
  template <class C>
  void init(C, C* s) const {
    s[0] = C(0);
    s[1] = C(0);
  }
  template <class C>
  struct Apply {
    C beta1, beta2, first_correction, second_correction, delta;
    C operator()(C theta0, C g, C eta, C* s) const {
      s[0] = beta1 * s[0] + (C(1) - beta1) * g;
      s[1] = beta2 * s[1] + (C(1) - beta2) * (g * g);
      const C m_hat = s[0] / first_correction;
      const C v_hat = s[1] / second_correction;
      return theta0 - eta * (m_hat / (std::sqrt(v_hat) + delta));
    }
  };
  template <class C>
  [[nodiscard]] Apply<C> at(std::uint64_t k) const {
    return {static_cast<C>(beta1), static_cast<C>(beta2), static_cast<C>(1.0 - power(beta1, k + 1)),
            static_cast<C>(1.0 - power(beta2, k + 1)), static_cast<C>(delta)};
  }

 private:
  static double power(double b, std::uint64_t n) {
    double result = 1.0;
    for (; n != 0; n >>= 1, b *= b) {
      if ((n & 1U) != 0) result *= b;
    }
    return result;
  }
};

/// The copy-based acceleration of the public KerZOO code: with a copy c and
/// an average x of the iterates (both start at theta0) and
/// beta_k = 1 + k / growth, the parameters hold the evaluation point
///   y_k = c / beta_k + (1 - 1/beta_k) x,
/// and the k-th update (k = 0, 1, ...) makes
///   c <- c - eta g,   x <- c / beta_k + (1 - 1/beta_k) x,
///   theta = y_{k+1} = c / beta_{k+1} + (1 - 1/beta_{k+1}) x.
/// The first step is plain SGD (beta_0 = 1). State: c and x (2d values of
/// compute_t<T>; 3x the parameters' memory with them).
struct AcceleratedUpdate {
  static constexpr std::size_t state_size = 2;
  double growth = 6.0;  ///< beta_k = 1 + k / growth, > 0 (the code's 6)

  [[nodiscard]] std::string name() const { return "accelerated(" + detail::shortest(growth) + ")"; }
  void check(const char* where) const {
    detail::require(std::isfinite(growth) && growth > 0.0, where, "update.growth",
                    "must be finite and > 0, not " + detail::shortest(growth));
  }
  template <class C>
  void init(C theta0, C* s) const {
    s[0] = theta0;
    s[1] = theta0;
  }
  template <class C>
  struct Apply {
    C inv_beta, inv_beta_next;
    C operator()(C, C g, C eta, C* s) const {
      s[0] = s[0] - eta * g;
      s[1] = inv_beta * s[0] + (C(1) - inv_beta) * s[1];
      return inv_beta_next * s[0] + (C(1) - inv_beta_next) * s[1];
    }
  };
  template <class C>
  [[nodiscard]] Apply<C> at(std::uint64_t k) const {
    const double beta = 1.0 + static_cast<double>(k) / growth;
    const double beta_next = 1.0 + static_cast<double>(k + 1) / growth;
    return {static_cast<C>(1.0 / beta), static_cast<C>(1.0 / beta_next)};
  }
};

/// What an update rule must provide (see the top of this file).
template <class R>
concept UpdateRule = std::copyable<R> &&
    requires(const R r, std::uint64_t k, float xf, float* sf, double xd, double* sd) {
  { R::state_size } -> std::convertible_to<std::size_t>;
  { r.name() } -> std::convertible_to<std::string>;
  r.check("where");
  r.init(xf, sf);
  r.init(xd, sd);
  { r.template at<float>(k)(xf, xf, xf, sf) } -> std::same_as<float>;
  { r.template at<double>(k)(xd, xd, xd, sd) } -> std::same_as<double>;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
