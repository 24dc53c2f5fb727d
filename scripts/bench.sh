#!/usr/bin/env bash
# scripts/bench.sh — the benchmark of BENCHMARKS.md, rerunnable by one
# command. Starts redis-server and fanoutd (valkey backend, one worker)
# pinned to CPU 0, and runs `fanout-cli bench` pinned to CPU 1 (with redis)
# through the scenarios below, RUNS times each; writes one JSON report per
# scenario and run, then a summary (medians of the runs, with their range).
#
#   scripts/bench.sh [--quick] [SCENARIOS]   e.g. scripts/bench.sh B U
#   BUILD_DIR=... picks a build; RUNS=3; NO_UWS=1 skips the reference peer
#
# Scenarios (128-byte payloads unless said, publisher straight to Valkey):
#   A  1000 clients x 50 msg/s: CPU per delivery vs the one-write-per-frame
#      floor measured right after in the same shape
#   B  1000 clients, a ladder of 250..5000 msg/s (0.25M..5M deliveries/s):
#      the highest rate with zero loss and p99 < 50 ms
#   U  B's ladder against the reference peer: uWebSockets.js
#      (@trufflesuite/uws-js-unofficial 20.30) fed by ioredis
#      (scripts/bench-uws.mjs), installed by this script into its own
#      folder ($UWS_DIR, default ~/.cache/fanout-bench/uws), outside the
#      test path
#   C  19,000 clients (about what the fd limit of 20,000 allows) x 2 msg/s:
#      CPU per delivery vs its floor, against A's ratio
#   D  100 clients x 100 msg/s: publish -> receipt latency, and the broker
#      hop alone (--broker-hop); D1 the same with one client (no fan-out
#      order: what one client waits beyond the broker)
#   E  1000 clients x 20 msg/s of 1 KiB JSON records: permessage-deflate off
#      (E-off) and on (E-on): bytes read per delivery, CPU per delivery
#   M  10,000 idle subscribed clients: server memory per connection
#   S  storms: 10,000 connects on one worker (all confirmed); then three
#      instances under 10,000 clients, one drained (all back on the others)
set -euo pipefail
SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRCDIR/_build/default}
RUNS=${RUNS:-3}
QUICK=0
[ "${1:-}" = "--quick" ] && { QUICK=1; RUNS=1; shift; }
SCEN=${*:-A B U C D E M S}
CLI=$BUILD_DIR/tools/fanout-cli
FANOUTD=$BUILD_DIR/core/fanoutd
[ -x "$CLI" ] && [ -x "$FANOUTD" ] || { echo "build first (scripts/test.sh --quick or make)"; exit 1; }
REDIS=$(command -v valkey-server || command -v redis-server)
OUT=$(mktemp -d /tmp/fanout-bench-XXXXXX)
UWS_DIR=${UWS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fanout-bench/uws}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
has() { case " $SCEN " in *" $1 "*) return 0 ;; esac; return 1; }

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg);" \
  "somaxconn $(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo ?); $(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo '?')" |
  tee "$OUT/conditions.txt"

RPORT=$(free_port)
taskset -c 1 "$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
  --daemonize no >"$OUT/redis.log" 2>&1 &
pids+=($!)

