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
# tRPC (a React page with tRPC's React Query integration, bundled in the
# test with esbuild) and EventSource through nginx to three instances, each
# across a drain (~25 s): once, in the plain suite. The page's sources and
# its npm workspace (package.json) are in tests/browser/trpc-react/.
EXTRA_DIST += tests/browser/transports.mjs tests/browser/trpc-react/package.json \
	tests/browser/trpc-react/index.html tests/browser/trpc-react/src
if !ASAN
TESTS += tests/browser/transports.mjs
endif
