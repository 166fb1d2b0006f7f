#!/usr/bin/env bash
# The device side of scripts/gpu-node-bundle.sh, on the GPU machine (no Node,
# no network): unpacks Node 20 with python3's lzma and the JS with tarfile,
# loads the CUDA addon (sm_90), runs the test files whose CUDA cases skip on a
# machine without a GPU, then `histoflow bench stain augment` (every backend
# available there, cuda among them; --quick unless HISTOFLOW_GPU_NODE_BENCH
# gives other flags). Output to $OUT (or out/gpu-node-run), two files: node.log
# (addon, tests, bench table and errors) and node-bench.json.
# HISTOFLOW_DEADLINE (epoch seconds) bounds the two runs (else 240 s each).
# Usage: bash scripts/gpu-node-run.sh   (out/gpu-node carried with the call)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bundle=out/gpu-node
out=${OUT:-out/gpu-node-run}
mkdir -p "$out"
for f in node.xz js.tar.xz histoflow.node ava-gpu.config.mjs; do
  [ -f "$bundle/$f" ] || { echo "gpu-node-run: $bundle/$f is missing: run scripts/gpu-node-bundle.sh here and carry $bundle" >&2; exit 2; }
done
node=${TMPDIR:-/tmp}/histoflow-node
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# limit N: N seconds, or what is left before HISTOFLOW_DEADLINE.
limit() {
  local n=$1
  if [ -n "${HISTOFLOW_DEADLINE:-}" ]; then
    local left=$((HISTOFLOW_DEADLINE - $(date +%s) - 5))
    [ "$left" -lt "$n" ] && n=$left
  fi
  [ "$n" -lt 1 ] && n=1
  echo "$n"
}
python3 - "$bundle" "$node" <<'PY' || exit 2
import lzma, os, shutil, sys, tarfile
bundle, node = sys.argv[1:3]
with lzma.open(os.path.join(bundle, "node.xz")) as src, open(node, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(node, 0o755)
with tarfile.open(os.path.join(bundle, "js.tar.xz")) as tar:
    tar.extractall(".")
PY
cp "$bundle/ava-gpu.config.mjs" ./ava-gpu.config.mjs
export HISTOFLOW_ADDON=$PWD/$bundle/histoflow.node
ldd "$HISTOFLOW_ADDON" | grep 'not found' && echo "gpu-node-run: the addon misses libraries here (above)"
echo "node $("$node" --version); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"
"$node" --input-type=module -e "
  import { createRequire } from 'node:module';
  const addon = createRequire(import.meta.url)(process.env.HISTOFLOW_ADDON);
  console.log('addon:', JSON.stringify(addon.buildInfo()), JSON.stringify(addon.cudaDevices()));
" 2>&1 | tee "$work/node-addon.txt"
status=0
files=()
for t in addon/addon augment/augment augment/parity stain/parity stain/reinhard_degenerate; do files+=("dist-gpu/test/$t.test.js"); done
echo "== ava: ${files[*]}"
timeout "$(limit 240)" "$node" node_modules/ava/entrypoints/cli.mjs --config ava-gpu.config.mjs "${files[@]}" \
  >"$work/node-tests.txt" 2>&1 || status=1
tail -n 40 "$work/node-tests.txt"
echo "== histoflow bench stain augment ${HISTOFLOW_GPU_NODE_BENCH:---quick}"
# shellcheck disable=SC2086
timeout "$(limit 240)" "$node" dist-gpu/src/cli/main.js bench stain augment ${HISTOFLOW_GPU_NODE_BENCH:---quick} \
  --out "$out/node-bench.json" >"$work/node-bench.md" 2>"$work/node-bench.err" || status=1
cat "$work/node-bench.md"
tail -n 20 "$work/node-bench.err"
for f in node-addon.txt node-tests.txt node-bench.md node-bench.err; do
  printf '\n==== %s\n' "$f"
  cat "$work/$f" 2>/dev/null
done | head -c 8388608 >"$out/node.log"
exit "$status"
