# tests/ — every test runs through `make check` and speaks TAP.
#   unit/         pure core modules (cmocka)
#   loader/       deliberately broken plugins refused by the plugin host
#   plugin/       a backend against a mock host (cmocka)
#   integration/  real fanoutd + real Valkey/Redis, nginx, Chromium (node)
#   fuzz/         libFuzzer harnesses (--enable-fuzz); corpus replay otherwise
TEST_EXTENSIONS = .mjs .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
MJS_LOG_DRIVER = $(LOG_DRIVER)
SH_LOG_DRIVER = $(LOG_DRIVER)
MJS_LOG_COMPILER = $(NODE)
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
	CHROMIUM='$(CHROMIUM)'; export CHROMIUM; \
	FANOUT_ASAN='$(enable_asan)'; export FANOUT_ASAN;

EXTRA_DIST += tests/lib

include tests/unit/config.mk
include tests/unit/protocol.mk
include tests/unit/core.mk
include tests/unit/auth.mk
include tests/unit/contract.mk
include tests/unit/transports.mk
include tests/loader/local.mk
include tests/plugin/local.mk
include tests/integration/local.mk
include tests/fuzz/local.mk
