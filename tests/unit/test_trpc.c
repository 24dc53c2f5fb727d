/*
 * test_trpc.c — the tRPC wire protocol (core/trpc_proto.c) and the [trpc]
 * configuration: requests and batches as @trpc/client 11 sends them and
 * every way a message is refused (one bad request fails the batch, as in
 * @trpc/server), connectionParams, channel templates with {input.FIELD},
 * every server frame byte for byte (the shapes captured from @trpc/server
 * 11.25), the payload and offset found inside a native message frame, and
 * [trpc] keys, errors and overrides in config_load().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "protocol.h"
#include "trpc_proto.h"

static char why[512];

static int parse(const char *s, struct trpc_batch *b)
{
	return trpc_parse(s, strlen(s), b, why, sizeof(why));
}

static void requests_and_batches(void **state)
{
	struct trpc_batch b;
	assert_int_equal(
	    parse("{\"id\":1,\"method\":\"subscription\",\"params\":{\"input\":{\"roomId\":"
		  "\"a\"},\"path\":\"onRoom\"}}",
		  &b),
	    0);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.reqs[0].method, TRPC_SUBSCRIPTION);
	assert_string_equal(b.reqs[0].id, "1");
	assert_string_equal(b.reqs[0].path, "onRoom");
	assert_true(json_is_object((json_t *)b.reqs[0].input));
	assert_string_equal(b.reqs[0].last_event_id, "");
	assert_int_equal(b.reqs[0].jsonrpc, 0);
	trpc_batch_free(&b);

	/* one tick's requests arrive as an array; string ids; stop; jsonrpc */
	assert_int_equal(
	    parse("[{\"id\":\"a\",\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":"
		  "{\"path\":\"p\",\"lastEventId\":\"E:4\"}},{\"id\":2,\"method\":"
		  "\"subscription.stop\"},{\"id\":3,\"method\":\"query\",\"params\":{"
		  "\"path\":\"q\",\"input\":{\"lastEventId\":\"X:1\"}}},{\"id\":null,"
		  "\"method\":\"mutation\",\"params\":{\"path\":\"m\"}}]",
		  &b),
	    0);
	assert_int_equal(b.n, 4);
	assert_string_equal(b.reqs[0].id, "\"a\"");
	assert_int_equal(b.reqs[0].jsonrpc, 1);
	assert_string_equal(b.reqs[0].last_event_id, "E:4");
	assert_null(b.reqs[0].input);
	assert_int_equal(b.reqs[1].method, TRPC_STOP);
	assert_int_equal(b.reqs[2].method, TRPC_QUERY);
	assert_string_equal(b.reqs[2].last_event_id, "X:1"); /* merged from the input */
	assert_int_equal(b.reqs[3].method, TRPC_MUTATION);
	assert_int_equal(b.reqs[3].id_null, 1);
	trpc_batch_free(&b);
}

static void refused_messages(void **state)
{
	static const char *const bad[] = {
	    "",
	    "PING!",
	    "[]",
	    "3",
	    "[1]",
	    "{\"id\":{},\"method\":\"subscription\",\"params\":{\"path\":\"p\"}}",
	    "{\"id\":1,\"jsonrpc\":\"1.0\",\"method\":\"subscription\",\"params\":{\"path\":\"p\"}"
	    "}",
	    "{\"id\":1,\"method\":\"launch\",\"params\":{\"path\":\"p\"}}",
	    "{\"id\":1,\"method\":\"subscription\"}",
	    "{\"id\":1,\"method\":\"subscription\",\"params\":{}}",
	    "{\"id\":1,\"method\":\"subscription\",\"params\":{\"path\":7}}",
	    "{\"id\":1,\"method\":\"subscription\",\"params\":{\"path\":\"p\",\"lastEventId\":5}}",
	    "{\"id\":1,\"id\":2,\"method\":\"subscription.stop\"}",
	    /* one bad request fails the whole batch */
	    "[{\"id\":1,\"method\":\"subscription.stop\"},{\"id\":2}]",
	};
	struct trpc_batch b;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		if (!parse(bad[i], &b))
			fail_msg("accepted: %s", bad[i]);
		assert_true(why[0] != 0);
		assert_null(b.reqs);
	}
	char path[TRPC_PATH_MAX + 80];
	snprintf(path, sizeof(path),
		 "{\"id\":1,\"method\":\"subscription\",\"params\":{\"path\":\"%0*d\"}}",
		 TRPC_PATH_MAX + 1, 0);
	assert_int_equal(parse(path, &b), -1);
	/* a batch over TRPC_BATCH_MAX */
	size_t n = TRPC_BATCH_MAX + 1, at = 1;
	char *big = malloc(n * 40 + 4);
	big[0] = '[';
	for (size_t i = 0; i < n; i++)
		at += (size_t)sprintf(big + at, "%s{\"id\":%zu,\"method\":\"subscription.stop\"}",
				      i ? "," : "", i);
	strcpy(big + at, "]");
	assert_int_equal(parse(big, &b), -1);
	assert_non_null(strstr(why, "batch"));
	free(big);
}

