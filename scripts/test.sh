#!/usr/bin/env bash
# Installs what is missing, builds everything (Release) and runs all tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# libtorch-dev: the zoopt::torch adapter's tests (optional for the library).
bash "$ZOOPT_ROOT/scripts/install-deps.sh" libtorch-dev
cmake -S "$ZOOPT_ROOT" -B "$ZOOPT_BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$ZOOPT_BUILD" -j "$ZOOPT_JOBS"
ctest --test-dir "$ZOOPT_BUILD" --output-on-failure -j "$ZOOPT_JOBS" "$@"
