# tests/plugin/ — the mock host: a fake fanoutd that loads one backend .so and
# records every call it makes (see mockhost.h). Each backend registers its
# own plugin test (test_NAME.c here) in its local.mk and links
# $(MOCKHOST_LIBS). The mock host checks plugins and options with the very
# code fanoutd runs (core/contract.c, compiled in).
check_LIBRARIES += tests/plugin/libmockhost.a
tests_plugin_libmockhost_a_SOURCES = tests/plugin/mockhost.c tests/plugin/mockhost.h \
	core/contract.c core/contract.h
tests_plugin_libmockhost_a_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/core
tests_plugin_libmockhost_a_CFLAGS = $(AM_CFLAGS) -pthread
MOCKHOST_LIBS = $(top_builddir)/tests/plugin/libmockhost.a $(DL_LIBS) -lpthread
