#!/usr/bin/env bash
# demo.sh — the fanout cluster on loopback, no containers: one Valkey (or
# redis-server), three fanoutd instances (c1 c2 c3, valkey backend), nginx as
# load balancer + web server, and `fanout-cli push` publishing demo updates.
# Prints the URL; Ctrl-C (or SIGTERM) stops every process it started, by pid,
# and waits for each. Logs and generated configs live in one temp dir.
#
#   scripts/demo.sh                 # builds first when no build exists
#   BUILD_DIR=/tmp/build scripts/demo.sh --port auto
#   scripts/demo.sh --check         # start, verify a client gets updates, stop
#
# Options:
#   --port N|auto   nginx port (default 8080 when free, else a free one)
#   --rate N        publisher updates per second (default 5)
#   --check         self-test for CI: clients through nginx must receive
#                   updates from every instance; exit 0/1 (also FANOUT_DEMO_CHECK=1)
#   --keep          keep the temp dir (logs, configs, `pids`) after stopping
# Environment: BUILD_DIR (a build tree; default: _build/default, the one
# scripts/test.sh uses, built with autoreconf/configure/make when it has no
# fanoutd yet — or the source tree itself if it was configured in place),
# REDIS_SERVER, NGINX (program paths), FANOUT_DEMO_PORT.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${FANOUT_DEMO_PORT:-}
RATE=5
CHECK=${FANOUT_DEMO_CHECK:-0}
KEEP=0
INSTANCES=(c1 c2 c3)

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
	echo "demo: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	--port) PORT=${2:?--port needs a value}; shift 2 ;;
	--port=*) PORT=${1#*=}; shift ;;
	--rate) RATE=${2:?--rate needs a value}; shift 2 ;;
	--rate=*) RATE=${1#*=}; shift ;;
	--check) CHECK=1; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

# ---- build (only when needed) ---------------------------------------------
if [ -n "${BUILD_DIR:-}" ]; then
	mkdir -p "$BUILD_DIR"
	BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
else
	if [ -f "$SRCDIR/config.status" ]; then
		BUILD_DIR=$SRCDIR # configured in place
	else
		BUILD_DIR=$SRCDIR/_build/default
		mkdir -p "$BUILD_DIR"
	fi
fi
FANOUTD=$BUILD_DIR/core/fanoutd
CLI=$BUILD_DIR/tools/fanout-cli
PLUGIN_DIR=$BUILD_DIR/plugins/valkey/.libs
if [ ! -x "$FANOUTD" ] || [ ! -x "$CLI" ] || [ ! -f "$PLUGIN_DIR/valkey.so" ]; then
	echo "demo: no build in $BUILD_DIR yet: building (autoreconf, configure, make)" >&2
	if [ ! -f "$BUILD_DIR/Makefile" ]; then
		[ -x "$SRCDIR/configure" ] || (cd "$SRCDIR" && autoreconf -fi)
		(cd "$BUILD_DIR" && "$SRCDIR/configure")
	fi
	make -C "$BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)"
fi
[ -x "$FANOUTD" ] || die "$FANOUTD missing after the build"
[ -x "$CLI" ] || die "$CLI missing after the build"
[ -f "$PLUGIN_DIR/valkey.so" ] || die "$PLUGIN_DIR/valkey.so missing after the build"

REDIS_SERVER=${REDIS_SERVER:-$(command -v valkey-server || command -v redis-server || true)}
NGINX=${NGINX:-$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)}
[ -n "$REDIS_SERVER" ] || die "no valkey-server or redis-server (apt install redis-server)"
[ -n "$NGINX" ] || die "no nginx (apt install nginx)"
command -v curl >/dev/null || die "no curl (apt install curl)"

# ---- processes: started in their own session, stopped by pid ---------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fanout-demo.XXXXXX")
PIDS=()
NAMES=()

