#!/bin/sh
# tests/integration/bench_plot.sh — scripts/bench-plot.sh draws bench.sh's
# JSON reports as SVG (gnuplot): from the reports in
# tests/integration/data/bench/ (one short run of each scenario) it writes
# throughput.svg, latency.svg and cpu.svg, each a complete SVG document with
# its title, and the CPU chart carries the medians of the reports; a
# directory without reports is an error. TAP.
src=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp -d /tmp/fanout-plot-test.XXXXXX)
trap 'rm -rf "$out"' EXIT
echo "1..3"
if ! command -v gnuplot >/dev/null; then
	if [ "${CI:-}" = true ]; then echo "not ok 1 - gnuplot missing (apt install gnuplot-nox)"; exit 1; fi
	echo "ok 1 # SKIP gnuplot missing"; echo "ok 2 # SKIP"; echo "ok 3 # SKIP"; exit 0
fi
if bash "$src/scripts/bench-plot.sh" "$src/tests/integration/data/bench" "$out/svg" >"$out/log" 2>&1; then
	echo "ok 1 - bench-plot.sh draws the reports"
else
	echo "not ok 1 - bench-plot.sh failed"; sed 's/^/# /' "$out/log"; exit 1
fi
bad=
for c in "throughput:Throughput: deliveries/s received against offered" \
	"latency:Publish -> receive latency" "cpu:Server CPU per delivery"; do
	f=$out/svg/${c%%:*}.svg
	title=${c#*:}
	{ [ -s "$f" ] && grep -q '<svg' "$f" && grep -q '</svg>' "$f" && grep -qF "$title" "$f"; } ||
		bad="$bad ${c%%:*}"
done
# The CPU bars: A's 8.0 us per delivery, C's 11.0, the floors' median 8.6
# (6.48, 10.645), the reference 9.6.
for v in '>8.0<' '>11.0<' '>8.6<' '>9.6<'; do grep -qF "$v" "$out/svg/cpu.svg" || bad="$bad cpu$v"; done
if [ -z "$bad" ]; then
	echo "ok 2 - three SVG charts with their titles and the reports' medians"
else
	echo "not ok 2 - charts missing or wrong:$bad"; exit 1
fi
mkdir "$out/empty"
if bash "$src/scripts/bench-plot.sh" "$out/empty" >"$out/log2" 2>&1; then
	echo "not ok 3 - a directory without reports must be an error"; exit 1
elif grep -q 'no NAME-RUN.json reports' "$out/log2"; then
	echo "ok 3 - a directory without reports is an error that says so"
else
	echo "not ok 3 - unclear error"; sed 's/^/# /' "$out/log2"; exit 1
fi
