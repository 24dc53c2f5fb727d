#!/usr/bin/env bash
# scripts/callgrind-broker.sh — instructions per call on the broker, for
# trimming the valkey backend's function library (BENCHMARKS.md, "Where a
# positioned publish's broker CPU goes"). Starts redis-server (valkey-server
# where present) under valgrind --tool=callgrind on a free loopback port,
# SUBS subscriber connections on channel "ch", loads the fanout library
# (plugins/valkey/library.lua, or -l FILE: a complete library text with its
# "#!lua name=fanout" line, e.g. with extra variant functions), and for each
# COMMAND: warms up (2,000 calls twice, the channel's hash reset between),
# zeroes the counters (callgrind_control -z), runs N pipelined calls with
# redis-benchmark, dumps (callgrind_control -d) and prints the broker's
# instructions per call. Instruction counts do not depend on the machine's
# other load, unlike CPU times (scripts/bench-broker.sh). PAYLOAD in a
# command stands for a 128-byte payload. Stops everything it started.
#
#   scripts/callgrind-broker.sh [-n CALLS] [-s SUBS] [-l LIBRARY] [COMMAND...]
#   (defaults: 20000 calls, 4 subscribers; commands: PUBLISH ch PAYLOAD and
#   FCALL fanout_publish 1 fanout:{ch} PAYLOAD 1000 300, as the backend
#   sends it)
set -euo pipefail
SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=20000
SUBS=4
LIB=
while getopts "n:s:l:" o; do
  case $o in
  n) N=$OPTARG ;;
  s) SUBS=$OPTARG ;;
  l) LIB=$OPTARG ;;
  *) echo "usage: $0 [-n CALLS] [-s SUBS] [-l LIBRARY] [COMMAND...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
  set -- "PUBLISH ch PAYLOAD" "FCALL fanout_publish 1 fanout:{ch} PAYLOAD 1000 300"
fi
REDIS=$(command -v valkey-server || command -v redis-server)
CLI=$(command -v valkey-cli || command -v redis-cli)
BENCH=$(command -v valkey-benchmark || command -v redis-benchmark)
for p in valgrind callgrind_control "$REDIS" "$CLI" "$BENCH"; do
  command -v "$p" >/dev/null || { echo "$0: $p not found" >&2; exit 1; }
done
OUT=$(mktemp -d /tmp/fanout-callgrind-broker-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

PORT=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" "$REDIS" --port "$PORT" \
  --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" >"$OUT/log" 2>&1 &
pids+=($!)
until "$CLI" -p "$PORT" PING >/dev/null 2>&1; do sleep 0.2; done
RPID=$("$CLI" -p "$PORT" INFO server | awk -F: '/^process_id/ { print $2 }' | tr -d '\r')
for _ in $(seq "$SUBS"); do
  "$CLI" -p "$PORT" SUBSCRIBE ch >/dev/null 2>&1 &
  pids+=($!)
done
if [ -n "$LIB" ]; then
  "$CLI" -p "$PORT" -x FUNCTION LOAD REPLACE <"$LIB" >/dev/null
else
  { printf "#!lua name=fanout\nlocal PUB, SIZE, TTL = 'PUBLISH', 1000, 300\n"
    cat "$SRCDIR/plugins/valkey/library.lua"; } | "$CLI" -p "$PORT" -x FUNCTION LOAD REPLACE >/dev/null
fi
until [ "$("$CLI" -p "$PORT" PUBSUB NUMSUB ch | tail -1)" = "$SUBS" ]; do sleep 0.2; done
PAYLOAD=$(head -c 128 /dev/zero | tr '\0' x)

echo "broker instructions per call (callgrind; $N pipelined calls, $SUBS subscribers, 128-byte payloads)"
for cmd in "$@"; do
  c=${cmd//PAYLOAD/$PAYLOAD}
  # shellcheck disable=SC2086
  "$BENCH" -p "$PORT" -n 2000 -P 32 -c 1 -q $c >/dev/null 2>&1
  "$CLI" -p "$PORT" DEL 'fanout:{ch}' >/dev/null
  # shellcheck disable=SC2086
  "$BENCH" -p "$PORT" -n 2000 -P 32 -c 1 -q $c >/dev/null 2>&1 # history full
  callgrind_control -z "$RPID" >/dev/null 2>&1
  # shellcheck disable=SC2086
  "$BENCH" -p "$PORT" -n "$N" -P 32 -c 1 -q $c >/dev/null 2>&1
  callgrind_control -d "$RPID" >/dev/null 2>&1
  f=$(ls -t "$OUT"/cg."$RPID"* | head -1)
  awk -v l="${cmd:0:64}" -v n="$N" '/^(summary|totals):/ { printf "%-66s %8.1f k\n", l, $2 / n / 1000; exit }' "$f"
done
