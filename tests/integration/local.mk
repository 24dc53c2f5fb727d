# tests/integration/ — real fanoutd processes driven over the network.
# A backend's own integration tests are registered in its plugin's local.mk
# (plugins/NAME/local.mk: protocol_NAME, valkey_*, filetail_*, dropin.sh).
# protocol_suite.mjs is the client-protocol suite, run once per backend by
# the protocol_<backend>.mjs entries (each backend registers its own in its
# local.mk; fixtures in tests/lib/backends.mjs).
TESTS += tests/integration/protocol_loopback.mjs tests/integration/positions_loopback.mjs \
	tests/integration/positions_example.mjs \
	tests/integration/core_limits.mjs tests/integration/workers.mjs
EXTRA_DIST += tests/integration/protocol_suite.mjs tests/integration/protocol_loopback.mjs \
	tests/integration/positions_suite.mjs tests/integration/positions_loopback.mjs \
	tests/integration/positions_example.mjs \
	tests/integration/core_limits.mjs tests/integration/workers.mjs

# RFC 6455 / RFC 7692 conformance in the Autobahn test suite's categories
# (raw sockets; ~8 s); its results table is in README.md. Under ASan too.
TESTS += tests/integration/rfc6455.mjs tests/integration/wsconn_tls.mjs \
	tests/integration/deflate_transports.mjs
EXTRA_DIST += tests/integration/rfc6455.mjs tests/integration/wsconn_tls.mjs \
	tests/integration/deflate_transports.mjs

# Security suite (issue 11, HTTP side): raw-socket attacks on the HTTP
# routes and the upgrade gate; run under ASan too (leaks, UB).
TESTS += tests/integration/security_http.mjs
EXTRA_DIST += tests/integration/security_http.mjs

# fanout-cli (tools/).
CLI_TESTS = \
	tests/integration/cli_sub_pub.mjs \
	tests/integration/cli_sub_resume.mjs \
	tests/integration/cli_push.mjs \
	tests/integration/cli_bench.mjs
TESTS += $(CLI_TESTS)
EXTRA_DIST += $(CLI_TESTS)

# The multi-instance cluster: nginx configs, the loopback demo, compose.yaml
# validation (conf/cluster.mk).
CLUSTER_TESTS = \
	tests/integration/config_validate.sh \
	tests/integration/cluster_demo.sh \
	tests/integration/cluster_delivery.mjs \
	tests/integration/cluster_drain.mjs \
	tests/integration/cluster_metrics.mjs
TESTS += $(CLUSTER_TESTS)
EXTRA_DIST += $(CLUSTER_TESTS) tests/integration/cluster_env.mjs

# Transports (issue 12): the tRPC endpoint against the real @trpc/client.
TESTS += tests/integration/trpc_basic.mjs
EXTRA_DIST += tests/integration/trpc_basic.mjs

# Transports (issue 12): the tRPC wire protocol checked against the real
# @trpc/server (a reference server in the test gets the same frames as
# fanoutd; their answers are compared). ~3 s.
TESTS += tests/integration/trpc_conformance.mjs
EXTRA_DIST += tests/integration/trpc_conformance.mjs

# Transports (issue 12): Server-Sent Events over raw HTTP.
TESTS += tests/integration/sse_basic.mjs
EXTRA_DIST += tests/integration/sse_basic.mjs

# Security: access tokens, claims, refresh/4003, request rate,
# max_channels_per_ip, tokens on SSE (sec-auth).
TESTS += tests/integration/security_auth.mjs
EXTRA_DIST += tests/integration/security_auth.mjs

# TLS on the listener: https/wss from Node and Chromium, SIGHUP reload,
# --check-config on bad certificate files (certificates made by openssl).
TESTS += tests/integration/security_tls.mjs
EXTRA_DIST += tests/integration/security_tls.mjs

# Security: max_queued_bytes under 50 clients that stop reading (stallers:
# sockets with 4 KiB receive buffers) (sec-auth). ~20 s and an RSS check:
# plain suite only.
check_PROGRAMS += tests/integration/stallers
tests_integration_stallers_SOURCES = tests/integration/stallers.c
if !ASAN
TESTS += tests/integration/security_limits.mjs
endif
EXTRA_DIST += tests/integration/security_limits.mjs

# Transports (issue 12): access tokens on the tRPC and SSE endpoints.
TESTS += tests/integration/transports_auth.mjs
EXTRA_DIST += tests/integration/transports_auth.mjs

# The delivery guarantee under faults (issue 10): 30 clients through nginx
# over three instances, 1,000 counted updates, a drain, a broker restart
# (with and without persistence), dropped connections. ~15 s: once,
# in the plain suite.
EXTRA_DIST += tests/integration/fault_delivery.mjs tests/integration/fault_env.mjs
if !ASAN
TESTS += tests/integration/fault_delivery.mjs
endif

# Transports (issue 12): the real @trpc/client and an event stream through
# nginx to three instances with redis, each across a drain, resuming
# elsewhere (~20 s): once, in the plain suite.
EXTRA_DIST += tests/integration/transports_cluster.mjs
if !ASAN
TESTS += tests/integration/transports_cluster.mjs
endif
