// Low-rank directions for matrix-shaped spans (LOZO, Chen et al. 2024):
// u = U V^T / sqrt(r) per matrix, U (rows x r) and V (cols x r) with
// independent N(0, 1) entries.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "zoopt/core/config.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/params/matrix_shape.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/noise.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {
namespace detail {

// "lowrank-r<Rank>-k<Keep>" as a constant string.
constexpr std::array<char, 40> low_rank_name(unsigned rank, unsigned keep) {
  std::array<char, 40> out{};
  std::size_t at = 0;
  const auto text = [&](const char* s) {
    while (*s != '\0') out[at++] = *s++;
  };
  const auto number = [&](unsigned v) {
    char digits[10] = {};
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) out[at++] = digits[--n];
  };
  text("lowrank-r");
  number(rank);
  text("-k");
  number(keep);
  return out;
}

// Gaussian entries first .. first + n - 1 of `key`'s element stream (the
// values GaussianSampler gives those global indices), widened to C.
template <class C>
inline void gaussian_run(const NoiseKey& key, std::uint64_t first, std::uint64_t n, C* out) {
  for (std::uint64_t b = first / 4; b <= (first + n - 1) / 4; ++b) {
    C z[4];
    noise_block<GaussianSampler>(key, b, z);
    for (std::uint64_t k = 0; k < 4; ++k) {
      const std::uint64_t g = 4 * b + k;
      if (g >= first && g < first + n) out[g - first] = z[k];
    }
  }
}

}  // namespace detail

/// Low-rank Gaussian directions (LOZO, Chen et al. 2024, "Enhancing
/// zeroth-order fine-tuning for language models with low-rank structures").
/// A span with a matrix shape (SpanOptions::shape, rows and cols >= 2) gets
///   u_ij = (1/sqrt(Rank)) sum_k U_ik V_jk,   U_ik, V_jk ~ N(0, 1) iid,
/// so E[u_ij] = 0, E[u_ij^2] = 1, E[u u^T] = I (entries are uncorrelated;
/// MeZO's estimator stays unbiased up to its O(eps^2) term) and
/// E[u_ij^4] = 3 + 6/Rank. U is drawn afresh every step; V is kept for Keep
/// steps (LOZO's lazy sampling: steps t and t' share V when t / Keep =
/// t' / Keep). Other spans (vectors, no shape) get GaussianSampler's noise,
/// the same bits.
///
/// Cost: (rows + cols) Rank Gaussians per matrix and direction, drawn once
/// per pass, then Rank multiply-adds per entry instead of a Box-Muller
/// transform. Memory: (rows + cols) Rank values of scratch per matrix and
/// direction of a pass, held by the backend.
///
/// Streams: U_ik of a span at global offset o is the Gaussian of global
/// index 2^62 + Rank o + i Rank + k under the step's key, V_jk the one of
/// index 2^63 + Rank o + j Rank + k under the key of step t - t mod Keep;
/// element noise uses indices below 2^62, so all three are independent for
/// models below 2^56 elements.
///
/// Backends: CpuBackend (generate(), a row at a time) and the CUDA backend
/// (factors drawn by prepare() on the host and copied to the device, entries
/// by entry_at(); the same bits).
template <unsigned Rank = 2, unsigned Keep = 50>
struct LowRankSampler {
  static_assert(Rank >= 1 && Rank <= 64, "zoopt::LowRankSampler: Rank must be 1 to 64");
  static_assert(Keep >= 1, "zoopt::LowRankSampler: Keep must be >= 1");

  static constexpr unsigned rank = Rank;
  static constexpr unsigned keep = Keep;
  static constexpr std::array<char, 40> name_text = detail::low_rank_name(Rank, Keep);
  static constexpr const char* name = name_text.data();

  /// True for spans that get low-rank directions.
  ZOOPT_HD static constexpr bool is_matrix(const SpanLayout& span) {
    return span.shape.rows >= 2 && span.shape.cols >= 2;
  }

  /// U (rows x Rank, row-major) then V transposed (Rank x cols).
  static std::size_t scratch_size(const SpanLayout& span) {
    return is_matrix(span) ? static_cast<std::size_t>((span.shape.rows + span.shape.cols) * Rank)
                           : 0;
  }

