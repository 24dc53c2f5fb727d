#!/usr/bin/env bash
# scripts/bench-plot.sh — draws the JSON reports of scripts/bench.sh as SVG
# charts with gnuplot (Debian: gnuplot-nox). bench.sh calls it as its last
# step; BENCHMARKS.md shows the charts of the run it reports
# (benchmarks/*.svg, drawn from benchmarks/results/*.json).
#
#   scripts/bench-plot.sh RESULTS_DIR [OUT_DIR]     (OUT_DIR: RESULTS_DIR)
#
# RESULTS_DIR holds bench.sh's reports, NAME-RUN.json (A-1.json, B-2.json,
# ...; any subset). Charts (one point per run and step; the line joins the
# medians):
#   throughput.svg  deliveries/s received against offered (scenario B's
#                   steps), with y = x and the reference peer's zero-loss rate
#   latency.svg     publish -> receive p50 / p90 / p99 against the delivery
#                   rate (B's steps and D), log scale
#   cpu.svg         server CPU per delivery: 1000 clients (A), 10,000 clients
#                   (C), the bare-write floor measured in the same runs, and
#                   the reference peer
# The reference peer (nginx + nchan) was measured once on this VM class and
# is not rerun by bench.sh; its numbers are BENCHMARKS.md's "reference" column.
set -euo pipefail
IN=${1:?usage: scripts/bench-plot.sh RESULTS_DIR [OUT_DIR]}
OUT=${2:-$IN}
command -v gnuplot >/dev/null || { echo "bench-plot: gnuplot missing (apt install gnuplot-nox)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench-plot: node missing" >&2; exit 1; }
mkdir -p "$OUT"
DAT=$(mktemp -d /tmp/fanout-plot-XXXXXX)
trap 'rm -rf "$DAT"' EXIT

# nginx + nchan on this VM class (BENCHMARKS.md, reference column).
REF_NAME="nginx+nchan"
REF_ZERO_LOSS_PER_S=120000 # highest zero-loss delivery rate, 1000 clients
REF_US_PER_DELIVERY=9.6    # 48 % of a core at 50 k deliveries/s
REF_P50_MS=0.8             # 100 clients x 100 msg/s
REF_P99_MS=2.9

# JSON -> whitespace-separated data files, one per chart series.
node - "$IN" "$DAT" <<'JS'
const fs = require('fs'), path = require('path');
const [inDir, dat] = process.argv.slice(2);
const reports = {};
for (const f of fs.readdirSync(inDir)) {
  const m = f.match(/^([A-Z])-(\d+)\.json$/);
  if (!m) continue;
  try { (reports[m[1]] ||= []).push(JSON.parse(fs.readFileSync(path.join(inDir, f), 'utf8'))); }
  catch (e) { console.error(`bench-plot: ${f}: ${e.message} (skipped)`); }
}
const steps = (k) => (reports[k] || []).flatMap((r) => (r.steps || []).map((s) => ({ ...s, clients: r.clients })));
const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const write = (name, rows) => fs.writeFileSync(path.join(dat, name), rows.map((r) => r.join(' ')).join('\n') + '\n');
const offered = (s) => s.expected / s.secs;
// Group steps by offered rate (rounded), for the median lines.
const byRate = (ss, f) => {
  const g = new Map();
  for (const s of ss) { const k = Math.round(offered(s) / 1000) * 1000; (g.get(k) || g.set(k, []).get(k)).push(f(s)); }
  return [...g.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k, median(v)]);
};
const B = steps('B'), D = steps('D'), A = steps('A'), C = steps('C');
write('tput_points', B.map((s) => [offered(s), s.deliveries_per_s, s.loss]));
write('tput_median', byRate(B, (s) => s.deliveries_per_s));
for (const p of ['p50', 'p90', 'p99']) {
  write(`lat_${p}_points`, [...B, ...D].map((s) => [offered(s), s.latency_ms[p]]));
  write(`lat_${p}_median`, byRate([...B, ...D], (s) => s.latency_ms[p]));
}
// CPU per delivery: bars (label, median, min, max) — server at A, at C, floor at A.
const us = (ss, f) => ss.map(f).filter((x) => typeof x === 'number' && isFinite(x));
const bar = (label, v, rgb) => (v.length ? [JSON.stringify(label), median(v), Math.min(...v), Math.max(...v), rgb] : null);
const bars = [
  bar(`fanoutd, ${A[0]?.clients ?? '?'} clients`, us(A, (s) => s.server && s.server.us_per_delivery), 0x1b9e77),
  bar(`fanoutd, ${C[0]?.clients ?? '?'} clients`, us(C, (s) => s.server && s.server.us_per_delivery), 0x1b9e77),
  bar('bare write() floor', us([...A, ...C], (s) => s.floor && s.floor.us_per_write), 0x999999),
].filter(Boolean);
write('cpu_bars', bars);
const n = Object.values(reports).reduce((a, r) => a + r.length, 0);
fs.writeFileSync(path.join(dat, 'meta'), `${n} ${B.length} ${D.length} ${bars.length}\n`);
JS
read -r NREP NB ND NBARS <"$DAT/meta"
[ "$NREP" -gt 0 ] || { echo "bench-plot: no NAME-RUN.json reports in $IN" >&2; exit 1; }

