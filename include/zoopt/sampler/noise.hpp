// Element noise z_key(g) for a sampler, one Philox block at a time.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "zoopt/core/fp_contract.hpp"
#include "zoopt/params/matrix_shape.hpp"
#include "zoopt/random/philox.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// A sampler that maps four Philox words to four direction entries with
/// E[z] = 0 and E[z^2] = 1: a static `generate(const uint32_t (&)[4],
/// C (&)[4])`. Element g takes entry g mod 4 of block g / 4.
template <class S>
concept WordSampler = requires(const std::uint32_t (&w)[4], float (&zf)[4], double (&zd)[4]) {
  S::generate(w, zf);
  S::generate(w, zd);
};

/// A sampler of one sign per random bit (PackedRademacherSampler): a static
/// `sign<C>(word, bit)` and kElementsPerBlock = 128 elements per Philox block.
template <class S>
concept PackedSignSampler = S::kElementsPerBlock == 128 && requires(std::uint32_t w) {
  { S::template sign<float>(w, 0) } -> std::same_as<float>;
  { S::template sign<double>(w, 0) } -> std::same_as<double>;
};

/// A sampler that sees where an element is: its span's offset, size and
/// matrix shape, and the element's position in the span (LowRankSampler).
/// Per pass and direction, the backend gives each span scratch_size(span)
/// values of scratch, filled once by prepare() (e.g. factor matrices), then
/// asks generate() for the entries of positions [position, position +
/// count) of the span, at most kChunkElements at a time. Entries must be a
/// pure function of (key, span, position), so that passes, threads and
/// replays agree.
template <class S>
concept ShapedSampler = requires(const NoiseKey& key, const SpanLayout& span, float* f, double* d,
                                 std::uint64_t position, int count) {
  { S::scratch_size(span) } -> std::same_as<std::size_t>;
  S::prepare(key, span, f);
  S::prepare(key, span, d);
  S::generate(key, span, static_cast<const float*>(f), position, count, f);
  S::generate(key, span, static_cast<const double*>(d), position, count, d);
};

/// A shaped sampler the CUDA backend can draw: also a host-and-device
/// `entry_at(key, span, scratch, position)` giving one entry, the same bits
/// as generate() (the kernels compute each element on its own; the scratch
/// is prepared on the host and copied to the device).
template <class S>
concept ElementShapedSampler = ShapedSampler<S> &&
    requires(const NoiseKey& key, const SpanLayout& span, const float* f, std::uint64_t position) {
  { S::entry_at(key, span, f, position) } -> std::same_as<float>;
};

/// Concept of a direction sampler: one of the kinds above.
template <class S>
concept DirectionSampler = WordSampler<S> || PackedSignSampler<S> || ShapedSampler<S>;

/// Message of the static_asserts of code that draws noise by global index
/// alone.
#define ZOOPT_NOT_SHAPED_MESSAGE                                                              \
  "zoopt: this sampler's entries depend on the span's shape (ShapedSampler); they are drawn " \
  "by CpuBackend's passes, not by global index"

/// The four noise values of block `block` (elements 4*block .. 4*block+3).
template <class Sampler, class C>
ZOOPT_HD inline void noise_block(const NoiseKey& key, std::uint64_t block, C (&z)[4]) {
  static_assert(!ShapedSampler<Sampler>, ZOOPT_NOT_SHAPED_MESSAGE);
  if constexpr (PackedSignSampler<Sampler>) {
    // Elements 4*block.. are bits 4*(block mod 8).. of word (block mod 32) / 8
    // of Philox block block / 32.
    const auto r = random::philox_block(key, block / 32);
    const std::uint32_t word = r.v[(block % 32) / 8];
    const int first = 4 * static_cast<int>(block % 8);
    for (int k = 0; k < 4; ++k) z[k] = Sampler::template sign<C>(word, first + k);
  } else {
    const auto r = random::philox_block(key, block);
    const std::uint32_t w[4] = {r.v[0], r.v[1], r.v[2], r.v[3]};
    Sampler::generate(w, z);
  }
}

/// Blocks per chunk of the CPU passes: 64 blocks = 256 elements.
inline constexpr int kChunkBlocks = 64;
inline constexpr int kChunkElements = 4 * kChunkBlocks;

/// The noise of elements 4*first_block .. 4*first_block + 4*Blocks - 1, the
/// same values as noise_block, generated a chunk at a time so that the
/// Philox rounds and the sampler vectorise.
// Always inlined, so that a caller compiled for a wider instruction set
// (CpuBackend's AVX2 pass loop) vectorises it with that set.
template <class Sampler, class C, int Blocks = kChunkBlocks>
[[gnu::always_inline]] inline void noise_chunk(const NoiseKey& key, std::uint64_t first_block,
                                               C (&z)[4 * Blocks]) {
  static_assert(!ShapedSampler<Sampler>, ZOOPT_NOT_SHAPED_MESSAGE);
  if constexpr (PackedSignSampler<Sampler>) {
    static_assert(Blocks % 32 == 0, "a chunk holds whole 128-element Philox blocks");
    // first_block is a multiple of Blocks (the passes' chunks are aligned).
    constexpr int kPhilox = Blocks / 32;
    std::uint32_t w[4][kPhilox];
    random::philox_chunk<kPhilox>(key, first_block / 32, w);
    // A constant mask per lane instead of a shift by the lane index: the
    // select then vectorises without per-lane shifts (SSE2 has none), and
    // stays branch-free on random bits.
    constexpr auto masks = [] {
      std::array<std::uint32_t, 32> m{};
      for (int bit = 0; bit < 32; ++bit) m[bit] = std::uint32_t{1} << bit;
      return m;
    }();
    for (int p = 0; p < kPhilox; ++p) {
      for (int k = 0; k < 4; ++k) {
        const std::uint32_t word = w[k][p];
        C* out = z + 128 * p + 32 * k;
        for (int bit = 0; bit < 32; ++bit) out[bit] = (word & masks[bit]) != 0u ? C(-1) : C(1);
      }
    }
  } else {
    std::uint32_t w[4][Blocks];
    random::philox_chunk<Blocks>(key, first_block, w);
    for (int b = 0; b < Blocks; ++b) {
      const std::uint32_t words[4] = {w[0][b], w[1][b], w[2][b], w[3][b]};
      C out[4];
      Sampler::generate(words, out);
      for (int k = 0; k < 4; ++k) z[4 * b + k] = out[k];
    }
  }
}

/// Noise of one element with global index g (slow path; passes use blocks).
template <class Sampler, class C>
ZOOPT_HD inline C noise_at(const NoiseKey& key, std::uint64_t g) {
  C z[4];
  noise_block<Sampler>(key, g / 4, z);
  return z[g % 4];
}

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
