#!/usr/bin/env bash
# Prepares out/gpu-node/ for running histoflow under Node on the GPU machine,
# which has no Node and no network (issue 19, "Under Node on the GPU"):
#   node.xz             this machine's Node 20 binary, xz -9 (python3's lzma
#                       unpacks it there);
#   histoflow.node      the addon built with CUDA for sm_90 (the v2 baseline
#                       level only: one file, runs on any x86-64);
#   js.tar.xz           tsc's output (dist-gpu/) and the node_modules files that
#                       the runs below load, found by running them here under
#                       scripts/gpu-node-record.mjs (esbuild, which would bundle
#                       them, is not among histoflow's dependencies);
# scripts/gpu-node-run.sh (tracked, so it travels) is the device side.
# Then checks that the working tree plus out/gpu-node stay under the 64 MiB
# that a device call carries, and prints the device command.
#
# Usage: scripts/gpu-node-bundle.sh   (run from anywhere; builds in build-gpu-addon
#        and dist-gpu, both ignored; HISTOFLOW_GPU_ADDON_BUILD and HISTOFLOW_GPU_DIST
#        name others)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=out/gpu-node
addon_build=${HISTOFLOW_GPU_ADDON_BUILD:-build-gpu-addon}
dist=${HISTOFLOW_GPU_DIST:-dist-gpu}  # tsc's output here; dist-gpu in the bundle whatever its name here
limit=$((64 * 1024 * 1024))
# The test files whose CUDA cases skip on a machine without a GPU.
tests=(addon/addon augment/augment augment/parity stain/parity stain/reinhard_degenerate)
mkdir -p "$dest"
log() { printf '== %s\n' "$*"; }

if [ -x node_modules/.bin/esbuild ]; then
  log "esbuild is in node_modules but this script carries tsc's output and the loaded files (one path, tested)"
else
  log "esbuild is not in node_modules (not a dependency of histoflow): carrying tsc's output and the node_modules files the runs load"
fi

# ---- Node ------------------------------------------------------------------------
node_bin=$(command -v node)
node_version=$(node --version)
case "$node_version" in v20.*) ;; *) echo "gpu-node-bundle: node is $node_version; the GPU runs use Node 20" >&2; exit 2 ;; esac
if [ ! -s "$dest/node.xz" ] || [ "$(cat "$dest/node.version" 2>/dev/null)" != "$node_version $(stat -c %s "$node_bin")" ]; then
  log "compressing $node_bin ($node_version, $(stat -c %s "$node_bin") bytes) with xz -9 -T1 (about a minute)"
  nice -n 19 xz -9 -T1 <"$node_bin" >"$dest/node.xz.tmp"
  mv "$dest/node.xz.tmp" "$dest/node.xz"
  echo "$node_version $(stat -c %s "$node_bin")" >"$dest/node.version"
fi

# ---- the addon, with CUDA for sm_90 -------------------------------------------------
log "building the addon with CUDA (sm_90) in $addon_build"
nice -n 19 node node_modules/cmake-js/bin/cmake-js compile --out "$addon_build" \
  --CDHISTOFLOW_VERSION="$(node -p "require('./package.json').version")" --CDHISTOFLOW_TESTS=OFF \
  --CDHISTOFLOW_NODE_EXECUTABLE="$node_bin" --CDHISTOFLOW_CUDA=ON --CDCMAKE_CUDA_ARCHITECTURES=90 \
  --CDHISTOFLOW_CPU_LEVELS=v2 --CDHISTOFLOW_OPENSLIDE=OFF --CDHISTOFLOW_ONEDNN=OFF --CDHISTOFLOW_LIBDEFLATE=OFF \
  >"$dest/addon-build.txt" 2>&1 || { tail -n 30 "$dest/addon-build.txt"; exit 1; }
grep -E 'histoflow: (CUDA|CPU levels)' "$dest/addon-build.txt" || true
addon=$(find "$addon_build" -name histoflow.node -print -quit)
[ -n "$addon" ] || { echo "gpu-node-bundle: no histoflow.node under $addon_build" >&2; exit 1; }
cp "$addon" "$dest/histoflow.node"
rm -f "$dest/addon-build.txt"
# The GPU machine has none of the optional libraries (OpenSlide, oneDNN,
# libdeflate, all OFF above): the addon may need only the C/C++ runtime.
extra=$(ldd "$dest/histoflow.node" | awk '{print $1}' |
  grep -v -E '^(linux-vdso|/lib64/ld-linux|libc|libm|libstdc\+\+|libgcc_s|libgomp|libdl|libpthread|librt)\.' || true)
if [ -n "$extra" ]; then
  echo "gpu-node-bundle: the addon links libraries the GPU machine lacks: $extra" >&2
  exit 1
fi

