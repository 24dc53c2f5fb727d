#!/bin/sh
# tests/lib/valgrind.sh PROGRAM [ARGS...] — runs a C test under valgrind
# memcheck for `make check-valgrind` (tests/local.mk). A memory error or a
# definitely lost block fails the test: valgrind exits 97 and the TAP driver
# reports "ERROR: ... exited with status 97", the report in the test's .log.
# Possibly-lost and still-reachable blocks (thread stacks, dlopen'ed
# plugins kept open by the mock host) are not errors.
exec valgrind --quiet --error-exitcode=97 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--num-callers=30 "$@"
