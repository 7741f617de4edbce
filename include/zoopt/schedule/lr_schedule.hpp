// Learning-rate schedules: the factor f(t) by which step t multiplies the
// optimizer's lr (eta_t = lr * f(t)).
//
// A schedule is a pure function of the step number, so it carries no state:
// a resumed run (checkpoint) recomputes eta_t from the step counter, and an
// update log records eta_t in every record, so replay() reproduces a
// scheduled run bit for bit whatever the schedule. The optimizer's identity
// in logs and checkpoints names a schedule other than constant (name()), so
// a checkpoint does not resume under a different schedule.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <utility>

#include "zoopt/core/error.hpp"
#include "zoopt/core/format.hpp"
#include "zoopt/core/fp_contract.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// f(t) for t = 0, 1, ... (t = the step number, step_count() before the
/// step). Kinds, with w = warmup, T = total, m = final_factor:
///   constant             f = 1 (default; lr bits unchanged)
///   warmup(w)            f = (t + 1) / w for t < w, then 1
///   warmup_cosine(w,T,m) warm-up as above, then for w <= t < T
///                        f = m + (1 - m) (1 + cos(pi p)) / 2,
///                        p = (t - w) / (T - w); f = m from t = T on
///   warmup_linear(w,T,m) as warmup_cosine with f = m + (1 - m)(1 - p)
///   kerzoo_range(T, a_min) the lr factor hidden in the KerZOO code's range
///                        shrink: a_t = max(1 - t / T, a_min) scales r = a rho
///                        while the cubic kernel K(r) keeps its width, so
///                        E[r K(r)] = (75/4)(a^2/3) - (105/4)(a^4/5)
///                                  = (25 a^2 - 21 a^4) / 4,
///                        f = 25 a_t^2 / 4 - 21 a_t^4 / 4 (the cubic kernel
///                        with E[rho K] = 1 at a = 1): a warm-up to
///                        f = 625/336 ~ 1.86 at a^2 = 25/42, then a decay to
///                        ~0 at t = T. Using it with MeZO or FZOO gives them
///                        that schedule without the kernel's variance.
///   custom(name, g)      f = g(t): finite and >= 0, else InvalidArgument
///                        naming `schedule` when the step asks for it (the
///                        parameters untouched).
/// Every f is finite and >= 0; check() validates the fields.
class LrSchedule {
 public:
  enum class Kind { constant, warmup, warmup_cosine, warmup_linear, kerzoo_range, custom };

  LrSchedule() = default;

  static LrSchedule constant() { return {}; }
  static LrSchedule warmup(std::uint64_t warmup_steps) {
    return LrSchedule(Kind::warmup, warmup_steps, 0, 1.0);
  }
  static LrSchedule warmup_cosine(std::uint64_t warmup_steps, std::uint64_t total_steps,
                                  double final_factor = 0.0) {
    return LrSchedule(Kind::warmup_cosine, warmup_steps, total_steps, final_factor);
  }
  static LrSchedule warmup_linear(std::uint64_t warmup_steps, std::uint64_t total_steps,
                                  double final_factor = 0.0) {
    return LrSchedule(Kind::warmup_linear, warmup_steps, total_steps, final_factor);
  }
  /// The KerZOO code's implicit schedule (see above); its public runs use
  /// horizon 4000 and a_min 1e-4.
  static LrSchedule kerzoo_range(std::uint64_t horizon = 4000, double a_min = 1e-4) {
    return LrSchedule(Kind::kerzoo_range, 0, horizon, a_min);
  }
  /// A user schedule; `name` goes into logs and checkpoints ("custom:" +
  /// name), so give different functions different names.
  static LrSchedule custom(std::string name, std::function<double(std::uint64_t)> factor) {
    LrSchedule s(Kind::custom, 0, 0, 0.0);
    s.custom_name_ = std::move(name);
    s.custom_ = std::move(factor);
    return s;
  }

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  [[nodiscard]] std::uint64_t warmup_steps() const noexcept { return warmup_; }
  [[nodiscard]] std::uint64_t total_steps() const noexcept { return total_; }
  /// final_factor m (kerzoo_range: a_min).
  [[nodiscard]] double final_factor() const noexcept { return final_; }
  [[nodiscard]] bool is_constant() const noexcept { return kind_ == Kind::constant; }

