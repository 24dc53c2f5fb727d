# tests/integration/ — real fanoutd processes driven over the network.
# Other parts add their own integration tests from their local.mk.
# protocol_suite.mjs is the client-protocol suite, run once per backend by
# the protocol_<backend>.mjs entries (each backend registers its own in its
# local.mk; fixtures in tests/lib/backends.mjs).
TESTS += tests/integration/protocol_loopback.mjs tests/integration/core_limits.mjs \
	tests/integration/workers.mjs
EXTRA_DIST += tests/integration/protocol_suite.mjs tests/integration/protocol_loopback.mjs \
	tests/integration/core_limits.mjs tests/integration/workers.mjs

# Security suite (issue 11, HTTP side): raw-socket attacks on the HTTP
# routes and the upgrade gate; run under ASan too (leaks, UB).
TESTS += tests/integration/security_http.mjs
EXTRA_DIST += tests/integration/security_http.mjs
