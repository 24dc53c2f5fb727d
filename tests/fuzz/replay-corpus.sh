#!/bin/sh
# tests/fuzz/replay-corpus.sh NAME — runs tests/fuzz/corpus/NAME/ through the
# replay build of fuzz_NAME.c (tests/fuzz/replay_NAME) and prints one TAP
# line, so each corpus is a regression suite in `make check`. Used by the
# corpus_NAME.sh wrappers. Reads FANOUT_SRCDIR / FANOUT_BUILDDIR (exported by
# tests/local.mk); falls back to this script's tree and the current dir.
name=$1
srcdir=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${FANOUT_BUILDDIR:-.}
bin=$builddir/tests/fuzz/replay_$name
dir=$srcdir/tests/fuzz/corpus/$name

echo "1..1"
if [ ! -x "$bin" ]; then
	echo "not ok 1 - fuzz_$name corpus: $bin is not built"
	exit 1
fi
n=$(find "$dir" -type f ! -name '.*' | wc -l)
if [ "$n" -eq 0 ]; then
	echo "not ok 1 - fuzz_$name corpus: no inputs in $dir"
	exit 1
fi
out=$(${FUZZ_REPLAY_WRAPPER:-} "$bin" "$dir" 2>&1)
rc=$?
echo "$out" | sed 's/^#* */# /'
ran=$(echo "$out" | sed -n 's/^# \([0-9]*\) inputs$/\1/p')
if [ "$rc" -eq 0 ] && [ "$ran" = "$n" ]; then
	echo "ok 1 - fuzz_$name corpus ($n inputs)"
else
	echo "not ok 1 - fuzz_$name corpus ($n inputs, ${ran:-0} replayed, exit $rc)"
	exit 1
fi
