#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs each for a bounded time starting from
# the committed seed corpus, ZOOPT_JOBS harnesses side by side. Installs clang
# and its runtime when missing.
#
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# SECONDS per harness (default 60); harnesses: update_log checkpoint
# model_file replay (default all). A crash, leak, sanitizer report or failed
# invariant stops that harness and fails the run (exit non-zero); the input
# is kept in build-fuzz/artifacts/<harness>/ (copy it into
# tests/fuzz/corpus/<reader>/ once fixed: ctest then replays it in every
# build). Prints and writes
# build-fuzz/summary.txt: executions, coverage and corpus size per harness.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
seconds="${1:-60}"
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(update_log checkpoint model_file replay)

bash "$ZOOPT_ROOT/scripts/install-deps.sh" clang libclang-rt-14-dev

build="$ZOOPT_ROOT/build-fuzz"
CXX=clang++ cmake -S "$ZOOPT_ROOT" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DZOOPT_BUILD_FUZZERS=ON -DZOOPT_ENABLE_CUDA=OFF -DZOOPT_ENABLE_MPI=OFF -DZOOPT_ENABLE_TORCH=OFF \
  -DZOOPT_BUILD_EXAMPLES=OFF -DZOOPT_BUILD_BENCHMARKS=OFF -DZOOPT_INSTALL=OFF >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=("zoopt_fuzz_$h"); done
cmake --build "$build" -j "$ZOOPT_JOBS" --target "${targets[@]}"

seed_dir() { case "$1" in replay) echo update_log ;; *) echo "$1" ;; esac; }
# Runs harness $1 for $seconds s; writes its summary line to $build/$1.summary
# and returns non-zero when it found a crash, leak or failed invariant.
fuzz_one() {
  local h=$1
  local work="$build/corpus/$h" artifacts="$build/artifacts/$h" log="$build/$h.log"
  local failed=0
  mkdir -p "$work" "$artifacts"
  "$build/tests/fuzz/zoopt_fuzz_$h" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$work" "$ZOOPT_ROOT/tests/fuzz/corpus/$(seed_dir "$h")" >"$log" 2>&1 || failed=1
  local runs cov units
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1) || true
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1) || true
  units=$(find "$work" -type f | wc -l)
  printf '%-11s %12s executions  %-22s corpus %s inputs\n' "$h" "${runs:-?}" "${cov:-cov: ?}" \
    "$units" >"$build/$h.summary"
  if [ $failed -ne 0 ]; then
    echo "zoopt fuzz: $h FAILED; the input is in $artifacts/, the log in $log"
    tail -40 "$log"
    return 1
  fi
}

# The harnesses run side by side, $ZOOPT_JOBS at a time (each is one
# process on one core, so each still gets its $seconds s of fuzzing).
status=0
pids=()
for h in "${harnesses[@]}"; do
  echo "zoopt fuzz: $h for ${seconds} s"
  fuzz_one "$h" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$ZOOPT_JOBS" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
summary="$build/summary.txt"
for h in "${harnesses[@]}"; do cat "$build/$h.summary"; done | tee "$summary"
exit $status
