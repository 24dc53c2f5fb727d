#!/usr/bin/env bash
# scripts/test.sh — run every test of fanout, the way CI does:
#   1. a normal build and `make check` (unit, loader, plugin, integration,
#      browser tests, fuzz corpus replay),
#   2. the C tests of that build under valgrind (`make check-valgrind`),
#   3. the same suite built with clang -fsanitize=address,undefined,
#   4. libFuzzer harnesses over the project's parsers for a bounded time,
#   5. `make distcheck` (the tarball builds, installs and uninstalls; its
#      test run is skipped: steps 1-3 ran the suite),
#   6. the Debian package: built, installed, run, purged
#      (`make check-package`, tests/package/deb.sh; needs root),
#   7. compose.yaml run with podman: images built, the stack up, pages
#      through nginx on all three instances, down
#      (`make check-compose`, tests/integration/compose_stack.mjs; root).
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
#
#   scripts/test.sh [--quick]     --quick: step 1 only
#   scripts/test.sh --valgrind    steps 1 (build only) and 2
# Env: FUZZ_SECONDS (default 15 per harness; two harnesses run at once),
# JOBS (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=${JOBS:-2}
quick=0
valgrind_only=0
case "${1:-}" in
--quick) quick=1 ;;
--valgrind) valgrind_only=1 ;;
"") ;;
*) echo "usage: scripts/test.sh [--quick|--valgrind]" >&2; exit 2 ;;
esac
passed=0
failed=0

log() { printf '\n=== %s\n' "$*"; }

# Add the counts of a build dir's test-suite.log to the totals.
count() {
  local f=$1/test-suite.log p=0 x=0
  if [ -f "$f" ]; then
    p=$(sed -n 's/^# PASS: *//p' "$f" | head -1)
    x=$(( $(sed -n 's/^# FAIL: *//p' "$f" | head -1) + $(sed -n 's/^# ERROR: *//p' "$f" | head -1) + $(sed -n 's/^# XPASS: *//p' "$f" | head -1) ))
  else
    x=1
  fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + x))
  echo "$1: ${p:-0} passed, $x failed"
}

suite() { # name, configure args...
  local dir=$top/_build/$1; shift
  log "build $dir ($*)"
  mkdir -p "$dir"
  (cd "$dir" && "$top/configure" -q "$@" >configure.out 2>&1 && make -j"$jobs" >make.out 2>&1) || {
    tail -40 "$dir/make.out" "$dir/configure.out" 2>/dev/null
    failed=$((failed + 1))
    return
  }
  rm -f "$dir/test-suite.log"
  (cd "$dir" && make -j1 check >check.out 2>&1)
  grep -E '^(FAIL|ERROR|XPASS):' "$dir/check.out" | head -50
  count "$dir"
  if grep -qE '^(FAIL|ERROR):' "$dir/check.out"; then
    for l in $(grep -lE '^(not ok|ERROR)' "$dir"/tests/*/*.log "$dir"/tests/*.log 2>/dev/null); do
      echo "--- $l"; tail -60 "$l"
    done
  fi
}

[ -x configure ] || { log "autoreconf"; autoreconf -fi >/dev/null || exit 1; }
[ -d node_modules/ws ] ||
	echo "note: node_modules missing: the node tests will fail until you run 'npm ci' here"

# The C tests of _build/default under valgrind memcheck.
valgrind_step() {
	local dir=$top/_build/default
	log "valgrind ($dir: make check-valgrind)"
	rm -f "$dir/test-suite.log"
	(cd "$dir" && make -j1 check-valgrind >valgrind.out 2>&1)
	grep -E '^(FAIL|ERROR|XPASS):' "$dir/valgrind.out" | head -50
	count "$dir"
	if grep -qE '^(FAIL|ERROR):' "$dir/valgrind.out"; then
		for l in $(grep -lE '^(not ok|ERROR)|ERROR SUMMARY: [1-9]' "$dir"/tests/*/*.log 2>/dev/null); do
			echo "--- $l"; tail -60 "$l"
		done
	fi
}

if [ $valgrind_only = 1 ]; then
	mkdir -p _build/default
	(cd _build/default && "$top/configure" -q >configure.out 2>&1 && make -j"$jobs" >make.out 2>&1) ||
		{ tail -40 _build/default/make.out; echo "0 passed, 1 failed"; exit 1; }
	valgrind_step
	echo
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
fi

suite default
[ $quick = 0 ] && valgrind_step
if [ $quick = 0 ]; then
  if command -v clang >/dev/null; then
    suite asan CC=clang --enable-asan
    dir=$top/_build/fuzz
    log "fuzz ($dir, ${FUZZ_SECONDS:-15} s per harness)"
    mkdir -p "$dir"
    if (cd "$dir" && "$top/configure" -q CC=clang --enable-fuzz >configure.out 2>&1 &&
        make -j"$jobs" >make.out 2>&1 && make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}" >fuzz.out 2>&1); then
      n=$(grep -c 'no crash' "$dir/fuzz.out" || true)
      passed=$((passed + ${n:-0}))
      grep -E 'execs' "$dir/fuzz.out" | tail -20
    else
      tail -40 "$dir/fuzz.out" "$dir/make.out" 2>/dev/null
      failed=$((failed + 1))
    fi
  else
    echo "clang missing: ASan and fuzz steps cannot run"; failed=$((failed + 1))
  fi
  log "package (make check-package)"
  (cd "$top/_build/default" && make check-package >package.out 2>&1)
  grep -E '^(ok|not ok|Bail out)' "$top/_build/default/package.out"
  p=$(grep -c '^ok' "$top/_build/default/package.out")
  x=$(grep -cE '^(not ok|Bail out)' "$top/_build/default/package.out")
  [ "$p" -gt 0 ] || [ "$x" -gt 0 ] || { tail -20 "$top/_build/default/package.out"; x=1; }
  [ "$x" -gt 0 ] && grep '^#' "$top/_build/default/package.out" | tail -40
  passed=$((passed + p)); failed=$((failed + x))
  log "compose (make check-compose)"
  (cd "$top/_build/default" && make check-compose >compose.out 2>&1)
  grep -E '^(ok|not ok|Bail out)' "$top/_build/default/compose.out"
  p=$(grep -c '^ok' "$top/_build/default/compose.out")
  x=$(grep -cE '^(not ok|Bail out)' "$top/_build/default/compose.out")
  [ "$p" -gt 0 ] || [ "$x" -gt 0 ] || { tail -20 "$top/_build/default/compose.out"; x=1; }
  [ "$x" -gt 0 ] && grep '^#' "$top/_build/default/compose.out" | tail -40
  passed=$((passed + p)); failed=$((failed + x))
  log "distcheck"
  if (cd "$top/_build/default" && make -j"$jobs" distcheck TESTS= >distcheck.out 2>&1); then
    passed=$((passed + 1)); echo "distcheck ok"
  else
    tail -40 "$top/_build/default/distcheck.out"; failed=$((failed + 1))
  fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