# start_fanoutd NAME [EXTRA_INI_LINE...]: one instance on CPU 0 (FPID, FPORT)
start_fanoutd() {
  local name=$1; shift
  FPORT=$(free_port)
  {
    printf '[server]\nlisten = 127.0.0.1:%s\ninstance = %s\nweb_root =\n' "$FPORT" "$name"
    printf 'max_clients = 19500\nping_interval_s = 0\nplugin_dir = %s\nlog_level = warn\n' \
      "$BUILD_DIR/plugins/valkey/.libs"
    for l in "$@"; do printf '%s\n' "$l"; done
    printf '\n[backend valkey]\nplugin = valkey\nurl = redis://127.0.0.1:%s/0\n' "$RPORT"
  } >"$OUT/$name.ini"
  taskset -c 0 "$FANOUTD" -c "$OUT/$name.ini" >"$OUT/$name.log" 2>&1 &
  FPID=$!
  pids+=($FPID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$FPORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "fanoutd did not start"; cat "$OUT/$name.log"; exit 1
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The reference peer, installed once into its own folder (exact versions).
start_uws() {
  if [ ! -d "$UWS_DIR/node_modules/@trufflesuite/uws-js-unofficial" ]; then
    mkdir -p "$UWS_DIR"
    echo '{"private":true}' >"$UWS_DIR/package.json"
    (cd "$UWS_DIR" && npm install --no-audit --no-fund --loglevel=error \
      @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 ioredis@5.9.3) >&2
  fi
  FPORT=$(free_port)
  UWS_DIR=$UWS_DIR taskset -c 0 node "$SRCDIR/scripts/bench-uws.mjs" "$FPORT" \
    "redis://127.0.0.1:$RPORT/0" >"$OUT/uws.log" 2>&1 &
  FPID=$!
  pids+=($FPID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$FPORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "the reference peer did not start"; cat "$OUT/uws.log"; exit 1
}

bench() { # name, args...
  local name=$1; shift
  echo "=== $name: $*"
  taskset -c 1 "$CLI" bench --url "ws://127.0.0.1:$FPORT/ws" --redis "redis://127.0.0.1:$RPORT/0" \
    --server-pid "$FPID" --allow-loss "$@" --json >"$OUT/$name.json" || true
}

dur=5; [ $QUICK = 1 ] && dur=2
LADDER=250,500,1000,1500,2000,2500,3000,4000,5000
[ $QUICK = 1 ] && LADDER=250,1000,2500
for run in $(seq "$RUNS"); do
  if has A || has B || has D; then
    start_fanoutd bench
    has A && bench "A-$run" --clients 1000 --rate 50 --duration-s $dur --payload-bytes 128
    has B && bench "B-$run" --clients 1000 --rate $LADDER --duration-s $dur --payload-bytes 128 \
      --no-floor --drain-ms 5000
    has D && bench "D-$run" --clients 100 --rate 100 --duration-s $dur --payload-bytes 128 \
      --no-floor --broker-hop
    has D && bench "D1-$run" --clients 1 --rate 100 --duration-s $dur --payload-bytes 128 \
      --no-floor --broker-hop
    stop_pid "$FPID"
  fi
  if has U && [ -z "${NO_UWS:-}" ]; then
    start_uws
    bench "U-$run" --clients 1000 --rate $LADDER --duration-s $dur --payload-bytes 128 \
      --no-floor --drain-ms 5000
    bench "UD-$run" --clients 100 --rate 100 --duration-s $dur --payload-bytes 128 --no-floor
    stop_pid "$FPID"
  fi
  if has C; then
    start_fanoutd bench
    bench "C-$run" --clients 19000 --rate 2 --duration-s $((dur * 2)) --ramp 4000 --idle-s 3 \
      --payload-bytes 128
    stop_pid "$FPID"
  fi
  if has E; then
    start_fanoutd bench "permessage_deflate = true"
    bench "E-off-$run" --clients 1000 --rate 20 --duration-s $dur --payload-bytes 1024 --payload-json
    bench "E-on-$run" --clients 1000 --rate 20 --duration-s $dur --payload-bytes 1024 --payload-json \
      --deflate
    stop_pid "$FPID"
  fi
  if has M; then
    start_fanoutd bench
    bench "M-$run" --clients 10000 --rate 1 --messages 1 --ramp 4000 --idle-s 3 --no-floor
    stop_pid "$FPID"
  fi
  if has S; then
    start_fanoutd storm1
    echo "=== S-connect-$run"
    taskset -c 1 "$CLI" bench --storm --json --url "ws://127.0.0.1:$FPORT/ws" --clients 10000 \
      --server-pid "$FPID" >"$OUT/S-connect-$run.json" || true
    stop_pid "$FPID"
    urls=() spids=()
    for i in 1 2 3; do
      start_fanoutd "drain$i" "shutdown_grace_ms = 10000"
      urls+=(--url "ws://127.0.0.1:$FPORT/ws"); spids+=("$FPID")
    done
    echo "=== S-drain-$run"
    taskset -c 1 "$CLI" bench --storm --json "${urls[@]}" --clients 10000 \
      --server-pid "$(IFS=,; echo "${spids[*]}")" --drain-pid "${spids[0]}" \
      >"$OUT/S-drain-$run.json" || true
    for p in "${spids[@]}"; do stop_pid "$p"; done
  fi
done

echo "reports: $OUT"
node "$SRCDIR/scripts/bench-summary.mjs" "$OUT" | tee "$OUT/summary.md"
# The charts of BENCHMARKS.md (throughput, latency, CPU per delivery), drawn
# from these reports: scripts/bench-plot.sh (gnuplot-nox).
if ! ls "$OUT"/[ABCDU]-[0-9]*.json >/dev/null 2>&1; then
  : # nothing to draw (the charts show A, B, C, D and U)
elif command -v gnuplot >/dev/null; then
  "$SRCDIR/scripts/bench-plot.sh" "$OUT" || echo "bench-plot failed (the reports are in $OUT)"
else
  echo "charts: apt install gnuplot-nox, then scripts/bench-plot.sh $OUT"
fi
