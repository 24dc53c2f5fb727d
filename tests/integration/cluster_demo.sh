#!/bin/sh
# cluster_demo.sh — the README's demo command works: `scripts/demo.sh
# --check` starts the broker, three fanoutd, nginx and the publisher on free
# loopback ports, checks that clients through nginx receive updates from
# every instance, stops everything, and leaves no process behind. Speaks TAP.
set -u
SRC=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${FANOUT_BUILDDIR:-$SRC}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fanout-demo-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [ ! -x "$BUILD/core/fanoutd" ] || [ ! -x "$BUILD/tools/fanout-cli" ] || ! command -v bash >/dev/null; then
	if [ "${CI:-}" = true ]; then
		echo "not ok 1 - scripts/demo.sh --check # would skip under CI: no build in $BUILD"
		echo "1..1"
		exit 1
	fi
	echo "ok 1 - scripts/demo.sh --check # SKIP no build in $BUILD"
	echo "1..1"
	exit 0
fi

# The demo keeps its temp dir (logs, configs, the pids it started) under our
# TMP (--keep), so every process it started can be checked afterwards.
start=$(date +%s)
if TMPDIR=$TMP BUILD_DIR=$BUILD timeout 120 bash "$SRC/scripts/demo.sh" --check --keep --port auto >"$TMP/out" 2>&1; then
	echo "ok 1 - scripts/demo.sh --check: clients through nginx get updates from c1, c2 and c3"
	rc=0
else
	echo "not ok 1 - scripts/demo.sh --check"
	rc=1
fi
sed 's/^/# /' "$TMP/out"
echo "# took $(($(date +%s) - start)) s"

# Each pid the demo recorded is gone, and no process mentions its temp dir.
left=
started=$(cat "$TMP"/fanout-demo.*/pids 2>/dev/null | tr '\n' ' ')
for pid in $(cat "$TMP"/fanout-demo.*/pids 2>/dev/null | cut -d' ' -f2); do
	kill -0 "$pid" 2>/dev/null && left="$left $pid"
done
for f in /proc/[0-9]*/cmdline; do
	if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -q "$TMP/fanout-demo"; then
		pid=${f#/proc/}
		left="$left ${pid%/cmdline}"
	fi
done
if [ -z "$started" ]; then
	echo "not ok 2 - the demo recorded the processes it started"
	rc=1
elif [ -z "$left" ]; then
	echo "ok 2 - every process the demo started is gone ($started)"
else
	echo "not ok 2 - processes left behind:$left"
	rc=1
fi
echo "1..2"
exit $rc
