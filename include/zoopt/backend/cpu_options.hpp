// Options of CpuBackend, and the choice of its pass loop's instruction set.
#pragma once

#include <cstddef>

#include "zoopt/core/storage.hpp"

#ifndef ZOOPT_CHECK_LOSS_WRITES
#ifdef NDEBUG
#define ZOOPT_CHECK_LOSS_WRITES 0
#else
#define ZOOPT_CHECK_LOSS_WRITES 1
#endif
#endif

// Runtime dispatch of the pass loop to AVX2 and AVX-512 (x86-64, GCC or
// clang): the same code compiled again for those instruction sets, chosen
// when the CPU has them. The passes are compiled with contraction off
// (core/fp_contract.hpp), so AVX-512's fused multiply-add is never used:
// the same bits on every level.
#if !defined(ZOOPT_CPU_DISPATCH)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__) && \
    !defined(__AVX512F__)
#define ZOOPT_CPU_DISPATCH 1
#else
#define ZOOPT_CPU_DISPATCH 0
#endif
#endif
// The AVX-512 loop alone can be left out (e.g. to shorten sanitizer builds).
#if !defined(ZOOPT_CPU_DISPATCH_AVX512)
#define ZOOPT_CPU_DISPATCH_AVX512 ZOOPT_CPU_DISPATCH
#endif

namespace zoopt {

/// Which compiled version of the pass loop CpuBackend runs.
enum class CpuDispatch {
  automatic,  ///< AVX-512 (F, BW, DQ, VL) or else AVX2 when the CPU has it and
              ///< the build is x86-64 GCC/clang
  portable,   ///< the build's baseline instruction set only
  avx2,       ///< AVX2 when the CPU has it, never AVX-512 (for comparing)
};

namespace detail {
// True when the running CPU can execute AVX2 instructions.
inline bool cpu_has_avx2() {
#if ZOOPT_CPU_DISPATCH
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
#else
  return false;
#endif
}
// True when the running CPU can execute the AVX-512 subsets the pass loop's
// AVX-512 version is compiled for.
inline bool cpu_has_avx512() {
#if ZOOPT_CPU_DISPATCH && ZOOPT_CPU_DISPATCH_AVX512
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
           __builtin_cpu_supports("avx512dq") != 0 && __builtin_cpu_supports("avx512vl") != 0;
  }();
  return has;
#else
  return false;
#endif
}
}  // namespace detail

/// Options of CpuBackend.
struct CpuBackendOptions {
  /// Rounding of the update pass (default automatic: stochastic for
  /// half/bfloat16, nearest for float/double). Stochastic rounding of
  /// float/double storage is not offered (std::invalid_argument).
  Rounding rounding = Rounding::automatic;
  /// Journal entries reserved up front (default 1024). The journal grows
  /// beyond it when a step needs more.
  std::size_t journal_reserve = 1024;
  /// Keep the restore journal (default). false: no memory beyond the
  /// parameters, but an aborted step or lr = 0 may leave elements whose
  /// perturbation did not invert one ulp away from their pre-step bits.
  bool exact_restore = true;
  /// Check after every loss call that the loss did not write to the
  /// parameters (default: on in builds without NDEBUG, off otherwise; define
  /// ZOOPT_CHECK_LOSS_WRITES to 0 or 1 to choose). A write throws
  /// LossModifiedParameters and the parameters get their pre-step bits back.
  /// Costs a copy of the parameters (O(d) memory, allocated on the first
  /// step) and one copy plus one compare pass per loss call.
  bool check_loss_writes = ZOOPT_CHECK_LOSS_WRITES != 0;
  /// Threads a pass may use (default 0: automatic, the hardware threads up
  /// to 8; 1: the calling thread only). A pass over d elements uses at most
  /// d / kElementsPerThread of them, so small problems stay on the calling
  /// thread. Results, journals and restores are bit-identical for every
  /// value. The workers start on the first pass that uses them and sleep
  /// between passes (they never run while the loss runs); set 1 when steps
  /// already run on several threads of the user's own, or with one MPI rank
  /// per core.
  unsigned threads = 0;
  /// The pass loop's instruction set (default automatic: AVX-512, else AVX2,
  /// where the CPU has it, in x86-64 builds with GCC or clang that do not
  /// already target AVX-512). Every choice gives the same bits; portable
  /// and avx2 are for comparing.
  CpuDispatch dispatch = CpuDispatch::automatic;
};

}  // namespace zoopt
