# tests/unit/core.mk — unit tests of core modules with stubbed neighbours.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_hub
TESTS += tests/unit/test_hub
tests_unit_test_hub_SOURCES = tests/unit/test_hub.c core/hub.c core/recovery.c core/msg.c core/buf.c \
	core/protocol.c core/json.c core/log.c core/auth.c core/netaddr.c
tests_unit_test_hub_CPPFLAGS = $(AM_CPPFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(CMOCKA_CFLAGS) \
	$(JWT_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_hub_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS) $(JWT_LIBS) $(CRYPTO_LIBS)

check_PROGRAMS += tests/unit/test_ws_frame
TESTS += tests/unit/test_ws_frame
tests_unit_test_ws_frame_SOURCES = tests/unit/test_ws_frame.c core/ws_frame.c core/json.c core/buf.c
tests_unit_test_ws_frame_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_ws_frame_LDADD = $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_ws_deflate
TESTS += tests/unit/test_ws_deflate
tests_unit_test_ws_deflate_SOURCES = tests/unit/test_ws_deflate.c core/ws_deflate.c core/buf.c
tests_unit_test_ws_deflate_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS) $(ZLIB_CFLAGS)
tests_unit_test_ws_deflate_LDADD = $(CMOCKA_LIBS) $(ZLIB_LIBS)

check_PROGRAMS += tests/unit/test_recovery
TESTS += tests/unit/test_recovery
tests_unit_test_recovery_SOURCES = tests/unit/test_recovery.c core/recovery.c core/msg.c \
	core/buf.c core/protocol.c core/json.c core/log.c
tests_unit_test_recovery_CPPFLAGS = $(AM_CPPFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_recovery_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS)
endif

# core/'s modules include each other without a circle (issue 12); reads the
# sources only (node, < 1 s).
TESTS += tests/unit/core_includes.mjs
EXTRA_DIST += tests/unit/core_includes.mjs