static void connection_params(void **state)
{
	char *tok;
	const char *ok =
	    "{\"method\":\"connectionParams\",\"data\":{\"token\":\"abc.def\",\"x\":\"1\"}}";
	assert_int_equal(trpc_parse_params(ok, strlen(ok), &tok, why, sizeof(why)), 0);
	assert_string_equal(tok, "abc.def");
	free(tok);
	const char *none = "{\"method\":\"connectionParams\",\"data\":null}";
	assert_int_equal(trpc_parse_params(none, strlen(none), &tok, why, sizeof(why)), 0);
	assert_null(tok);
	const char *bad[] = {
	    "{\"id\":1,\"method\":\"subscription\"}", "nope",
	    "{\"method\":\"connectionParams\",\"data\":[1]}",
	    /* as @trpc/server: data is required, its values strings */
	    "{\"method\":\"connectionParams\"}",
	    "{\"method\":\"connectionParams\",\"data\":{\"token\":\"a\",\"n\":1}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(trpc_parse_params(bad[i], strlen(bad[i]), &tok, why, sizeof(why)),
				 -1);
		assert_null(tok);
	}
}

static void templates(void **state)
{
	const char *w;
	assert_int_equal(trpc_template_check("updates", &w), 0);
	assert_int_equal(trpc_template_check("room.{input.roomId}", &w), 0);
	assert_int_equal(trpc_template_check("{input.a.b}:{input.c}", &w), 0);
	const char *bad[] = {
	    "",		  "has space", "room.{input.}", "room.{input}", "{input.a..b}",
	    "{input.a.}", "{roomId}",  "{input.a",	"x{",		"é"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!trpc_template_check(bad[i], &w))
			fail_msg("template accepted: %s", bad[i]);

	char out[PROTO_CHANNEL_MAX + 1];
	json_t *in = json_pack("{s:s, s:i, s:{s:s}, s:b, s:s}", "roomId", "r1", "n", 42, "a", "b",
			       "deep", "flag", 1, "sp", "a b");
	assert_int_equal(
	    trpc_template_expand("room.{input.roomId}.{input.n}", in, out, why, sizeof(why)), 0);
	assert_string_equal(out, "room.r1.42");
	assert_int_equal(trpc_template_expand("x.{input.a.b}", in, out, why, sizeof(why)), 0);
	assert_string_equal(out, "x.deep");
	assert_int_equal(trpc_template_expand("updates", NULL, out, why, sizeof(why)), 0);
	assert_string_equal(out, "updates");
	assert_int_equal(trpc_template_expand("x.{input.flag}", in, out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "input.flag"));
	assert_int_equal(trpc_template_expand("x.{input.missing}", in, out, why, sizeof(why)), -1);
	assert_int_equal(trpc_template_expand("x.{input.roomId}", NULL, out, why, sizeof(why)), -1);
	assert_int_equal(trpc_template_expand("x.{input.sp}", in, out, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not a valid channel name"));
	json_decref(in);
}

#define FRAME(call, want)                                                                          \
	do {                                                                                       \
		struct buf b;                                                                      \
		buf_init(&b, 0);                                                                   \
		assert_int_equal(call, 0);                                                         \
		buf_putc(&b, 0);                                                                   \
		assert_string_equal(buf_data(&b), want);                                           \
		buf_free(&b);                                                                      \
	} while (0)

static void frames(void **state)
{
	FRAME((trpc_head(&b, "1", 0, 0), trpc_started_body(&b)),
	      "{\"id\":1,\"result\":{\"type\":\"started\"}}");
	FRAME((trpc_head(&b, "\"a\"", 0, 1), trpc_stopped_body(&b)),
	      "{\"id\":\"a\",\"jsonrpc\":\"2.0\",\"result\":{\"type\":\"stopped\"}}");
	FRAME((trpc_head(&b, "7", 0, 0), trpc_data_body(&b, NULL, 0, "{\"n\":1}", 7)),
	      "{\"id\":7,\"result\":{\"type\":\"data\",\"data\":{\"n\":1}}}");
	FRAME((trpc_head(&b, "7", 0, 0), trpc_data_body(&b, "E1", 42, "\"x\"", 3)),
	      "{\"id\":7,\"result\":{\"type\":\"data\",\"id\":\"E1:42\",\"data\":{\"id\":\"E1:42\","
	      "\"data\":\"x\"}}}");
	FRAME((trpc_head(&b, "3", 0, 0),
	       trpc_error_body(&b, TRPC_NOT_FOUND, "No \"subscription\"-procedure on path \"nope\"",
			       "nope")),
	      "{\"id\":3,\"error\":{\"message\":\"No \\\"subscription\\\"-procedure on path "
	      "\\\"nope\\\"\",\"code\":-32004,\"data\":{\"code\":\"NOT_FOUND\",\"httpStatus\":404,"
	      "\"path\":\"nope\"}}}");
	FRAME((trpc_head(&b, NULL, 1, 0),
	       trpc_error_body(&b, TRPC_PARSE_ERROR, "`id` is required", NULL)),
	      "{\"id\":null,\"error\":{\"message\":\"`id` is required\",\"code\":-32700,\"data\":{"
	      "\"code\":\"PARSE_ERROR\",\"httpStatus\":400}}}");
	FRAME(trpc_reconnect(&b), "{\"id\":null,\"method\":\"reconnect\"}");
	assert_int_equal(trpc_code_from_proto(PROTO_E_FORBIDDEN), TRPC_FORBIDDEN);
	assert_int_equal(trpc_code_from_proto(PROTO_E_NO_BACKEND), TRPC_NOT_FOUND);
	assert_int_equal(trpc_code_from_proto(PROTO_E_TOO_MANY_SUBS), TRPC_TOO_MANY_REQUESTS);
	assert_int_equal(trpc_code_from_proto(PROTO_E_BACKEND_UNAVAIL), TRPC_SERVICE_UNAVAILABLE);
	assert_int_equal(trpc_code_from_proto(PROTO_E_BAD_CHANNEL), TRPC_BAD_REQUEST);
	assert_string_equal(trpc_code_name(TRPC_PRECONDITION_FAILED), "PRECONDITION_FAILED");
}

/* The payload of a native message frame, as transports rewrap it. */
static void message_data(void **state)
{
	struct buf b;
	size_t off, len;
	uint64_t offset;
	const char *payloads[] = {"{\"data\":\"x\",\"y\":[1,2]}", "not json \"quoted\"", ""};
	for (int i = 0; i < 3; i++) {
		buf_init(&b, 0);
		assert_int_equal(proto_message(&b, "ch.\"odd\"", "inst\\1", payloads[i],
					       strlen(payloads[i]), NULL),
				 0);
		assert_int_equal(proto_message_data(buf_data(&b), b.len, &off, &len, &offset), 0);
		assert_int_equal(offset, 0);
		json_t *v = json_loadb(buf_data(&b) + off, len, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		json_t *whole = json_loadb(buf_data(&b), b.len, 0, NULL);
		assert_true(json_equal(v, json_object_get(whole, "data")));
		json_decref(v);
		json_decref(whole);
		buf_free(&b);
	}
	const char *pos = "{\"type\":\"message\",\"channel\":\"c\",\"instance\":\"i\",\"offset\":"
			  "9007199254740991,\"data\":[1]}";
	assert_int_equal(proto_message_data(pos, strlen(pos), &off, &len, &offset), 0);
	assert_int_equal(offset, 9007199254740991ULL);
	assert_int_equal(len, 3);
	const char *bad[] = {"",
			     "{}",
			     "{\"type\":\"gap\",\"channel\":\"c\",\"reason\":\"r\"}",
			     "{\"type\":\"message\",\"channel\":\"c\"}",
			     "{\"type\":\"message\",\"offset\":,\"data\":1}",
			     "{\"type\":\"message\",\"channel\":\"c\",\"data\":}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proto_message_data(bad[i], strlen(bad[i]), &off, &len, &offset),
				 -1);
}

/* ---- [trpc] in the config ---- */

static int load(struct config *c, const char *text, const char *const *ov, size_t nov, char **errs)
{
	char path[] = "/tmp/test_trpc.XXXXXX";
	size_t elen;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	FILE *ef = open_memstream(errs, &elen);
	int n = config_load(c, path, ov, nov, ef);
	fclose(ef);
	unlink(path);
	return n;
}

#define BACKEND "[backend b]\nplugin = x\n"

static void config_section(void **state)
{
	struct config c;
	char *errs;
	const char *ov[] = {"trpc.extra.path=x.{input.id}", "trpc.onUpdates=other"};
	assert_int_equal(load(&c,
			      "[trpc]\nonUpdates = updates\npost.onAdd = room.{input.roomId}\n"
			      "[server]\ntrpc_path = /api/trpc\n" BACKEND,
			      ov, 2, &errs),
			 0);
	free(errs);
	assert_string_equal(c.trpc_path, "/api/trpc");
	assert_int_equal(c.n_trpc, 3);
	assert_string_equal(config_trpc_channel(&c, "onUpdates"), "other");
	assert_string_equal(config_trpc_channel(&c, "post.onAdd"), "room.{input.roomId}");
	assert_string_equal(config_trpc_channel(&c, "extra.path"), "x.{input.id}");
	assert_null(config_trpc_channel(&c, "nope"));
	char *dump;
	size_t dlen;
	FILE *df = open_memstream(&dump, &dlen);
	config_dump(&c, df);
	fclose(df);
	assert_non_null(strstr(dump, "trpc_path = /api/trpc\n"));
	assert_non_null(strstr(dump, "\n[trpc]\nonUpdates = other\n"));
	free(dump);
	config_free(&c);

	/* defaults */
	assert_int_equal(load(&c, BACKEND, NULL, 0, &errs), 0);
	free(errs);
	assert_string_equal(c.trpc_path, "/trpc");
	assert_int_equal(c.n_trpc, 0);
	config_free(&c);
}

static void config_errors(void **state)
{
	struct config c;
	char *errs;
	int n = load(&c,
		     "[trpc]\nbad path = x\nok = has space\nok2 = {input.}\n.lead = x\nok3 = a\n"
		     "ok3 = b\n[server]\ntrpc_path = trpc\n" BACKEND,
		     NULL, 0, &errs);
	assert_int_equal(n, 6);
	assert_non_null(strstr(errs, ":2: [trpc] bad path: a procedure path is names of"));
	assert_non_null(strstr(errs, ":3: [trpc] ok: a channel template holds"));
	assert_non_null(strstr(errs, ":4: [trpc] ok2: bad placeholder"));
	assert_non_null(strstr(errs, ":5: [trpc] .lead:"));
	assert_non_null(strstr(errs, ":7: [trpc] ok3: duplicate key (first set on line 6)"));
	assert_non_null(strstr(errs, ":9: [server] trpc_path: must start with '/'"));
	free(errs);
	n = load(&c, "[server]\ntrpc_path = /ws\n" BACKEND, NULL, 0, &errs);
	assert_int_equal(n, 1);
	assert_non_null(strstr(errs, ":2: [server] trpc_path: \"/ws\" is also ws_path"));
	free(errs);
	n = load(&c, "[server]\nsse_path = /trpc\n" BACKEND, NULL, 0, &errs);
	assert_int_equal(n, 1);
	assert_non_null(strstr(errs, ":2: [server] sse_path: \"/trpc\" is also trpc_path"));
	free(errs);
	/* empty turns an endpoint off, and two empty ones do not collide */
	assert_int_equal(load(&c, "[server]\nsse_path =\ntrpc_path =\n" BACKEND, NULL, 0, &errs),
			 0);
	free(errs);
	assert_string_equal(c.sse_path, "");
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(requests_and_batches),
	    cmocka_unit_test(refused_messages),
	    cmocka_unit_test(connection_params),
	    cmocka_unit_test(templates),
	    cmocka_unit_test(frames),
	    cmocka_unit_test(message_data),
	    cmocka_unit_test(config_section),
	    cmocka_unit_test(config_errors),
	};
	return cmocka_run_group_tests_name("trpc", tests, NULL, NULL);
}
