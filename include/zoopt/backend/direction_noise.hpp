// The noise of one direction over a piece of a span, as CpuBackend's passes
// need it: chunks and blocks for samplers that see only the global index,
// and the per-pass scratch of samplers that see the span's shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zoopt/backend/term.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/sampler/noise.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt::detail {

template <class T>
SpanLayout layout_of(const SpanView<T>& v) {
  return SpanLayout{v.offset, v.size, v.shape};
}

/// A shaped sampler's scratch for every (term, view) of a pass, filled before
/// the pass splits into threads (so entries are a pure function of the key,
/// span and position); it grows only when a pass needs more. Empty for other
/// samplers.
template <class C, class Sampler>
class DirectionScratch {
 public:
  template <class T>
  void prepare(std::span<const SpanView<T>> views, std::uint64_t seed, std::uint64_t step,
               std::span<const Term> terms) {
    if constexpr (ShapedSampler<Sampler>) {
      views_ = views.size();
      at_.assign(terms.size() * views_, 0);
      std::size_t total = 0;
      for (std::size_t t = 0; t < terms.size(); ++t) {
        if (terms[t].before == 0.0 && terms[t].after == 0.0) continue;
        for (std::size_t s = 0; s < views_; ++s) {
          at_[t * views_ + s] = total;
          total += Sampler::scratch_size(layout_of(views[s]));
        }
      }
      if (values_.size() < total) values_.resize(total);
      for (std::size_t t = 0; t < terms.size(); ++t) {
        if (terms[t].before == 0.0 && terms[t].after == 0.0) continue;
        for (std::size_t s = 0; s < views_; ++s) {
          Sampler::prepare(NoiseKey{seed, step, terms[t].direction}, layout_of(views[s]),
                           values_.data() + at_[t * views_ + s]);
        }
      }
    }
  }

  /// Scratch of term `term` on view `view`.
  [[nodiscard]] const C* at(std::size_t term, std::size_t view) const {
    return values_.data() + at_[term * views_ + view];
  }

 private:
  std::vector<C> values_;
  std::vector<std::size_t> at_;
  std::size_t views_ = 0;
};

/// z[lo, hi) of key's direction in noise chunk `chunk` for a sampler that
/// sees only the global index. Entries outside [lo, hi) may be overwritten.
template <class Sampler, class C>
[[gnu::always_inline]] inline void indexed_noise(const NoiseKey& key, std::uint64_t chunk, int lo,
                                                 int hi, C (&z)[kChunkElements]) {
  if (hi - lo >= 64) {
    noise_chunk<Sampler>(key, chunk * kChunkBlocks, z);
  } else {  // a short piece of a span: only its blocks (same values)
    for (int b = lo / 4; b <= (hi - 1) / 4; ++b) {
      C zb[4];
      noise_block<Sampler>(key, chunk * kChunkBlocks + static_cast<std::uint64_t>(b), zb);
      for (int k = 0; k < 4; ++k) z[4 * b + k] = zb[k];
    }
  }
}

/// z[lo, hi) of key's direction in noise chunk `chunk`, for the span v at
/// global indices chunk * kChunkElements + [lo, hi). Entries outside
/// [lo, hi) may be overwritten.
template <class Sampler, class C, class T>
[[gnu::always_inline]] inline void direction_noise(const NoiseKey& key, const SpanView<T>& v,
                                                   const DirectionScratch<C, Sampler>& scratch,
                                                   std::size_t term, std::size_t view,
                                                   std::uint64_t chunk, int lo, int hi,
                                                   C (&z)[kChunkElements]) {
  if constexpr (ShapedSampler<Sampler>) {
    Sampler::generate(key, layout_of(v), scratch.at(term, view),
                      chunk * kChunkElements + static_cast<std::uint64_t>(lo) - v.offset, hi - lo,
                      z + lo);
  } else {
    indexed_noise<Sampler>(key, chunk, lo, hi, z);
  }
}

/// d[k] = sum_t fl(after_t * s) z_t(g0 + k), k < count, in term order (the
/// displacement a move to `terms` from theta0 writes), for a piece of span v
/// (view `view` of the pass) within one noise chunk; `scratch` prepared for
/// these terms.
template <class Sampler, class C, class T>
[[gnu::always_inline]] inline void after_displacement(std::uint64_t seed, std::uint64_t step,
                                                      std::span<const Term> terms,
                                                      const DirectionScratch<C, Sampler>& scratch,
                                                      const SpanView<T>& v, std::size_t view,
                                                      std::uint64_t g0, int count, C* d) {
  const std::uint64_t chunk = g0 / kChunkElements;
  const auto lo = static_cast<int>(g0 - chunk * kChunkElements);
  C z[kChunkElements];
  for (int k = 0; k < count; ++k) d[k] = C(0);
  for (std::size_t term = 0; term < terms.size(); ++term) {
    const Term& t = terms[term];
    if (t.before == 0.0 && t.after == 0.0) continue;
    direction_noise(NoiseKey{seed, step, t.direction}, v, scratch, term, view, chunk, lo,
                    lo + count, z);
    const C ca = static_cast<C>(t.after * v.scale);
    for (int k = 0; k < count; ++k) d[k] += ca * z[lo + k];
  }
}

}  // namespace zoopt::detail

ZOOPT_FP_CONTRACT_OFF_END
