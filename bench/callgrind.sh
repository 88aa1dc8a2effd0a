#!/usr/bin/env bash
# Instructions per call of figure 1 (GET one SGT device) under callgrind, SDK and raw baseline.
#
# The server runs in a process of its own (not under valgrind); the client runs N calls under
# callgrind for two values of N, so startup, client construction and the first connection
# cancel out: per call = (Ir(N2) - Ir(N1)) / (N2 - N1).
#
#   bench/callgrind.sh [N1 N2]      (default 200 1200)
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${1:-200}
N2=${2:-1200}

if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq valgrind
fi

cargo build --quiet -p iot-sdk-bench --release
BIN=target/release/iot-sdk-bench
OUT=$(mktemp -d)

"$BIN" --serve >"$OUT/serve.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$OUT"' EXIT
PORT=
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/^PORT //p' "$OUT/serve.log")
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "the server did not start" >&2; exit 1; }

# Total instructions (Ir) of one run.
instructions() {
  local mode=$1 n=$2 file="$OUT/callgrind.$1.$2"
  valgrind --tool=callgrind --callgrind-out-file="$file" \
    "$BIN" --child "calls-$mode" "$n" --port "$PORT" >/dev/null 2>"$file.log"
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$file" | head -n 1
}

declare -A per_call
for mode in sdk raw; do
  a=$(instructions "$mode" "$N1")
  b=$(instructions "$mode" "$N2")
  per_call[$mode]=$(( (b - a) / (N2 - N1) ))
  printf '%-4s Ir(%d) = %d, Ir(%d) = %d, per call = %d\n' "$mode" "$N1" "$a" "$N2" "$b" "${per_call[$mode]}"
done
awk -v s="${per_call[sdk]}" -v r="${per_call[raw]}" \
  'BEGIN { printf "instructions per call: sdk %d, raw %d, sdk/raw %.2f\n", s, r, s / r }'
