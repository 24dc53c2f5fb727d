/*
 * test_protocol.c — unit tests of core/protocol.c: every request type, every
 * parse error path with its code and echoed id, ids and channels at their
 * limits, unicode and escapes, v1.1 "since" and positions ("E:N"), every
 * server frame (exact bytes, and each one
 * read back by jansson), and the ws upgrade query parser. Single-threaded;
 * frees everything it allocates (run it under valgrind or --enable-asan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "protocol.h"

/* ---- parsing: successes ---- */

static void parse_ok(const char *frame, struct proto_request *req)
{
	struct proto_error err;
	int rc = proto_parse(frame, strlen(frame), req, &err);
	if (rc)
		fail_msg("parse of %s failed: %s: %s", frame, err.code, err.message);
}

static void test_subscribe(void **state)
{
	(void)state;
	struct proto_request r;

	parse_ok("{\"type\":\"subscribe\",\"channel\":\"news\"}", &r);
	assert_int_equal(r.type, PROTO_SUBSCRIBE);
	assert_string_equal(r.channel, "news");
	assert_string_equal(r.id, "");
	assert_null(r.data);
	proto_request_clear(&r);

	parse_ok(" {\"id\":7, \"channel\":\"a.b:c/d-e_F9\", \"type\":\"subscribe\", \"x\":[1]}\n",
		 &r);
	assert_int_equal(r.type, PROTO_SUBSCRIBE);
	assert_string_equal(r.channel, "a.b:c/d-e_F9");
	assert_string_equal(r.id, "7");
	proto_request_clear(&r);
}

static void test_unsubscribe(void **state)
{
	(void)state;
	struct proto_request r;

	parse_ok("{\"type\":\"unsubscribe\",\"channel\":\"updates\",\"id\":\"u-1\"}", &r);
	assert_int_equal(r.type, PROTO_UNSUBSCRIBE);
	assert_string_equal(r.channel, "updates");
	assert_string_equal(r.id, "\"u-1\"");
	proto_request_clear(&r);
}

static void test_publish(void **state)
{
	(void)state;
	struct proto_request r;

	parse_ok(
	    "{\"type\":\"publish\",\"channel\":\"c\",\"data\": { \"a\" : [1, 2.5, true, null] ,"
	    " \"s\":\"x\\ny\" } }",
	    &r);
	assert_int_equal(r.type, PROTO_PUBLISH);
	assert_string_equal(r.channel, "c");
	assert_non_null(r.data);
	/* the client's own bytes of "data", not a re-encoding */
	assert_string_equal(r.data, "{ \"a\" : [1, 2.5, true, null] , \"s\":\"x\\ny\" }");
	assert_int_equal(r.data_len, strlen(r.data));
	proto_request_clear(&r);
	parse_ok("{\"data\":1.10,\"type\":\"publish\",\"channel\":\"c\"}", &r);
	assert_string_equal(r.data, "1.10"); /* not 1.1000000000000001 */
	proto_request_clear(&r);
	parse_ok("{\"type\":\"publish\",\"channel\":\"c\",\"d\\u0061ta\":\"esc\"}", &r);
	assert_string_equal(r.data, "\"esc\""); /* escaped key: re-encoded */
	proto_request_clear(&r);
	assert_null(r.data);
	assert_int_equal(r.data_len, 0);

	/* Scalars, null and unicode as data. */
	parse_ok("{\"type\":\"publish\",\"channel\":\"c\",\"data\":null}", &r);
	assert_string_equal(r.data, "null");
	proto_request_clear(&r);
	parse_ok("{\"type\":\"publish\",\"channel\":\"c\",\"data\":42}", &r);
	assert_string_equal(r.data, "42");
	proto_request_clear(&r);
	parse_ok("{\"type\":\"publish\",\"channel\":\"c\",\"data\":\"caf\\u00e9 \xe2\x82\xac "
		 "\\ud83d\\ude00\"}",
		 &r);
	assert_string_equal(r.data, "\"caf\\u00e9 \xe2\x82\xac \\ud83d\\ude00\""); /* as sent */
	proto_request_clear(&r);
	/* \u0000 inside data survives, escaped. */
	parse_ok("{\"type\":\"publish\",\"channel\":\"c\",\"data\":\"a\\u0000b\"}", &r);
	assert_string_equal(r.data, "\"a\\u0000b\"");
	proto_request_clear(&r);
	/* Clearing twice is harmless. */
	proto_request_clear(&r);
}