start() { # start NAME CMD... ; output to $WORK/NAME.log
	local name=$1
	shift
	# setsid: a terminal's Ctrl-C reaches only this script, which then stops
	# the children in order (publisher and nginx first, the broker last).
	setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
	PIDS+=($!)
	NAMES+=("$name")
	echo "$name $!" >>"$WORK/pids"
}

stop_pids() { # stop_pids PID... : SIGTERM, wait up to 10 s, then SIGKILL
	local pid end
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	end=$((SECONDS + 10))
	for pid in "$@"; do
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "demo: pid $pid did not stop in 10 s: SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

STOPPING=0
cleanup() {
	local rc=$?
	[ $STOPPING = 1 ] && return
	STOPPING=1
	trap '' INT TERM
	if [ ${#PIDS[@]} -gt 0 ]; then
		echo "demo: stopping ${NAMES[*]}" >&2
		# Everything but the broker first (fanoutd drains its clients with
		# close 1001), then the broker.
		stop_pids "${PIDS[@]:1}"
		stop_pids "${PIDS[0]}"
	fi
	local failed=0
	case $rc in 0 | 130 | 143) ;; *) failed=1 ;; esac
	if [ $KEEP = 1 ] || [ $failed = 1 ]; then
		echo "demo: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED=" "
# Ports come from below the kernel's ephemeral range: a port in that range
# can be the local end of some outgoing connection, which no connect() probe
# sees but which makes bind() fail (EADDRINUSE) on a busy machine.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${EPHEMERAL_LOW:-0}" -gt 12000 ] 2>/dev/null || EPHEMERAL_LOW=32768
free_port() { # free_port VAR: a free loopback port not handed out before
	local _fp
	for _ in $(seq 200); do
		_fp=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
		case $USED in *" $_fp "*) continue ;; esac
		if ! port_in_use "$_fp"; then
			USED="$USED$_fp "
			printf -v "$1" '%s' "$_fp"
			return 0
		fi
	done
	die "no free port found"
}

wait_until() { # wait_until SECONDS WHAT CMD... : poll CMD every 0.1 s
	local secs=$1 what=$2 end
	shift 2
	end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		check_alive
		[ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what (logs: $WORK)"
		sleep 0.1
	done
}

check_alive() { # fail with the log tail of any child that died
	local i
	for i in "${!PIDS[@]}"; do
		if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
			echo "demo: ${NAMES[$i]} (pid ${PIDS[$i]}) exited; last lines of its log:" >&2
			tail -n 20 "$WORK/${NAMES[$i]}.log" >&2 || true
			exit 1
		fi
	done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# ---- ports --------------------------------------------------------------------
case ${PORT:-} in
'') if port_in_use 8080; then free_port PORT; else PORT=8080; fi ;;
auto | 0) free_port PORT ;;
*[!0-9]*) die "--port: not a number: $PORT" ;;
*) port_in_use "$PORT" && die "port $PORT is in use" ;;
esac
USED="$USED$PORT "
free_port REDIS_PORT
declare -A IPORT
for i in "${INSTANCES[@]}"; do
	free_port p
	IPORT[$i]=$p
done

# ---- broker -----------------------------------------------------------------
mkdir -p "$WORK/redis"
start broker "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
	--appendonly no --dir "$WORK/redis" --daemonize no
wait_until 10 "the broker on port $REDIS_PORT" port_in_use "$REDIS_PORT"

# ---- three fanoutd ------------------------------------------------------------
UPSTREAMS=
for i in "${INSTANCES[@]}"; do
	cat >"$WORK/$i.ini" <<-EOF
		; generated by scripts/demo.sh
		[server]
		listen = 127.0.0.1:${IPORT[$i]}
		instance = $i
		web_root = $SRCDIR/web
		plugin_dir = $PLUGIN_DIR
		shutdown_grace_ms = 3000

		[backend valkey]
		plugin = valkey
		url = redis://127.0.0.1:$REDIS_PORT/0
	EOF
	start "$i" "$FANOUTD" -c "$WORK/$i.ini"
	UPSTREAMS="${UPSTREAMS}server 127.0.0.1:${IPORT[$i]} max_fails=1 fail_timeout=5s; "
