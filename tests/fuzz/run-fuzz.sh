#!/bin/sh
# tests/fuzz/run-fuzz.sh — the body of `make fuzz` (--enable-fuzz builds):
# runs each libFuzzer harness tests/fuzz/fuzz_NAME for FUZZ_SECONDS on a
# copy of its corpus in a temp dir (the tracked corpus is never written),
# with tests/fuzz/NAME.dict when present, and prints execution counts.
# Crash inputs are kept as tests/fuzz/crash-NAME-* in the build dir; the
# log of each run is tests/fuzz/fuzz_NAME.log. Exits 1 if any harness
# found a crash, leak or sanitizer error. FUZZ_JOBS harnesses (default 2,
# one per core) run at once; the summary lines come out in argument order.
# Usage: run-fuzz.sh SRCDIR SECONDS NAME...
srcdir=$1
secs=$2
shift 2
jobs=${FUZZ_JOBS:-2}
fail=0

# One harness; its summary line goes to tests/fuzz/fuzz_NAME.result and
# its exit status says whether it failed.
run_one() {
	name=$1
	bin=tests/fuzz/fuzz_$name
	log=tests/fuzz/fuzz_$name.log
	if [ ! -x "$bin" ]; then
		echo "fuzz_$name: $bin is not built"
		return 1
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fanout-fuzz-$name.XXXXXX") || exit 1
	if [ -d "$srcdir/tests/fuzz/corpus/$name" ]; then
		cp "$srcdir/tests/fuzz/corpus/$name"/* "$tmp"/ 2>/dev/null
	fi
	before=$(ls "$tmp" | wc -l)
	dict=
	[ -f "$srcdir/tests/fuzz/$name.dict" ] && dict="-dict=$srcdir/tests/fuzz/$name.dict"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
		-artifact_prefix="tests/fuzz/crash-$name-" $dict "$tmp" >"$log" 2>&1
	rc=$?
	after=$(ls "$tmp" | wc -l)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	rm -rf "$tmp"
	if [ "$rc" -eq 0 ]; then
		echo "fuzz_$name: ${execs:-?} execs in ${secs} s (${rate:-?}/s), $cov, corpus $before -> $after, no crash"
	else
		echo "fuzz_$name: FAILED (exit $rc) after ${execs:-?} execs; see $log:"
		grep -E 'ERROR|CHECK failed|SUMMARY|Test unit written' "$log" | head -n 10
		return 1
	fi
}

# At most $jobs at once: start one, and after every $jobs wait for the batch.
running=0
for name in "$@"; do
	(run_one "$name" >"tests/fuzz/fuzz_$name.result" 2>&1; echo $? >"tests/fuzz/fuzz_$name.rc") &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait
for name in "$@"; do
	cat "tests/fuzz/fuzz_$name.result"
	[ "$(cat "tests/fuzz/fuzz_$name.rc" 2>/dev/null)" = 0 ] || fail=1
	rm -f "tests/fuzz/fuzz_$name.result" "tests/fuzz/fuzz_$name.rc"
done
exit $fail
