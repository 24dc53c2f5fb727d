# tests/ — every test runs through `make check` and speaks TAP.
#   unit/         pure core modules (cmocka)                  tests/unit/*.mk
#   loader/       deliberately broken plugins refused         tests/loader/local.mk
#   plugin/       a backend against the mock host (cmocka)    plugins/NAME/local.mk
#                 (the mock host itself: tests/plugin/local.mk)
#   integration/  real fanoutd + real Valkey/Redis, nginx (node)
#                                                             tests/integration/local.mk,
#                                                             tests/integration/deploy.mk,
#                                                             plugins/NAME/local.mk
#   unit-js/      web/fanout.js in node                       tests/unit-js/local.mk
#   browser/      the page in real Chromium (node)            tests/browser/local.mk
#   fuzz/         libFuzzer harnesses (--enable-fuzz); corpus replay otherwise
#                                                             tests/fuzz/local.mk
# A test is registered (TESTS += ...) in the local.mk of its own directory;
# a backend's tests in its plugin's local.mk, so one folder adds a backend.
#
#   make check                          everything (node tests need `npm ci`)
#   make check TESTS=tests/unit/test_config
#   make list-tests                     every registered test, one per line
#   make check-valgrind                 the C tests under valgrind memcheck
TEST_EXTENSIONS = .mjs .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
MJS_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_DRIVER = $(LOG_DRIVER)
MJS_LOG_COMPILER = $(SHELL) $(top_srcdir)/tests/lib/node.sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	CMOCKA_MESSAGE_OUTPUT=TAP; export CMOCKA_MESSAGE_OUTPUT; \
	FANOUT_SRCDIR='$(abs_top_srcdir)'; export FANOUT_SRCDIR; \
	FANOUT_BUILDDIR='$(abs_top_builddir)'; export FANOUT_BUILDDIR; \
	FANOUTD='$(abs_top_builddir)/core/fanoutd'; export FANOUTD; \
	FANOUT_CLI='$(abs_top_builddir)/tools/fanout-cli'; export FANOUT_CLI; \
	REDIS_SERVER='$(REDIS_SERVER)'; export REDIS_SERVER; \
	REDIS_CLI='$(REDIS_CLI)'; export REDIS_CLI; \
	NGINX='$(NGINX)'; export NGINX; \
	NATS_SERVER='$(NATS_SERVER)'; export NATS_SERVER; \
	CHROMIUM='$(CHROMIUM)'; export CHROMIUM; \
	FANOUT_ASAN='$(enable_asan)'; export FANOUT_ASAN; \
	NODE='$(NODE)'; export NODE; \
	FUZZ_REPLAY_WRAPPER='$(FUZZ_REPLAY_WRAPPER)'; export FUZZ_REPLAY_WRAPPER;

EXTRA_DIST += tests/lib

list-tests:
	@for t in $(TESTS); do echo "$$t"; done
.PHONY: list-tests

# The C tiers — cmocka unit and plugin tests and the fuzz corpus replays —
# under valgrind memcheck (tests/lib/valgrind.sh): a memory error or a
# definite leak fails the test. Not in an --enable-asan build (ASan and
# valgrind exclude each other). scripts/test.sh --valgrind / CI run it.
VALGRIND_TESTS = $(filter-out %.mjs %.sh,$(TESTS)) $(filter tests/fuzz/corpus_%.sh,$(TESTS))
VALGRIND_WRAP = $(SHELL) $(abs_top_srcdir)/tests/lib/valgrind.sh
check-valgrind:
	@if test "x$(enable_asan)" = xyes; then \
	  echo "check-valgrind: this tree is built with --enable-asan; use a plain build" >&2; exit 1; fi
	@if test -z "$(VALGRIND)"; then \
	  echo "check-valgrind: valgrind not found (apt install valgrind; configure again)" >&2; exit 1; fi
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(VALGRIND_TESTS)' LOG_COMPILER='$(VALGRIND_WRAP)' \
		FUZZ_REPLAY_WRAPPER='$(VALGRIND_WRAP)'
.PHONY: check-valgrind

include tests/unit/config.mk
include tests/unit/protocol.mk
include tests/unit/core.mk
include tests/unit/security.mk
include tests/unit/auth.mk
include tests/unit/contract.mk
include tests/unit/transports.mk
include tests/unit-js/local.mk
include tests/browser/local.mk
include tests/loader/local.mk
include tests/plugin/local.mk
include tests/integration/local.mk
include tests/integration/deploy.mk
include tests/fuzz/local.mk
include tests/package/local.mk
