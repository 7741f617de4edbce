#!/usr/bin/env bash
# One-command GPU check (bench/RESULTS.md, CUDA section): on a machine with an
# NVIDIA GPU, builds the CUDA tests and benchmark, runs the device tests, the
# bandwidth benchmark (fused pass vs device-to-device copy, cuRAND + axpy,
# 3- vs 2-pass MeZO step) and, when PyTorch is importable, bench/torch_perturb.py;
# writes every output and one summary to OUT (default ./gpu-check-out, or
# $OUT/gpu-check when $OUT is set). Needs nvcc, CMake and the Debian headers
# of the build (Eigen, Random123, Catch2 2.x, Google Benchmark); it does not
# install packages. Each stage has a time limit so the whole check stays
# within about 8 minutes on an H100/H200 (2^30 elements at most).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:+$OUT/gpu-check}}"
out="${out:-gpu-check-out}"
mkdir -p "$out"
summary="$out/summary.txt"
build="${ZOOPT_CUDA_BUILD:-$root/build-cuda}"
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
stage() {  # stage NAME SECONDS COMMAND...: runs, logs, records rc and time
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc in $((SECONDS - t0)) s (log $name.log)" | tee -a "$summary"
  return $rc
}
{
  echo "zoopt GPU check, $(date -u +%FT%TZ), git $(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
    --format=csv 2>&1 || echo "nvidia-smi: not available"
  nvcc --version 2>&1 | tail -1 || true
} >"$summary"
stage configure 120 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DZOOPT_ENABLE_MPI=OFF \
  -DZOOPT_ENABLE_TORCH=OFF -DZOOPT_BUILD_EXAMPLES=OFF || exit 1
stage build 300 cmake --build "$build" -j "$(nproc)" --target zoopt_cuda_device_tests zoopt_cuda_bench || exit 1
stage device_tests 120 "$build/tests/cuda/zoopt_cuda_device_tests"
tail -3 "$out/device_tests.log" >>"$summary"
stage bench 240 "$build/bench/cuda/zoopt_cuda_bench" --benchmark_counters_tabular=true \
  --benchmark_out="$out/cuda.json" --benchmark_out_format=json
grep -E "^(BM_|-)" "$out/bench.log" >>"$summary" || true
py=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && py=/usr/bin/python3
if $py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  stage torch_f32 90 $py "$root/bench/torch_perturb.py" --dtype float32 --tensors 1
  stage torch_bf16 90 $py "$root/bench/torch_perturb.py" --dtype bfloat16 --tensors 1
  cat "$out/torch_f32.log" "$out/torch_bf16.log" >>"$summary"
else
  echo "torch_perturb: skipped (no PyTorch with CUDA)" | tee -a "$summary"
fi
echo "summary: $summary"
