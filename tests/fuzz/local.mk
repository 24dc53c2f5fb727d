# tests/fuzz/ — libFuzzer harnesses over fanout's own parsers.
#
# Each harness fuzz_NAME.c defines LLVMFuzzerTestOneInput() and has a seed
# corpus in tests/fuzz/corpus/NAME/ (and optionally a dictionary NAME.dict).
#
# Always (plain `make check`, any compiler): each harness is linked with the
# replay driver (replay.c) as tests/fuzz/replay_NAME and run over its corpus
# by corpus_NAME.sh, one TAP line each, so the corpus is a regression suite.
#
# With `CC=clang ./configure --enable-fuzz`: the same harnesses are built as
# real libFuzzer binaries tests/fuzz/fuzz_NAME. They compile the few core
# sources they need themselves with -fsanitize=fuzzer,address,undefined (the
# rest of the tree, libfanoutcore.a included, is not coverage-instrumented),
# and `make fuzz [FUZZ_SECONDS=20]` runs each one for that long on a copy of
# its corpus and fails if a crash is found (tests/fuzz/run-fuzz.sh).

FUZZ_NAMES = protocol json query config filetail token wsframe envelope redis_addr nats http
FUZZ_SECONDS = 20

EXTRA_DIST += tests/fuzz/corpus tests/fuzz/fuzz_common.h tests/fuzz/replay-corpus.sh \
	tests/fuzz/run-fuzz.sh tests/fuzz/protocol.dict tests/fuzz/json.dict tests/fuzz/query.dict \
	tests/fuzz/token.dict

REPLAY_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz $(JANSSON_CFLAGS) $(INIH_CFLAGS)

check_PROGRAMS += tests/fuzz/replay_protocol tests/fuzz/replay_json tests/fuzz/replay_query \
	tests/fuzz/replay_config
TESTS += tests/fuzz/corpus_protocol.sh tests/fuzz/corpus_json.sh tests/fuzz/corpus_query.sh \
	tests/fuzz/corpus_config.sh
EXTRA_DIST += tests/fuzz/corpus_protocol.sh tests/fuzz/corpus_json.sh \
	tests/fuzz/corpus_query.sh tests/fuzz/corpus_config.sh

tests_fuzz_replay_protocol_SOURCES = tests/fuzz/fuzz_protocol.c tests/fuzz/replay.c
tests_fuzz_replay_protocol_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_protocol_LDADD = $(FANOUT_CORE_LIBS)

tests_fuzz_replay_json_SOURCES = tests/fuzz/fuzz_json.c tests/fuzz/replay.c
tests_fuzz_replay_json_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_json_LDADD = $(FANOUT_CORE_LIBS)

