#!/usr/bin/env bash
# The GPU-machine run of issue 19, in one call of under 8 minutes (CMake, nvcc,
# python3 with PyTorch and compute-sanitizer there; no Node, no network):
#   1. builds the native core and its test and bench binaries for the GPU
#      (CUDA architecture: $1, default native; one CPU build, -march=native);
#   2. the parity binary's CUDA tests: every CUDA twin against its CPU kernel on
#      fresh random inputs (seed printed), chip-filling sizes included;
#   3. compute-sanitizer memcheck and racecheck over them at small sizes;
#   4. histoflow_cuda_bench: CUDA-event timings, kernels alone and whole calls,
#      the device-to-device copy bandwidth, the cpu backend of this machine;
#   5. benchmarks/peers/gpu_torch.py: the PyTorch op-by-op peers, same run;
#   6. one JSON with everything (GPU, driver, commit, every figure, the targets)
#      and a short table last.
# Files go to $OUT (or out/gpu-check), six of them (a device call returns at
# most 8): gpu-check.json (everything, the table as summary_md), build.log,
# parity.log, memcheck.log, racecheck.log, bench.log. Copy gpu-check.json to
# benchmarks/results/gpu-<date>-<gpu>.json.
# HISTOFLOW_DEADLINE (epoch seconds) ends every step by then (the device's
# command limit when more runs after this script); else the run takes < 8 min.
# The commit: `git rev-parse HEAD` where .git came along, else $HISTOFLOW_COMMIT.
# Each step has its own time limit; a step that fails or runs out is recorded
# and the run goes on. Exit status: 0 when the build, parity and both
# sanitizers passed (every CUDA test run, none skipped), 1 otherwise, 3 when
# this machine has no usable GPU.
#
# Usage: scripts/gpu-check.sh [CUDA_ARCHITECTURES]   (e.g. 90, or native)
#        scripts/gpu-check.sh --report DIR   (assembles step outputs in DIR, no GPU needed)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
out=${OUT:-out/gpu-check}
arch=${1:-native}
build=${HISTOFLOW_GPU_BUILD:-build-gpu}
start=$(date +%s)

say() { printf '== %s (%ds)\n' "$*" "$(($(date +%s) - start))"; }
# run_step NAME SECONDS LOG CMD...: runs CMD under a time limit, output to LOG
# (and the last lines to the console); records NAME's exit status and seconds.
declare -A step_rc step_s
run_step() {
  local name=$1 limit=$2 log=$3 t0 rc left
  shift 3
  if [ -n "${HISTOFLOW_DEADLINE:-}" ]; then
    left=$((HISTOFLOW_DEADLINE - $(date +%s) - 10))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
      say "$name: skipped, HISTOFLOW_DEADLINE reached"
      step_rc[$name]=deadline
      step_s[$name]=0
      return 124
    fi
  fi
  say "$name (limit ${limit}s)"
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  step_rc[$name]=$rc
  step_s[$name]=$(($(date +%s) - t0))
  tail -n "${TAIL_LINES:-6}" "$log"
  [ "$rc" = 124 ] && echo "   $name: stopped at its ${limit}s limit"
  return "$rc"
}

