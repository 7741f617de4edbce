// The fused pass kernels (nvcc only). Host facade: CudaBackend; dispatch:
// launch_pass / pass_occupancy (errors as cudaError_t); kernel: pass_kernel,
// one thread block per tile, striding over tiles.
//
// Per tile:
//   1. If the tile has journal entries (directory head != kNoChunk), walk its
//      chunk chain and build a shared map local element -> pool entry.
//   2. Each thread processes units_per_thread units; a full aligned unit is
//      one 128-bit load, Philox blocks of four elements, one 128-bit store;
//      head/tail/misaligned units take the per-element path.
//   3. Elements whose new value does not invert are staged in shared memory
//      and appended to the pool as one chunk per tile (atomic counter,
//      capacity checked; overflow counted and flagged, never written past).
#pragma once

#if !defined(__CUDACC__)
#error "zoopt/cuda/kernels.cuh must be compiled by nvcc; host compilers use cuda_backend.hpp"
#endif

#include <cstdint>

#include "zoopt/cuda/dispatch.hpp"
#include "zoopt/cuda/element_ops.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/cuda/types.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt::cuda::detail {

/// Staged journal entries per tile before single-entry spills.
inline constexpr std::uint32_t kStageEntries = 1024;

/// 16 bytes of elements, loaded and stored as one vector.
template <class T>
union alignas(16) Vec16 {
  uint4 raw;
  T v[unit_elements<T>];
};

struct TileShared {
  std::uint32_t slot[kTileElements];       // pool index of a journaled element
  std::uint32_t mask[kTileElements / 32];  // journaled elements of the tile
  std::uint64_t stage[kStageEntries];      // new entries of this pass
  std::uint32_t head;
  std::uint32_t seg;
  std::uint32_t staged;
  std::uint32_t start;
};

__device__ inline std::uint64_t make_entry(std::uint32_t local, std::uint32_t bits) {
  return (static_cast<std::uint64_t>(local) << 32) | bits;
}

/// Appends a one-entry chunk straight to the pool (stage full).
__device__ inline void spill_entry(const JournalRefs& j, std::uint64_t tile, std::uint64_t e) {
  if (j.capacity == 0) {
    atomicAdd(j.lost, 1ull);
    return;
  }
  const unsigned long long start = atomicAdd(j.write.counter, 2ull);
  if (start + 2 > j.capacity) {
    atomicAdd(j.lost, 1ull);
    *reinterpret_cast<volatile int*>(j.overflow) = 1;
    return;
  }
  j.write.pool[start + 1] = e;
  atomicAdd(j.write.entries, 1ull);
  const std::uint32_t prev =
      atomicExch(j.write.directory + tile, static_cast<std::uint32_t>(start));
  j.write.pool[start] = (static_cast<std::uint64_t>(prev) << 32) | 1u;
}

template <class T>
__device__ inline void stage_entry(TileShared& sh, const JournalRefs& j, std::uint64_t tile,
                                   std::uint32_t local, T theta0) {
  const std::uint64_t e = make_entry(local, static_cast<std::uint32_t>(to_bits(theta0)));
  const std::uint32_t i = atomicAdd(&sh.staged, 1u);
  if (i < kStageEntries) {
    sh.stage[i] = e;
  } else {
    spill_entry(j, tile, e);
  }
}

/// One element: x (in/out), its displacements, journal state.
template <class T, PassKind Kind>
__device__ inline void element_op(const PassParams& p, TileShared& sh, std::uint64_t tile,
                                  bool has_journal, std::uint32_t local, T& x, float d_before,
                                  float d_after, float d_next, bool any_before, bool decay) {
  bool journaled = false;
  T theta0;
  if (has_journal && ((sh.mask[local >> 5] >> (local & 31)) & 1u) != 0u) {
    journaled = true;
    theta0 = from_bits<T>(static_cast<bits_t<T>>(p.journal.read.pool[sh.slot[local]]));
  } else {
    theta0 = rebuild(x, d_before, any_before);
  }
  if constexpr (Kind == PassKind::move) {
    const T next = displaced(theta0, d_after);
    x = next;
    if (!journaled && !invertible(next, theta0, d_after)) {
      stage_entry(sh, p.journal, tile, local, theta0);
    }
  } else {
    const T theta1 =
        p.restore_only != 0u ? theta0 : updated(theta0, d_after, p.eta, p.lambda, decay);
    if constexpr (Kind == PassKind::finish) {
      x = theta1;
    } else {
      const T next = displaced(theta1, d_next);
      x = next;
      if (!invertible(next, theta1, d_next)) stage_entry(sh, p.journal, tile, local, theta1);
    }
  }
}

