#!/bin/sh
# config_validate.sh — the deployment files validate with the real tools:
# compose.yaml with Debian's docker-compose (no container engine needed),
# conf/nginx.conf and the demo's conf/nginx-demo.conf.in with `nginx -t`
# (unprivileged, from a temp prefix), the Dockerfile's stages and runtime
# packages, and the demo scripts' syntax. Speaks TAP.
set -u
SRC=${FANOUT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
NGINX_BIN=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
COMPOSE=$(command -v docker-compose || true)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fanout-validate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	[ -s "$TMP/out" ] && sed 's/^/# /' "$TMP/out"
	return 0
}
skip() {
	n=$((n + 1))
	if [ "${CI:-}" = true ]; then
		failed=$((failed + 1))
		echo "not ok $n - $1 # would skip under CI: $2"
	else
		echo "ok $n - $1 # SKIP $2"
	fi
}
check() { # check NAME CMD... : ok when CMD exits 0; its output is shown otherwise
	name=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then ok "$name"; else notok "$name"; fi
}
# nginx reads $NGINX as inherited sockets: never pass make check's NGINX on.
nginx_t() { env -u NGINX "$NGINX_BIN" -t -q -e "$TMP/ng/error.log" -p "$TMP/ng" -c "$1" -g "pid $TMP/ng/nginx.pid;"; }

# ---- compose.yaml ---------------------------------------------------------------
if [ -n "$COMPOSE" ]; then
	check "docker-compose config -q accepts compose.yaml" \
		"$COMPOSE" --project-directory "$SRC" -f "$SRC/compose.yaml" config -q
	"$COMPOSE" --project-directory "$SRC" -f "$SRC/compose.yaml" config --services 2>"$TMP/out" | sort | tr '\n' ' ' >"$TMP/services"
	check "compose services: valkey, c1 c2 c3, nginx, publisher" \
		test "$(cat "$TMP/services")" = "c1 c2 c3 nginx publisher valkey "
	"$COMPOSE" --project-directory "$SRC" -f "$SRC/compose.yaml" config >"$TMP/compose.norm" 2>"$TMP/out"
	check "each fanout instance: /readyz healthcheck, nofile ulimit, INSTANCE" sh -c '
		[ "$(grep -c "http://127.0.0.1:8080/readyz" "$1")" -eq 3 ] &&
		[ "$(grep -c "nofile:" "$1")" -ge 4 ] &&
		for i in c1 c2 c3; do grep -q "INSTANCE: $i" "$1" || exit 1; done' _ "$TMP/compose.norm"
else
	skip "docker-compose config -q accepts compose.yaml" "docker-compose not installed"
	skip "compose services" "docker-compose not installed"
	skip "compose healthchecks" "docker-compose not installed"
fi

# Every fanout service is an upstream server in nginx.conf, and back.
ups=$(sed -n 's/^[[:space:]]*server \([a-z0-9_-]*\):8080 .*/\1/p' "$SRC/conf/nginx.conf" | sort | tr '\n' ' ')
check "nginx.conf's upstream lists exactly the compose instances c1 c2 c3" test "$ups" = "c1 c2 c3 "

# ---- nginx -t ---------------------------------------------------------------------
if [ -x "$NGINX_BIN" ] || command -v "$NGINX_BIN" >/dev/null 2>&1; then
	mkdir -p "$TMP/ng"
	# `nginx -t` binds the listen addresses: give it a free loopback port
	# (and no port 80, which needs root).
	PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null ||
		echo $((20000 + $$ % 40000)))
	# The compose names only resolve inside compose's network: point them at
	# loopback, and keep nginx's temp files in the prefix (non-root runs).
	sed -e 's/server \(c[0-9]\):8080/server 127.0.0.1:8080/' \
		-e "s/^\([[:space:]]*\)listen 80;/\1listen 127.0.0.1:$PORT;/" -e '/listen \[::\]:80;/d' \
		-e "s|^http {|http {\\n\\tclient_body_temp_path $TMP/ng/body; proxy_temp_path $TMP/ng/proxy; fastcgi_temp_path $TMP/ng/fcgi; uwsgi_temp_path $TMP/ng/uwsgi; scgi_temp_path $TMP/ng/scgi;|" \
		"$SRC/conf/nginx.conf" >"$TMP/ng/compose-nginx.conf"
	if [ -f /etc/nginx/mime.types ]; then
		check "nginx -t accepts conf/nginx.conf (compose names mapped to loopback)" nginx_t "$TMP/ng/compose-nginx.conf"
	else
		skip "nginx -t accepts conf/nginx.conf" "no /etc/nginx/mime.types"
	fi
	# The demo's template, filled as scripts/demo.sh fills it.
	sed -e "s|@PREFIX@|$TMP/ng|g" -e "s|@LISTEN@|127.0.0.1:$PORT|g" -e "s|@WEB_ROOT@|$SRC/web|g" \
		-e 's|@UPSTREAM_SERVERS@|server 127.0.0.1:18081 max_fails=1 fail_timeout=5s; server 127.0.0.1:18082 max_fails=1 fail_timeout=5s;|' \
		"$SRC/conf/nginx-demo.conf.in" >"$TMP/ng/demo-nginx.conf"
	check "no placeholder left in the generated demo config" sh -c '! grep -n "@[A-Z_]*@" "$1"' _ "$TMP/ng/demo-nginx.conf"
	check "nginx -t accepts the demo config from conf/nginx-demo.conf.in" nginx_t "$TMP/ng/demo-nginx.conf"
	check "both configs proxy /ws with upgrade headers and 1 h timeouts" sh -c '
		for f in "$@"; do
			for d in "proxy_set_header Upgrade \$http_upgrade" "proxy_set_header Connection \$connection_upgrade" \
				"proxy_read_timeout 1h" "proxy_send_timeout 1h" "proxy_buffering off" "proxy_http_version 1.1"; do
				grep -qF "$d;" "$f" || { echo "$f: no $d"; exit 1; }
			done
		done' _ "$SRC/conf/nginx.conf" "$SRC/conf/nginx-demo.conf.in"
	check "both configs proxy /trpc and /sse (event streams unbuffered)" sh -c '
		for f in "$@"; do
			grep -q "location = /trpc {" "$f" || { echo "$f: no /trpc"; exit 1; }
			sed -n "/location = \/sse {/,/}/p" "$f" | grep -q "proxy_buffering off;" ||
				{ echo "$f: /sse without proxy_buffering off"; exit 1; }
		done' _ "$SRC/conf/nginx.conf" "$SRC/conf/nginx-demo.conf.in"