static void test_ping(void **state)
{
	(void)state;
	struct proto_request r;

	parse_ok("{\"type\":\"ping\"}", &r);
	assert_int_equal(r.type, PROTO_PING);
	assert_string_equal(r.id, "");
	proto_request_clear(&r);
	/* A ping ignores channel, even an invalid one. */
	parse_ok("{\"type\":\"ping\",\"id\":1,\"channel\":\"bad channel!\"}", &r);
	assert_int_equal(r.type, PROTO_PING);
	assert_string_equal(r.id, "1");
	proto_request_clear(&r);
}

static void expect_id(const char *idjson, const char *want)
{
	char frame[512];
	struct proto_request r;

	snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"id\":%s}", idjson);
	parse_ok(frame, &r);
	assert_string_equal(r.id, want);
	proto_request_clear(&r);
}

static void test_ids(void **state)
{
	(void)state;
	expect_id("0", "0");
	expect_id("-12", "-12");
	expect_id("9223372036854775807", "9223372036854775807");
	expect_id("1e5", "100000");
	expect_id("0.1", "0.1");
	expect_id("-2.5", "-2.5");
	expect_id("1.5e300", "1.5e+300");
	expect_id("\"\"", "\"\"");
	expect_id("\"abc\"", "\"abc\"");
	expect_id("\"a\\\"b\\\\c\\n\"", "\"a\\\"b\\\\c\\n\"");
	expect_id("\"\\u00e9\"", "\"\xc3\xa9\"");
	expect_id("\"\xe2\x82\xac\"", "\"\xe2\x82\xac\"");
	expect_id("\"\\u0001\"", "\"\\u0001\"");
	expect_id("\"\\/\"", "\"/\"");

	/* Exactly PROTO_ID_MAX bytes of JSON text is accepted. */
	char idj[PROTO_ID_MAX + 8];
	memset(idj, 'x', sizeof(idj));
	idj[0] = '"';
	idj[PROTO_ID_MAX - 1] = '"';
	idj[PROTO_ID_MAX] = '\0';
	expect_id(idj, idj);
}

/* ---- parsing: errors ---- */

static void parse_err(const char *frame, size_t len, const char *code, const char *id,
		      const char *msg_part)
{
	struct proto_request r;
	struct proto_error err;

	memset(&r, 0x55, sizeof(r)); /* garbage in: must be reset */
	int rc = proto_parse(frame, len, &r, &err);
	if (rc != -1)
		fail_msg("parse of %.*s succeeded, want %s", (int)len, frame, code);
	assert_non_null(err.code);
	if (strcmp(err.code, code))
		fail_msg("parse of %.*s: code %s (%s), want %s", (int)len, frame, err.code,
			 err.message, code);
	assert_string_equal(err.id, id);
	assert_true(err.message[0] != '\0');
	assert_true(utf8_valid(err.message, strlen(err.message)));
	if (msg_part && !strstr(err.message, msg_part))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, msg_part);
	assert_null(r.data);
	proto_request_clear(&r);
}

#define PE(frame, code, id, part) parse_err(frame, sizeof(frame) - 1, code, id, part)

