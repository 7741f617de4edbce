// KerZOO kernels K(rho) and their moments under rho ~ U[-1, 1].
//
// KerZOO perturbs along eps * r * u and weights the symmetric difference by
// K(r). Expanding [L(x + e r u) - L(x - e r u)] / (2e) = r u'g + (e^2 r^3 / 6)
// D3L[u,u,u] + O(e^4 r^5) gives E[estimate] = E[rK] grad L + (e^2/6) E[r^3 K]
// (...) + O(e^4). A kernel with E[rK] = 1 keeps the gradient; E[r^3 K] = 0
// removes the O(e^2) bias (Polyak-Tsybakov / Legendre-type kernels).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <utility>

#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// A kernel weight K(rho) on rho in [-1, 1], normalised so that E[rho K] = 1
/// (KerZOO multiplies by Params::C). Built-in kernels are odd polynomials and
/// know their moments exactly; user kernels get them by Gauss-Legendre
/// quadrature.
///
/// | kernel   | K(rho)                               | E[rK] | E[r^3K] | E[r^5K] | E[(rK)^2] |
/// |----------|--------------------------------------|-------|---------|---------|-----------|
/// | identity | 1, with r fixed to 1 (MeZO)          | 1     | 1       | 1       | 1         |
/// | linear   | 3 rho                                | 1     | 3/5     | 3/7     | 9/5       |
/// | cubic    | (15/4) rho (5 - 7 rho^2)             | 1     | 0       | -5/21   | 25/4      |
/// | quintic  | (105/64) rho (99 rho^4 - 126 rho^2 + 35) | 1 | 0       | 0       | ~13.2     |
class Kernel {
 public:
  /// Coefficients c_0..c_5 of K(rho) = sum c_k rho^k.
  using Polynomial = std::array<double, 6>;

  /// MeZO: no random scalar (r = 1) and unit weight.
  static Kernel identity() { return Kernel("identity", {1, 0, 0, 0, 0, 0}, false); }
  static Kernel linear() { return Kernel("linear", {0, 3, 0, 0, 0, 0}, true); }
  /// KerZOO's default: removes the eps^2 bias.
  static Kernel cubic() { return Kernel("cubic", {0, 75.0 / 4, 0, -105.0 / 4, 0, 0}, true); }
  /// Removes the eps^2 and eps^4 terms. Normalised by 105/64 (195/64 would
  /// make E[rK] = 13/7).
  static Kernel quintic() {
    constexpr double c = 105.0 / 64;
    return Kernel("quintic", {0, 35 * c, 0, -126 * c, 0, 99 * c}, true);
  }
  /// A polynomial kernel of degree <= 5 with exact moments. Throws if it is
  /// not normalised (|E[rho K] - 1| > 1e-12).
  static Kernel polynomial(std::string name, const Polynomial& coeffs) {
    Kernel k(std::move(name), coeffs, true);
    detail::require(std::abs(k.moment(1) - 1.0) <= 1e-12, "Kernel::polynomial", "coeffs",
                    "must satisfy E[rho K(rho)] = 1 for rho ~ U[-1,1] (got " +
                        std::to_string(k.moment(1)) + ")");
    return k;
  }
  /// Any weight function; its moments come from 64-point Gauss-Legendre
  /// quadrature. Throws if E[rho K] differs from 1 by more than 1e-9.
  static Kernel custom(std::string name, std::function<double(double)> weight) {
    detail::require(static_cast<bool>(weight), "Kernel::custom", "weight", "must be callable");
    Kernel k(std::move(name), {}, true);
    k.custom_ = std::move(weight);
    detail::require(std::abs(k.moment(1) - 1.0) <= 1e-9, "Kernel::custom", "weight",
                    "must satisfy E[rho K(rho)] = 1 for rho ~ U[-1,1] (got " +
                        std::to_string(k.moment(1)) + ")");
    return k;
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// False for the identity kernel: r is then fixed to 1 and not drawn.
  [[nodiscard]] bool draws_r() const noexcept { return draws_r_; }

  /// K(rho).
  [[nodiscard]] double operator()(double rho) const {
    if (custom_) return custom_(rho);
    double v = 0.0;
    for (std::size_t k = coeffs_.size(); k-- > 0;) v = v * rho + coeffs_[k];
    return v;
  }

  /// E[rho^k K(rho)], rho ~ U[-1, 1] (r = 1 for the identity kernel).
  [[nodiscard]] double moment(int k) const {
    if (!draws_r_) return (*this)(1.0);
    if (custom_) {
      return quadrature([&](double x) { return std::pow(x, k) * custom_(x); });
    }
    // (1/2) int_{-1}^{1} rho^(k+m) drho = 1/(k+m+1) for even k+m, else 0.
    double m = 0.0;
    for (std::size_t j = 0; j < coeffs_.size(); ++j) {
      if ((k + static_cast<int>(j)) % 2 == 0) m += coeffs_[j] / (k + static_cast<double>(j) + 1);
    }
    return m;
  }

  /// E[(rho K(rho))^2]: the variance price relative to MeZO (= 1).
  [[nodiscard]] double second_moment() const {
    if (!draws_r_) return (*this)(1.0) * (*this)(1.0);
    return quadrature([&](double x) { return x * x * (*this)(x) * (*this)(x); });
  }

 private:
  Kernel(std::string name, const Polynomial& coeffs, bool draws_r)
      : name_(std::move(name)), coeffs_(coeffs), draws_r_(draws_r) {}

  /// (1/2) int_{-1}^{1} f: 64-point Gauss-Legendre on each half of [-1, 1]
  /// (exact for polynomials up to degree 127).
  template <class F>
  static double quadrature(F&& f) {
    constexpr int n = 64;
    double sum = 0.0;
    for (int half = 0; half < 2; ++half) {
      const double a = half == 0 ? -1.0 : 0.0;
      for (int i = 0; i < n; ++i) {
        const auto [x, w] = gauss_legendre_node(n, i);
        sum += 0.25 * w * f(a + 0.5 * (x + 1.0));  // half-width 1/2, then the 1/2 of U[-1,1]
      }
    }
    return sum;
  }

  /// Node i of the n-point Gauss-Legendre rule by Newton iteration on P_n.
  static std::pair<double, double> gauss_legendre_node(int n, int i) {
    const double pi = 3.14159265358979323846;
    double x = std::cos(pi * (i + 0.75) / (n + 0.5));
    double dp = 0.0;
    for (int it = 0; it < 100; ++it) {
      double p0 = 1.0;
      double p1 = x;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * k - 1) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = n * (x * p1 - p0) / (x * x - 1.0);
      const double dx = p1 / dp;
      x -= dx;
      if (std::abs(dx) < 1e-16) break;
    }
    return {x, 2.0 / ((1.0 - x * x) * dp * dp)};
  }

  std::string name_;
  Polynomial coeffs_{};
  bool draws_r_ = true;
  std::function<double(double)> custom_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