  /// Throws InvalidArgument naming `<where>.schedule` and the field.
  void check(const std::string& where) const {
    const std::string at = where + ".schedule";
    switch (kind_) {
      case Kind::constant:
        return;
      case Kind::warmup:
        detail::require(warmup_ >= 1, at.c_str(), "warmup_steps", "must be >= 1");
        return;
      case Kind::warmup_cosine:
      case Kind::warmup_linear:
        detail::require(total_ > warmup_, at.c_str(), "total_steps",
                        "must be > warmup_steps (" + std::to_string(warmup_) + "), got " +
                            std::to_string(total_));
        detail::require(std::isfinite(final_) && final_ >= 0.0 && final_ <= 1.0, at.c_str(),
                        "final_factor", "must be in [0, 1]");
        return;
      case Kind::kerzoo_range:
        detail::require(total_ >= 1, at.c_str(), "total_steps (horizon)", "must be >= 1");
        detail::require(std::isfinite(final_) && final_ > 0.0 && final_ <= 1.0, at.c_str(),
                        "final_factor (a_min)", "must be in (0, 1]");
        return;
      case Kind::custom:
        detail::require(static_cast<bool>(custom_), at.c_str(), "factor",
                        "must be a callable function");
        detail::require(!custom_name_.empty(), at.c_str(), "name", "must not be empty");
        return;
    }
  }

  /// f(t).
  [[nodiscard]] double operator()(std::uint64_t t) const {
    switch (kind_) {
      case Kind::constant:
        return 1.0;
      case Kind::warmup:
        return t < warmup_ ? ramp(t) : 1.0;
      case Kind::warmup_cosine:
      case Kind::warmup_linear: {
        if (t < warmup_) return ramp(t);
        if (t >= total_) return final_;
        const double p = static_cast<double>(t - warmup_) / static_cast<double>(total_ - warmup_);
        const double shape =
            kind_ == Kind::warmup_cosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * p)) : 1.0 - p;
        return final_ + (1.0 - final_) * shape;
      }
      case Kind::kerzoo_range: {
        const double a =
            std::max(1.0 - static_cast<double>(t) / static_cast<double>(total_), final_);
        const double a2 = a * a;
        return (25.0 * a2 - 21.0 * a2 * a2) / 4.0;
      }
      case Kind::custom: {
        const double f = custom_(t);
        detail::require(std::isfinite(f) && f >= 0.0, "LrSchedule", "schedule",
                        "custom '" + custom_name_ + "' returned " + std::to_string(f) +
                            " at step " + std::to_string(t) + "; a factor must be finite and >= 0");
        return f;
      }
    }
    return 1.0;
  }

  /// The name logs and checkpoints record, e.g. "warmup-cosine(100,10000,0)".
  [[nodiscard]] std::string name() const {
    switch (kind_) {
      case Kind::constant:
        return "constant";
      case Kind::warmup:
        return "warmup(" + std::to_string(warmup_) + ")";
      case Kind::warmup_cosine:
      case Kind::warmup_linear:
        return std::string(kind_ == Kind::warmup_cosine ? "warmup-cosine(" : "warmup-linear(") +
               std::to_string(warmup_) + "," + std::to_string(total_) + "," + shortest(final_) +
               ")";
      case Kind::kerzoo_range:
        return "kerzoo-range(" + std::to_string(total_) + "," + shortest(final_) + ")";
      case Kind::custom:
        return "custom:" + custom_name_;
    }
    return "constant";
  }

 private:
  LrSchedule(Kind kind, std::uint64_t warmup, std::uint64_t total, double final_factor)
      : kind_(kind), warmup_(warmup), total_(total), final_(final_factor) {}

  [[nodiscard]] double ramp(std::uint64_t t) const {
    return static_cast<double>(t + 1) / static_cast<double>(warmup_);
  }
  static std::string shortest(double v) { return detail::shortest(v); }

  Kind kind_ = Kind::constant;
  std::uint64_t warmup_ = 0;
  std::uint64_t total_ = 0;
  double final_ = 1.0;
  std::string custom_name_;
  std::function<double(std::uint64_t)> custom_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
