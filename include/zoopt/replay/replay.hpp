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
// Cost: one pass over the parameters per logged step (n noise draws per
// element); no memory beyond a copy of the span views.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/backend/term.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/replay/update_log.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/rademacher.hpp"

namespace zoopt {

/// Which records replay() applies: [first, last) (default: all).
struct ReplayRange {
  std::size_t first = 0;
  std::size_t last = std::numeric_limits<std::size_t>::max();
};

namespace detail {

template <class Sampler, class T>
void replay_views(const UpdateLog& log, std::vector<SpanView<T>> views, ReplayRange range) {
  const UpdateLog::Header& h = log.header();
  detail::require(
      h.sampler == Sampler::name, "replay", "Sampler",
      "is '" + std::string(Sampler::name) + "' but the log was recorded with '" + h.sampler + "'");
  detail::require(h.storage == storage_traits<T>::code, "replay", "params",
                  std::string("hold ") + storage_traits<T>::name +
                      " but the log was recorded for storage code " + std::to_string(h.storage));
  detail::require(range.first <= range.last, "replay", "range", "first must be <= last");
  CpuBackend<T, Sampler> backend(CpuBackendOptions{h.rounding, 0});
  std::vector<Term> terms;
  const std::size_t last = std::min(range.last, log.size());
  for (std::size_t k = range.first; k < last; ++k) {
    const UpdateLog::Step s = log[k];
    terms.clear();
    for (std::size_t i = 0; i < s.coefficients.size(); ++i) {
      terms.push_back(Term{static_cast<std::uint32_t>(i), 0.0, s.coefficients[i]});
    }
    for (std::size_t i = 0; i < views.size(); ++i) views[i].scale = s.scales[i];
    backend.update(std::span<const SpanView<T>>(views), s.seed, s.step, terms, s.lr,
                   s.weight_decay);
  }
}

}  // namespace detail

/// Applies records [range.first, range.last) of `log` to `params` in place.
/// Throws std::invalid_argument naming `Sampler` or `params` when the log's
/// sampler, storage type or span layout (count, names, sizes, weight-decay
/// flags) do not match.
template <class Sampler, class T>
void replay(const UpdateLog& log, ParameterSet<T>& params, ReplayRange range = {}) {
  const auto& spans = log.header().spans;
  detail::require(
      params.size() == spans.size(), "replay", "params",
      "has " + std::to_string(params.size()) + " spans, the log " + std::to_string(spans.size()));
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const UpdateLog::SpanInfo have{params.name(i), params.span(i).size(),
                                   params.options(i).weight_decay};
    detail::require(have == spans[i], "replay", "params",
                    "span " + std::to_string(i) + " ('" + have.name + "', " +
                        std::to_string(have.size) + " elements, weight decay " +
                        (have.weight_decay ? "on" : "off") + ") does not match the log's ('" +
                        spans[i].name + "', " + std::to_string(spans[i].size) +
                        " elements, weight decay " + (spans[i].weight_decay ? "on" : "off") + ")");
  }
  std::vector<SpanView<T>> views(params.views().begin(), params.views().end());
  detail::replay_views<Sampler, T>(log, std::move(views), range);
}

/// Applies the log to a single span (a log recorded on a span, or on a
/// parameter set with one span of that size).
template <class Sampler, class T>
void replay(const UpdateLog& log, std::span<T> params, ReplayRange range = {}) {
  const auto& spans = log.header().spans;
  detail::require(spans.size() == 1 && spans[0].size == params.size(), "replay", "params",
                  "is one span of " + std::to_string(params.size()) +
                      " elements; the log was recorded on " + std::to_string(spans.size()) +
                      " span(s) of " + std::to_string(log.header().elements()) + " elements");
  std::vector<SpanView<T>> views{
      SpanView<T>{params.data(), params.size(), 0, spans[0].weight_decay, 1.0}};
  detail::replay_views<Sampler, T>(log, std::move(views), range);
}

/// replay() for the built-in samplers, chosen by the name in the log
/// ("gaussian", "rademacher", "rademacher-packed"). For another sampler call replay<Sampler>();
/// this overload then throws std::invalid_argument naming `log`.
template <class Params>
void replay(const UpdateLog& log, Params&& params, ReplayRange range = {}) {
  const std::string& s = log.header().sampler;
  if (s == GaussianSampler::name) {
    replay<GaussianSampler>(log, params, range);
  } else if (s == RademacherSampler::name) {
    replay<RademacherSampler>(log, params, range);
  } else if (s == PackedRademacherSampler::name) {
    replay<PackedRademacherSampler>(log, params, range);
  } else {
    detail::require(false, "replay", "log",
                    "uses sampler '" + s + "'; call replay<ThatSampler>(log, params)");
  }
}

}  // namespace zoopt
