# tests/unit/security.mk — unit tests of the pure security modules
# (addresses and networks, Origin matching).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_netaddr
TESTS += tests/unit/test_netaddr
tests_unit_test_netaddr_SOURCES = tests/unit/test_netaddr.c core/netaddr.c core/origin.c
tests_unit_test_netaddr_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_netaddr_LDADD = $(CMOCKA_LIBS)
endif
