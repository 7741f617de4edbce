// Host emulation of the CUDA passes, element by element, with the backend's
// own per-element functions (zoopt/cuda/element_ops.hpp), its host factors
// for shaped samplers (zoopt/cuda/shaped_factors.hpp) and a std::map
// journal. The host tests check it against CpuBackend; the device tests check
// the kernels against it (it covers __half and __nv_bfloat16, which
// CpuBackend does not).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "zoopt/cuda/element_ops.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/cuda/shaped_factors.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt::cuda::test {

template <class T, class Sampler>
class ReferencePasses {
 public:
  void move(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms) {
    std::map<std::uint64_t, T> added;
    each(views, seed, step, terms,
         [&](std::uint64_t g, T& x, T theta0, float d_after, bool journaled, const SpanView<T>&) {
           const T next = detail::displaced(theta0, d_after);
           x = next;
           if (!journaled && !detail::invertible(next, theta0, d_after)) added[g] = theta0;
         });
    journal_.merge(added);
  }

  void update(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
              std::span<const Term> terms, double lr, double weight_decay) {
    const auto eta = static_cast<float>(lr);
    const auto lambda = static_cast<float>(weight_decay);
    each(views, seed, step, terms,
         [&](std::uint64_t, T& x, T theta0, float ghat, bool, const SpanView<T>& v) {
           x = detail::updated(theta0, ghat, eta, lambda, v.weight_decay && weight_decay != 0.0);
         });
    journal_.clear();
  }

  void restore(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    each(views, seed, step, terms,
         [](std::uint64_t, T& x, T theta0, float, bool, const SpanView<T>&) { x = theta0; });
    journal_.clear();
  }

  [[nodiscard]] std::size_t journal_size() const { return journal_.size(); }

 private:
  template <class Op>
  void each(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
            std::span<const Term> terms, Op&& op) {
    // Shaped samplers: the factors of every (term, span), as the backend
    // uploads them.
    const SegmentTable table = build_segment_table<T>(views);
    factors_.fill(table, seed, step, terms, 0, {});
    const detail::ShapedScratch scratch{factors_.values().data(), factors_.offsets().data(),
                                        static_cast<std::uint32_t>(views.size())};
    for (std::size_t s = 0; s < views.size(); ++s) {
      const SpanView<T>& v = views[s];
      const detail::ElementPlace place{&table.rows[s], static_cast<std::uint32_t>(s), scratch, 0};
      for (std::uint64_t j = 0; j < v.size; ++j) {
        const std::uint64_t g = v.offset + j;
        const detail::Displacement d = detail::displacement_at<Sampler>(
            terms.data(), static_cast<std::uint32_t>(terms.size()), seed, step, v.scale, g, place);
        T& x = v.data[j];
        const auto it = journal_.find(g);
        const bool journaled = it != journal_.end();
        const T theta0 = journaled ? it->second : detail::rebuild(x, d.before, d.any_before);
        op(g, x, theta0, d.after, journaled, v);
      }
    }
  }

  std::map<std::uint64_t, T> journal_;
  detail::HostFactors<Sampler> factors_;
};

}  // namespace zoopt::cuda::test
