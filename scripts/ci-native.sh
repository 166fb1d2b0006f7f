#!/usr/bin/env bash
# The native core without Node, as CI checks it (called by .ci/run):
#   1. the default configure (CUDA when nvcc is here: compile only, no GPU),
#      every CPU level, the parity binary at each level this CPU runs;
#   2. OpenCL hidden (-DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON): oneDNN's CMake
#      config cannot load, and the build must still link oneDNN directly;
#   3. every optional library off: the fallbacks alone;
#   4. a half-installed library (an openslide.pc whose headers and library do
#      not exist) and a broken nvcc: configure reports each off with the
#      reason and goes on.
# Builds 2–4 use the baseline level only, to keep CI short.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}

configure() { # DIR ARGS... ; prints the summary lines
  local dir=$1; shift
  rm -rf "$dir"
  cmake -S . -B "$dir" -DHISTOFLOW_ADDON=OFF -DCMAKE_BUILD_TYPE=Release "$@" > "$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; echo "ci-native: configure of $dir failed"; return 1; }
  grep 'histoflow:' "$dir.configure.log" | sed 's/^-- /  /'
}
expect() { # LOG PATTERN WHAT
  grep -qE "$2" "$1" || { echo "ci-native: expected $3 in $1"; grep 'histoflow:' "$1"; return 1; }
}

echo "== 1. default configure, every CPU level"
configure build-native
cmake --build build-native -j "$jobs" > /dev/null
scripts/native-tests.sh build-native

echo "== 2. OpenCL hidden: oneDNN without its CMake config"
configure build-native-noocl -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON -DHISTOFLOW_CUDA=OFF -DHISTOFLOW_CPU_LEVELS=v2
expect build-native-noocl.configure.log 'oneDNN +ON \(.*without its CMake config' 'oneDNN linked without its config'
cmake --build build-native-noocl -j "$jobs" > /dev/null
build-native-noocl/histoflow_native_tests

echo "== 3. every optional library off"
configure build-native-bare -DHISTOFLOW_CUDA=OFF -DHISTOFLOW_OPENSLIDE=OFF -DHISTOFLOW_ONEDNN=OFF -DHISTOFLOW_LIBDEFLATE=OFF -DHISTOFLOW_CPU_LEVELS=v2
cmake --build build-native-bare -j "$jobs" > /dev/null
build-native-bare/histoflow_native_tests

echo "== 4. a half-installed OpenSlide and a broken nvcc are reported off, configure goes on"
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
printf 'Name: openslide\nDescription: half-installed\nVersion: 9.9\nLibs: -L%s/lib -lopenslide\nCflags: -I%s/include\n' "$fake" "$fake" > "$fake/openslide.pc"
PKG_CONFIG_PATH="$fake" PKG_CONFIG_LIBDIR="$fake" configure build-native-broken -DHISTOFLOW_CUDA=OFF -DHISTOFLOW_CPU_LEVELS=v2
expect build-native-broken.configure.log 'OpenSlide +OFF \(.+\)' 'OpenSlide OFF with a reason'
printf '#!/bin/sh\necho "nvcc fatal: broken install" >&2\nexit 1\n' > "$fake/nvcc"
chmod +x "$fake/nvcc"
CUDACXX="$fake/nvcc" configure build-native-broken -DHISTOFLOW_CPU_LEVELS=v2
expect build-native-broken.configure.log 'CUDA +OFF \(.+\)' 'CUDA OFF with a reason'
rm -rf build-native-broken build-native-*.configure.log build-native.configure.log
echo "ci-native: all native checks passed"
