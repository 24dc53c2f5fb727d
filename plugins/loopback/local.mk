# plugins/loopback/ — the in-process backend (tests, single instance).
pkglib_LTLIBRARIES += plugins/loopback/loopback.la
plugins_loopback_loopback_la_SOURCES = plugins/loopback/loopback.c
plugins_loopback_loopback_la_LDFLAGS = $(FANOUT_PLUGIN_LINK)
