# tools/ — fanout-cli (sub, pub, push, bench) with its own small WebSocket
# client (wsc.c) and its man page.
bin_PROGRAMS += tools/fanout-cli
tools_fanout_cli_SOURCES = \
	tools/cli.c tools/cli.h \
	tools/wsc.c tools/wsc.h \
	tools/sub.c \
	tools/push.c \
	plugins/valkey/library.c plugins/valkey/library.h \
	plugins/valkey/redis_addr.c plugins/valkey/redis_addr.h \
	plugins/valkey/envelope.c plugins/valkey/envelope.h \
	tools/bench.c \
	tools/storm.c \
	tools/recover.c
tools_fanout_cli_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/valkey -I$(top_builddir)/plugins/valkey -DVERSION='"$(VERSION)"' $(HIREDIS_CFLAGS) $(JANSSON_CFLAGS)
tools_fanout_cli_CPPFLAGS += $(ZLIB_CFLAGS)
tools_fanout_cli_LDADD = $(HIREDIS_LIBS) $(JANSSON_LIBS) $(ZLIB_LIBS) -lm

man_MANS += tools/fanout-cli.1
CLEANFILES += tools/fanout-cli.1
EXTRA_DIST += tools/fanout-cli.1.in
tools/fanout-cli.1: tools/fanout-cli.1.in Makefile
	$(AM_V_GEN)$(MKDIR_P) tools && $(do_subst) < $(srcdir)/tools/fanout-cli.1.in > $@
# Its tests: tests/integration/local.mk (cli_*.mjs).
