#!/usr/bin/env bash
# scripts/bench-broker.sh — what one publish costs the broker, for SCALING.md:
# plain pub/sub on one node, the valkey backend's positioned publish (FCALL
# fanout_publish with history), and a 3-node Redis Cluster with plain
# PUBLISH (broadcast over the cluster bus to every node) vs sharded
# SPUBLISH (only the shard that owns the channel). Starts its own
# redis-server processes (valkey-server where present) on free loopback
# ports, SUBS subscriber connections standing in for fanoutd instances, and
# redis-benchmark as the publisher (pipelined); reads the broker processes'
# CPU time (utime + stime from /proc) around each run and prints the CPU per
# publish summed over all broker processes. Stops everything it started.
#
#   scripts/bench-broker.sh [-n MESSAGES] [-s SUBS] [-d PAYLOAD_BYTES]
#   (defaults: 200000 messages, 4 subscribers, 128-byte payloads)
#
# The machine's other load adds noise: compare cases within one run; the
# CPU time (not wall time) is what is reported.
set -euo pipefail
SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=200000
SUBS=4
SIZE=128
while getopts "n:s:d:" o; do
  case $o in
  n) N=$OPTARG ;;
  s) SUBS=$OPTARG ;;
  d) SIZE=$OPTARG ;;
  *) echo "usage: $0 [-n MESSAGES] [-s SUBS] [-d PAYLOAD_BYTES]" >&2; exit 2 ;;
  esac
done
REDIS=$(command -v valkey-server || command -v redis-server)
CLI=$(command -v valkey-cli || command -v redis-cli)
BENCH=$(command -v valkey-benchmark || command -v redis-benchmark)
TICK=$(getconf CLK_TCK)
OUT=$(mktemp -d /tmp/fanout-bench-broker-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

# A free port whose cluster bus port (+10000) is free too.
free_port() {
  node -e "
    const net = require('net');
    (async () => { for (;;) {
      const p = await new Promise((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const x = s.address().port; s.close(() => r(x)); }); });
      if (p > 55535) continue;
      const ok = await new Promise((r) => { const s = net.createServer(); s.once('error', () => r(false)); s.listen(p + 10000, '127.0.0.1', () => s.close(() => r(true))); });
      if (ok) { console.log(p); return; }
    } })();"
}

# start_node PORT [extra args...]: a redis-server in the background.
start_node() {
  local port=$1
  shift
  mkdir -p "$OUT/$port"
  "$REDIS" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT/$port" \
    --daemonize no "$@" >"$OUT/$port/log" 2>&1 &
  pids+=($!)
  echo $! >"$OUT/$port/pid"
  until "$CLI" -p "$port" PING >/dev/null 2>&1; do sleep 0.05; done
}

cpu_ticks() { # PID...: utime + stime of every process, in clock ticks
  local t=0
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}

# subscribe PORT CMD CHANNEL: one subscriber connection reading everything.
subscribe() {
  "$CLI" -p "$1" "$2" "$3" >/dev/null 2>&1 &
  pids+=($!)
}

load_library() { # PORT PUBCMD: the valkey backend's functions, as the backend loads them
  { printf "#!lua name=fanout\nlocal PUB, SIZE, TTL = '%s', 1000, 300\n" "$2"
    cat "$SRCDIR/plugins/valkey/library.lua"; } | "$CLI" -p "$1" -x FUNCTION LOAD REPLACE >/dev/null
}

# measure LABEL PUBLISH_PORT "COMMAND ARGS" BROKER_PIDS...
measure() {
  local label=$1 port=$2 cmd=$3
  shift 3
  local before after
  sleep 0.5
  before=$(cpu_ticks "$@")
  # shellcheck disable=SC2086
  "$BENCH" -p "$port" -n "$N" -P 32 -c 4 -q $cmd >"$OUT/bench.out" 2>&1
  sleep 1 # let the subscribers drain
  after=$(cpu_ticks "$@")
  awk -v l="$label" -v t=$((after - before)) -v k="$TICK" -v n="$N" \
    'BEGIN { printf "%-58s %8.2f us\n", l, t * 1e6 / k / n }'
}

