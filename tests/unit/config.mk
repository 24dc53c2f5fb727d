# tests/unit/config.mk — unit test of core/config.c (cmocka).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_config_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)
endif
EXTRA_DIST += tests/unit/data/config
