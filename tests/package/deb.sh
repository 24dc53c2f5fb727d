#!/bin/bash
# tests/package/deb.sh — the Debian package, built, installed and used on
# this machine, then removed again. TAP. Run by `make check-package`
# (scripts/test.sh runs it in the full suite, i.e. in CI; not in `make
# check`: it installs system-wide, needs root and takes ~2 minutes).
#
#   1. `make distdir` + debian/ into a scratch dir, `dpkg-buildpackage -us
#      -uc -b` there (never in the source tree): fanoutd and
#      libfanout-plugin-dev .debs;
#   2. `dpkg -i` both; the installed unit passes systemd-analyze verify;
#   3. /usr/sbin/fanoutd -c /etc/fanout/fanout.ini (the packaged config;
#      only the listen port and the broker URL overridden with -o, so the
#      test uses free loopback ports) serves the packaged web page, and a
#      client subscribed through it gets a message PUBLISHed to Valkey;
#   4. a backend built out of tree against the installed
#      libfanout-plugin-dev (the packaged example + pkg-config) loads;
#   5. /etc/fanout/fanout.ini is a dpkg conffile: a local change survives
#      reinstalling the package; an upgrade whose package changed the file
#      too stops at dpkg's conffile prompt (no terminal: end of file) with
#      nothing overwritten, and --force-confold keeps the local file;
#   6. `dpkg --purge` removes both packages and the conffile.
# Safe to run twice; refuses to run where a fanoutd package was already
# installed (it would purge it); one run at a time (flock).
#
# Env: FANOUT_SRCDIR, FANOUT_BUILDDIR (the configured build tree),
# REDIS_SERVER, REDIS_CLI; KEEP=1 keeps the scratch dir.
set -u
src=${FANOUT_SRCDIR:?}
build=${FANOUT_BUILDDIR:?}
redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
diag() { sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }

[ "$(id -u)" = 0 ] || bail "needs root (dpkg -i)"
for c in dpkg-buildpackage dh curl "$redis_server" "$redis_cli"; do
	command -v "$c" >/dev/null || bail "$c missing (scripts/install-deps.sh)"
done

exec 9>/var/lock/fanout-package-test.lock
flock -w 600 9 || bail "another package test holds /var/lock/fanout-package-test.lock"
if dpkg-query -W -f='${Status}' fanoutd 2>/dev/null | grep -q 'installed'; then
	bail "a fanoutd package is already installed here; this test would remove it"
fi

