# tests/unit/auth.mk — unit tests of core/auth.c (tokens), cmocka; keys are
# generated inside the test with OpenSSL.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_auth
TESTS += tests/unit/test_auth
tests_unit_test_auth_SOURCES = tests/unit/test_auth.c
tests_unit_test_auth_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS) $(JWT_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_auth_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)
endif
