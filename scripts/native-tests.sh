#!/usr/bin/env bash
# Runs the native parity binary of every CPU level that was built (BUILD_DIR,
# default build-native) and that this CPU runs; says which levels it left out.
# Exit status: non-zero when any level's run fails.
set -euo pipefail
dir=${1:-build-native}
base="$dir/histoflow_native_tests"
[ -x "$base" ] || { echo "native-tests: $base not found (cmake --build $dir first)" >&2; exit 2; }
runs=$("$base" --cpu-levels)
status=0
echo "== level baseline ($base)"
"$base" || status=1
for level in v3 v4; do
  bin="$dir/histoflow_native_tests-$level"
  [ -x "$bin" ] || continue
  if grep -qx "$level" <<<"$runs"; then
    echo "== level $level ($bin)"
    "$bin" || status=1
  else
    echo "== level $level built, not run: this CPU does not run x86-64-$level"
  fi
done
exit $status
