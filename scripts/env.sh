# Sourced by the scripts: build folder and the CUDA compiler when one exists.
ZOOPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZOOPT_BUILD="${ZOOPT_BUILD:-$ZOOPT_ROOT/build}"
ZOOPT_JOBS="${ZOOPT_JOBS:-$(nproc)}"
# nvcc from the CUDA Toolkit is not a Debian package; use it when installed.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