  template <class C>
  static void prepare(const NoiseKey& key, const SpanLayout& span, C* scratch) {
    if (!is_matrix(span)) return;
    const std::uint64_t rows = span.shape.rows;
    const std::uint64_t cols = span.shape.cols;
    detail::gaussian_run(key, u_index(span), rows * Rank, scratch);
    C* vt = scratch + rows * Rank;
    const NoiseKey vkey{key.seed, key.step - key.step % Keep, key.direction};
    C v[Rank];
    for (std::uint64_t j = 0; j < cols; ++j) {
      detail::gaussian_run(vkey, v_index(span) + j * Rank, Rank, v);
      for (unsigned k = 0; k < Rank; ++k) vt[k * cols + j] = v[k];
    }
  }

  template <class C>
  [[gnu::always_inline]] static inline void generate(const NoiseKey& key, const SpanLayout& span,
                                                     const C* scratch, std::uint64_t position,
                                                     int count, C* z) {
    if (!is_matrix(span)) {
      const std::uint64_t g = span.offset + position;
      if (g % kChunkElements == 0 && count == kChunkElements) {
        noise_chunk<GaussianSampler>(key, g / 4, *reinterpret_cast<C(*)[kChunkElements]>(z));
      } else {
        detail::gaussian_run(key, g, static_cast<std::uint64_t>(count), z);
      }
      return;
    }
    const std::uint64_t rows = span.shape.rows;
    const std::uint64_t cols = span.shape.cols;
    const C* vt = scratch + rows * Rank;
    const C norm = inv_sqrt_rank<C>();
    std::uint64_t i = position / cols;
    std::uint64_t j = position % cols;
    int k = 0;
    while (k < count) {
      // A run of one row: z = norm * sum_m U_im Vt_m[j..], contiguous in j.
      const int run = static_cast<int>(std::min<std::uint64_t>(cols - j, count - k));
      const C* u = scratch + i * Rank;
      for (int e = 0; e < run; ++e) z[k + e] = u[0] * vt[j + e];
      for (unsigned m = 1; m < Rank; ++m) {
        const C um = u[m];
        const C* vm = vt + m * cols + j;
        for (int e = 0; e < run; ++e) z[k + e] += um * vm[e];
      }
      if constexpr (Rank > 1) {
        for (int e = 0; e < run; ++e) z[k + e] *= norm;
      }
      k += run;
      j = 0;
      ++i;
    }
  }

  /// The entry at `position` of `span` alone, from the scratch prepare()
  /// filled: generate()'s value bit for bit (same operations in the same
  /// order, each rounded to nearest). What the CUDA kernels call.
  template <class C>
  ZOOPT_HD static C entry_at(const NoiseKey& key, const SpanLayout& span, const C* scratch,
                             std::uint64_t position) {
    if (!is_matrix(span)) {
      const std::uint64_t g = span.offset + position;
      C z[4];
      noise_block<GaussianSampler>(key, g / 4, z);
      return z[g % 4];
    }
    const std::uint64_t cols = span.shape.cols;
    const std::uint64_t j = position % cols;
    const C* u = scratch + (position / cols) * Rank;
    const C* vt = scratch + span.shape.rows * Rank;
    C z = detail::mul_rn(u[0], vt[j]);
    for (unsigned m = 1; m < Rank; ++m)
      z = detail::add_rn(z, detail::mul_rn(u[m], vt[m * cols + j]));
    if constexpr (Rank > 1) z = detail::mul_rn(z, inv_sqrt_rank<C>());
    return z;
  }

  /// 1 / sqrt(Rank) in double, correctly rounded on host and device, then
  /// rounded to C.
  template <class C>
  ZOOPT_HD static C inv_sqrt_rank() {
#if defined(__CUDA_ARCH__)
    return static_cast<C>(__ddiv_rn(1.0, __dsqrt_rn(static_cast<double>(Rank))));
#else
    return static_cast<C>(1.0 / std::sqrt(static_cast<double>(Rank)));
#endif
  }

 private:
  static constexpr std::uint64_t u_index(const SpanLayout& span) {
    return (std::uint64_t{1} << 62) + Rank * span.offset;
  }
  static constexpr std::uint64_t v_index(const SpanLayout& span) {
    return (std::uint64_t{1} << 63) + Rank * span.offset;
  }
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
