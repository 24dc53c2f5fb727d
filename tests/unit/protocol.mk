# tests/unit/protocol.mk — cmocka tests of the client protocol codec
# (core/protocol.c) and the JSON helpers (core/json.c). Both link the very
# library fanoutd runs (core/libfanoutcore.a).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_protocol tests/unit/test_json
TESTS += tests/unit/test_protocol tests/unit/test_json

tests_unit_test_protocol_SOURCES = tests/unit/test_protocol.c
tests_unit_test_protocol_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_protocol_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)

tests_unit_test_json_SOURCES = tests/unit/test_json.c
tests_unit_test_json_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_json_LDADD = $(FANOUT_CORE_LIBS) $(CMOCKA_LIBS)
endif
