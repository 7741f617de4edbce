#!/usr/bin/env bash
# Installs what is missing, builds everything (Release) and runs all tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# libtorch-dev, python3-torch: the zoopt::torch adapter's tests and the TorchScript
# export (optional for the library); libopenblas0-pthread: a fast BLAS for
# libtorch (Debian's default libblas.so.3 is the reference one).
bash "$ZOOPT_ROOT/scripts/install-deps.sh" libtorch-dev libopenblas0-pthread python3-torch
cmake -S "$ZOOPT_ROOT" -B "$ZOOPT_BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$ZOOPT_BUILD" -j "$ZOOPT_JOBS"
ctest --test-dir "$ZOOPT_BUILD" --output-on-failure -j "$ZOOPT_JOBS" "$@"
