#!/bin/sh
# install-deps.sh — install what a fresh Debian 12 needs to build fanout,
# run every test (`make check`) and run the demo (scripts/demo.sh).
# Run as root (or through sudo). CI (.ci/run) calls it too. Recommends are
# skipped (docker-compose would pull in Docker's engine; here it validates
# compose.yaml, and podman + podman-compose + runc run it, see
# compose.podman.yaml); fonts-dejavu-core gives headless Chromium a font.
#
#   scripts/install-deps.sh            # install
#   scripts/install-deps.sh --print    # only print the package list
set -eu

PKGS="build-essential pkg-config autoconf automake libtool autoconf-archive
libwebsockets-dev libhiredis-dev libinih-dev libjansson-dev libcmocka-dev libjwt-dev libssl-dev zlib1g-dev
libnats-dev libsystemd-dev
redis-server nginx nats-server chromium python3-websockets clang libclang-rt-14-dev valgrind curl
docker-compose fonts-dejavu-core systemd strace dpkg-dev debhelper
gnuplot-nox podman podman-compose runc debootstrap containernetworking-plugins
golang-github-containernetworking-plugin-dnsname iptables"

# Node 18+ runs the integration and browser tests. Keep a node that is
# already there (the build machines have node 20); otherwise take Debian's.
if ! command -v node >/dev/null 2>&1; then
	PKGS="$PKGS nodejs npm"
fi

if [ "${1:-}" = "--print" ]; then
	echo $PKGS
	exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "install-deps.sh: run as root (or install sudo)" >&2
		exit 1
	fi
fi

$SUDO apt-get update
# shellcheck disable=SC2086 # word splitting of the list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PKGS

# Installing nginx, redis-server and nats-server may start their system services where an
# init system runs; the tests and the demo start their own on free loopback
# ports, so the system ones are not needed.
echo "install-deps.sh: done. Next: autoreconf -fi && ./configure && make && npm ci && make check"
