# plugins/nats/ — the nats backend (libnats; JetStream history and
# positions), its man page, its plugin test (mock host + a real
# nats-server) and its integration tests (real fanoutd + nats-server).

pkglib_LTLIBRARIES += plugins/nats/nats.la
plugins_nats_nats_la_SOURCES = \
	plugins/nats/nats.c plugins/nats/nt.h \
	plugins/nats/worker.c \
	plugins/nats/js.c \
	plugins/nats/ntab.c \
	plugins/nats/names.c plugins/nats/names.h
plugins_nats_nats_la_CPPFLAGS = -I$(top_srcdir)/include
plugins_nats_nats_la_CFLAGS = $(AM_CFLAGS) $(NATS_CFLAGS) $(JANSSON_CFLAGS) -pthread
plugins_nats_nats_la_LIBADD = $(NATS_LIBS) $(JANSSON_LIBS) -lpthread
# -z nodelete: libnats' threads must never outlive its code (fanoutd may
# dlclose the plugin; destroy() also waits for libnats to wind down).
plugins_nats_nats_la_LDFLAGS = $(FANOUT_PLUGIN_LINK) -Wl,-z,nodelete

man_MANS += plugins/nats/fanout-nats.5
CLEANFILES += plugins/nats/fanout-nats.5
EXTRA_DIST += plugins/nats/fanout-nats.5.in
plugins/nats/fanout-nats.5: plugins/nats/fanout-nats.5.in \
		plugins/nats/nats.la $(PLUGIN_OPTIONS) Makefile
	$(AM_V_GEN)$(MKDIR_P) plugins/nats && \
	$(do_subst) < $(srcdir)/plugins/nats/fanout-nats.5.in > $@.sub && \
	$(PLUGIN_MAN) plugins/nats/.libs/nats.so $@.sub > $@.tmp && mv $@.tmp $@ && rm -f $@.sub

# Plugin test: the name functions directly, the backend through the mock
# host against a real nats-server (tests/plugin/libmockhost.a).
if HAVE_CMOCKA
check_PROGRAMS += tests/plugin/test_nats
TESTS += tests/plugin/test_nats
tests_plugin_test_nats_SOURCES = tests/plugin/test_nats.c \
	plugins/nats/names.c plugins/nats/names.h
tests_plugin_test_nats_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/tests/plugin \
	-I$(top_srcdir)/plugins/nats \
	-DNATS_SO='"$(abs_top_builddir)/plugins/nats/.libs/nats.so"' \
	-DNATS_SERVER_BIN='"$(NATS_SERVER)"'
tests_plugin_test_nats_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(NATS_CFLAGS) $(JANSSON_CFLAGS) \
	-pthread
tests_plugin_test_nats_LDADD = $(MOCKHOST_LIBS) $(CMOCKA_LIBS) $(JANSSON_LIBS)
tests_plugin_test_nats_DEPENDENCIES = tests/plugin/libmockhost.a plugins/nats/nats.la
endif

NATS_NODE_TESTS = \
	tests/integration/protocol_nats.mjs \
	tests/integration/protocol_nats_js.mjs \
	tests/integration/positions_nats_js.mjs \
	tests/integration/nats_basic.mjs
TESTS += $(NATS_NODE_TESTS)
EXTRA_DIST += $(NATS_NODE_TESTS) tests/integration/nats_faults.mjs \
	tests/integration/nats_delivery.mjs
# Broker faults, counting every message (~13 s), and the delivery guarantee
# through nginx over three instances (~7 s): once, in the plain suite.
if !ASAN
TESTS += tests/integration/nats_faults.mjs tests/integration/nats_delivery.mjs
endif