PAYLOAD=$(head -c "$SIZE" /dev/zero | tr '\0' x)
echo "broker CPU per publish (utime+stime of every broker process / $N messages;"
echo "$SIZE-byte payloads; $SUBS subscriber connections standing in for fanoutd instances)"
echo

# ---- one node ----
P=$(free_port)
start_node "$P"
NODE=$(cat "$OUT/$P/pid")
load_library "$P" PUBLISH
for _ in $(seq "$SUBS"); do subscribe "$P" SUBSCRIBE ch; done
measure "single node: PUBLISH" "$P" "PUBLISH ch $PAYLOAD" "$NODE"
measure "single node: FCALL fanout_publish (history 1000, positioned)" "$P" \
  "FCALL fanout_publish 1 fanout:{ch} $PAYLOAD" "$NODE"
measure "single node: PUBLISH, no subscriber channel" "$P" "PUBLISH nobody $PAYLOAD" "$NODE"

# ---- a 3-node cluster ----
PORTS=()
for _ in 1 2 3; do PORTS+=("$(free_port)"); done
NODES=()
for p in "${PORTS[@]}"; do
  start_node "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout 2000 --cluster-require-full-coverage no
  NODES+=("$(cat "$OUT/$p/pid")")
done
"$CLI" -p "${PORTS[0]}" CLUSTER MEET 127.0.0.1 "${PORTS[1]}" >/dev/null
"$CLI" -p "${PORTS[0]}" CLUSTER MEET 127.0.0.1 "${PORTS[2]}" >/dev/null
"$CLI" -p "${PORTS[0]}" CLUSTER ADDSLOTSRANGE 0 5460 >/dev/null
"$CLI" -p "${PORTS[1]}" CLUSTER ADDSLOTSRANGE 5461 10921 >/dev/null
"$CLI" -p "${PORTS[2]}" CLUSTER ADDSLOTSRANGE 10922 16383 >/dev/null
for p in "${PORTS[@]}"; do
  until "$CLI" -p "$p" CLUSTER INFO | grep -q cluster_state:ok; do sleep 0.1; done
  load_library "$p" SPUBLISH
done
# The node that owns a key's slot (the ranges assigned above).
owner_of() {
  local slot
  slot=$("$CLI" -p "${PORTS[0]}" CLUSTER KEYSLOT "$1")
  if [ "$slot" -le 5460 ]; then echo "${PORTS[0]}"; elif [ "$slot" -le 10921 ]; then
    echo "${PORTS[1]}"; else echo "${PORTS[2]}"; fi
}
OWNER=$(owner_of ch)
# Plain pub/sub: fanoutd instances spread over the nodes, each SUBSCRIBEs.
for i in $(seq "$SUBS"); do subscribe "${PORTS[$((i % 3))]}" SUBSCRIBE ch; done
measure "3-node cluster: PUBLISH (broadcast to every node)" "$OWNER" "PUBLISH ch $PAYLOAD" \
  "${NODES[@]}"
# Sharded: every instance SSUBSCRIBEs on the owner.
for _ in $(seq "$SUBS"); do subscribe "$OWNER" SSUBSCRIBE ch; done
measure "3-node cluster: SPUBLISH (the owning shard only)" "$OWNER" "SPUBLISH ch $PAYLOAD" \
  "${NODES[@]}"
measure "3-node cluster: FCALL fanout_publish (SPUBLISH inside)" "$OWNER" \
  "FCALL fanout_publish 1 fanout:{ch} $PAYLOAD" "${NODES[@]}"
echo
echo "(plain PUBLISH in a cluster also costs every other node: each one receives"
echo " the message over the cluster bus and delivers it to its own subscribers)"