static void test_bad_json(void **state)
{
	(void)state;
	PE("", PROTO_E_BAD_JSON, "", NULL);
	PE("{", PROTO_E_BAD_JSON, "", NULL);
	PE("{\"type\":\"ping\",}", PROTO_E_BAD_JSON, "", NULL);
	PE("{\"type\":\"ping\"} x", PROTO_E_BAD_JSON, "", NULL);
	PE("[\"ping\"]", PROTO_E_BAD_JSON, "", "JSON object");
	PE("\"ping\"", PROTO_E_BAD_JSON, "", "JSON object");
	PE("42", PROTO_E_BAD_JSON, "", "JSON object");
	PE("null", PROTO_E_BAD_JSON, "", "JSON object");
	PE("{\"type\":\"ping\",\"type\":\"ping\"}", PROTO_E_BAD_JSON, "", NULL); /* duplicate */
	/* invalid UTF-8 is reported before anything else, even inside a string */
	PE("{\"type\":\"ping\",\"x\":\"\xff\"}", PROTO_E_BAD_JSON, "", "invalid UTF-8");
	PE("{\"type\":\"ping\",\"x\":\"\xc0\xaf\"}", PROTO_E_BAD_JSON, "", "invalid UTF-8");
	PE("{\"type\":\"ping\",\"x\":\"\xed\xa0\x80\"}", PROTO_E_BAD_JSON, "", "invalid UTF-8");
	PE("{\"type\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}", PROTO_E_BAD_JSON, "", "invalid UTF-8");
	PE("{\"type\":\"ping\",\"x\":\"\xe2\x82\"}", PROTO_E_BAD_JSON, "", "invalid UTF-8");
	/* NUL byte in the frame */
	parse_err("{\"type\":\"ping\"}\0", 16, PROTO_E_BAD_JSON, "", NULL);
	parse_err("{\"type\":\"ping\"\0}", 16, PROTO_E_BAD_JSON, "", NULL);
	parse_err("{\"type\":\"ping\",\"x\":[1\0]}", 24, PROTO_E_BAD_JSON, "", NULL);
	/* lone surrogate escape: jansson refuses it */
	PE("{\"type\":\"ping\",\"id\":\"\\ud800\"}", PROTO_E_BAD_JSON, "", NULL);
	parse_err(NULL, 0, PROTO_E_BAD_JSON, "", NULL);
}

static void test_bad_id(void **state)
{
	(void)state;
	PE("{\"type\":\"ping\",\"id\":null}", PROTO_E_BAD_REQUEST, "", "id");
	PE("{\"type\":\"ping\",\"id\":true}", PROTO_E_BAD_REQUEST, "", "id");
	PE("{\"type\":\"ping\",\"id\":[1]}", PROTO_E_BAD_REQUEST, "", "id");
	PE("{\"type\":\"ping\",\"id\":{}}", PROTO_E_BAD_REQUEST, "", "id");
	/* one byte over PROTO_ID_MAX */
	char frame[300];
	char idj[PROTO_ID_MAX + 2];
	memset(idj, 'y', sizeof(idj));
	idj[0] = '"';
	idj[PROTO_ID_MAX] = '"';
	idj[PROTO_ID_MAX + 1] = '\0';
	int n = snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"id\":%s}", idj);
	parse_err(frame, (size_t)n, PROTO_E_BAD_REQUEST, "", "128");
	/* escapes count after re-encoding: 60 control chars -> 360 bytes */
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"type\":\"ping\",\"id\":\"");
	for (int i = 0; i < 60; i++)
		buf_puts(&b, "\\u0001");
	buf_puts(&b, "\"}");
	parse_err(buf_data(&b), b.len, PROTO_E_BAD_REQUEST, "", "id");
	buf_free(&b);
}

static void test_bad_type(void **state)
{
	(void)state;
	PE("{}", PROTO_E_BAD_REQUEST, "", "type");
	PE("{\"id\":3}", PROTO_E_BAD_REQUEST, "3", "type");
	PE("{\"id\":\"q\",\"type\":5}", PROTO_E_BAD_REQUEST, "\"q\"", "type");
	PE("{\"id\":\"q\",\"type\":null}", PROTO_E_BAD_REQUEST, "\"q\"", "type");
	PE("{\"id\":4,\"type\":\"subscribed\"}", PROTO_E_UNKNOWN_TYPE, "4", "unknown type");
	PE("{\"id\":4,\"type\":\"\"}", PROTO_E_UNKNOWN_TYPE, "4", NULL);
	PE("{\"id\":4,\"type\":\"PING\"}", PROTO_E_UNKNOWN_TYPE, "4", NULL);
	PE("{\"id\":4,\"type\":\"ping\\u0000\"}", PROTO_E_UNKNOWN_TYPE, "4", NULL);
}

