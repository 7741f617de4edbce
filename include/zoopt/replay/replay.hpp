// replay(): applies an UpdateLog onto base parameters.
//
// Each logged step is one update pass of CpuBackend with no displacement:
//   theta <- round_T( theta - lr (sum_i c_i s z_i + lambda theta) )
// with the step's seed, step number, coefficients, per-span scales and the
// log's rounding mode. During training the same pass runs on theta0 rebuilt
// exactly (journal) from the last evaluation point; the gradient estimate is
// accumulated direction by direction in the same order with the same
// coefficients (a direction whose only role in the training pass is to undo
// the last perturbation adds +-0, which leaves the sum's bits unchanged), and
// the stochastic-rounding bits depend only on (seed, step, element). So a
// replay from the base parameters reproduces the fine-tuned parameters bit
// for bit, on CPU, for every storage type.
//
// A log recorded with a stateful update rule (momentum, Adam, acceleration;
// its optimizer identity ends in "+update:<rule name>") is replayed with an
// UpdateRuleState of that rule: replay runs the same rule on the same state,
// which it creates at the first record (from the base parameters) and
// carries on, so replaying [0, k) and then [k, n) with one state equals
// replaying [0, n). A plain replay() of such a log throws naming `log`.
//
// Cost: one pass over the parameters per logged step (n noise draws per
// element); no memory beyond a copy of the span views (and the rule's state).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/replay/update_log.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/low_rank.hpp"
#include "zoopt/sampler/rademacher.hpp"
#include "zoopt/update/update_state.hpp"

