// Keeps the compiler from fusing a*b + c into one FMA in zoopt's arithmetic.
//
// zoopt's noise, passes and updates are sequences of correctly rounded +, *
// and / so that every build, CPU and GPU computes the same bits (replay,
// resume and CPU/GPU parity rely on it). GCC contracts a*b + c into an FMA by
// default whenever the target has one (-mfma, -march=native,
// -march=x86-64-v3, AArch64), across statements and inlined calls, which
// changes about one Gaussian value in five by an ulp. Every zoopt header with
// such arithmetic brackets its definitions with
//   #include "zoopt/core/fp_contract.hpp"  ... ZOOPT_FP_CONTRACT_OFF_BEGIN
//   ... definitions ...                         ZOOPT_FP_CONTRACT_OFF_END
// GCC: the definitions get -ffp-contract=off (push/pop_options, so the
// user's code keeps its own setting). Clang: `#pragma clang fp
// contract(off)` for the definitions that follow (clang's
// -ffp-contract=fast ignores the pragma: do not build zoopt code with it).
// Under nvcc the macros are empty: device code uses the _rn intrinsics,
// which are never fused.
#pragma once

#if defined(__CUDACC__)
#define ZOOPT_FP_CONTRACT_OFF_BEGIN
#define ZOOPT_FP_CONTRACT_OFF_END
#elif defined(__clang__)
#define ZOOPT_FP_CONTRACT_OFF_BEGIN _Pragma("clang fp contract(off)")
// Clang's pragma ends with the file that holds it; nothing to restore.
#define ZOOPT_FP_CONTRACT_OFF_END
#elif defined(__GNUC__)
#define ZOOPT_FP_CONTRACT_OFF_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=off\")")
#define ZOOPT_FP_CONTRACT_OFF_END _Pragma("GCC pop_options")
#else
#define ZOOPT_FP_CONTRACT_OFF_BEGIN
#define ZOOPT_FP_CONTRACT_OFF_END
#endif
