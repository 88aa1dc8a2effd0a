#!/usr/bin/env bash
# Instructions under callgrind, SDK and hand-written raw baseline, for three figures:
#
#   bench/callgrind.sh get    [N1 N2]   GET one SGT device (figure 1), per call (default 200 1200)
#   bench/callgrind.sh page   [N1 N2]   GET one 500-device page (figure 2), per call (default 10 60)
#   bench/callgrind.sh ingest [N1 N2]   SGT ingest at 0 ms latency (figure 7), per reading
#                                       (default 20000 120000)
#   bench/callgrind.sh                  all three
#
# The server runs in a process of its own (not under valgrind); the client runs under callgrind
# for two sizes, so startup, client construction and the first connection cancel out:
# per unit = (Ir(N2) - Ir(N1)) / (N2 - N1). For ingest, the instructions of making the readings
# (mode `ingest-none`) are subtracted from both sides.
set -euo pipefail
cd "$(dirname "$0")/.."

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
    "$BIN" --child "$mode" "$n" --port "$PORT" >/dev/null 2>"$file.log"
  sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$file" | head -n 1
}

# Instructions per unit of `mode` between sizes n1 and n2.
per_unit() {
  local a b
  a=$(instructions "$1" "$2")
  b=$(instructions "$1" "$3")
  echo $(( (b - a) / ($3 - $2) ))
}

figure() {
  local name=$1 unit=$2 n1=$3 n2=$4 sdk raw none=0
  sdk=$(per_unit "$name-sdk" "$n1" "$n2")
  raw=$(per_unit "$name-raw" "$n1" "$n2")
  if [ "$name" = ingest ]; then
    none=$(per_unit ingest-none "$n1" "$n2")
  fi
  awk -v f="$name" -v u="$unit" -v s="$sdk" -v r="$raw" -v z="$none" 'BEGIN {
    printf "%-6s instructions per %s: sdk %d, raw %d, sdk/raw %.3f\n", f, u, s - z, r - z, (s - z) / (r - z) }'
}

case "${1:-all}" in
  get) figure calls call "${2:-200}" "${3:-1200}" ;;
  page) figure page call "${2:-10}" "${3:-60}" ;;
  ingest) figure ingest reading "${2:-20000}" "${3:-120000}" ;;
  all)
    figure calls call 200 1200
    figure page call 10 60
    figure ingest reading 20000 120000
    ;;
  *) echo "usage: bench/callgrind.sh [get|page|ingest] [N1 N2]" >&2; exit 2 ;;
esac