static void test_bad_channel(void **state)
{
	(void)state;
	PE("{\"type\":\"subscribe\",\"id\":1}", PROTO_E_BAD_REQUEST, "1", "channel");
	PE("{\"type\":\"unsubscribe\",\"id\":1}", PROTO_E_BAD_REQUEST, "1", "channel");
	PE("{\"type\":\"publish\",\"id\":1,\"data\":1}", PROTO_E_BAD_REQUEST, "1", "channel");
	PE("{\"type\":\"subscribe\",\"id\":1,\"channel\":5}", PROTO_E_BAD_REQUEST, "1", "channel");
	PE("{\"type\":\"subscribe\",\"id\":\"z\",\"channel\":\"\"}", PROTO_E_BAD_CHANNEL, "\"z\"",
	   "[A-Za-z0-9_.:/-]");
	PE("{\"type\":\"subscribe\",\"id\":2,\"channel\":\"a b\"}", PROTO_E_BAD_CHANNEL, "2", NULL);
	PE("{\"type\":\"subscribe\",\"id\":2,\"channel\":\"a*\"}", PROTO_E_BAD_CHANNEL, "2", NULL);
	PE("{\"type\":\"subscribe\",\"id\":2,\"channel\":\"caf\xc3\xa9\"}", PROTO_E_BAD_CHANNEL,
	   "2", NULL);
	PE("{\"type\":\"unsubscribe\",\"id\":2,\"channel\":\"a\\u0000b\"}", PROTO_E_BAD_CHANNEL,
	   "2", NULL);
	PE("{\"type\":\"publish\",\"id\":2,\"channel\":\"a?\",\"data\":1}", PROTO_E_BAD_CHANNEL,
	   "2", NULL);

	/* 200 bytes accepted, 201 refused */
	char ch[PROTO_CHANNEL_MAX + 2];
	char frame[400];
	struct proto_request r;
	memset(ch, 'c', sizeof(ch));
	ch[PROTO_CHANNEL_MAX] = '\0';
	snprintf(frame, sizeof(frame), "{\"type\":\"subscribe\",\"channel\":\"%s\"}", ch);
	parse_ok(frame, &r);
	assert_int_equal(strlen(r.channel), PROTO_CHANNEL_MAX);
	proto_request_clear(&r);
	ch[PROTO_CHANNEL_MAX] = 'c';
	ch[PROTO_CHANNEL_MAX + 1] = '\0';
	int n = snprintf(frame, sizeof(frame), "{\"type\":\"subscribe\",\"channel\":\"%s\"}", ch);
	parse_err(frame, (size_t)n, PROTO_E_BAD_CHANNEL, "", NULL);
}

static void test_bad_publish(void **state)
{
	(void)state;
	PE("{\"type\":\"publish\",\"id\":\"p\",\"channel\":\"c\"}", PROTO_E_BAD_REQUEST, "\"p\"",
	   "data");
}

/* ---- v1.1: since ---- */