# ---- the JS: tsc, then the files the runs load -----------------------------------------
log "compiling TypeScript into $dist"
rm -rf "$dist"
# Type errors elsewhere in the tree (work in progress) do not stop the emit.
nice -n 19 npx tsc -p tsconfig.json --outDir "$dist" || echo "gpu-node-bundle: tsc reported errors (JS emitted anyway)"
ava_config() { echo "export default { files: ['$1/test/**/*.test.js'], timeout: '10m', workerThreads: false };"; }
ava_config dist-gpu >"$dest/ava-gpu.config.mjs"
record=$(mktemp)
logs=$(mktemp -d)
files=()
for t in "${tests[@]}"; do files+=("$dist/test/$t.test.js"); done
log "recording what the test files and the bench CLI load (here, without a GPU: CUDA cases skip)"
ava_config "$dist" >./ava-gpu.config.mjs
trap 'rm -rf ./ava-gpu.config.mjs "$record" "$logs"' EXIT
HISTOFLOW_RECORD=$record HISTOFLOW_ADDON=$PWD/$dest/histoflow.node NODE_OPTIONS="--import=$PWD/scripts/gpu-node-record.mjs" \
  nice -n 19 node node_modules/ava/entrypoints/cli.mjs --config ava-gpu.config.mjs "${files[@]}" >"$logs/tests.txt" 2>&1 ||
  { echo "gpu-node-bundle: the test files failed here:"; tail -n 15 "$logs/tests.txt"; }
tail -n 3 "$logs/tests.txt"
HISTOFLOW_RECORD=$record HISTOFLOW_ADDON=$PWD/$dest/histoflow.node NODE_OPTIONS="--import=$PWD/scripts/gpu-node-record.mjs" \
  nice -n 19 node "$dist/src/cli/main.js" bench stain augment --quick --json >"$logs/bench.json" 2>"$logs/bench.txt" ||
  { echo "gpu-node-bundle: bench --quick failed here:"; tail -n 15 "$logs/bench.txt"; }

log "packing js.tar.xz"
python3 - "$record" "$dest/js.tar.xz" "$dist" <<'PY'
import os, sys, tarfile

record, target, dist = sys.argv[1:4]
root = os.getcwd()
loaded = {os.path.relpath(p, root) for p in open(record).read().split()}
files = set()
for dirpath, _, names in os.walk(dist):
    for n in names:
        if n.endswith(".js") or n.endswith(".json"):
            files.add(os.path.join(dirpath, n))


def package_root(p):
    """node_modules/<pkg> or node_modules/@scope/<pkg> of the innermost node_modules in p."""
    head, _, rest = p.rpartition("node_modules/")
    parts = rest.split("/")
    n = 2 if parts[0].startswith("@") else 1
    return head + "node_modules/" + "/".join(parts[:n])


whole = set()  # package folders carried whole: a native addon loads siblings the recorder cannot see
for p in loaded:
    if not p.startswith("node_modules/") or not os.path.isfile(p):
        continue
    files.add(p)
    pkg = package_root(p)
    d = os.path.dirname(p)
    while True:  # every package.json from the file up to its package: Node reads them to resolve
        pj = os.path.join(d, "package.json")
        if os.path.isfile(pj):
            files.add(pj)
        if d == pkg or len(d) <= len(pkg):
            break
        d = os.path.dirname(d)
    if p.endswith(".node"):
        whole.add(pkg)
if any(p.startswith("node_modules/sharp/") for p in loaded) and os.path.isdir("node_modules/@img"):
    whole.update(os.path.join("node_modules/@img", d) for d in os.listdir("node_modules/@img"))
for d in whole:
    for dirpath, _, names in os.walk(d):
        files.update(os.path.join(dirpath, n) for n in names)
files = sorted(f for f in files if not os.path.islink(f) or os.path.exists(f))
raw = sum(os.path.getsize(f) for f in files)
with tarfile.open(target, "w:xz", preset=9) as tar:
    for f in files:
        arcname = "dist-gpu" + f[len(dist):] if f.startswith(dist + "/") else f
        tar.add(f, arcname=arcname, recursive=False)
print("js.tar.xz: %d files, %.1f MiB raw (%d package folders whole: %s), %.1f MiB packed" % (
    len(files), raw / 2**20, len(whole), ", ".join(sorted(whole)) or "none", os.path.getsize(target) / 2**20))
PY

# ---- does it fit? ------------------------------------------------------------------------
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
carried=$(find "$dest" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
ls -l "$dest"
printf 'working tree %.1f MiB + %s %.1f MiB = %.1f MiB of the 64 MiB a device call carries\n' \
  "$(echo "$tree / 1048576" | bc -l)" "$dest" "$(echo "$carried / 1048576" | bc -l)" "$(echo "($tree + $carried) / 1048576" | bc -l)"
if [ $((tree + carried)) -ge "$limit" ]; then
  echo "gpu-node-bundle: OVER the 64 MiB limit" >&2
  exit 1
fi
cat <<EOF
Device command (one run call; carry ["$dest"]; timeout_s 300):
  bash scripts/gpu-node-run.sh
EOF
