# tests/unit/transports.mk — unit tests of the transports' pure parts.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_outq
TESTS += tests/unit/test_outq
tests_unit_test_outq_SOURCES = tests/unit/test_outq.c core/outq.c core/msg.c core/buf.c
tests_unit_test_outq_CPPFLAGS = $(AM_CPPFLAGS) $(LWS_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_outq_LDADD = $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_trpc
TESTS += tests/unit/test_trpc
tests_unit_test_trpc_SOURCES = tests/unit/test_trpc.c
tests_unit_test_trpc_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_trpc_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_sse_id
TESTS += tests/unit/test_sse_id
tests_unit_test_sse_id_SOURCES = tests/unit/test_sse_id.c
tests_unit_test_sse_id_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_sse_id_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)
endif