# report DIR GPU COMMIT ARCH WARNINGS STEPS_JSON SECONDS: from the step outputs
# in DIR (parity.log, memcheck.log, racecheck.log, cuda_bench.json,
# gpu_torch.json, nvidia-smi.txt), DIR/gpu-check.json with every figure and the
# short table (printed too).
report() {
  python3 - "$@" <<'PY'
import json, os, re, sys

out, gpu, commit, arch, warnings, steps, seconds = sys.argv[1:8]
steps = json.loads(steps)


def read(name):
    try:
        with open(os.path.join(out, name), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def load(name):
    text = read(name)
    try:
        return json.loads(text) if text else None
    except ValueError as e:
        return {"unreadable": str(e)}


def tests_summary(log):
    m = re.findall(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", log, re.M)
    if not m:
        return None
    p, f, s = map(int, m[-1])
    return {"passed": p, "failed": f, "skipped": s}


parity_log = read("parity.log")
seed = re.search(r"cuda parity: seed (\d+)", parity_log)
parity = {
    "seed": seed.group(1) if seed else None,
    "tests": tests_summary(parity_log),
    "failed_tests": re.findall(r"^FAIL (.*)$", parity_log, re.M),
    "skipped_tests": re.findall(r"^SKIP (.*)$", parity_log, re.M),
    "cases": [json.loads(l[len("PARITY "):]) for l in parity_log.splitlines() if l.startswith("PARITY {")],
}
parity["ok"] = bool(parity["tests"]) and parity["tests"]["failed"] == 0 and parity["tests"]["skipped"] == 0 \
    and parity["tests"]["passed"] > 0 and steps.get("parity", {}).get("rc") == "0"


def sanitizer(name):
    log = read(name + ".log")
    errors = re.findall(r"ERROR SUMMARY: (\d+) error", log)
    hazards = re.search(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)", log)
    r = {"errors": int(errors[-1]) if errors else None, "tests": tests_summary(log), "rc": steps.get(name, {}).get("rc")}
    if hazards:
        r.update({"hazards": int(hazards.group(1)), "hazard_errors": int(hazards.group(2)),
                  "hazard_warnings": int(hazards.group(3))})
        if r["errors"] is None:  # racecheck may sum up in hazards alone
            r["errors"] = r["hazard_errors"]
    r["ok"] = r["rc"] == "0" and r["errors"] == 0 and bool(r["tests"]) and r["tests"]["failed"] == 0 \
        and r["tests"]["skipped"] == 0
    return r


bench, peers = load("cuda_bench.json"), load("gpu_torch.json")
kernels = (bench or {}).get("kernels", [])
peer_rows = (peers or {}).get("results", [])
copy_gbps = (bench or {}).get("copy", {}).get("d2d_gbps")


def native(op, inp):
    return next((r for r in kernels if r["op"] == op and r["input"] == inp), None)


def peer(op, inp):
    return next((r for r in peer_rows if r["op"] == op and r["input"] == inp), None)


# The issue's targets.
targets = []
for op in ("rgb_to_od", "deconvolve", "stain_transform", "augment"):
    for r in (r for r in kernels if r["op"] == op):
        targets.append({"target": "%s %s kernels >= 50%% of copy bandwidth" % (op, r["input"]),
                        "value": round(r["fraction_of_copy"], 4), "ok": r["fraction_of_copy"] >= 0.5})
for r in (r for r in kernels if r["op"] == "augment"):
    p = peer("augment", r["input"])
    if p:
        ratio = p["device"]["median_ms"] / r["kernels"]["median_ms"]
        targets.append({"target": "augment %s >= 3x the PyTorch op-by-op peer (on the device)" % r["input"],
                        "value": round(ratio, 3), "ok": ratio >= 3})
r = native("macenko fit+transform", "4096x96^2")
if r and "cpu" in r:
    targets.append({"target": "macenko fit+transform 4096x96^2 >= 20x the cpu backend (whole call)",
                    "value": round(r["speedup_whole_call"], 3), "ok": r["speedup_whole_call"] >= 20})

peer_names = {"rgb_to_od": "optical_density", "deconvolve": "deconvolve", "stain_transform": "stain_transform",
              "augment": "augment", "macenko fit+transform": "macenko fit+transform"}
report = {
    "suite": "gpu-check", "issue": 19, "gpu": gpu, "commit": commit, "cuda_architectures": arch,
    "build_warnings": int(warnings or 0), "steps": steps, "seconds": int(seconds),
    "parity": parity, "memcheck": sanitizer("memcheck"), "racecheck": sanitizer("racecheck"),
    "targets": targets, "cuda_bench": bench, "gpu_torch": peers,
    "nvidia_smi": read("nvidia-smi.txt").strip(),
}


def ms(x):
    return "" if x is None else ("%.3f" % x)


lines = ["# gpu-check: %s, commit %s" % (gpu, commit[:12]), ""]
ps = parity["tests"] or {}
worst = {}
for c in parity["cases"]:
    key = (c["twin"], c["metric"])
    w = float("inf") if c["worst"] is None else c["worst"]
    worst[key] = max(worst.get(key, 0), w)
lines.append("| check | result |")
lines.append("| --- | --- |")
lines.append("| build (sm %s) | rc %s, %s warnings |" % (arch, steps.get("build", {}).get("rc"), warnings))
lines.append("| parity (seed %s) | %s passed, %s failed, %s skipped, %d cases: %s |" % (
    parity["seed"], ps.get("passed"), ps.get("failed"), ps.get("skipped"), len(parity["cases"]),
    "ok" if parity["ok"] else "FAILED"))
for name in ("memcheck", "racecheck"):
    s = report[name]
    extra = ", %s hazards" % s.get("hazards") if "hazards" in s else ""
    lines.append("| %s | %s errors%s, rc %s: %s |" % (name, s["errors"], extra, s["rc"], "ok" if s["ok"] else "FAILED"))
lines.append("| device-to-device copy | %s |" % ("%.0f GB/s" % copy_gbps if copy_gbps else "not measured"))
lines.append("")
lines.append("| twin | metric | worst |")
lines.append("| --- | --- | ---: |")
for (twin, metric), w in sorted(worst.items()):
    lines.append("| %s | %s | %.3g |" % (twin, metric, w))
lines.append("")
lines.append("| op | input | kernels ms | of copy | whole call ms | torch device ms | torch +transfers ms | cpu ms |")
lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in kernels:
    p = peer(peer_names.get(r["op"], ""), r["input"])
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        r["op"], r["input"], ms(r["kernels"]["median_ms"]),
        "%.0f%%" % (100 * r["fraction_of_copy"]) if r["bandwidth_bound"] else "",
        ms(r["whole_call"]["median_ms"]), ms(p["device"]["median_ms"]) if p else "",
        ms(p["with_transfers"]["median_ms"]) if p else "", ms(r["cpu"]["median_ms"]) if "cpu" in r else ""))
lines.append("")
lines.append("| target | value | met |")
lines.append("| --- | ---: | --- |")
for t in targets:
    lines.append("| %s | %s | %s |" % (t["target"], t["value"], "yes" if t["ok"] else "NO"))
if not targets:
    lines.append("| (no benchmark figures) | | |")
text = "\n".join(lines) + "\n"
report["summary_md"] = text
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(report, f, indent=1)
    f.write("\n")
print(text)
# Exit 1 unless the build, parity and both sanitizers passed (a test that
# skipped for want of a device counts as not passed).
passed = steps.get("build", {}).get("rc") == "0" and parity["ok"] and report["memcheck"]["ok"] \
    and report["racecheck"]["ok"]
sys.exit(0 if passed else 1)
PY
}

