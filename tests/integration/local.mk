# tests/integration/ — real fanoutd processes driven over the network.
# Other parts add their own integration tests from their local.mk.
TESTS += tests/integration/core_protocol.mjs tests/integration/core_limits.mjs \
	tests/integration/workers.mjs
EXTRA_DIST += tests/integration/core_protocol.mjs tests/integration/core_limits.mjs \
	tests/integration/workers.mjs

# Security suite (issue 11, HTTP side): raw-socket attacks on the HTTP
# routes and the upgrade gate; run under ASan too (leaks, UB).
TESTS += tests/integration/security_http.mjs
EXTRA_DIST += tests/integration/security_http.mjs
