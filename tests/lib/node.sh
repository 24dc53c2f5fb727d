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
# The root package.json, and each workspace's (tests/browser/trpc-react):
# a workspace's package is in its own node_modules when the root has
# another version, else hoisted to the root's.
for pkg in "$src" "$src/tests/browser/trpc-react"; do
	[ -f "$pkg/package.json" ] || continue
	for d in $(sed -n '/"devDependencies"/,/}/s/^[[:space:]]*"\([^"]*\)"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1@\2/p' \
		"$pkg/package.json"); do
		name=${d%@*}
		want=${d##*@}
		have=
		for nm in "$pkg/node_modules" "$src/node_modules"; do
			have=$(sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' \
				"$nm/$name/package.json" 2>/dev/null | head -1)
			[ -n "$have" ] && break
		done
		[ "$have" = "$want" ] || missing="$missing $name@$want${have:+ (have $have)}"
	done
done
if [ -n "$missing" ]; then
	echo "Bail out! npm test dependencies missing or outdated:$missing: run 'npm ci' in $src"
	exit 1
fi
exec "$node" "$@"