done
for i in "${INSTANCES[@]}"; do
	wait_until 20 "$i ready (/readyz on port ${IPORT[$i]})" http_ok "http://127.0.0.1:${IPORT[$i]}/readyz"
done

# ---- nginx ----------------------------------------------------------------------
NG=$WORK/nginx
mkdir -p "$NG"
conf=$(<"$SRCDIR/conf/nginx-demo.conf.in")
conf=${conf//@PREFIX@/$NG}
conf=${conf//@LISTEN@/127.0.0.1:$PORT}
conf=${conf//@WEB_ROOT@/$SRCDIR/web}
conf=${conf//@UPSTREAM_SERVERS@/$UPSTREAMS}
printf '%s\n' "$conf" >"$NG/nginx.conf"
NGINX_ARGS=(-e "$NG/error.log" -p "$NG" -c "$NG/nginx.conf")
# nginx reads $NGINX as a list of inherited sockets: never pass it on.
env -u NGINX "$NGINX" -t -q "${NGINX_ARGS[@]}" -g "pid $NG/nginx.pid;" || die "nginx -t failed on $NG/nginx.conf"
start nginx env -u NGINX "$NGINX" "${NGINX_ARGS[@]}" -g "daemon off; pid $NG/nginx.pid;"
wait_until 10 "nginx on port $PORT" http_ok "http://127.0.0.1:$PORT/lb-healthz"

# ---- publisher --------------------------------------------------------------------
start publisher "$CLI" push --redis "redis://127.0.0.1:$REDIS_PORT/0" --channel updates --rate "$RATE"

URL="http://127.0.0.1:$PORT/"
if [ "$CHECK" != 1 ]; then
	cat <<-EOF

		  fanout demo is running:  $URL

		  instances  $(for i in "${INSTANCES[@]}"; do printf '%s http://127.0.0.1:%s  ' "$i" "${IPORT[$i]}"; done)
		             (each serves /healthz /readyz /metrics)
		  broker     redis://127.0.0.1:$REDIS_PORT/0  (channel "updates", $RATE updates/s)
		  logs       $WORK
		  stop       Ctrl-C

	EOF
	# Until Ctrl-C / SIGTERM, or until one of the processes dies.
	while :; do
		wait -n || true
		[ $STOPPING = 1 ] && break
		check_alive
	done
	exit 0
fi

# ---- --check: clients through nginx receive updates from every instance -------------
echo "demo: check: $URL" >&2
curl -fsS --max-time 5 "$URL" | grep -qi '<html' || die "check: nginx does not serve the web page at $URL"
N=6
CPIDS=()
for n in $(seq $N); do
	"$CLI" sub --count 3 --timeout-ms 15000 "ws://127.0.0.1:$PORT/ws" updates \
		>"$WORK/client$n.out" 2>"$WORK/client$n.err" &
	CPIDS+=($!)
done
fail=0
for n in $(seq $N); do
	if ! wait "${CPIDS[$((n - 1))]}"; then
		echo "demo: check: client $n failed: $(cat "$WORK/client$n.err")" >&2
		fail=1
	fi
done
[ $fail = 0 ] || die "check failed (logs: $WORK)"
msgs=$(cat "$WORK"/client*.out | grep -c '"type":"message"' || true)
seen=$(cat "$WORK"/client*.out | grep -o '"instance":"[^"]*"' | sort -u | tr '\n' ' ')
echo "demo: check: $N clients received $msgs updates; instances seen: $seen" >&2
[ "$msgs" -eq $((N * 3)) ] || die "check: expected $((N * 3)) updates, got $msgs"
for i in "${INSTANCES[@]}"; do
	case $seen in *"\"instance\":\"$i\""*) ;; *) die "check: no client landed on $i" ;; esac
done
echo "demo: check ok" >&2
exit 0
