#!/bin/sh
# tests/lib/node.sh TEST.mjs — how `make check` runs a node test (the
# MJS_LOG_COMPILER of tests/local.mk). Before starting node it checks what a
# fresh clone lacks, so the test fails with one clear TAP line ("Bail out!
# ...") instead of a module-not-found trace and "missing test plan":
#   - node itself (NODE, found by configure);
#   - the npm test dependencies of package.json at their pinned versions,
#     installed by `npm ci` in the source tree.
# Env: NODE, FANOUT_SRCDIR (both exported by tests/local.mk).
src=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
node=${NODE:-}
if [ -z "$node" ] || ! command -v "$node" >/dev/null 2>&1; then
	echo "Bail out! node (>= 18) not found: install it (scripts/install-deps.sh) and run configure again"
	exit 1
fi
# The devDependencies of package.json ("name": "version" lines after
# "devDependencies"; versions are exact) against what node_modules holds.
missing=
for d in $(sed -n '/"devDependencies"/,/}/s/^[[:space:]]*"\([^"]*\)"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1@\2/p' \
	"$src/package.json"); do
	name=${d%@*}
	want=${d##*@}
	pj=$src/node_modules/$name/package.json
	have=$(sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" 2>/dev/null | head -1)
	[ "$have" = "$want" ] || missing="$missing $name@$want${have:+ (have $have)}"
done
if [ -n "$missing" ]; then
	echo "Bail out! npm test dependencies missing or outdated:$missing: run 'npm ci' in $src"
	exit 1
fi
exec "$node" "$@"
