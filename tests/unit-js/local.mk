# tests/unit-js/ — node unit tests of web/fanout.js (no browser, no network).
JS_UNIT_TESTS = tests/unit-js/backoff.mjs tests/unit-js/client.mjs
TESTS += $(JS_UNIT_TESTS)
EXTRA_DIST += $(JS_UNIT_TESTS)