if [ "${1:-}" = --report ]; then
  [ -d "${2:-}" ] || { echo "usage: $0 --report DIR" >&2; exit 2; }
  warnings=$(grep -c -E 'warning[: ]' "$2/build.log" 2>/dev/null)
  steps=${HISTOFLOW_STEPS:-'{}'}
  report "$2" "${HISTOFLOW_GPU:-unknown}" "${HISTOFLOW_COMMIT:-unknown}" "${HISTOFLOW_ARCH:-unknown}" \
    "${warnings:-0}" "$steps" 0
  exit $?
fi
mkdir -p "$out"
work=$(mktemp -d)  # step outputs; the six files for $OUT are made from them at the end
trap 'rm -rf "$work"' EXIT

# ---- 0. this machine ---------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: nvidia-smi is not on PATH: this script needs a machine with an NVIDIA GPU and its driver" >&2
  echo "gpu-check: (the CPU-only checks are scripts/native-tests.sh and the ava tests)" >&2
  exit 3
fi
if ! gpu_csv=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1); then
  echo "gpu-check: nvidia-smi found no usable GPU: $gpu_csv" >&2
  exit 3
fi
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
for tool in cmake python3 "$nvcc_bin"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "gpu-check: $tool not found" >&2; exit 3; }
done
commit=$(git rev-parse HEAD 2>/dev/null || echo "${HISTOFLOW_COMMIT:-unknown}")
echo "gpu: $gpu_csv; commit $commit; $(nproc) CPU threads"
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv >"$work/nvidia-smi.txt" 2>&1

