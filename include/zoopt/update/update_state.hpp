// UpdateRuleState: an update rule with its per-element state.
//
// Every optimizer holds one (empty for stateless rules); replay() takes one
// so that a log recorded with a stateful rule is replayed with the same
// state, also in pieces ([0, k) then [k, n) continues the same state).
// The state is sized and initialised (rule.init from the current parameter
// values) at the first update; it then belongs to those parameters: a step
// on a different number of elements throws naming `params`.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/update/update_rule.hpp"

namespace zoopt {

template <class Rule, class C>
class UpdateRuleState {
  static_assert(UpdateRule<Rule>,
                "zoopt: an update rule needs state_size, name(), check(where), init(theta0, s) "
                "and at<C>(k)(theta0, g, eta, s) for C = float and double "
                "(see zoopt/update/update_rule.hpp)");

 public:
  static constexpr std::size_t state_size = Rule::state_size;

  explicit UpdateRuleState(Rule rule = {}) : rule_(std::move(rule)) {}

  [[nodiscard]] const Rule& rule() const noexcept { return rule_; }
  /// Update passes applied to this state (the k of Rule::at).
  [[nodiscard]] std::uint64_t updates() const noexcept { return updates_; }
  /// Parameters the state belongs to (0 before the first update).
  [[nodiscard]] std::uint64_t elements() const noexcept { return elements_; }
  /// Bytes of per-element state held (state_size * elements * sizeof(C)).
  [[nodiscard]] std::size_t bytes() const noexcept { return values_.size() * sizeof(C); }

  /// Before an update pass over `views`: on the first, sizes the state and
  /// initialises it from the current values (the pre-step parameters); later,
  /// checks the element count. Throws naming `params` on a mismatch
  /// (nothing is changed then).
  template <class T>
  void prepare(std::span<const SpanView<T>> views, const char* where) {
    if constexpr (state_size == 0) return;
    std::uint64_t total = 0;
    for (const SpanView<T>& v : views) total += v.size;
    if (elements_ != 0 || updates_ != 0) {
      detail::require(total == elements_, where, "params",
                      "has " + std::to_string(total) + " elements, but the update rule's state (" +
                          rule_.name() + ") belongs to " + std::to_string(elements_));
      return;
    }
    elements_ = total;
    values_.resize(state_size * total);
    C* s = values_.data();
    for (const SpanView<T>& v : views) {
      for (std::size_t i = 0; i < v.size; ++i, s += state_size) {
        rule_.init(static_cast<C>(v.data[i]), s);
      }
    }
  }
  /// The state of element g is data()[g * state_size ...].
  [[nodiscard]] C* data() noexcept { return values_.data(); }
  [[nodiscard]] std::span<const C> values() const noexcept { return values_; }
  /// The k-th pass's element function; then advance().
  [[nodiscard]] auto apply() const { return rule_.template at<C>(updates_); }
  void advance() noexcept { ++updates_; }

  /// Appends (elements, updates, values...) to `out` (nothing for a rule
  /// without state): exact, every C is a double.
  void save(std::vector<double>& out) const {
    if constexpr (state_size == 0) return;
    out.push_back(static_cast<double>(elements_));
    out.push_back(static_cast<double>(updates_));
    for (const C v : values_) out.push_back(static_cast<double>(v));
  }
  /// Reads what save() wrote from the front of `in` and returns the rest.
  /// Throws naming `extra` when the values do not fit (state unchanged).
  std::span<const double> load(std::span<const double> in, const char* where) {
    if constexpr (state_size == 0) return in;
    detail::require(in.size() >= 2, where, "extra",
                    "lacks the update rule's state (" + rule_.name() + ")");
    const double elements = in[0];
    const double updates = in[1];
    const bool counts = is_count(elements) && is_count(updates);
    detail::require(counts && (updates == 0.0 || elements > 0.0) &&
                        in.size() - 2 >= state_size * static_cast<std::uint64_t>(elements),
                    where, "extra",
                    "does not hold the update rule's state (" + rule_.name() + ") for " +
                        (counts ? std::to_string(static_cast<std::uint64_t>(elements)) : "?") +
                        " elements");
    const std::size_t n = state_size * static_cast<std::size_t>(elements);
    std::vector<C> values(n);
    for (std::size_t i = 0; i < n; ++i) {
      values[i] = static_cast<C>(in[2 + i]);
      detail::require(static_cast<double>(values[i]) == in[2 + i] || std::isnan(in[2 + i]), where,
                      "extra",
                      "holds an update-rule state value that is not a " +
                          std::string(sizeof(C) == 4 ? "float" : "double"));
    }
    elements_ = static_cast<std::uint64_t>(elements);
    updates_ = static_cast<std::uint64_t>(updates);
    values_ = std::move(values);
    return in.subspan(2 + n);
  }

 private:
  static bool is_count(double v) {
    return v >= 0.0 && v <= 9007199254740992.0 && v == std::floor(v);
  }

  Rule rule_;
  std::vector<C> values_;
  std::uint64_t elements_ = 0;
  std::uint64_t updates_ = 0;
};

}  // namespace zoopt