tests_fuzz_replay_query_SOURCES = tests/fuzz/fuzz_query.c tests/fuzz/replay.c
tests_fuzz_replay_query_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_query_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_config.c and corpus/config/ belong to the config part.
tests_fuzz_replay_config_SOURCES = tests/fuzz/fuzz_config.c tests/fuzz/replay.c
tests_fuzz_replay_config_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_config_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_token.c and corpus/token/: access tokens (core/auth.c).
check_PROGRAMS += tests/fuzz/replay_token
TESTS += tests/fuzz/corpus_token.sh
EXTRA_DIST += tests/fuzz/corpus_token.sh
tests_fuzz_replay_token_SOURCES = tests/fuzz/fuzz_token.c tests/fuzz/replay.c
tests_fuzz_replay_token_CPPFLAGS = $(REPLAY_CPPFLAGS) $(JWT_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_replay_token_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_wsframe.c and corpus/wsframe/: the WebSocket frame parser (core/ws_frame.c).
check_PROGRAMS += tests/fuzz/replay_wsframe
TESTS += tests/fuzz/corpus_wsframe.sh
EXTRA_DIST += tests/fuzz/corpus_wsframe.sh
tests_fuzz_replay_wsframe_SOURCES = tests/fuzz/fuzz_wsframe.c tests/fuzz/replay.c
tests_fuzz_replay_wsframe_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_wsframe_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_wsdeflate.c and corpus/wsdeflate/: permessage-deflate (core/ws_deflate.c).
FUZZ_NAMES += wsdeflate
check_PROGRAMS += tests/fuzz/replay_wsdeflate
TESTS += tests/fuzz/corpus_wsdeflate.sh
EXTRA_DIST += tests/fuzz/corpus_wsdeflate.sh
tests_fuzz_replay_wsdeflate_SOURCES = tests/fuzz/fuzz_wsdeflate.c tests/fuzz/replay.c
tests_fuzz_replay_wsdeflate_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_wsdeflate_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_sse_id.c and corpus/sse_id/: Last-Event-ID of event streams (core/sse_id.c).
FUZZ_NAMES += sse_id
check_PROGRAMS += tests/fuzz/replay_sse_id
TESTS += tests/fuzz/corpus_sse_id.sh
EXTRA_DIST += tests/fuzz/corpus_sse_id.sh
tests_fuzz_replay_sse_id_SOURCES = tests/fuzz/fuzz_sse_id.c tests/fuzz/replay.c
tests_fuzz_replay_sse_id_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_sse_id_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_trpc.c and corpus/trpc/: the tRPC transport's parsers (core/trpc_proto.c).
FUZZ_NAMES += trpc
check_PROGRAMS += tests/fuzz/replay_trpc
TESTS += tests/fuzz/corpus_trpc.sh
EXTRA_DIST += tests/fuzz/corpus_trpc.sh
tests_fuzz_replay_trpc_SOURCES = tests/fuzz/fuzz_trpc.c tests/fuzz/replay.c
tests_fuzz_replay_trpc_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_trpc_LDADD = $(FANOUT_CORE_LIBS)

# fuzz_filetail.c and corpus/filetail/ belong to the filetail backend.
check_PROGRAMS += tests/fuzz/replay_filetail
TESTS += tests/fuzz/corpus_filetail.sh
EXTRA_DIST += tests/fuzz/corpus_filetail.sh
tests_fuzz_replay_filetail_SOURCES = tests/fuzz/fuzz_filetail.c tests/fuzz/replay.c \
	plugins/filetail/line.c
tests_fuzz_replay_filetail_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/filetail
tests_fuzz_replay_filetail_LDADD = $(JANSSON_LIBS)

# fuzz_envelope.c and corpus/envelope/ belong to the valkey backend.
check_PROGRAMS += tests/fuzz/replay_envelope
TESTS += tests/fuzz/corpus_envelope.sh
EXTRA_DIST += tests/fuzz/corpus_envelope.sh
tests_fuzz_replay_envelope_SOURCES = tests/fuzz/fuzz_envelope.c tests/fuzz/replay.c \
	plugins/valkey/envelope.c
tests_fuzz_replay_envelope_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/valkey

# fuzz_redis_addr.c and corpus/redis_addr/: the one Redis URL parser.
check_PROGRAMS += tests/fuzz/replay_redis_addr
TESTS += tests/fuzz/corpus_redis_addr.sh
EXTRA_DIST += tests/fuzz/corpus_redis_addr.sh tests/fuzz/redis_addr.dict
tests_fuzz_replay_redis_addr_SOURCES = tests/fuzz/fuzz_redis_addr.c tests/fuzz/replay.c \
	plugins/valkey/redis_addr.c
tests_fuzz_replay_redis_addr_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/valkey

# fuzz_nats.c and corpus/nats/ belong to the nats backend (plugins/nats/names.c).
check_PROGRAMS += tests/fuzz/replay_nats
TESTS += tests/fuzz/corpus_nats.sh
EXTRA_DIST += tests/fuzz/corpus_nats.sh
tests_fuzz_replay_nats_SOURCES = tests/fuzz/fuzz_nats.c tests/fuzz/replay.c plugins/nats/names.c
tests_fuzz_replay_nats_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/nats
tests_fuzz_replay_nats_LDADD = $(JANSSON_LIBS)

# fuzz_http.c and corpus/http/: the HTTP side — Origin and allowed_origins,
# addresses, CIDR and X-Forwarded-For, routes and static paths, the publish
# API body (core/origin.c, netaddr.c, http_route.c, protocol.c).
check_PROGRAMS += tests/fuzz/replay_http
TESTS += tests/fuzz/corpus_http.sh
EXTRA_DIST += tests/fuzz/corpus_http.sh
tests_fuzz_replay_http_SOURCES = tests/fuzz/fuzz_http.c tests/fuzz/replay.c
tests_fuzz_replay_http_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_replay_http_LDADD = $(FANOUT_CORE_LIBS)

if FUZZ
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -g
# The core sources a harness may need, compiled into each harness with
# coverage instrumentation.
FUZZ_CORE_SOURCES = core/protocol.c core/json.c core/buf.c core/config.c core/contract.c core/log.c \
	core/auth.c core/ws_frame.c core/origin.c core/netaddr.c core/trpc_proto.c core/http_route.c \
	core/ws_deflate.c core/tls_files.c
FUZZ_LIBS = $(INIH_LIBS) $(JANSSON_LIBS) $(JWT_LIBS) $(CRYPTO_LIBS) $(ZLIB_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_protocol tests/fuzz/fuzz_json tests/fuzz/fuzz_query \
	tests/fuzz/fuzz_config tests/fuzz/fuzz_filetail tests/fuzz/fuzz_token tests/fuzz/fuzz_wsframe \
	tests/fuzz/fuzz_envelope tests/fuzz/fuzz_redis_addr tests/fuzz/fuzz_nats \
	tests/fuzz/fuzz_http

tests_fuzz_fuzz_http_SOURCES = tests/fuzz/fuzz_http.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_http_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_http_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_http_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_http_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_token_SOURCES = tests/fuzz/fuzz_token.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_token_CPPFLAGS = $(REPLAY_CPPFLAGS) $(JWT_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_token_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_token_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_token_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_wsdeflate
tests_fuzz_fuzz_wsdeflate_SOURCES = tests/fuzz/fuzz_wsdeflate.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_wsdeflate_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_wsdeflate_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_wsdeflate_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_wsdeflate_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_sse_id
tests_fuzz_fuzz_sse_id_SOURCES = tests/fuzz/fuzz_sse_id.c core/sse_id.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_sse_id_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_sse_id_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_sse_id_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_sse_id_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_trpc
tests_fuzz_fuzz_trpc_SOURCES = tests/fuzz/fuzz_trpc.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_trpc_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_trpc_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_trpc_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_trpc_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_wsframe_SOURCES = tests/fuzz/fuzz_wsframe.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_wsframe_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_wsframe_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_wsframe_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_wsframe_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_envelope_SOURCES = tests/fuzz/fuzz_envelope.c plugins/valkey/envelope.c
tests_fuzz_fuzz_envelope_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/valkey
tests_fuzz_fuzz_envelope_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_envelope_LDFLAGS = $(FUZZ_FLAGS)

tests_fuzz_fuzz_redis_addr_SOURCES = tests/fuzz/fuzz_redis_addr.c plugins/valkey/redis_addr.c
tests_fuzz_fuzz_redis_addr_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/valkey
tests_fuzz_fuzz_redis_addr_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_redis_addr_LDFLAGS = $(FUZZ_FLAGS)

tests_fuzz_fuzz_nats_SOURCES = tests/fuzz/fuzz_nats.c plugins/nats/names.c
tests_fuzz_fuzz_nats_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/nats
tests_fuzz_fuzz_nats_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_nats_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_nats_LDADD = $(JANSSON_LIBS)

tests_fuzz_fuzz_filetail_SOURCES = tests/fuzz/fuzz_filetail.c plugins/filetail/line.c
tests_fuzz_fuzz_filetail_CPPFLAGS = $(REPLAY_CPPFLAGS) -I$(top_srcdir)/plugins/filetail
tests_fuzz_fuzz_filetail_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_filetail_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_filetail_LDADD = $(JANSSON_LIBS)

tests_fuzz_fuzz_protocol_SOURCES = tests/fuzz/fuzz_protocol.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_protocol_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_protocol_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_protocol_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_protocol_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_json_SOURCES = tests/fuzz/fuzz_json.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_json_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_json_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_json_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_json_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_query_SOURCES = tests/fuzz/fuzz_query.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_query_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_query_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_query_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_query_LDADD = $(FUZZ_LIBS)

tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c $(FUZZ_CORE_SOURCES)
tests_fuzz_fuzz_config_CPPFLAGS = $(REPLAY_CPPFLAGS)
tests_fuzz_fuzz_config_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_config_LDADD = $(FUZZ_LIBS)

fuzz: tests/fuzz/fuzz_protocol tests/fuzz/fuzz_json tests/fuzz/fuzz_query tests/fuzz/fuzz_config \
		tests/fuzz/fuzz_filetail tests/fuzz/fuzz_token tests/fuzz/fuzz_wsframe \
		tests/fuzz/fuzz_envelope tests/fuzz/fuzz_redis_addr tests/fuzz/fuzz_nats tests/fuzz/fuzz_http
	$(AM_V_at)$(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh '$(top_srcdir)' '$(FUZZ_SECONDS)' \
		$(FUZZ_NAMES)
else
fuzz:
	@echo "make fuzz: configure with CC=clang --enable-fuzz first" >&2; exit 1
endif
.PHONY: fuzz

CLEANFILES += tests/fuzz/fuzz_*.log
clean-local: clean-local-fuzz
clean-local-fuzz:
	-rm -f tests/fuzz/crash-* tests/fuzz/leak-* tests/fuzz/timeout-* tests/fuzz/oom-*
.PHONY: clean-local-fuzz
