# plugins/example/ — the backend third parties copy. Built here as a module
# and installed (source + a standalone Makefile) to $(pkgdatadir)/example.
pkglib_LTLIBRARIES += plugins/example/example.la
plugins_example_example_la_SOURCES = plugins/example/example.c
plugins_example_example_la_LDFLAGS = $(FANOUT_PLUGIN_LINK)

exampledir = $(pkgdatadir)/example
dist_example_DATA = plugins/example/example.c
example_DATA = plugins/example/Makefile
CLEANFILES += plugins/example/Makefile
EXTRA_DIST += plugins/example/Makefile.example
plugins/example/Makefile: plugins/example/Makefile.example
	$(AM_V_GEN)$(MKDIR_P) plugins/example && cp $(srcdir)/plugins/example/Makefile.example $@

TESTS += tests/integration/dropin.sh
EXTRA_DIST += tests/integration/dropin.sh
