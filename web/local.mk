# web/ — the browser client (fanout.js), the demo page and their tests.
# Installed to $(pkgdatadir)/web, fanoutd's default web_root. No build step:
# the files are served as they are.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/style.css web/app.js web/fanout.js

# Node unit tests of the client module (no browser, no network).
JS_UNIT_TESTS = tests/unit-js/backoff.mjs tests/unit-js/client.mjs
# Real Chromium (playwright-core) against real fanoutd instances.
BROWSER_TESTS = tests/browser/page_basic.mjs tests/browser/page_cluster.mjs \
	tests/browser/page_failover.mjs

TESTS += $(JS_UNIT_TESTS) $(BROWSER_TESTS)
EXTRA_DIST += $(JS_UNIT_TESTS) $(BROWSER_TESTS) tests/browser/browser.mjs
