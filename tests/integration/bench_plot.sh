#!/bin/sh
# tests/integration/bench_plot.sh — scripts/bench-plot.sh draws bench.sh's
# JSON reports as SVG (gnuplot): from the reports in
# tests/integration/data/bench/ (one short run of A B C D U UD) it writes
# throughput.svg, latency.svg and cpu.svg, each a complete SVG document with
# its title and the series those reports feed; a report set without the
# reference peer still draws (fanoutd alone); a directory without reports
# is an error. TAP.
src=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp -d /tmp/fanout-plot-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "1..4"
if ! command -v gnuplot >/dev/null; then
	if [ "${CI:-}" = true ]; then echo "not ok 1 - gnuplot missing (apt install gnuplot-nox)"; exit 1; fi
	echo "ok 1 # SKIP gnuplot missing"; echo "ok 2 # SKIP"; echo "ok 3 # SKIP"; echo "ok 4 # SKIP"; exit 0
fi
if bash "$src/scripts/bench-plot.sh" "$src/tests/integration/data/bench" "$out/svg" >"$out/log" 2>&1; then
	echo "ok 1 - bench-plot.sh draws the reports"
else
	echo "not ok 1 - bench-plot.sh failed"; sed 's/^/# /' "$out/log"; exit 1
fi
bad=
for c in "throughput:Deliveries/s received against offered" \
	"latency:Publish -> receipt latency" "cpu:Server CPU per delivery"; do
	f=$out/svg/${c%%:*}.svg
	title=${c#*:}
	{ [ -s "$f" ] && grep -q '<svg' "$f" && grep -q '</svg>' "$f" && grep -qF "$title" "$f"; } ||
		bad="$bad ${c%%:*}"
done
# Each chart has the series its reports feed: fanoutd (B, D), the reference
# peer of the same run (U, UD), A and C, the floors.
for want in "throughput:fanoutd (median)" "throughput:uWebSockets.js (median)" \
	"latency:fanoutd p99" "latency:uWebSockets.js p50" \
	"cpu:fanoutd, A (1000) and C (19,000 clients)" "cpu:bare write() floor" \
	"cpu:uWebSockets.js (median)"; do
	grep -qF "${want#*:}" "$out/svg/${want%%:*}.svg" || bad="$bad ${want}"
done
if [ -z "$bad" ]; then
	echo "ok 2 - three SVG charts with their titles and series"
else
	echo "not ok 2 - charts missing or wrong:$bad"; exit 1
fi
mkdir "$out/fanoutd-only"
cp "$src/tests/integration/data/bench/A-1.json" "$src/tests/integration/data/bench/B-1.json" "$out/fanoutd-only/"
if bash "$src/scripts/bench-plot.sh" "$out/fanoutd-only" >"$out/log3" 2>&1 &&
	grep -qF "fanoutd (median)" "$out/fanoutd-only/throughput.svg" &&
	! grep -qF "uWebSockets.js" "$out/fanoutd-only/throughput.svg"; then
	echo "ok 3 - without the reference peer's reports the charts show fanoutd alone"
else
	echo "not ok 3 - reports of fanoutd alone"; sed 's/^/# /' "$out/log3"; exit 1
fi
mkdir "$out/empty"
if bash "$src/scripts/bench-plot.sh" "$out/empty" >"$out/log2" 2>&1; then
	echo "not ok 4 - a directory without reports must be an error"; exit 1
elif grep -q 'no NAME-RUN.json reports' "$out/log2"; then
	echo "ok 4 - a directory without reports is an error that says so"
else
	echo "not ok 4 - unclear error"; sed 's/^/# /' "$out/log2"; exit 1
fi
