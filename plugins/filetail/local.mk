# plugins/filetail/ — the filetail backend (replays and follows a file of
# updates), its man page, its plugin test (mock host) and its integration
# tests (real fanoutd + fanout-cli).

pkglib_LTLIBRARIES += plugins/filetail/filetail.la
plugins_filetail_filetail_la_SOURCES = \
	plugins/filetail/filetail.c plugins/filetail/ft.h \
	plugins/filetail/chset.c \
	plugins/filetail/positions.c \
	plugins/filetail/line.c plugins/filetail/line.h
plugins_filetail_filetail_la_CPPFLAGS = -I$(top_srcdir)/include
plugins_filetail_filetail_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_filetail_filetail_la_LIBADD = $(JANSSON_LIBS)
plugins_filetail_filetail_la_LDFLAGS = $(FANOUT_PLUGIN_LINK)

man_MANS += plugins/filetail/fanout-filetail.5
CLEANFILES += plugins/filetail/fanout-filetail.5
EXTRA_DIST += plugins/filetail/fanout-filetail.5.in plugins/filetail/README.md \
	conf/examples/filetail.ini
plugins/filetail/fanout-filetail.5: plugins/filetail/fanout-filetail.5.in \
		plugins/filetail/filetail.la $(PLUGIN_OPTIONS) Makefile
	$(AM_V_GEN)$(MKDIR_P) plugins/filetail && \
	$(do_subst) < $(srcdir)/plugins/filetail/fanout-filetail.5.in > $@.sub && \
	$(PLUGIN_MAN) plugins/filetail/.libs/filetail.so $@.sub > $@.tmp && mv $@.tmp $@ && rm -f $@.sub

# Plugin test: the line parser directly, the backend through the mock host
# (tests/plugin/libmockhost.a, defined in plugins/valkey/local.mk).
if HAVE_CMOCKA
check_PROGRAMS += tests/plugin/test_filetail
TESTS += tests/plugin/test_filetail
tests_plugin_test_filetail_SOURCES = tests/plugin/test_filetail.c \
	plugins/filetail/line.c plugins/filetail/line.h
tests_plugin_test_filetail_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/tests/plugin \
	-I$(top_srcdir)/plugins/filetail \
	-DFILETAIL_SO='"$(abs_top_builddir)/plugins/filetail/.libs/filetail.so"'
tests_plugin_test_filetail_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) -pthread
tests_plugin_test_filetail_LDADD = $(MOCKHOST_LIBS) $(CMOCKA_LIBS) $(JANSSON_LIBS)
tests_plugin_test_filetail_DEPENDENCIES = tests/plugin/libmockhost.a plugins/filetail/filetail.la
endif

FILETAIL_NODE_TESTS = \
	tests/integration/filetail_replay.mjs
TESTS += $(FILETAIL_NODE_TESTS)
EXTRA_DIST += $(FILETAIL_NODE_TESTS) tests/fuzz/fuzz_filetail.c
