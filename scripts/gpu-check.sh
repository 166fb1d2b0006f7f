#!/usr/bin/env bash
# The GPU-machine check: builds the native core with CUDA (no Node needed),
# runs every kernel's CUDA twin against the CPU reference, then the native
# benchmark on cpu and cuda. One CPU build for that machine (-march=native).
# Writes logs to $OUT (or ./out/gpu-check).
# Usage: scripts/gpu-check.sh [CUDA_ARCHITECTURES, default: native]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu-check}
mkdir -p "$out"
arch=${1:-native}
nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DHISTOFLOW_ADDON=OFF -DHISTOFLOW_CUDA=ON -DHISTOFLOW_NATIVE_ARCH=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" 2>&1 | tee "$out/configure.txt" | grep 'histoflow:'
cmake --build build-gpu -j "$(nproc)" 2>&1 | tail -n 20 | tee "$out/build.txt"
./build-gpu/histoflow_native_tests 2>&1 | tee "$out/parity.txt"
tests=${PIPESTATUS[0]}
./build-gpu/histoflow_native_bench 2>&1 | tee "$out/bench.md"
./build-gpu/histoflow_native_bench --json > "$out/bench.json" 2>&1
exit "$tests"
