# core/ — fanoutd. Everything but main.c goes into libfanoutcore.a so unit
# tests link the very code the daemon runs.
noinst_LIBRARIES += core/libfanoutcore.a
core_libfanoutcore_a_SOURCES = \
	core/log.c core/log.h \
	core/buf.c core/buf.h \
	core/auth.c core/auth.h \
	core/gate.c core/gate.h \
	core/guard.c core/guard.h \
	core/budget.c core/budget.h \
	core/config.c core/config.h \
	core/notify.c core/notify.h \
	core/reload.c core/reload.h \
	core/contract.c core/contract.h \
	core/json.c \
	core/protocol.c core/protocol.h \
	core/trpc_proto.c core/trpc_proto.h \
	core/msg.c core/msg.h \
	core/outq.c core/outq.h \
	core/clients.c core/clients.h \
	core/ws_frame.c core/ws_frame.h \
	core/ws_deflate.c core/ws_deflate.h \
	core/wsconn.c core/wsconn.h \
	core/metrics.c core/metrics.h \
	core/loop.c core/loop.h \
	core/listen.c core/listen.h \
	core/plugin_host.c core/plugin_host.h \
	core/hub.c core/hub.h \
	core/recovery.c core/recovery.h \
	core/session.c core/session.h \
	core/trpc.c core/trpc.h \
	core/sse.c core/sse.h \
	core/sse_id.c core/sse_id.h \
	core/http.c core/http.h \
	core/http_reply.c core/http_reply.h \
	core/netaddr.c core/netaddr.h \
	core/origin.c core/origin.h \
	core/conn.c core/conn.h \
	core/refuse.c core/refuse.h \
	core/gate.c core/gate.h \
	core/tls.c core/tls.h \
	core/tls_files.c core/tls_files.h \
	core/http_route.c core/http_route.h \
	core/http_api.c core/http_api.h \
	core/server.c core/server.h \
	core/workers.c core/workers.h
core_libfanoutcore_a_CPPFLAGS = $(AM_CPPFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS) \
	$(JWT_CFLAGS) $(CRYPTO_CFLAGS) $(SYSTEMD_CFLAGS) $(SSL_CFLAGS) $(ZLIB_CFLAGS)

sbin_PROGRAMS += core/fanoutd
core_fanoutd_SOURCES = core/main.c
core_fanoutd_CPPFLAGS = $(AM_CPPFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS)
core_fanoutd_LDADD = core/libfanoutcore.a $(LWS_LIBS) $(JANSSON_LIBS) $(INIH_LIBS) $(JWT_LIBS) \
	$(SSL_LIBS) $(CRYPTO_LIBS) $(ZLIB_LIBS) $(SYSTEMD_LIBS) $(DL_LIBS)

# Link line for anything that uses the core library.
FANOUT_CORE_LIBS = $(top_builddir)/core/libfanoutcore.a $(LWS_LIBS) $(JANSSON_LIBS) $(INIH_LIBS) \
	$(JWT_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) $(ZLIB_LIBS) $(SYSTEMD_LIBS) $(DL_LIBS)
