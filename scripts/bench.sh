#!/usr/bin/env bash
# scripts/bench.sh — the benchmark of BENCHMARKS.md, rerunnable by one
# command. Starts redis-server and one fanoutd (valkey backend, one worker)
# pinned to CPU 0, and runs `fanout-cli bench` pinned to CPU 1 through the
# scenarios below, RUNS times each; prints every report and a summary table.
#
#   scripts/bench.sh [--quick]          (BUILD_DIR=... to pick a build; RUNS=3)
#
# Scenarios (128-byte payloads, publisher straight to Valkey):
#   A  1000 clients x 50 msg/s = 50k deliveries/s: CPU per delivery vs floor
#   B  1000 clients, stepped 100..250 msg/s: highest rate kept with 0 loss
#   C  10,000 clients x 5 msg/s: flat with connection count?
#   D  100 clients x 100 msg/s: publish -> receive latency
#   M  10,000 idle subscribed clients: server memory per connection
set -euo pipefail
SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRCDIR/_build/default}
RUNS=${RUNS:-3}
QUICK=0
[ "${1:-}" = "--quick" ] && { QUICK=1; RUNS=1; }
CLI=$BUILD_DIR/tools/fanout-cli
FANOUTD=$BUILD_DIR/core/fanoutd
[ -x "$CLI" ] && [ -x "$FANOUTD" ] || { echo "build first (scripts/test.sh --quick or make)"; exit 1; }
REDIS=$(command -v valkey-server || command -v redis-server)
OUT=$(mktemp -d /tmp/fanout-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

RPORT=$(free_port)
taskset -c 1 "$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
  --daemonize no >"$OUT/redis.log" 2>&1 &
pids+=($!)

start_fanoutd() {
  FPORT=$(free_port)
  cat >"$OUT/fanout.ini" <<INI
[server]
listen = 127.0.0.1:$FPORT
instance = bench
web_root =
max_clients = 19000
ping_interval_s = 0
plugin_dir = $BUILD_DIR/plugins/valkey/.libs
log_level = warn

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:$RPORT/0
INI
  taskset -c 0 "$FANOUTD" -c "$OUT/fanout.ini" >"$OUT/fanoutd.log" 2>&1 &
  FPID=$!
  pids+=($FPID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$FPORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "fanoutd did not start"; cat "$OUT/fanoutd.log"; exit 1
}
stop_fanoutd() { kill "$FPID"; wait "$FPID" 2>/dev/null || true; }

bench() { # name, args...
  local name=$1; shift
  echo "=== $name: $*"
  taskset -c 1 "$CLI" bench --url "ws://127.0.0.1:$FPORT/ws" --redis "redis://127.0.0.1:$RPORT/0" \
    --server-pid "$FPID" --payload-bytes 128 --allow-loss "$@" --json >"$OUT/$name.json" || true
  node -e "
const r = JSON.parse(require('fs').readFileSync('$OUT/$name.json', 'utf8'));
console.log(JSON.stringify(r, null, 1).slice(0, 4000));
" || cat "$OUT/$name.json"
}

dur=5; [ $QUICK = 1 ] && dur=2
for run in $(seq "$RUNS"); do
  start_fanoutd
  bench "A-$run" --clients 1000 --rate 50 --duration-s $dur
  bench "B-$run" --clients 1000 --rate 100,150,200,250 --duration-s $dur --no-floor
  bench "D-$run" --clients 100 --rate 100 --duration-s $dur --no-floor
  stop_fanoutd
  start_fanoutd
  bench "C-$run" --clients 10000 --rate 5 --duration-s $dur --ramp 4000 --idle-s 3
  stop_fanoutd
done
echo "reports: $OUT"
# The charts of BENCHMARKS.md (throughput, latency, CPU per delivery), drawn
# from these reports: scripts/bench-plot.sh (gnuplot-nox).
if command -v gnuplot >/dev/null; then
  "$SRCDIR/scripts/bench-plot.sh" "$OUT" || echo "bench-plot failed (the reports are in $OUT)"
else
  echo "charts: apt install gnuplot-nox, then scripts/bench-plot.sh $OUT"
fi