static void test_since(void **state)
{
	(void)state;
	struct proto_request r;

	parse_ok("{\"type\":\"subscribe\",\"channel\":\"c\"}", &r);
	assert_false(r.since.set);
	proto_request_clear(&r);
	parse_ok("{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":null}", &r);
	assert_false(r.since.set);
	proto_request_clear(&r);
	parse_ok("{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":{\"epoch\":\"E-1_x\","
		 "\"offset\":41,\"other\":true}}",
		 &r);
	assert_true(r.since.set);
	assert_string_equal(r.since.epoch, "E-1_x");
	assert_int_equal(r.since.offset, 41);
	proto_request_clear(&r);
	parse_ok("{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":{\"epoch\":\"e\","
		 "\"offset\":0}}",
		 &r);
	assert_true(r.since.set);
	assert_int_equal(r.since.offset, 0);
	proto_request_clear(&r);
	/* the largest offset: 2^53 - 1 */
	parse_ok("{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":{\"epoch\":\"e\","
		 "\"offset\":9007199254740991}}",
		 &r);
	assert_true(r.since.offset == PROTO_OFFSET_MAX);
	proto_request_clear(&r);
	/* 64-byte epoch */
	char frame[300], ep[PROTO_EPOCH_MAX + 2];
	memset(ep, 'e', sizeof(ep));
	ep[PROTO_EPOCH_MAX] = '\0';
	snprintf(frame, sizeof(frame),
		 "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":{\"epoch\":\"%s\","
		 "\"offset\":1}}",
		 ep);
	parse_ok(frame, &r);
	assert_int_equal(strlen(r.since.epoch), PROTO_EPOCH_MAX);
	proto_request_clear(&r);
	/* since is ignored on other requests */
	parse_ok("{\"type\":\"unsubscribe\",\"channel\":\"c\",\"since\":5}", &r);
	assert_false(r.since.set);
	proto_request_clear(&r);

	/* errors: each a bad_request naming the field, id echoed */
#define SUB(since) "{\"type\":\"subscribe\",\"id\":9,\"channel\":\"c\",\"since\":" since "}"
	PE(SUB("5"), PROTO_E_BAD_REQUEST, "9", "since must be an object");
	PE(SUB("\"E:5\""), PROTO_E_BAD_REQUEST, "9", "since must be an object");
	PE(SUB("[]"), PROTO_E_BAD_REQUEST, "9", "since must be an object");
	PE(SUB("{}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"offset\":1}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"epoch\":1,\"offset\":1}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"epoch\":\"\",\"offset\":1}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"epoch\":\"a:b\",\"offset\":1}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"epoch\":\"a b\",\"offset\":1}"), PROTO_E_BAD_REQUEST, "9", "since.epoch");
	PE(SUB("{\"epoch\":\"E\"}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":-1}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":41.5}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":41.0}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":1e3}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":\"41\"}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":null}"), PROTO_E_BAD_REQUEST, "9", "since.offset");
	PE(SUB("{\"epoch\":\"E\",\"offset\":9007199254740992}"), PROTO_E_BAD_REQUEST, "9",
	   "9007199254740991");
	PE(SUB("{\"epoch\":\"E\",\"offset\":9223372036854775807}"), PROTO_E_BAD_REQUEST, "9",
	   "since.offset");
	/* beyond 64 bits: still valid JSON, so a bad_request, not bad_json */
	PE(SUB("{\"epoch\":\"E\",\"offset\":123456789012345678901234567890}"), PROTO_E_BAD_REQUEST,
	   "", "number out of range");
	PE(SUB("{\"epoch\":\"E\",\"offset\":-123456789012345678901234567890}"), PROTO_E_BAD_REQUEST,
	   "", "number out of range");
#undef SUB
	ep[PROTO_EPOCH_MAX] = 'e';
	ep[PROTO_EPOCH_MAX + 1] = '\0';
	int n = snprintf(frame, sizeof(frame),
			 "{\"type\":\"subscribe\",\"channel\":\"c\",\"since\":{\"epoch\":"
			 "\"%s\",\"offset\":1}}",
			 ep);
	parse_err(frame, (size_t)n, PROTO_E_BAD_REQUEST, "", "since.epoch");
}

static void test_position_parse(void **state)
{
	(void)state;
	struct proto_since p;
#define POS_OK(s, e, o)                                                                            \
	do {                                                                                       \
		assert_int_equal(proto_position_parse(s, sizeof(s) - 1, &p), 0);                   \
		assert_true(p.set);                                                                \
		assert_string_equal(p.epoch, e);                                                   \
		assert_true(p.offset == (o));                                                      \
	} while (0)
#define POS_BAD(s) assert_int_equal(proto_position_parse(s, sizeof(s) - 1, &p), -1)
	POS_OK("E:0", "E", 0);
	POS_OK("ab-C_9:41", "ab-C_9", 41);
	POS_OK("e:9007199254740991", "e", PROTO_OFFSET_MAX);
	POS_BAD("");
	POS_BAD("E");
	POS_BAD("E:");
	POS_BAD(":1");
	POS_BAD("E:01");
	POS_BAD("E:-1");
	POS_BAD("E:+1");
	POS_BAD("E:1.0");
	POS_BAD("E:1:2");
	POS_BAD("E:1 ");
	POS_BAD("E F:1");
	POS_BAD("e:9007199254740992");
	POS_BAD("e:99999999999999999999");
	/* the length is honoured: "E:12" cut to "E:1" */
	assert_int_equal(proto_position_parse("E:12", 3, &p), 0);
	assert_true(p.offset == 1);
#undef POS_OK
#undef POS_BAD
	assert_true(proto_epoch_valid("a", 1));
	assert_false(proto_epoch_valid("a.b", 3));
	assert_false(proto_epoch_valid(NULL, 0));
}

static void test_channel_valid(void **state)
{
	(void)state;
	assert_true(proto_channel_valid("a", 1));
	assert_true(proto_channel_valid("AZaz09_.:/-", 11));
	assert_false(proto_channel_valid("", 0));
	assert_false(proto_channel_valid(NULL, 0));
	assert_false(proto_channel_valid("a\0", 2));
	assert_false(proto_channel_valid("a#", 2));
	assert_false(proto_channel_valid("\xc3\xa9", 2));
	/* "__" starts the backends' reserved namespace (the valkey probe). */
	assert_false(proto_channel_valid("__", 2));
	assert_false(proto_channel_valid("__fanout_probe:c1:0123456789abcdef", 34));
	assert_true(proto_channel_valid("_", 1));
	assert_true(proto_channel_valid("_a_", 3));
	assert_true(proto_channel_valid("a__", 3));
	char ch[PROTO_CHANNEL_MAX + 1];
	memset(ch, 'x', sizeof(ch));
	assert_true(proto_channel_valid(ch, PROTO_CHANNEL_MAX));
	assert_false(proto_channel_valid(ch, PROTO_CHANNEL_MAX + 1));
}

/* ---- server frames ---- */

/* out holds exactly want, which jansson reads as one object. */
static void check_frame(struct buf *b, int rc, const char *want)
{
	assert_int_equal(rc, 0);
	assert_string_equal(buf_data(b), want);
	assert_int_equal(b->len, strlen(want));
	json_error_t jerr;
	json_t *j = json_loadb(buf_data(b), b->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j)
		fail_msg("jansson rejects %s: %s", want, jerr.text);
	assert_true(json_is_object(j));
	json_decref(j);
	buf_reset(b);
}

static void test_frames(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 16);

	check_frame(&b, proto_hello(&b, "i1", PROTO_VERSION),
		    "{\"type\":\"hello\",\"instance\":\"i1\",\"version\":\"0.1.0\"}");
	check_frame(&b, proto_ack(&b, "subscribed", "7", "news"),
		    "{\"type\":\"subscribed\",\"id\":7,\"channel\":\"news\"}");
	check_frame(&b, proto_ack(&b, "unsubscribed", "", "news"),
		    "{\"type\":\"unsubscribed\",\"channel\":\"news\"}");
	check_frame(&b, proto_ack(&b, "published", NULL, "n"),
		    "{\"type\":\"published\",\"channel\":\"n\"}");
	check_frame(&b, proto_ack(&b, "published", "\"x\\\"y\"", "n"),
		    "{\"type\":\"published\",\"id\":\"x\\\"y\",\"channel\":\"n\"}");
	check_frame(&b, proto_pong(&b, "1"), "{\"type\":\"pong\",\"id\":1}");
	check_frame(&b, proto_pong(&b, NULL), "{\"type\":\"pong\"}");
	check_frame(&b, proto_pong(&b, ""), "{\"type\":\"pong\"}");
	/* An id that is not JSON text (not from proto_parse) still gives valid JSON. */
	check_frame(&b, proto_pong(&b, "not json"), "{\"type\":\"pong\",\"id\":\"not json\"}");
	check_frame(&b, proto_error_frame(&b, "\"a\"", PROTO_E_BAD_CHANNEL, "bad \"chan\"\n"),
		    "{\"type\":\"error\",\"id\":\"a\",\"code\":\"bad_channel\","
		    "\"message\":\"bad \\\"chan\\\"\\n\"}");
	check_frame(&b, proto_error_frame(&b, NULL, PROTO_E_BAD_JSON, "invalid UTF-8"),
		    "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"invalid UTF-8\"}");
	check_frame(&b, proto_gap(&b, "c", "backend reconnected"),
		    "{\"type\":\"gap\",\"channel\":\"c\",\"reason\":\"backend reconnected\"}");
	/* v1.1 */
	check_frame(&b, proto_subscribed(&b, "7", "c", "E1", 57, 1),
		    "{\"type\":\"subscribed\",\"id\":7,\"channel\":\"c\",\"epoch\":\"E1\","
		    "\"offset\":57,\"recovered\":true}");
	check_frame(&b, proto_subscribed(&b, "", "c", "E1", 0, -1),
		    "{\"type\":\"subscribed\",\"channel\":\"c\",\"epoch\":\"E1\",\"offset\":0}");
	check_frame(&b, proto_subscribed(&b, NULL, "c", NULL, 5, 0),
		    "{\"type\":\"subscribed\",\"channel\":\"c\",\"recovered\":false}");
	check_frame(&b, proto_subscribed(&b, NULL, "c", NULL, 5, -1),
		    "{\"type\":\"subscribed\",\"channel\":\"c\"}");
	check_frame(&b, proto_published(&b, "\"p\"", "c", "E", 9007199254740991ULL),
		    "{\"type\":\"published\",\"id\":\"p\",\"channel\":\"c\",\"epoch\":\"E\","
		    "\"offset\":9007199254740991}");
	check_frame(&b, proto_published(&b, NULL, "c", NULL, 3),
		    "{\"type\":\"published\",\"channel\":\"c\"}");
	check_frame(&b, proto_gap_at(&b, "c", "history lost", "E2", 0),
		    "{\"type\":\"gap\",\"channel\":\"c\",\"reason\":\"history lost\","
		    "\"epoch\":\"E2\",\"offset\":0}");
	check_frame(&b, proto_gap_at(&b, "c", "r", NULL, 0),
		    "{\"type\":\"gap\",\"channel\":\"c\",\"reason\":\"r\"}");
	check_frame(&b, proto_message_at(&b, "c", "i1", 1, 42, "{\"n\":1}", 7, NULL),
		    "{\"type\":\"message\",\"channel\":\"c\",\"instance\":\"i1\",\"offset\":42,"
		    "\"data\":{\"n\":1}}");
	check_frame(&b, proto_message_at(&b, "c", "i1", 0, 42, "x", 1, NULL),
		    "{\"type\":\"message\",\"channel\":\"c\",\"instance\":\"i1\",\"data\":\"x\"}");
	/* Headroom is kept in front of the frame. */
	assert_int_equal(b.head, 16);
	buf_free(&b);
}

static void expect_message(const char *payload, size_t len, const char *want_data,
			   int want_replaced)
{
	struct buf b;
	char want[1024];
	int replaced = -1;

	buf_init(&b, 0);
	snprintf(want, sizeof(want),
		 "{\"type\":\"message\",\"channel\":\"c\",\"instance\":\"i1\","
		 "\"data\":%s}",
		 want_data);
	check_frame(&b, proto_message(&b, "c", "i1", payload, len, &replaced), want);
	assert_int_equal(replaced, want_replaced);
	buf_free(&b);
}

#define EM(p, want, r) expect_message(p, sizeof(p) - 1, want, r)

static void test_message(void **state)
{
	(void)state;
	EM("{\"a\":1}", "{\"a\":1}", 0);
	EM(" [1, 2] ", " [1, 2] ", 0); /* embedded raw, whitespace and all */
	EM("42", "42", 0);
	EM("\"s\"", "\"s\"", 0);
	EM("null", "null", 0);
	EM("{\"k\":\"caf\xc3\xa9\"}", "{\"k\":\"caf\xc3\xa9\"}", 0);
	/* not JSON: a string */
	EM("hello world", "\"hello world\"", 0);
	EM("", "\"\"", 0);
	EM("{\"a\":1", "\"{\\\"a\\\":1\"", 0);
	EM("01", "\"01\"", 0);
	EM("line1\nline2\t\"q\"", "\"line1\\nline2\\t\\\"q\\\"\"", 0);
	EM("caf\xc3\xa9", "\"caf\xc3\xa9\"", 0);
	/* invalid UTF-8: replaced, flagged */
	EM("bad \xff byte", "\"bad \xef\xbf\xbd byte\"", 1);
	EM("{\"a\":\"\xc3\"}", "\"{\\\"a\\\":\\\"\xef\xbf\xbd\\\"}\"", 1);
	/* NUL bytes in a payload */
	expect_message("a\0b", 3, "\"a\\u0000b\"", 0);
	/* replaced may be NULL */
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(proto_message(&b, "c", "i", "\xff", 1, NULL), 0);
	assert_true(json_valid(buf_data(&b), b.len));
	buf_free(&b);
}

/* Every successful parse yields frames that are valid JSON and echo the id. */
static void test_roundtrip_id(void **state)
{
	(void)state;
	static const char *const frames[] = {
	    "{\"type\":\"subscribe\",\"id\":\"\\u2028x\\u0007\",\"channel\":\"a\"}",
	    "{\"type\":\"ping\",\"id\":-0.000001}",
	    "{\"type\":\"ping\",\"id\":\"\xf0\x9f\x98\x80\"}",
	};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		struct proto_request r;
		struct buf b;
		parse_ok(frames[i], &r);
		buf_init(&b, 0);
		assert_int_equal(proto_ack(&b, "subscribed", r.id, "a"), 0);
		json_error_t jerr;
		json_t *j = json_loadb(buf_data(&b), b.len, 0, &jerr);
		assert_non_null(j);
		json_t *in = json_loads(frames[i], 0, &jerr);
		assert_non_null(in);
		assert_true(json_equal(json_object_get(j, "id"), json_object_get(in, "id")));
		json_decref(j);
		json_decref(in);
		buf_free(&b);
		proto_request_clear(&r);
	}
}

/* ---- ws upgrade query ---- */

struct got {
	int n;
	char ch[8][64];
	size_t len[8];
	int stop_at; /* return 1 from this call on (0: never) */
};

static int collect(void *arg, const char *channel, size_t len)
{
	struct got *g = arg;
	assert_true(g->n < 8);
	assert_true(len < 64);
	assert_int_equal(channel[len], '\0');
	memcpy(g->ch[g->n], channel, len + 1);
	g->len[g->n] = len;
	g->n++;
	return g->stop_at && g->n >= g->stop_at ? 7 : 0;
}

static int query(const char *q, struct got *g)
{
	memset(g, 0, sizeof(*g));
	return proto_query_channels(q, strlen(q), collect, g);
}

static void test_query(void **state)
{
	(void)state;
	struct got g;

	assert_int_equal(query("channel=a", &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.ch[0], "a");

	assert_int_equal(query("channel=a&x=1&channel=b%2Fc&channel=d+e&&y", &g), 0);
	assert_int_equal(g.n, 3);
	assert_string_equal(g.ch[0], "a");
	assert_string_equal(g.ch[1], "b/c");
	assert_string_equal(g.ch[2], "d e");

	/* keys are decoded too; other keys ignored; lowercase hex */
	assert_int_equal(query("ch%61nnel=x%3ay&chan=z&channels=w&channel_=v", &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.ch[0], "x:y");

	/* empty values still reach cb (the caller answers bad_channel) */
	assert_int_equal(query("channel=&channel", &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[0], 0);
	assert_int_equal(g.len[1], 0);

	/* %00 decodes to a NUL byte, reported through len */
	assert_int_equal(query("channel=a%00b", &g), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 3);

	/* values keep '=' after the first */
	assert_int_equal(query("channel=a=b", &g), 0);
	assert_string_equal(g.ch[0], "a=b");

	assert_int_equal(query("", &g), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(proto_query_channels(NULL, 0, collect, &g), 0);

	/* malformed escapes anywhere: -1, and cb is never called */
	assert_int_equal(query("channel=a&channel=b%2", &g), -1);
	assert_int_equal(g.n, 0);
	assert_int_equal(query("channel=a&channel=%", &g), -1);
	assert_int_equal(g.n, 0);
	assert_int_equal(query("channel=a&x=%zz", &g), -1);
	assert_int_equal(g.n, 0);
	assert_int_equal(query("%g1=a", &g), -1);
	assert_int_equal(query("channel=a%", &g), -1);

	/* the length is honoured (no NUL needed) */
	memset(&g, 0, sizeof(g));
	assert_int_equal(proto_query_channels("channel=abc&channel=zzz", 11, collect, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.ch[0], "abc");

	/* a non-zero return from cb stops the walk and is returned */
	memset(&g, 0, sizeof(g));
	g.stop_at = 2;
	assert_int_equal(proto_query_channels("channel=a&channel=b&channel=c", 29, collect, &g), 7);
	assert_int_equal(g.n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subscribe),
	    cmocka_unit_test(test_unsubscribe),
	    cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_ping),
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_bad_json),
	    cmocka_unit_test(test_bad_id),
	    cmocka_unit_test(test_bad_type),
	    cmocka_unit_test(test_bad_channel),
	    cmocka_unit_test(test_bad_publish),
	    cmocka_unit_test(test_channel_valid),
	    cmocka_unit_test(test_frames),
	    cmocka_unit_test(test_message),
	    cmocka_unit_test(test_roundtrip_id),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_since),
	    cmocka_unit_test(test_position_parse),
	};
	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