# ---- 1. build ----------------------------------------------------------------------
generator="Unix Makefiles"
command -v ninja >/dev/null 2>&1 && generator=Ninja
[ -f "$build/CMakeCache.txt" ] && ! grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$build/CMakeCache.txt" && rm -rf "$build"
# shellcheck disable=SC2016  # expanded by the inner bash
TAIL_LINES=3 run_step build 150 "$work/build.log" env CUDACXX="$nvcc_bin" bash -c '
  cmake -S . -B "$0" -G "$1" -DHISTOFLOW_ADDON=OFF -DHISTOFLOW_CUDA=ON -DHISTOFLOW_NATIVE_ARCH=ON \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$2" &&
  cmake --build "$0" -j "$(nproc)" --target histoflow_native_tests histoflow_cuda_bench' "$build" "$generator" "$arch"
if [ "${step_rc[build]}" != 0 ]; then
  echo "gpu-check: the build failed; see build.log"
  grep -m 20 -E 'error|Error' "$work/build.log"
fi
warnings=$(grep -c -E 'warning[: ]' "$work/build.log" || true)
tests=$build/histoflow_native_tests
bench=$build/histoflow_cuda_bench

# ---- 2. parity at full size, each launch waited for (a fault names its kernel) --------
# The sanitizer runs leave out the test that asks for too much memory on
# purpose (the failed cudaMalloc would count as an API error).
cuda_tests='on CUDA|cuda parity'
if [ -x "$tests" ]; then
  HISTOFLOW_CUDA_SYNC=1 run_step parity 75 "$work/parity.log" "$tests" "$cuda_tests|needs a GPU|cuda_check"
  # ---- 3. the sanitizers, small sizes ----------------------------------------------------
  export HISTOFLOW_PARITY_SIZE=small
  run_step memcheck 55 "$work/memcheck.log" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 86 \
    --print-limit 40 "$tests" "$cuda_tests"
  run_step racecheck 55 "$work/racecheck.log" compute-sanitizer --tool racecheck --racecheck-report all \
    --error-exitcode 86 --print-limit 40 "$tests" "$cuda_tests"
  unset HISTOFLOW_PARITY_SIZE
else
  for s in parity memcheck racecheck; do step_rc[$s]=not-built; step_s[$s]=0; done
fi

# ---- 4. the CUDA benchmark ---------------------------------------------------------------
if [ -x "$bench" ]; then
  TAIL_LINES=30 run_step cuda_bench 80 "$work/cuda_bench.log" "$bench" --json "$work/cuda_bench.json"
else
  step_rc[cuda_bench]=not-built; step_s[cuda_bench]=0
fi

# ---- 5. the PyTorch peers ----------------------------------------------------------------
TAIL_LINES=12 run_step gpu_torch 50 "$work/gpu_torch.log" env PYTHONUNBUFFERED=1 python3 benchmarks/peers/gpu_torch.py \
  --json "$work/gpu_torch.json"

# ---- 6. one JSON, and the short table ------------------------------------------------------
steps_json=$(for s in build parity memcheck racecheck cuda_bench gpu_torch; do
  printf '"%s":{"rc":"%s","seconds":%s},' "$s" "${step_rc[$s]:-skipped}" "${step_s[$s]:-0}"
done)
steps_json="{${steps_json%,}}"
report "$work" "$gpu_csv" "$commit" "$arch" "$warnings" "$steps_json" "$(($(date +%s) - start))"
report_rc=$?
# The six files (each cut at 4 MiB; the device returns files up to 16 MiB).
keep() { head -c 4194304 "$1" >"$out/$2" 2>/dev/null || true; }
keep "$work/gpu-check.json" gpu-check.json
keep "$work/build.log" build.log
keep "$work/parity.log" parity.log
keep "$work/memcheck.log" memcheck.log
keep "$work/racecheck.log" racecheck.log
cat "$work/cuda_bench.log" "$work/gpu_torch.log" >"$work/bench.log" 2>/dev/null
keep "$work/bench.log" bench.log

status=0
for s in build parity memcheck racecheck; do [ "${step_rc[$s]}" = 0 ] || status=1; done
[ "$report_rc" = 0 ] || status=1
say "done: exit $status"
exit "$status"
