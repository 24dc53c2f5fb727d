# tests/browser/ — the demo page and web/fanout.js in real Chromium
# (playwright-core driving /usr/bin/chromium) against real fanoutd instances.
BROWSER_TESTS = tests/browser/page_basic.mjs tests/browser/page_cluster.mjs \
	tests/browser/page_failover.mjs tests/browser/ws_clients.mjs tests/browser/page_tokens.mjs
TESTS += $(BROWSER_TESTS)
EXTRA_DIST += $(BROWSER_TESTS) tests/browser/browser.mjs tests/browser/page_drain.mjs
# The page across an instance drain, counting every update (~15 s): once,
# in the plain suite.
if !ASAN
TESTS += tests/browser/page_drain.mjs
endif
