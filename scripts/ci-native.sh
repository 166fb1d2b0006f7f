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
#   5. the parity binary under AddressSanitizer and UndefinedBehaviorSanitizer
#      (any report fails), then the addon built with both, under its seam
#      tests and the fuzz suite;
#   6. the addon without Node's v8.h (async kernels stage copies instead of
#      holding V8 backing stores): its array-safety tests.
# Builds 2–6 use the baseline level only, to keep CI short.
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
rm -rf build-native-broken

echo "== 5. the parity binary under ASan and UBSan"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
configure build-native-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHISTOFLOW_CUDA=OFF -DHISTOFLOW_CPU_LEVELS=v2 \
  "-DCMAKE_CXX_FLAGS=$sanitize" "-DCMAKE_C_FLAGS=$sanitize" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
cmake --build build-native-asan -j "$jobs" > /dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-native-asan/histoflow_native_tests

echo "== 5b. the addon under ASan and UBSan: its seam tests and the fuzz suite"
if [ -f dist/test/addon/detached_arrays.test.js ]; then
  node node_modules/cmake-js/bin/cmake-js compile --out build-asan-addon --CDHISTOFLOW_TESTS=OFF --CDHISTOFLOW_CPU_LEVELS=v2 \
    "--CDHISTOFLOW_NODE_EXECUTABLE=$(command -v node)" \
    --CDHISTOFLOW_CUDA=OFF --CDCMAKE_BUILD_TYPE=RelWithDebInfo "--CDCMAKE_CXX_FLAGS=$sanitize" \
    --CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined > build-asan-addon.log 2>&1 || { tail -30 build-asan-addon.log; exit 1; }
  # Node is not instrumented: the runtimes are preloaded, leaks (Node's own) not checked.
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    HISTOFLOW_ADDON="$PWD/build-asan-addon/Release/histoflow.node" \
    npx ava $(ls dist/test/addon/*.test.js | grep -v cpu_levels) dist/test/color/*.test.js $(ls dist/test/fuzz/*.test.js 2>/dev/null)
  rm -f build-asan-addon.log
else
  echo "ci-native: dist/ is not built (npm ci builds it): skipped"
  [ "${CI:-}" != true ] || { echo "ci-native: CI needs dist/ here"; exit 1; }
fi

echo "== 6. the addon without v8.h: async kernels stage copies, arrays stay safe"
if [ -f dist/test/addon/detached_arrays.test.js ]; then
  node node_modules/cmake-js/bin/cmake-js compile --out build-staged --CDHISTOFLOW_TESTS=OFF --CDHISTOFLOW_CPU_LEVELS=v2 \
    "--CDHISTOFLOW_NODE_EXECUTABLE=$(command -v node)" --CDHISTOFLOW_CUDA=OFF --CDHISTOFLOW_V8_STORES=OFF > build-staged.log 2>&1 || { tail -30 build-staged.log; exit 1; }
  expect build-staged.log 'V8 stores +OFF \(HISTOFLOW_V8_STORES=OFF' 'the staged build'
  HISTOFLOW_ADDON="$PWD/build-staged/Release/histoflow.node" CI= npx ava dist/test/addon/detached_arrays.test.js
else
  echo "ci-native: dist/ is not built (npm ci builds it): skipped"
  [ "${CI:-}" != true ] || { echo "ci-native: CI needs dist/ here"; exit 1; }
fi
rm -rf build-native-*.configure.log build-native.configure.log build-staged.log
echo "ci-native: all native checks passed"
