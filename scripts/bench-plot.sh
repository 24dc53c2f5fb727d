#!/usr/bin/env bash
# scripts/bench-plot.sh — draws the JSON reports of scripts/bench.sh as SVG
# charts with gnuplot (Debian: gnuplot-nox). bench.sh calls it as its last
# step; BENCHMARKS.md shows the charts of the run it reports.
#
#   scripts/bench-plot.sh RESULTS_DIR [OUT_DIR]     (OUT_DIR: RESULTS_DIR)
#
# RESULTS_DIR holds bench.sh's reports, NAME-RUN.json (A-1.json, B-2.json,
# UD-1.json, ...; any subset). Every run's steps are points, the line joins
# the medians; x is the offered delivery rate (log scale when it spans more
# than a decade):
#   throughput.svg  deliveries/s received: fanoutd (B) and the reference
#                   peer measured in the same run (U: uWebSockets.js), y = x
#   latency.svg     publish -> receipt p50 / p99: fanoutd (B, D), the
#                   reference peer (U, UD)
#   cpu.svg         server CPU per delivery: fanoutd (B's ladder, A at 1000
#                   clients, C at 19,000), the reference peer (U), and the
#                   bare one-write-per-frame floor measured after A and C
# The nginx+nchan figures of BENCHMARKS.md's older table (measured once on
# this VM class, not rerun) are drawn as single marks for comparison.
set -euo pipefail
IN=${1:?usage: scripts/bench-plot.sh RESULTS_DIR [OUT_DIR]}
OUT=${2:-$IN}
command -v gnuplot >/dev/null || { echo "bench-plot: gnuplot missing (apt install gnuplot-nox)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench-plot: node missing" >&2; exit 1; }
mkdir -p "$OUT"
DAT=$(mktemp -d /tmp/fanout-plot-XXXXXX)
trap 'rm -rf "$DAT"' EXIT

# nginx + nchan, measured once on this VM class (BENCHMARKS.md).
REF_NAME="nginx+nchan"
REF_ZERO_LOSS_PER_S=120000 # highest zero-loss delivery rate, 1000 clients
REF_US_PER_DELIVERY=9.6    # 48 % of a core at 50 k deliveries/s
REF_P50_MS=0.8             # 100 clients x 100 msg/s = 10 k deliveries/s
REF_P99_MS=2.9

# JSON -> whitespace-separated data files, one per chart series.
node - "$IN" "$DAT" <<'JS'
const fs = require('fs'), path = require('path');
const [inDir, dat] = process.argv.slice(2);
const reports = {};
for (const f of fs.readdirSync(inDir)) {
  const m = f.match(/^([A-Z]+)-(\d+)\.json$/);
  if (!m) continue;
  try { (reports[m[1]] ||= []).push(JSON.parse(fs.readFileSync(path.join(inDir, f), 'utf8'))); }
  catch (e) { console.error(`bench-plot: ${f}: ${e.message} (skipped)`); }
}
const steps = (...ks) => ks.flatMap((k) => (reports[k] || []).flatMap((r) =>
  (r.steps || []).filter((s) => s.secs > 0 && s.expected > 0).map((s) => ({ ...s, clients: r.clients }))));
const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const write = (name, rows) => fs.writeFileSync(path.join(dat, name), rows.map((r) => r.join(' ')).join('\n') + '\n');
const offered = (s) => s.expected / s.secs;
const ok = (x) => typeof x === 'number' && isFinite(x) && x >= 0;
// Medians of f over the steps of each offered rate (1 % buckets).
const byRate = (ss, f) => {
  const g = new Map();
  for (const s of ss) {
    const v = f(s);
    if (!ok(v)) continue;
    const k = Number(offered(s).toPrecision(2));
    (g.get(k) || g.set(k, []).get(k)).push(v);
  }
  return [...g.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, median(v)]);
};
const pts = (ss, f) => ss.map((s) => [offered(s), f(s)]).filter(([, v]) => ok(v));
const F = steps('B'), FL = steps('B', 'D'), R = steps('U'), RL = steps('U', 'UD');
const recv = (s) => s.deliveries_per_s, us = (s) => s.server && s.server.us_per_delivery;
write('f_tput', pts(F, recv)); write('f_tput_med', byRate(F, recv));
write('r_tput', pts(R, recv)); write('r_tput_med', byRate(R, recv));
for (const p of ['p50', 'p99']) {
  const lat = (s) => s.latency_ms && s.latency_ms[p] > 0 ? s.latency_ms[p] : NaN;
  write(`f_${p}`, pts(FL, lat)); write(`f_${p}_med`, byRate(FL, lat));
  write(`r_${p}`, pts(RL, lat)); write(`r_${p}_med`, byRate(RL, lat));
}
write('f_cpu', pts(F, us)); write('f_cpu_med', byRate(F, us));
write('r_cpu', pts(R, us)); write('r_cpu_med', byRate(R, us));
const labelled = (k, what) => steps(k).filter((s) => ok(us(s))).map((s) => [offered(s), us(s), JSON.stringify(`${what} ${s.clients}`)]);
write('f_cpu_ac', [...labelled('A', 'fanoutd,'), ...labelled('C', 'fanoutd,')]);
write('floor', [...steps('A'), ...steps('C')].filter((s) => s.floor && ok(s.floor.us_per_write)).map((s) => [offered(s), s.floor.us_per_write]));
const all = [...F, ...FL, ...R, ...RL, ...steps('A'), ...steps('C')].map(offered);
const n = Object.values(reports).reduce((a, r) => a + r.length, 0);
const lo = Math.min(...all, 10000), hi = Math.max(...all, 10000);
fs.writeFileSync(path.join(dat, 'meta'),
  `${n} ${F.length} ${FL.length + RL.length} ${F.length + R.length + steps('A', 'C').length} ${R.length} ${hi / lo > 20 ? 1 : 0}\n`);
