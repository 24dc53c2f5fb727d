# tests/unit/contract.mk — unit test of core/contract.c (the plugin contract)
# and of the mock host's agreement with fanoutd's config (cmocka).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_contract
TESTS += tests/unit/test_contract
tests_unit_test_contract_SOURCES = tests/unit/test_contract.c
tests_unit_test_contract_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/plugin $(CMOCKA_CFLAGS)
tests_unit_test_contract_CFLAGS = $(AM_CFLAGS) -pthread
tests_unit_test_contract_LDADD = $(FANOUT_CORE_LIBS) $(MOCKHOST_LIBS) $(CMOCKA_LIBS)
tests_unit_test_contract_DEPENDENCIES = core/libfanoutcore.a tests/plugin/libmockhost.a
endif
