# tests/integration/deploy.mk — tests of how fanout is deployed and shown:
# the systemd unit, the compose stack, the benchmark charts.

# systemd: the unit (systemd-analyze verify), the notify protocol through a
# real notify socket (notify-sink), and fanoutd inside the unit's sandbox
# under strace. Once (plain suite): the sandbox check traces a plain build.
check_PROGRAMS += tests/integration/notify-sink
tests_integration_notify_sink_SOURCES = tests/integration/notify_sink.c
if !ASAN
TESTS += tests/integration/systemd.mjs
endif
EXTRA_DIST += tests/integration/systemd.mjs

# scripts/bench-plot.sh: bench.sh's reports drawn as SVG (gnuplot).
TESTS += tests/integration/bench_plot.sh
EXTRA_DIST += tests/integration/bench_plot.sh tests/integration/data/bench scripts/bench-plot.sh

# compose.yaml, run: the container stack with podman (compose.podman.yaml,
# conf/containers.conf). Not in make check (root, images, minutes):
# make check-compose; scripts/test.sh runs it in the full suite (CI).
EXTRA_DIST += tests/integration/compose_stack.mjs compose.podman.yaml conf/containers.conf
check-compose: all
	@$(AM_TESTS_ENVIRONMENT) $(SHELL) $(top_srcdir)/tests/lib/node.sh \
		$(top_srcdir)/tests/integration/compose_stack.mjs
.PHONY: check-compose

# conf/grafana/fanout.json against a running fanoutd's /metrics.
TESTS += tests/integration/grafana_dashboard.mjs
EXTRA_DIST += tests/integration/grafana_dashboard.mjs

# SIGHUP: the config re-read and applied without dropping anyone (reload.c).
TESTS += tests/integration/reload.mjs
EXTRA_DIST += tests/integration/reload.mjs