namespace zoopt {

/// Which records replay() applies: [first, last) (default: all).
struct ReplayRange {
  std::size_t first = 0;
  std::size_t last = std::numeric_limits<std::size_t>::max();
};

namespace detail {

// The update rule a log was recorded with ("" for SGD).
inline std::string logged_update_rule(const UpdateLog& log) {
  const std::string& id = log.header().optimizer;
  const std::size_t at = id.find(update_marker);
  return at == std::string::npos ? std::string()
                                 : id.substr(at + std::string(update_marker).size());
}

inline std::string shape_text(const MatrixShape& s) {
  return s.empty() ? std::string("none") : std::to_string(s.rows) + " x " + std::to_string(s.cols);
}

template <class Sampler, class T, class Rule>
void replay_views(const UpdateLog& log, std::vector<SpanView<T>> views, ReplayRange range,
                  UpdateRuleState<Rule, compute_t<T>>& rule) {
  const UpdateLog::Header& h = log.header();
  const std::string logged = logged_update_rule(log);
  if constexpr (std::is_same_v<Rule, SgdUpdate>) {
    detail::require(logged.empty(), "replay", "log",
                    "was recorded with update rule '" + logged +
                        "'; pass replay() an UpdateRuleState of that rule");
  } else {
    detail::require(logged == rule.rule().name(), "replay", "state",
                    "holds update rule '" + rule.rule().name() +
                        "' but the log was recorded with " +
                        (logged.empty() ? std::string("sgd") : "'" + logged + "'"));
  }
  detail::require(
      h.sampler == Sampler::name, "replay", "Sampler",
      "is '" + std::string(Sampler::name) + "' but the log was recorded with '" + h.sampler + "'");
  detail::require(h.storage == storage_traits<T>::code, "replay", "params",
                  std::string("hold ") + storage_traits<T>::name +
                      " but the log was recorded for storage code " + std::to_string(h.storage));
  detail::require(range.first <= range.last, "replay", "range", "first must be <= last");
  if constexpr (ShapedSampler<Sampler>) {
    for (std::size_t i = 0; i < views.size(); ++i) {
      detail::require(views[i].shape == h.spans[i].shape, "replay", "params",
                      "span '" + h.spans[i].name + "' has shape " + shape_text(views[i].shape) +
                          " but the log was recorded with " + shape_text(h.spans[i].shape) +
                          " (the sampler's noise depends on it)");
    }
  }
  CpuBackend<T, Sampler> backend(CpuBackendOptions{h.rounding, 0});
  std::vector<Term> terms;
  const std::size_t last = std::min(range.last, log.size());
  if (range.first < last) rule.prepare(std::span<const SpanView<T>>(views), "replay");
  for (std::size_t k = range.first; k < last; ++k) {
    const UpdateLog::Step s = log[k];
    terms.clear();
    for (std::size_t i = 0; i < s.coefficients.size(); ++i) {
      terms.push_back(Term{static_cast<std::uint32_t>(i), 0.0, s.coefficients[i]});
    }
    for (std::size_t i = 0; i < views.size(); ++i) views[i].scale = s.scales[i];
    if constexpr (std::is_same_v<Rule, SgdUpdate>) {
      backend.update(std::span<const SpanView<T>>(views), s.seed, s.step, terms, s.lr,
                     s.weight_decay);
    } else {
      backend.template update<Rule::state_size>(std::span<const SpanView<T>>(views), s.seed, s.step,
                                                terms, s.lr, s.weight_decay, rule.apply(),
                                                rule.data());
      rule.advance();
    }
  }
}

// The views of `params` after checking its layout against the log's.
template <class T>
std::vector<SpanView<T>> replay_target(const UpdateLog& log, ParameterSet<T>& params) {
  const auto& spans = log.header().spans;
  detail::require(
      params.size() == spans.size(), "replay", "params",
      "has " + std::to_string(params.size()) + " spans, the log " + std::to_string(spans.size()));
  for (std::size_t i = 0; i < spans.size(); ++i) {
    // Shapes are compared by replay_views, for the samplers that use them.
    const UpdateLog::SpanInfo have{params.name(i), params.span(i).size(),
                                   params.options(i).weight_decay, spans[i].shape};
    detail::require(have == spans[i], "replay", "params",
                    "span " + std::to_string(i) + " ('" + have.name + "', " +
                        std::to_string(have.size) + " elements, weight decay " +
                        (have.weight_decay ? "on" : "off") + ") does not match the log's ('" +
                        spans[i].name + "', " + std::to_string(spans[i].size) +
                        " elements, weight decay " + (spans[i].weight_decay ? "on" : "off") + ")");
  }
  return {params.views().begin(), params.views().end()};
}
template <class T>
std::vector<SpanView<T>> replay_target(const UpdateLog& log, std::span<T> params) {
  const auto& spans = log.header().spans;
  detail::require(spans.size() == 1 && spans[0].size == params.size(), "replay", "params",
                  "is one span of " + std::to_string(params.size()) +
                      " elements; the log was recorded on " + std::to_string(spans.size()) +
                      " span(s) of " + std::to_string(log.header().elements()) + " elements");
  return {SpanView<T>{params.data(), params.size(), 0, spans[0].weight_decay, 1.0}};
}

template <class P>
struct replay_value;
template <class T>
struct replay_value<ParameterSet<T>> {
  using type = T;
};
template <class T>
struct replay_value<std::span<T>> {
  using type = T;
};
template <class P>
using replay_value_t = typename replay_value<std::remove_cvref_t<P>>::type;

}  // namespace detail

/// Applies records [range.first, range.last) of `log` to `params` (a
/// ParameterSet<T>, or a std::span<T> for a log recorded on one span) in
/// place. Throws zoopt::InvalidArgument naming `Sampler` or `params` when
/// the log's sampler, storage type or span layout (count, names, sizes,
/// weight-decay flags) do not match, and naming `log` when it was recorded
/// with a stateful update rule (use the overload with an UpdateRuleState).
template <class Sampler, class Params>
void replay(const UpdateLog& log, Params&& params, ReplayRange range = {}) {
  using T = detail::replay_value_t<Params>;
  UpdateRuleState<SgdUpdate, compute_t<T>> sgd;
  detail::replay_views<Sampler, T>(log, detail::replay_target(log, params), range, sgd);
}

/// Replays a log recorded with update rule Rule, on `state` (empty for a
/// replay from the base parameters; carried on by later calls, so a log can
/// be replayed in pieces). Throws naming `state` when the log's rule (name
/// and settings) differs from state.rule(), or when the state belongs to a
/// different number of parameters.
template <class Sampler, class Params, class Rule, class C>
void replay(const UpdateLog& log, Params&& params, UpdateRuleState<Rule, C>& state,
            ReplayRange range = {}) {
  using T = detail::replay_value_t<Params>;
  static_assert(std::is_same_v<C, compute_t<T>>,
                "zoopt: the update-rule state must hold compute_t<T> values (float for "
                "float/half/bfloat16 parameters, double for double)");
  detail::replay_views<Sampler, T>(log, detail::replay_target(log, params), range, state);
}

namespace detail {
// Calls f.template operator()<Sampler>() for the built-in sampler the log
// names; throws naming `log` for any other.
template <class F>
void with_logged_sampler(const UpdateLog& log, F&& f) {
  const std::string& s = log.header().sampler;
  if (s == GaussianSampler::name) {
    f.template operator()<GaussianSampler>();
  } else if (s == RademacherSampler::name) {
    f.template operator()<RademacherSampler>();
  } else if (s == PackedRademacherSampler::name) {
    f.template operator()<PackedRademacherSampler>();
  } else if (s == LowRankSampler<>::name) {
    f.template operator()<LowRankSampler<>>();
  } else {
    detail::require(false, "replay", "log",
                    "uses sampler '" + s + "'; call replay<ThatSampler>(log, params)");
  }
}
}  // namespace detail

/// replay() for the built-in samplers, chosen by the name in the log
/// ("gaussian", "rademacher", "rademacher-packed", "lowrank-r2-k50"). For
/// another sampler (another rank or Keep of LowRankSampler too) call
/// replay<Sampler>(); this overload then throws naming `log`.
template <class Params>
void replay(const UpdateLog& log, Params&& params, ReplayRange range = {}) {
  detail::with_logged_sampler(log, [&]<class S>() { replay<S>(log, params, range); });
}
/// The same with an update rule's state.
template <class Params, class Rule, class C>
void replay(const UpdateLog& log, Params&& params, UpdateRuleState<Rule, C>& state,
            ReplayRange range = {}) {
  detail::with_logged_sampler(log, [&]<class S>() { replay<S>(log, params, state, range); });
}

}  // namespace zoopt