work=$(mktemp -d /tmp/fanout-deb.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	dpkg --purge fanoutd libfanout-plugin-dev >/dev/null 2>&1
	[ "${KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

echo "1..11"

# ---- 1. build ---------------------------------------------------------------
t0=$(date +%s)
if make -C "$build" -s distdir distdir="$work/fanout" top_distdir="$work/fanout" >"$work/distdir.log" 2>&1 &&
	cp -r "$src/debian" "$work/fanout/" &&
	(cd "$work/fanout" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=${JOBS:-2}" \
		dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s)"
else
	not_ok "dpkg-buildpackage -us -uc -b"
	tail -40 "$work/distdir.log" "$work/build.log" | diag
	exit 1
fi
grep -E '^dh_missing|warning' "$work/build.log" | diag
debs=$(ls "$work"/fanoutd_*.deb "$work"/libfanout-plugin-dev_*.deb 2>/dev/null)
[ "$(echo "$debs" | wc -w)" = 2 ] || bail "expected two .deb files, got: $debs"

# ---- 2. install -----------------------------------------------------------
# What each package must hold.
want_fanoutd="/usr/sbin/fanoutd /usr/bin/fanout-cli /etc/fanout/fanout.ini
/lib/systemd/system/fanoutd.service /usr/share/fanout/web/index.html
/usr/share/fanout/web/fanout.js /usr/share/man/man8/fanoutd.8.gz
/usr/share/man/man5/fanout.ini.5.gz /usr/share/man/man5/fanout-valkey.5.gz"
want_dev="/usr/include/fanout/plugin.h /usr/share/fanout/example/example.c
/usr/share/fanout/example/Makefile"
if dpkg -i $debs >"$work/install.log" 2>&1; then
	missing=
	for f in $want_fanoutd $want_dev; do [ -e "$f" ] || missing="$missing $f"; done
	for p in valkey loopback filetail nats example; do
		[ -e "$(dpkg -L fanoutd | grep "/fanout/$p.so$")" ] || missing="$missing $p.so"
	done
	pkg-config --exists fanout-plugin || missing="$missing fanout-plugin.pc"
	if [ -z "$missing" ]; then
		ok "dpkg -i fanoutd libfanout-plugin-dev: daemon, backends, conf, unit, web, man pages, header, .pc"
	else
		not_ok "installed packages lack:$missing"
	fi
else
	not_ok "dpkg -i"
	diag <"$work/install.log"
	exit 1
fi

if command -v systemd-analyze >/dev/null &&
	out=$(systemd-analyze verify /lib/systemd/system/fanoutd.service 2>&1) && [ -z "$out" ]; then
	ok "the installed unit passes systemd-analyze verify"
else
	not_ok "systemd-analyze verify /lib/systemd/system/fanoutd.service"
	echo "${out:-systemd-analyze missing}" | diag
fi

# ---- 3. run the packaged daemon with the packaged config --------------------
free_port() { # below the ephemeral range, not listened on
	local p
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
rport=$(free_port)
port=$(free_port)
"$redis_server" --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
	>"$work/redis.log" 2>&1 &
pids+=($!)
/usr/sbin/fanoutd -c /etc/fanout/fanout.ini -o "server.listen=127.0.0.1:$port" \
	-o "backend.valkey.url=redis://127.0.0.1:$rport/0" -o server.instance=deb \
	>"$work/fanoutd.log" 2>&1 &
fpid=$!
pids+=($fpid)
ready=no
for _ in $(seq 100); do
	if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=yes; break; fi
	sleep 0.1
done
page=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null)
if [ $ready = yes ] && echo "$page" | grep -q '<title>fanout' &&
	curl -fsS "http://127.0.0.1:$port/fanout.js" | grep -q 'FanoutClient'; then
	ok "the packaged fanoutd with /etc/fanout/fanout.ini is ready and serves the packaged page"
else
	not_ok "packaged fanoutd ready and serving /usr/share/fanout/web"
	tail -20 "$work/fanoutd.log" | diag
fi

# A subscriber through fanout-cli (packaged too), a publish straight to Valkey.
/usr/bin/fanout-cli sub "ws://127.0.0.1:$port/ws" debtest -n 1 -t 10000 >"$work/sub.out" 2>"$work/sub.err" &
spid=$!
pids+=($spid)
for _ in $(seq 100); do
	[ "$("$redis_cli" -p "$rport" PUBSUB NUMSUB debtest | tail -1)" = 1 ] && break
	sleep 0.1
done
"$redis_cli" -p "$rport" PUBLISH debtest '{"from":"the package"}' >/dev/null
wait "$spid"
if grep -q '"from":"the package"' "$work/sub.out" && grep -q '"instance":"deb"' "$work/sub.out"; then
	ok "subscribe/publish round trip through the packaged daemon"
else
	not_ok "round trip through the packaged daemon"
	cat "$work/sub.out" "$work/sub.err" | diag
	tail -20 "$work/fanoutd.log" | diag
fi
kill "$fpid"
wait "$fpid"
rc=$?
[ $rc = 0 ] && ok "SIGTERM: the packaged fanoutd exits 0" || not_ok "SIGTERM exit status $rc"

# ---- 4. a third-party backend against libfanout-plugin-dev -----------------
cp -r /usr/share/fanout/example "$work/example"
if make -C "$work/example" >"$work/example.log" 2>&1 &&
	/usr/sbin/fanoutd -c /etc/fanout/fanout.ini --check-config \
		-o "backend.ex.plugin=$work/example/example.so" >"$work/check.log" 2>&1 &&
	grep -q '^\[backend ex\]' "$work/check.log"; then
	ok "the packaged example builds with pkg-config fanout-plugin and loads"
else
	not_ok "out-of-tree example backend"
	cat "$work/example.log" "$work/check.log" | tail -20 | diag
fi

# ---- 5. the config is a conffile -------------------------------------------
conffiles=$(dpkg-query -W -f='${Conffiles}' fanoutd)
echo '; changed by the administrator' >>/etc/fanout/fanout.ini
sum=$(md5sum </etc/fanout/fanout.ini)
if echo "$conffiles" | grep -q ' /etc/fanout/fanout.ini ' &&
	dpkg -i "$work"/fanoutd_*.deb >"$work/reinstall.log" 2>&1 &&
	[ "$(md5sum </etc/fanout/fanout.ini)" = "$sum" ]; then
	ok "/etc/fanout/fanout.ini is a conffile: a local change survives reinstalling"
else
	not_ok "conffile"
	{ echo "conffiles: $conffiles"; cat "$work/reinstall.log"; } | diag
fi

# An upgrade that changes the conffile too, over the administrator's change:
# dpkg asks (the conventional conffile prompt) and never overwrites. The
# next version is the built package repacked with one more line in its
# fanout.ini. Without a terminal the prompt meets end of file: dpkg stops
# with the package unconfigured, the administrator's file as it was and the
# package's next to it (.dpkg-new); `--force-confold` then keeps the
# administrator's and leaves the package's as .dpkg-dist.
repack=$work/repack
rm -rf "$repack"
dpkg-deb -R "$(ls "$work"/fanoutd_*.deb)" "$repack" &&
	sed -i 's/^Version: .*/&+conffile1/' "$repack/DEBIAN/control" &&
	echo '; changed by the next version of the package' >>"$repack/etc/fanout/fanout.ini" &&
	dpkg-deb -b "$repack" "$work/next.deb" >"$work/repack.log" 2>&1 ||
	bail "could not repack fanoutd as its next version: $(cat "$work/repack.log")"
dpkg -i "$work/next.deb" </dev/null >"$work/upgrade.log" 2>&1
rc=$?
if [ $rc != 0 ] && grep -q 'Package distributor has shipped an updated version' "$work/upgrade.log" &&
	grep -q 'end of file on stdin at conffile prompt' "$work/upgrade.log" &&
	[ "$(md5sum </etc/fanout/fanout.ini)" = "$sum" ] &&
	grep -q 'changed by the next version' /etc/fanout/fanout.ini.dpkg-new; then
	ok "an upgrade with a changed conffile over a local change: dpkg prompts, nothing overwritten"
else
	not_ok "conffile prompt on upgrade (dpkg exit $rc)"
	diag <"$work/upgrade.log"
fi
if dpkg --configure --force-confold fanoutd >"$work/confold.log" 2>&1 &&
	[ "$(md5sum </etc/fanout/fanout.ini)" = "$sum" ] &&
	grep -q 'changed by the next version' /etc/fanout/fanout.ini.dpkg-dist &&
	[ "$(dpkg-query -W -f='${Version} ${Status}' fanoutd)" = "$(sed -n 's/^Version: //p' "$repack/DEBIAN/control") install ok installed" ] &&
	/usr/sbin/fanoutd -c /etc/fanout/fanout.ini --check-config >"$work/check2.log" 2>&1; then
	ok "--force-confold: the local fanout.ini kept (and valid), the package's as fanout.ini.dpkg-dist"
else
	not_ok "dpkg --configure --force-confold fanoutd"
	cat "$work/confold.log" "$work/check2.log" | diag
fi

# ---- 6. purge ---------------------------------------------------------------
if dpkg --purge fanoutd libfanout-plugin-dev >"$work/purge.log" 2>&1 &&
	[ ! -e /usr/sbin/fanoutd ] && [ ! -e /etc/fanout/fanout.ini ] &&
	[ ! -e /etc/fanout/fanout.ini.dpkg-dist ] &&
	[ ! -e /usr/include/fanout/plugin.h ]; then
	ok "dpkg --purge removes both packages, the conffile and its .dpkg-dist"
else
	not_ok "dpkg --purge"
	diag <"$work/purge.log"
fi
exit $((failed > 0))
