#!/usr/bin/env bash
# Installs the Debian packages zoopt's build, tests, benchmarks and demo use,
# plus any package names given as arguments (e.g. clang for scripts/fuzz.sh).
# Does nothing when they are all present. Needs root (or sudo).
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libeigen3-dev librandom123-dev       # library dependencies
  catch2 libbenchmark-dev clang        # tests (clang: the flag-matrix bit test), benchmarks
  libopenmpi-dev openmpi-bin           # optional zoopt::mpi component
  dataset-fashion-mnist                # data of the main demo
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "zoopt: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
