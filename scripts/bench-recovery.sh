#!/usr/bin/env bash
# scripts/bench-recovery.sh — the recovery storm of BENCHMARKS.md (issue 10):
# CLIENTS clients on one of three fanoutd (valkey backend, history on); that
# instance drains (SIGTERM); while they are away MISSED updates per channel
# are published (positioned); then all reconnect at once to the other two
# and resume with `since`. `fanout-cli bench --recovery` reports the time
# until every client is live again (recovered, every missed update received
# once, in order), the servers' and the broker's CPU; this script adds what
# the two instances' /metrics say (ring hits, history requests). RUNS runs.
#
#   scripts/bench-recovery.sh            CLIENTS=10000 MISSED=100 CHANNELS=1 RUNS=3
#   RING=0 scripts/bench-recovery.sh     the same with the in-memory ring off
#                                        (every resume asks the broker)
#   BUILD_DIR=... picks a build
#   scripts/bench-recovery.sh cost       CPU per delivery with positions on vs
#                                        off: 1000 clients x RATE msg/s (50),
#                                        published through fanoutd (--via ws:
#                                        FCALL fanout_publish with history, plain
#                                        PUBLISH without), on/off alternated RUNS
#                                        times
#
# fanoutd instances run on CPU 0, the load generator and redis on CPU 1 (as
# scripts/bench.sh does). The conditions (load average) are printed first:
# wall-clock numbers mean something only on a quiet machine.
set -euo pipefail
SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRCDIR/_build/default}
CLIENTS=${CLIENTS:-10000}
MISSED=${MISSED:-100}
CHANNELS=${CHANNELS:-1}
RUNS=${RUNS:-3}
RING=${RING:-256}
CLI=$BUILD_DIR/tools/fanout-cli
FANOUTD=$BUILD_DIR/core/fanoutd
[ -x "$CLI" ] && [ -x "$FANOUTD" ] || { echo "build first (make)"; exit 1; }
REDIS=$(command -v valkey-server || command -v redis-server)
OUT=$(mktemp -d /tmp/fanout-recovery-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
metric() { # metric PORT NAME
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${1:-}" = cost ]; then
  RATE=${RATE:-50}
  DUR=${DUR:-10}
  RPORT=$(free_port)
  taskset -c 1 "$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
    --daemonize no >"$OUT/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  echo "# 1000 clients x $RATE msg/s for $DUR s, 128-byte payloads, published through fanoutd"
  for run in $(seq 1 "$RUNS"); do
    for hist in 1000 0; do
      port=$(free_port)
      printf '[server]\nlisten = 127.0.0.1:%s\ninstance = cost\nweb_root =\nallow_publish = true\n' "$port" >"$OUT/cost.ini"
      printf 'ping_interval_s = 0\nplugin_dir = %s\nlog_level = warn\n' "$BUILD_DIR/plugins/valkey/.libs" >>"$OUT/cost.ini"
      printf '[backend valkey]\nplugin = valkey\nurl = redis://127.0.0.1:%s/0\nhistory_size = %s\n' "$RPORT" "$hist" >>"$OUT/cost.ini"
      taskset -c 0 "$FANOUTD" -c "$OUT/cost.ini" >"$OUT/cost.log" 2>&1 &
      fpid=$!
      for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.05; done
      taskset -c 1 "$CLI" bench --url "ws://127.0.0.1:$port/ws" --redis "redis://127.0.0.1:$RPORT/0" \
        --via ws --server-pid "$fpid" --clients 1000 --rate "$RATE" --duration-s "$DUR" \
        --payload-bytes 128 --no-floor --json >"$OUT/cost-$hist-$run.json" || true
      us=$(node -e "const r=JSON.parse(require('fs').readFileSync('$OUT/cost-$hist-$run.json'));const s=(r.steps||[r])[0];console.log(JSON.stringify({us:s.server.us_per_delivery,received:s.received,expected:s.expected,gaps:s.gaps,dups:s.dups,p99_ms:s.latency_ms.p99}))")
      echo "run $run, positions $([ "$hist" = 0 ] && echo off || echo on): $us"
      kill "$fpid"; wait "$fpid" 2>/dev/null || true
    done
  done
  exit 0
fi
echo "# $CLIENTS clients, $CHANNELS channel(s), $MISSED missed updates per channel, recovery_ring_messages $RING"

for run in $(seq 1 "$RUNS"); do
  RPORT=$(free_port)
  taskset -c 1 "$REDIS" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
    --daemonize no >"$OUT/redis.log" 2>&1 &
  RPID=$!
  pids+=("$RPID")
  for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  fports=() fpids=()
  for name in a b c; do
    port=$(free_port)
    cat >"$OUT/$name.ini" <<EOF
[server]
listen = 127.0.0.1:$port
instance = $name
plugin_dir = $BUILD_DIR/plugins/valkey/.libs
max_clients = 19000
shutdown_grace_ms = 2000
recovery_ring_messages = $RING
log_level = warn
[backend valkey]
plugin = valkey
url = redis://127.0.0.1:$RPORT/0
EOF
    taskset -c 0 "$FANOUTD" -c "$OUT/$name.ini" >"$OUT/$name.log" 2>&1 &
    fpids+=($!)
    pids+=($!)
    fports+=("$port")
  done
  for p in "${fports[@]}"; do
    for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.05; done
  done
  taskset -c 1 "$CLI" bench --recovery --json \
    --url "ws://127.0.0.1:${fports[0]}/ws" --url "ws://127.0.0.1:${fports[1]}/ws" \
    --url "ws://127.0.0.1:${fports[2]}/ws" --drain-pid "${fpids[0]}" \
    --redis "redis://127.0.0.1:$RPORT" --server-pid "${fpids[1]},${fpids[2]}" --broker-pid "$RPID" \
    --clients "$CLIENTS" --channels "$CHANNELS" --missed "$MISSED" >"$OUT/run$run.json" || true
  hits=0 reqs=0 rec=0
  for p in "${fports[1]}" "${fports[2]}"; do
    hits=$((hits + $(metric "$p" fanout_recovery_ring_hits_total)))
    reqs=$((reqs + $(metric "$p" 'fanout_history_requests_total{kind="recover"}')))
    rec=$((rec + $(metric "$p" 'fanout_recovery_results_total{result="recovered",reason=""}')))
  done
  echo "run $run: $(cat "$OUT/run$run.json")"
  echo "run $run: instances b+c: $rec recovered, $hits from the ring alone, $reqs history requests to the broker"
  for p in "${fpids[@]}" "$RPID"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
echo "# reports in $OUT"
