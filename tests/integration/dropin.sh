#!/bin/sh
# dropin.sh — a third party's view: `make install` into a temporary root,
# build the example backend OUT of the tree with nothing but
# `pkg-config --cflags --libs fanout-plugin`, and load the .so by path into
# the installed fanoutd; a subscriber then receives its ticks (positioned:
# the example keeps a history, so each carries its offset).
set -u
echo "1..4"
: "${FANOUT_BUILDDIR:?run through make check}"
root=$(mktemp -d /tmp/fanout-dropin-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$root"; }
trap cleanup EXIT
fail() { echo "not ok $1 - $2"; shift 2; for l in "$@"; do echo "# $l"; done; exit 1; }

if make -C "$FANOUT_BUILDDIR" install DESTDIR="$root" >"$root.install.log" 2>&1; then
  echo "ok 1 - make install into a temporary root"
else
  fail 1 "make install into a temporary root" "$(tail -20 "$root.install.log")"
fi
rm -f "$root.install.log"

pc=$(find "$root" -name fanout-plugin.pc | head -1)
hdr=$(find "$root" -path '*/include/fanout/plugin.h' | head -1)
src=$(find "$root" -path '*/share/fanout/example/example.c' | head -1)
fanoutd=$(find "$root" -type f -name fanoutd | head -1)
[ -n "$pc" ] && [ -n "$hdr" ] && [ -n "$src" ] && [ -n "$fanoutd" ] ||
  fail 2 "installed files present" "pc=$pc hdr=$hdr src=$src fanoutd=$fanoutd"

work=$root/outside
mkdir -p "$work"
cp "$src" "$work/"
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs fanout-plugin) ||
  fail 2 "pkg-config fanout-plugin" "no flags"
# Only the installed header: no -I into the source tree.
if (cd "$work" && ${CC:-cc} -Wall -Wextra -Werror -o example.so example.c $flags) >"$work/cc.log" 2>&1; then
  echo "ok 2 - example backend builds out of tree with pkg-config ($flags)"
else
  fail 2 "example backend builds out of tree" "$(cat "$work/cc.log")"
fi

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cat >"$work/fanout.ini" <<INI
[server]
listen = 127.0.0.1:$port
instance = dropin
web_root =

[backend ex]
plugin = $work/example.so
tick_ms = 50
tick_channel = ticks
INI
if "$fanoutd" -c "$work/fanout.ini" --check-config >"$work/check.log" 2>&1; then
  echo "ok 3 - installed fanoutd accepts the drop-in backend (--check-config)"
else
  fail 3 "--check-config with the drop-in backend" "$(cat "$work/check.log")"
fi
"$fanoutd" -c "$work/fanout.ini" >"$work/fanoutd.log" 2>&1 &
pid=$!
out=$(cd "$FANOUT_SRCDIR" && node --input-type=module -e "
import { wsClient, waitFor, httpGet } from './tests/lib/harness.mjs';
await waitFor(async () => (await httpGet($port, '/readyz')).status === 200, { what: 'ready' });
const c = await wsClient('ws://127.0.0.1:$port/ws?channel=ticks');
const a = await c.next((f) => f.type === 'message', 3000);
const b = await c.next((f) => f.type === 'message', 3000);
console.log(JSON.stringify([a, b]));
await c.close();
" 2>&1)
kill -TERM "$pid"; wait "$pid"; code=$?; pid=
case "$out" in
  *'"channel":"ticks","instance":"dropin","offset":'*'"data":{"tick":'*)
    if [ "$code" = 0 ]; then echo "ok 4 - ticks from the drop-in backend reach a subscriber; clean exit"
    else fail 4 "clean exit" "exit $code" "$(tail -5 "$work/fanoutd.log")"; fi ;;
  *) fail 4 "ticks reach a subscriber" "$out" "$(tail -20 "$work/fanoutd.log")" ;;
esac