else
	skip "nginx -t accepts conf/nginx.conf" "nginx not installed"
	skip "no placeholder left" "nginx not installed"
	skip "nginx -t accepts the demo config" "nginx not installed"
	skip "proxy headers" "nginx not installed"
	skip "/trpc and /sse proxied" "nginx not installed"
fi

# ---- the instances' fanoutd config ---------------------------------------------------
FANOUTD_BIN=${FANOUTD:-${FANOUT_BUILDDIR:-$SRC}/core/fanoutd}
PLUGDIR=${FANOUT_BUILDDIR:-$SRC}/plugins/valkey/.libs
if [ -x "$FANOUTD_BIN" ] && [ -f "$PLUGDIR/valkey.so" ]; then
	check "fanoutd --check-config accepts conf/fanout-compose.ini (INSTANCE=c1)" \
		env INSTANCE=c1 "$FANOUTD_BIN" -c "$SRC/conf/fanout-compose.ini" --check-config -o "server.plugin_dir=$PLUGDIR"
	env -u INSTANCE "$FANOUTD_BIN" -c "$SRC/conf/fanout-compose.ini" --check-config -o "server.plugin_dir=$PLUGDIR" >"$TMP/noinst" 2>&1
	check "... and refuses it (exit 3, naming INSTANCE) when INSTANCE is unset" sh -c '[ $1 = 3 ] && grep -q "INSTANCE" "$2"' _ $? "$TMP/noinst"
else
	skip "fanoutd --check-config accepts conf/fanout-compose.ini" "fanoutd or the valkey plugin is not built"
	skip "fanoutd refuses it without INSTANCE" "fanoutd or the valkey plugin is not built"
fi

# ---- Dockerfile ---------------------------------------------------------------------
check "Dockerfile has the stages compose builds (build, lb, runtime, broker) on debian:12" sh -c '
	grep -q "^FROM debian:12 AS build" "$1" && grep -q "^FROM debian:12-slim AS lb" "$1" &&
	grep -q "^FROM debian:12-slim AS runtime" "$1" && grep -q "^FROM debian:12-slim AS broker" "$1" &&
	grep -q "target: runtime" "$2" && grep -q "target: lb" "$2" && grep -q "target: broker" "$3"' \
	_ "$SRC/Dockerfile" "$SRC/compose.yaml" "$SRC/compose.podman.yaml"
check "the images are built from the Debian package (dpkg-buildpackage; runtime installs fanoutd_*.deb)" sh -c '
	sed -n "/AS build/,/^FROM/p" "$1" | grep -q "apt-get build-dep -y ./" &&
	sed -n "/AS build/,/^FROM/p" "$1" | grep -q "dpkg-buildpackage -us -uc -b" &&
	sed -n "/AS runtime/,/^FROM/p" "$1" | grep -q "apt-get install .*/tmp/fanoutd_\*.deb"' _ "$SRC/Dockerfile"
if [ -n "$COMPOSE" ]; then
	check "docker-compose config -q accepts compose.yaml + compose.podman.yaml" \
		"$COMPOSE" --project-directory "$SRC" -f "$SRC/compose.yaml" -f "$SRC/compose.podman.yaml" config -q
else
	skip "compose.podman.yaml" "docker-compose not installed"
fi

# ---- scripts --------------------------------------------------------------------------
check "scripts/demo.sh parses (bash -n)" bash -n "$SRC/scripts/demo.sh"
check "scripts/install-deps.sh parses and lists the packages" sh -c '
	sh -n "$1" && sh "$1" --print | grep -q "libwebsockets-dev.*redis-server.*nginx.*docker-compose"' _ "$SRC/scripts/install-deps.sh"

echo "1..$n"
[ "$failed" = 0 ]
