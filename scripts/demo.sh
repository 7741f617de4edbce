#!/usr/bin/env bash
# Installs what is missing, builds the demo and runs it; arguments go to the
# demo (see --help). Results land in ./zoopt-demo-out unless --out says else.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
bash "$ZOOPT_ROOT/scripts/install-deps.sh"
cmake -S "$ZOOPT_ROOT" -B "$ZOOPT_BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$ZOOPT_BUILD" -j "$ZOOPT_JOBS" --target zoopt_demo
"$ZOOPT_BUILD/examples/demo/zoopt_demo" "$@"
