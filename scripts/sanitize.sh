#!/usr/bin/env bash
# Builds the CPU test suites with AddressSanitizer + UndefinedBehaviorSanitizer
# (GCC, -O1, assertions and the loss-write check on) and runs them: core
# (the allocation-counting test too: its operator new calls malloc, which
# ASan intercepts), exactness, ZO Fine-tuner, the fuzz-corpus replays and the
# README's code. Left out: the packaging consumers (they build zoopt without
# the flags), CUDA and MPI (Open MPI's own allocations are reported as
# leaks), and the flag-matrix test (it is about other flags). Then the
# threaded-pass tests under ThreadSanitizer, in a build of their own (TSan
# and ASan cannot share a binary). Any report fails the run.
# Usage: bash scripts/sanitize.sh [ctest args...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ZOOPT_ROOT/scripts/install-deps.sh"

build="$ZOOPT_ROOT/build-sanitize"
# The pass loop compiled once, without its AVX2 and AVX-512 copies (the same
# source again under a target attribute; each copy lengthens the build by a
# fifth). The ThreadSanitizer build below keeps the AVX2 copy: its test
# compares the dispatched loops.
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DZOOPT_CPU_DISPATCH=0"
cmake -S "$ZOOPT_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DZOOPT_ENABLE_CUDA=OFF -DZOOPT_ENABLE_MPI=OFF -DZOOPT_ENABLE_TORCH=OFF -DZOOPT_BUILD_EXAMPLES=OFF \
  -DZOOPT_BUILD_BENCHMARKS=OFF -DZOOPT_BUILD_FLAG_TESTS=OFF -DZOOPT_INSTALL=OFF >/dev/null
cmake --build "$build" -j "$ZOOPT_JOBS"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$build" --output-on-failure -j "$ZOOPT_JOBS" \
  -R '^(core\.|exact|learned|fuzz\.|readme\.)' -E '^(core\.compile_fail|readme\.mpi)' "$@"

tsan="$ZOOPT_ROOT/build-tsan"
cmake -S "$ZOOPT_ROOT" -B "$tsan" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-O1 -g -fsanitize=thread -DZOOPT_CPU_DISPATCH_AVX512=0" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DZOOPT_ENABLE_CUDA=OFF -DZOOPT_ENABLE_MPI=OFF -DZOOPT_ENABLE_TORCH=OFF -DZOOPT_BUILD_EXAMPLES=OFF \
  -DZOOPT_BUILD_BENCHMARKS=OFF -DZOOPT_INSTALL=OFF >/dev/null
cmake --build "$tsan" -j "$ZOOPT_JOBS" --target zoopt_threads_tests
TSAN_OPTIONS="halt_on_error=1" "$tsan/tests/exact/zoopt_threads_tests"