STYLE="set terminal svg size 760,440 dynamic enhanced font 'sans,12' background '#ffffff'
set grid lc rgb '#dddddd'
set key top left box opaque
set border lc rgb '#555555'"

drawn=()
if [ "$NB" -gt 0 ]; then
  gnuplot <<GP
$STYLE
set output '$OUT/throughput.svg'
set title 'Throughput: deliveries/s received against offered (scenario B, every run)'
set xlabel 'offered deliveries/s'
set ylabel 'received deliveries/s'
set format x '%.0s%c'
set format y '%.0s%c'
set xrange [0:*]
set yrange [0:*]
set offsets 0, graph 0.05, graph 0.12, 0
plot x title 'all delivered (y = x)' lc rgb '#999999' dt 2, \
     $REF_ZERO_LOSS_PER_S title '$REF_NAME: highest zero-loss rate' lc rgb '#d95f02' dt 4 lw 2, \
     '$DAT/tput_median' using 1:2 with lines title 'fanoutd (median)' lc rgb '#1b9e77' lw 2, \
     '$DAT/tput_points' using 1:2 with points title 'fanoutd (each run)' lc rgb '#1b9e77' pt 7 ps 0.6
GP
  drawn+=(throughput.svg)
fi
if [ $((NB + ND)) -gt 0 ]; then
  gnuplot <<GP
$STYLE
set output '$OUT/latency.svg'
set title 'Publish -> receive latency by delivery rate (scenarios B and D)'
set xlabel 'offered deliveries/s'
set ylabel 'latency (ms, log scale)'
set logscale y
set format x '%.0s%c'
set xrange [0:*]
set offsets 0, graph 0.05, 0, 0
set key outside right top
\$ref << EOD
10000 $REF_P50_MS $REF_P99_MS
EOD
plot '$DAT/lat_p99_points' using 1:2 with points title 'p99' lc rgb '#d95f02' pt 7 ps 0.6, \\
     '$DAT/lat_p90_points' using 1:2 with points title 'p90' lc rgb '#7570b3' pt 7 ps 0.6, \\
     '$DAT/lat_p50_points' using 1:2 with points title 'p50' lc rgb '#1b9e77' pt 7 ps 0.6, \\
     '$DAT/lat_p99_median' using 1:2 with lines notitle lc rgb '#d95f02', \\
     '$DAT/lat_p90_median' using 1:2 with lines notitle lc rgb '#7570b3', \\
     '$DAT/lat_p50_median' using 1:2 with lines notitle lc rgb '#1b9e77', \\
     \$ref using 1:3 with points title '$REF_NAME p99' lc rgb '#d95f02' pt 6 ps 1.5, \\
     \$ref using 1:2 with points title '$REF_NAME p50' lc rgb '#1b9e77' pt 6 ps 1.5
GP
  drawn+=(latency.svg)
fi
if [ "$NBARS" -gt 0 ]; then
  printf '"%s" %s %s %s %d\n' "$REF_NAME (reference)" $REF_US_PER_DELIVERY $REF_US_PER_DELIVERY \
    $REF_US_PER_DELIVERY $((0xd95f02)) \
    >>"$DAT/cpu_bars"
  gnuplot <<GP
$STYLE
set output '$OUT/cpu.svg'
set title 'Server CPU per delivery (µs; bar: median, whiskers: runs)'
set ylabel 'µs of CPU per delivery'
set style fill solid 0.7 border -1
set boxwidth 0.6
set yrange [0:*]
set xtics nomirror
set key off
plot '$DAT/cpu_bars' using 0:2:5:xtic(1) with boxes lc rgb variable, \
     '' using 0:2:3:4 with yerrorbars lc rgb '#333333' pt -1, \
     '' using 0:2:(sprintf('%.1f', \$2)) with labels offset 2.2,0.7
GP
  drawn+=(cpu.svg)
fi
echo "bench-plot: $NREP reports -> ${drawn[*]/#/$OUT/}"