/// Accumulates the displacements of four consecutive elements starting at
/// global index 4 * block for `terms` (all in one segment, described by `at`
/// for shaped samplers).
template <class Sampler>
__device__ inline void block_displacements(const Term* terms, std::uint32_t count,
                                           std::uint64_t seed, std::uint64_t step, double scale,
                                           std::uint64_t block, const ElementPlace& at,
                                           float (&db)[4], float (&da)[4], bool& any_before) {
  for (std::uint32_t i = 0; i < count; ++i) {
    const Term& t = terms[i];
    if (!active(t)) continue;
    const NoiseKey key{seed, step, t.direction};
    float z[4];
    if constexpr (ShapedSampler<Sampler>) {
#pragma unroll
      for (int q = 0; q < 4; ++q) z[q] = element_noise<Sampler>(key, 4 * block + q, at, i);
    } else {
      noise_block<Sampler>(key, block, z);
    }
    const TermCoefficients c = coefficients(t, scale);
    any_before = any_before || t.before != 0.0;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      db[q] = accumulate(db[q], c.before, z[q]);
      da[q] = accumulate(da[q], c.after, z[q]);
    }
  }
}

template <class T, class Sampler, PassKind Kind>
__device__ inline void process_unit(const PassParams& p, TileShared& sh, std::uint64_t tile,
                                    bool has_journal, const DeviceSegment& s, std::uint32_t seg,
                                    double scale, std::uint64_t local_unit_in_span,
                                    std::uint32_t local_base) {
  constexpr std::uint32_t E = unit_elements<T>;
  const UnitRange r = unit_range(s, local_unit_in_span, E);
  T* data = static_cast<T*>(s.data) + r.first;
  const std::uint64_t g0 = s.offset + r.first;
  const bool decay = s.weight_decay != 0u && p.decay_on != 0u;
  const ElementPlace here{&s, seg, p.scratch, 0};
  const ElementPlace next_place{&s, seg, p.scratch, p.num_terms};
  if (r.full && (g0 & 3u) == 0u) {
    Vec16<T> v;
    v.raw = *reinterpret_cast<const uint4*>(data);
#pragma unroll
    for (std::uint32_t b = 0; b < E / 4; ++b) {
      float db[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      float da[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      float dn[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      bool any_before = false;
      const std::uint64_t block = (g0 >> 2) + b;
      block_displacements<Sampler>(p.terms, p.num_terms, p.seed, p.step, scale, block, here, db,
                                   da, any_before);
      if constexpr (Kind == PassKind::finish_move) {
        float unused[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        bool no_before = false;
        block_displacements<Sampler>(p.next_terms, p.num_next, p.seed, p.next_step, scale, block,
                                     next_place, unused, dn, no_before);
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        element_op<T, Kind>(p, sh, tile, has_journal, local_base + 4 * b + q, v.v[4 * b + q], db[q],
                            da[q], dn[q], any_before, decay);
      }
    }
    *reinterpret_cast<uint4*>(data) = v.raw;
  } else {
    for (std::uint32_t l = 0; l < r.count; ++l) {
      const Displacement d =
          displacement_at<Sampler>(p.terms, p.num_terms, p.seed, p.step, scale, g0 + l, here);
      float dn = 0.0f;
      if constexpr (Kind == PassKind::finish_move) {
        dn = displacement_at<Sampler>(p.next_terms, p.num_next, p.seed, p.next_step, scale, g0 + l,
                                      next_place)
                 .after;
      }
      T x = data[l];
      element_op<T, Kind>(p, sh, tile, has_journal, local_base + l, x, d.before, d.after, dn,
                          d.any_before, decay);
      data[l] = x;
    }
  }
}

template <class T, class Sampler, PassKind Kind>
__global__ void __launch_bounds__(kBlockThreads) pass_kernel(const PassParams p) {
  constexpr std::uint32_t E = unit_elements<T>;
  constexpr std::uint32_t kUnitsPerTile = units_per_tile<T>;
  constexpr std::uint32_t kUnitsPerThread = units_per_thread<T>;
  constexpr bool kWrites = Kind != PassKind::finish;
  __shared__ TileShared sh;
  const std::uint32_t tid = threadIdx.x;
  for (std::uint64_t tile = blockIdx.x; tile < p.tiles; tile += gridDim.x) {
    const std::uint64_t unit0 = tile * kUnitsPerTile;
    if (tid == 0) {
      sh.head = p.journal.read.directory != nullptr ? p.journal.read.directory[tile] : kNoChunk;
      sh.seg = find_segment(p.segs, p.num_segs, unit0);
      sh.staged = 0;
      sh.start = kNoChunk;
    }
    __syncthreads();
    const std::uint32_t head = sh.head;
    const bool has_journal = head != kNoChunk;
    if (has_journal) {
      for (std::uint32_t i = tid; i < kTileElements / 32; i += kBlockThreads) sh.mask[i] = 0u;
      __syncthreads();
      for (std::uint32_t c = head; c != kNoChunk;) {
        const std::uint64_t h = p.journal.read.pool[c];
        const auto count = static_cast<std::uint32_t>(h);
        for (std::uint32_t i = tid; i < count; i += kBlockThreads) {
          const std::uint32_t at = c + 1 + i;
          const auto local = static_cast<std::uint32_t>(p.journal.read.pool[at] >> 32);
          sh.slot[local] = at;
          atomicOr(&sh.mask[local >> 5], 1u << (local & 31));
        }
        c = static_cast<std::uint32_t>(h >> 32);
      }
      __syncthreads();
    }
    std::uint32_t seg = sh.seg;
#pragma unroll
    for (std::uint32_t k = 0; k < kUnitsPerThread; ++k) {
      const std::uint32_t local_unit = k * kBlockThreads + tid;
      const std::uint64_t u = unit0 + local_unit;
      if (u < p.units) {
        while (seg + 1 < p.num_segs && p.segs[seg + 1].unit_begin <= u) ++seg;
        const DeviceSegment s = p.segs[seg];
        process_unit<T, Sampler, Kind>(p, sh, tile, has_journal, s, seg, p.scales[seg],
                                       u - s.unit_begin, local_unit * E);
      }
    }
    if constexpr (kWrites) {
      __syncthreads();
      const std::uint32_t staged = sh.staged < kStageEntries ? sh.staged : kStageEntries;
      if (tid == 0 && staged > 0) {
        const JournalRefs& j = p.journal;
        if (j.capacity == 0) {
          atomicAdd(j.lost, static_cast<unsigned long long>(staged));
        } else {
          const unsigned long long start = atomicAdd(j.write.counter, staged + 1ull);
          if (start + staged + 1 > j.capacity) {
            atomicAdd(j.lost, static_cast<unsigned long long>(staged));
            *reinterpret_cast<volatile int*>(j.overflow) = 1;
          } else {
            const std::uint32_t prev =
                atomicExch(j.write.directory + tile, static_cast<std::uint32_t>(start));
            j.write.pool[start] = (static_cast<std::uint64_t>(prev) << 32) | staged;
            atomicAdd(j.write.entries, static_cast<unsigned long long>(staged));
            sh.start = static_cast<std::uint32_t>(start);
          }
        }
      }
      __syncthreads();
      if (sh.start != kNoChunk) {
        for (std::uint32_t i = tid; i < staged; i += kBlockThreads) {
          p.journal.write.pool[sh.start + 1 + i] = sh.stage[i];
        }
      }
    }
    if constexpr (Kind != PassKind::move) {
      // The step's journal is consumed: this tile starts the next step empty.
      if (tid == 0 && p.journal.read.directory != nullptr)
        p.journal.read.directory[tile] = kNoChunk;
    }
    __syncthreads();
  }
}

template <class T, class Sampler, PassKind Kind>
constexpr auto pass_kernel_ptr() {
  return &pass_kernel<T, Sampler, Kind>;
}

template <class T, class Sampler>
cudaError_t launch_pass(PassKind kind, const PassParams& p, std::uint32_t blocks,
                        cudaStream_t stream) {
  switch (kind) {
    case PassKind::move:
      pass_kernel<T, Sampler, PassKind::move><<<blocks, kBlockThreads, 0, stream>>>(p);
      break;
    case PassKind::finish:
      pass_kernel<T, Sampler, PassKind::finish><<<blocks, kBlockThreads, 0, stream>>>(p);
      break;
    case PassKind::finish_move:
      pass_kernel<T, Sampler, PassKind::finish_move><<<blocks, kBlockThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <class T, class Sampler>
cudaError_t pass_occupancy(PassKind kind, int* blocks_per_sm) {
  switch (kind) {
    case PassKind::move:
      return cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          blocks_per_sm, pass_kernel_ptr<T, Sampler, PassKind::move>(), kBlockThreads, 0);
    case PassKind::finish:
      return cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          blocks_per_sm, pass_kernel_ptr<T, Sampler, PassKind::finish>(), kBlockThreads, 0);
    case PassKind::finish_move:
      return cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          blocks_per_sm, pass_kernel_ptr<T, Sampler, PassKind::finish_move>(), kBlockThreads, 0);
  }
  return cudaErrorInvalidValue;
}

}  // namespace zoopt::cuda::detail
