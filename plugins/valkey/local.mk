# plugins/valkey/ — the valkey backend (hiredis async on the host's loop),
# its man page, and its tests: the plugin test against the mock host
# (tests/plugin/local.mk) and the integration tests.

pkglib_LTLIBRARIES += plugins/valkey/valkey.la
plugins_valkey_valkey_la_SOURCES = \
	plugins/valkey/valkey.c plugins/valkey/vk.h \
	plugins/valkey/conn.c \
	plugins/valkey/subs.c \
	plugins/valkey/probe.c \
	plugins/valkey/publish.c \
	plugins/valkey/redis_addr.c plugins/valkey/redis_addr.h \
	plugins/valkey/history.c plugins/valkey/library.c plugins/valkey/library.h \
	plugins/valkey/envelope.c plugins/valkey/envelope.h \
	plugins/valkey/cluster.c \
	plugins/valkey/rconn.c plugins/valkey/rconn.h
plugins_valkey_valkey_la_CPPFLAGS = -I$(top_srcdir)/include -I$(top_builddir)/plugins/valkey
plugins_valkey_valkey_la_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS) -pthread
plugins_valkey_valkey_la_LIBADD = $(HIREDIS_LIBS) -lpthread
plugins_valkey_valkey_la_LDFLAGS = $(FANOUT_PLUGIN_LINK)

# library.lua (the broker's "fanout" functions) as a C string literal for library.c.
BUILT_SOURCES += plugins/valkey/library_lua.h
CLEANFILES += plugins/valkey/library_lua.h
EXTRA_DIST += plugins/valkey/library.lua
plugins/valkey/library_lua.h: plugins/valkey/library.lua
	$(AM_V_GEN)$(MKDIR_P) plugins/valkey && \
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' \
		$(srcdir)/plugins/valkey/library.lua > $@.tmp && mv $@.tmp $@

man_MANS += plugins/valkey/fanout-valkey.5
CLEANFILES += plugins/valkey/fanout-valkey.5
EXTRA_DIST += plugins/valkey/fanout-valkey.5.in plugins/valkey/README.md
plugins/valkey/fanout-valkey.5: plugins/valkey/fanout-valkey.5.in plugins/valkey/valkey.la \
		$(PLUGIN_OPTIONS) Makefile
	$(AM_V_GEN)$(MKDIR_P) plugins/valkey && \
	$(do_subst) < $(srcdir)/plugins/valkey/fanout-valkey.5.in > $@.sub && \
	$(PLUGIN_MAN) plugins/valkey/.libs/valkey.so $@.sub > $@.tmp && mv $@.tmp $@ && rm -f $@.sub

if HAVE_CMOCKA
check_PROGRAMS += tests/plugin/test_valkey
TESTS += tests/plugin/test_valkey
tests_plugin_test_valkey_SOURCES = tests/plugin/test_valkey.c plugins/valkey/envelope.c \
	tests/plugin/brokers.c tests/plugin/brokers.h
tests_plugin_test_valkey_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/tests/plugin \
	-I$(top_srcdir)/plugins/valkey \
	-DVALKEY_SO='"$(abs_top_builddir)/plugins/valkey/.libs/valkey.so"'
tests_plugin_test_valkey_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(HIREDIS_CFLAGS) -pthread
tests_plugin_test_valkey_LDADD = $(MOCKHOST_LIBS) $(CMOCKA_LIBS) $(HIREDIS_LIBS)
tests_plugin_test_valkey_DEPENDENCIES = tests/plugin/libmockhost.a plugins/valkey/valkey.la

# Cluster mode against real 3- and 4-node clusters (~25 s, mostly waiting for
# the cluster to form and fail over): plain suite only.
check_PROGRAMS += tests/plugin/test_valkey_cluster
if !ASAN
TESTS += tests/plugin/test_valkey_cluster
endif
tests_plugin_test_valkey_cluster_SOURCES = tests/plugin/test_valkey_cluster.c \
	tests/plugin/brokers.c tests/plugin/brokers.h
tests_plugin_test_valkey_cluster_CPPFLAGS = $(tests_plugin_test_valkey_CPPFLAGS)
tests_plugin_test_valkey_cluster_CFLAGS = $(tests_plugin_test_valkey_CFLAGS)
tests_plugin_test_valkey_cluster_LDADD = $(tests_plugin_test_valkey_LDADD)
tests_plugin_test_valkey_cluster_DEPENDENCIES = $(tests_plugin_test_valkey_DEPENDENCIES)

# The one Redis URL parser (the backend's url option and fanout-cli --redis).
check_PROGRAMS += tests/unit/test_redis_addr
TESTS += tests/unit/test_redis_addr
tests_unit_test_redis_addr_SOURCES = tests/unit/test_redis_addr.c plugins/valkey/redis_addr.c
tests_unit_test_redis_addr_CPPFLAGS = -I$(top_srcdir)/plugins/valkey
tests_unit_test_redis_addr_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_redis_addr_LDADD = $(CMOCKA_LIBS)
endif

VALKEY_NODE_TESTS = \
	tests/integration/protocol_valkey.mjs \
	tests/integration/positions_valkey.mjs \
	tests/integration/valkey_basic.mjs \
	tests/integration/valkey_faults.mjs \
	tests/integration/valkey_multi.mjs \
	tests/integration/valkey_repair.mjs \
	tests/integration/valkey_epoch_resume.mjs
TESTS += $(VALKEY_NODE_TESTS)
EXTRA_DIST += $(VALKEY_NODE_TESTS)
# Cluster mode through two fanoutd on a 3-shard cluster, a shard killed and
# restarted (~15 s): plain suite only.
if !ASAN
TESTS += tests/integration/valkey_cluster.mjs
endif
EXTRA_DIST += tests/integration/valkey_cluster.mjs