JS
read -r NREP NB NLAT NCPU NREF LOGX <"$DAT/meta"
[ "$NREP" -gt 0 ] || { echo "bench-plot: no NAME-RUN.json reports in $IN" >&2; exit 1; }

STYLE="set terminal svg size 760,440 dynamic enhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set key below maxrows 4 width -2
set border lc rgb '#555555'
set xlabel 'offered deliveries/s'
set format x '%.0s%c'"
[ "$LOGX" = 1 ] && STYLE="$STYLE
set logscale x"
FC="lc rgb '#1b9e77'"   # fanoutd
RC="lc rgb '#7570b3'"   # the reference peer measured in the run
NC="lc rgb '#d95f02'"   # nginx+nchan, BENCHMARKS.md
# A series with no data is left out rather than failing the chart.
series() { # series FILE "CLAUSE": the plot clause, or nothing when FILE is empty
  [ -s "$DAT/$1" ] && [ "$(wc -w <"$DAT/$1")" -gt 0 ] && printf "'%s' %s, " "$DAT/$1" "$2"
  return 0
}

drawn=()
if [ "$NB" -gt 0 ] || [ "$NREF" -gt 0 ]; then
  plot="$(series f_tput "using 1:2 with points title 'fanoutd (each run)' $FC pt 7 ps 0.5")"
  plot="$plot$(series f_tput_med "using 1:2 with linespoints title 'fanoutd (median)' $FC lw 2 pt 7 ps 0.8")"
  plot="$plot$(series r_tput "using 1:2 with points title 'uWebSockets.js (each run)' $RC pt 6 ps 0.5")"
  plot="$plot$(series r_tput_med "using 1:2 with linespoints title 'uWebSockets.js (median)' $RC lw 2 pt 6 ps 0.8")"
  gnuplot <<GP
$STYLE
set output '$OUT/throughput.svg'
set title 'Deliveries/s received against offered (1000 clients)'
set ylabel 'received deliveries/s'
set format y '%.0s%c'
$([ "$LOGX" = 1 ] && echo "set logscale y")
plot $plot x title 'all delivered (y = x)' lc rgb '#999999' dt 2, \
     $REF_ZERO_LOSS_PER_S title '$REF_NAME zero-loss limit' $NC dt 4
GP
  drawn+=(throughput.svg)
fi
if [ "$NLAT" -gt 0 ]; then
  plot=""
  for p in p99 p50; do
    plot="$plot$(series f_$p "using 1:2 with points title 'fanoutd $p' $FC pt $([ $p = p99 ] && echo 9 || echo 7) ps 0.5")"
    plot="$plot$(series f_${p}_med "using 1:2 with lines notitle $FC lw $([ $p = p99 ] && echo 2 || echo 1)")"
    plot="$plot$(series r_$p "using 1:2 with points title 'uWebSockets.js $p' $RC pt $([ $p = p99 ] && echo 8 || echo 6) ps 0.5")"
    plot="$plot$(series r_${p}_med "using 1:2 with lines notitle $RC lw $([ $p = p99 ] && echo 2 || echo 1)")"
  done
  gnuplot <<GP
$STYLE
set output '$OUT/latency.svg'
set title 'Publish -> receipt latency (p50, p99; via Valkey)'
set ylabel 'ms (log scale)'
set logscale y
\$nchan << EOD
10000 $REF_P50_MS $REF_P99_MS
EOD
plot $plot \$nchan using 1:3 with points title '$REF_NAME p99' $NC pt 8 ps 1.4, \
     \$nchan using 1:2 with points title '$REF_NAME p50' $NC pt 6 ps 1.4
GP
  drawn+=(latency.svg)
fi
if [ "$NCPU" -gt 0 ]; then
  plot="$(series f_cpu "using 1:2 with points title 'fanoutd, 1000 clients (each run)' $FC pt 7 ps 0.5")"
  plot="$plot$(series f_cpu_med "using 1:2 with lines title 'fanoutd (median)' $FC lw 2")"
  plot="$plot$(series f_cpu_ac "using 1:2 with points title 'fanoutd, A (1000) and C (19,000 clients)' $FC pt 5 ps 1")"
  plot="$plot$(series r_cpu "using 1:2 with points title 'uWebSockets.js (each run)' $RC pt 6 ps 0.5")"
  plot="$plot$(series r_cpu_med "using 1:2 with lines title 'uWebSockets.js (median)' $RC lw 2")"
  plot="$plot$(series floor "using 1:2 with points title 'bare write() floor' lc rgb '#333333' pt 2 ps 1")"
  gnuplot <<GP
$STYLE
set output '$OUT/cpu.svg'
set title 'Server CPU per delivery'
set ylabel 'µs of CPU per delivery'
set yrange [0:*]
\$nchan << EOD
50000 $REF_US_PER_DELIVERY
EOD
plot $plot \$nchan using 1:2 with points title '$REF_NAME' $NC pt 8 ps 1.4
GP
  drawn+=(cpu.svg)
fi
echo "bench-plot: $NREP reports -> ${drawn[*]/#/$OUT/}"
