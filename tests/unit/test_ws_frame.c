/*
 * test_ws_frame.c — unit tests of core/ws_frame.c (the RFC 6455 frame
 * parser and writers) and the streaming UTF-8 check it uses: every rule of
 * ws_frame.h's list, each with a frame that breaks it and the close code
 * that must come out, plus the frames that must pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ws_frame.h"

struct ev {
	char log[4096];
	size_t n;
	uint8_t msg[70000];
	size_t msg_len;
};

static int on_data(void *arg, int op, int z, const uint8_t *p, size_t len, int last)
{
	struct ev *e = arg;
	if (len) /* p may be NULL for an empty frame */
		memcpy(e->msg + e->msg_len, p, len);
	e->msg_len += len;
	if (last) {
		e->n += (size_t)snprintf(e->log + e->n, sizeof(e->log) - e->n, "%s%s:%zu;",
					 op == WS_OP_TEXT ? "T" : "B", z ? "z" : "", e->msg_len);
		e->msg_len = 0;
	}
	return 0;
}

static int on_control(void *arg, int op, const uint8_t *p, size_t len)
{
	struct ev *e = arg;
	const char *name = op == WS_OP_CLOSE ? "close" : op == WS_OP_PING ? "ping" : "pong";
	if (op == WS_OP_CLOSE && len >= 2)
		e->n += (size_t)snprintf(e->log + e->n, sizeof(e->log) - e->n, "%s %u %.*s;", name,
					 (unsigned)p[0] << 8 | p[1], (int)len - 2, p + 2);
	else
		e->n +=
		    (size_t)snprintf(e->log + e->n, sizeof(e->log) - e->n, "%s:%zu;", name, len);
	return 0;
}

static const struct ws_rx_cb cbs = {on_data, on_control};

/* Append a masked client frame to buf; returns the new length. */
static size_t frame(uint8_t *buf, size_t at, int fin, int rsv, int op, const void *payload,
		    size_t len)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	uint8_t *h = buf + at;
	size_t n = ws_frame_header(h, op, 0, len);
	h[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
	h[1] |= 0x80;
	memcpy(h + n, key, 4);
	n += 4;
	for (size_t i = 0; i < len; i++)
		h[n + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
	return at + n + len;
}

static struct ev ev;

static int run(uint8_t *buf, size_t len, uint64_t max, int rsv1, const char **why)
{
	struct ws_rx rx;
	memset(&ev, 0, sizeof(ev));
	ws_rx_init(&rx, max, rsv1);
	int rc = ws_rx_feed(&rx, buf, len, &cbs, &ev);
	if (why)
		*why = rx.why;
	return rc;
}

/* The same input one byte at a time must give the same result. */
static int run_bytewise(uint8_t *buf, size_t len, uint64_t max, int rsv1)
{
	struct ws_rx rx;
	int rc = 0;
	memset(&ev, 0, sizeof(ev));
	ws_rx_init(&rx, max, rsv1);
	for (size_t i = 0; i < len && !rc; i++)
		rc = ws_rx_feed(&rx, buf + i, 1, &cbs, &ev);
	return rc;
}

static uint8_t buf[200000];

static void test_text_binary_empty(void **state)
{
	size_t n = frame(buf, 0, 1, 0, WS_OP_TEXT, "hello", 5);
	n = frame(buf, n, 1, 0, WS_OP_BINARY, "\x00\xff", 2);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, "", 0);
	uint8_t copy[64];
	memcpy(copy, buf, n);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "T:5;B:2;T:0;");
	assert_int_equal(run_bytewise(copy, n, 0, 0), 0);
	assert_string_equal(ev.log, "T:5;B:2;T:0;");
}

static void test_lengths(void **state)
{
	static uint8_t payload[70000];
	memset(payload, 'a', sizeof(payload));
	size_t n = frame(buf, 0, 1, 0, WS_OP_TEXT, payload, 125);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, payload, 126);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, payload, 65535);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, payload, 65536);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "T:125;T:126;T:65535;T:65536;");
	/* 16-bit length field carrying 10: not the shortest form */
	uint8_t bad16[] = {0x81, 0xFE, 0x00, 0x0A, 0,	0,   0,	  0,   'a',
			   'a',	 'a',  'a',  'a',  'a', 'a', 'a', 'a', 'a'};
	assert_int_equal(run(bad16, sizeof(bad16), 0, 0, NULL), WS_CLOSE_PROTOCOL);
	uint8_t bad64[] = {0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0};
	assert_int_equal(run(bad64, sizeof(bad64), 0, 0, NULL), WS_CLOSE_PROTOCOL);
	uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	assert_int_equal(run(top, sizeof(top), 0, 0, NULL), WS_CLOSE_PROTOCOL);
}

static void test_reserved_bits(void **state)
{
	const char *why;
	for (int rsv = 1; rsv < 8; rsv++) {
		size_t n = frame(buf, 0, 1, rsv, WS_OP_TEXT, "x", 1);
		int want = rsv == 4 ? 0 : WS_CLOSE_PROTOCOL; /* RSV1 alone: deflate */
		assert_int_equal(run(buf, n, 0, 1, &why), want);
		n = frame(buf, 0, 1, rsv, WS_OP_TEXT, "x", 1);
		assert_int_equal(run(buf, n, 0, 0, &why), WS_CLOSE_PROTOCOL);
		/* never on control frames */
		n = frame(buf, 0, 1, rsv, WS_OP_PING, "x", 1);
		assert_int_equal(run(buf, n, 0, 1, &why), WS_CLOSE_PROTOCOL);
	}
	/* with deflate: RSV1 on a continuation frame is an error */
	size_t n = frame(buf, 0, 0, 4, WS_OP_TEXT, "x", 1);
	n = frame(buf, n, 1, 4, WS_OP_CONT, "y", 1);
	assert_int_equal(run(buf, n, 0, 1, &why), WS_CLOSE_PROTOCOL);
	assert_string_equal(why, "RSV1 set on a continuation frame");
	n = frame(buf, 0, 0, 4, WS_OP_BINARY, "x", 1);
	n = frame(buf, n, 1, 0, WS_OP_CONT, "y", 1);
	assert_int_equal(run(buf, n, 0, 1, &why), 0);
	assert_string_equal(ev.log, "Bz:2;");
}

static void test_opcodes(void **state)
{
	for (int op = 3; op < 16; op++) {
		if (op >= 8 && op <= 10)
			continue;
		size_t n = frame(buf, 0, 1, 0, op, "", 0);
		assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
	}
	/* an earlier good frame is delivered before the bad one fails */
	size_t n = frame(buf, 0, 1, 0, WS_OP_TEXT, "ok", 2);
	n = frame(buf, n, 1, 0, 0x0B, "", 0);
	n = frame(buf, n, 1, 0, WS_OP_PING, "", 0);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
	assert_string_equal(ev.log, "T:2;");
}

static void test_unmasked(void **state)
{
	uint8_t f[] = {0x81, 0x02, 'h', 'i'};
	const char *why;
	assert_int_equal(run(f, sizeof(f), 0, 0, &why), WS_CLOSE_PROTOCOL);
	assert_string_equal(why, "unmasked client frame");
}

static void test_fragmentation(void **state)
{
	size_t n = frame(buf, 0, 0, 0, WS_OP_TEXT, "he", 2);
	n = frame(buf, n, 1, 0, WS_OP_PING, "p", 1); /* control in between: fine */
	n = frame(buf, n, 0, 0, WS_OP_CONT, "l", 1);
	n = frame(buf, n, 0, 0, WS_OP_CONT, "", 0);
	n = frame(buf, n, 1, 0, WS_OP_CONT, "lo", 2);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "ping:1;T:5;");
	/* continuation with nothing open */
	n = frame(buf, 0, 1, 0, WS_OP_CONT, "x", 1);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
	/* a new message inside an open one */
	n = frame(buf, 0, 0, 0, WS_OP_TEXT, "a", 1);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, "b", 1);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
	/* a fragmented control frame */
	n = frame(buf, 0, 0, 0, WS_OP_PING, "a", 1);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
}

static void test_control_frames(void **state)
{
	static uint8_t big[126];
	memset(big, 'p', sizeof(big));
	size_t n = frame(buf, 0, 1, 0, WS_OP_PING, big, 125);
	n = frame(buf, n, 1, 0, WS_OP_PONG, big, 3);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "ping:125;pong:3;");
	const char *why;
	n = frame(buf, 0, 1, 0, WS_OP_PING, big, 126);
	assert_int_equal(run(buf, n, 0, 0, &why), WS_CLOSE_PROTOCOL);
	assert_string_equal(why, "control frame longer than 125 bytes");
	n = frame(buf, 0, 1, 0, WS_OP_CLOSE, big, 126);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_PROTOCOL);
	/* ten pings in one read: each is reported, in order */
	n = 0;
	for (int i = 0; i < 10; i++)
		n = frame(buf, n, 1, 0, WS_OP_PING, big, (size_t)i);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "ping:0;ping:1;ping:2;ping:3;ping:4;ping:5;ping:6;ping:7;"
				    "ping:8;ping:9;");
}

static void close_case(const void *payload, size_t len, int want)
{
	size_t n = frame(buf, 0, 1, 0, WS_OP_CLOSE, payload, len);
	assert_int_equal(run(buf, n, 0, 0, NULL), want);
}

static void test_close_frames(void **state)
{
	close_case("", 0, 0);
	assert_string_equal(ev.log, "close:0;");
	close_case("\x03", 1, WS_CLOSE_PROTOCOL); /* 1-byte payload */
	close_case("\x03\xe8", 2, 0);
	assert_string_equal(ev.log, "close 1000 ;");
	close_case("\x03\xe8ok", 4, 0);
	assert_string_equal(ev.log, "close 1000 ok;");
	static const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
					1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
	static const unsigned bad[] = {0,    999,  1004, 1005, 1006, 1015,
				       1016, 1100, 2000, 2999, 5000, 65535};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint8_t p[2] = {(uint8_t)(good[i] >> 8), (uint8_t)good[i]};
		close_case(p, 2, 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
		close_case(p, 2, WS_CLOSE_PROTOCOL);
	}
	close_case("\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 13, 0);
	close_case("\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 16,
		   WS_CLOSE_BAD_DATA);
	/* nothing after a close frame is parsed */
	size_t n = frame(buf, 0, 1, 0, WS_OP_CLOSE, "\x03\xe8", 2);
	n = frame(buf, n, 1, 0, WS_OP_TEXT, "late", 4);
	buf[n++] = 0xff; /* garbage */
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "close 1000 ;");
}

static void test_utf8_fail_fast(void **state)
{
	/* valid text split in the middle of a character across fragments */
	const char *s = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"; /* κόσμε */
	size_t n = frame(buf, 0, 0, 0, WS_OP_TEXT, s, 1);
	n = frame(buf, n, 0, 0, WS_OP_CONT, s + 1, 3);
	n = frame(buf, n, 1, 0, WS_OP_CONT, s + 4, 7);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	assert_string_equal(ev.log, "T:11;");
	/* the first fragment is already invalid: fail before the rest arrives */
	struct ws_rx rx;
	memset(&ev, 0, sizeof(ev));
	ws_rx_init(&rx, 0, 0);
	n = frame(buf, 0, 0, 0, WS_OP_TEXT, "ok\xed\xa0\x80", 5); /* a surrogate */
	assert_int_equal(ws_rx_feed(&rx, buf, n, &cbs, &ev), WS_CLOSE_BAD_DATA);
	assert_string_equal(rx.why, "invalid UTF-8 in a text message");
	/* fail inside a frame, before its end: 0xF8 can never start UTF-8 */
	n = frame(buf, 0, 1, 0, WS_OP_TEXT, "abc\xf8zzzzzzzz", 12);
	memset(&ev, 0, sizeof(ev));
	ws_rx_init(&rx, 0, 0);
	assert_int_equal(ws_rx_feed(&rx, buf, n - 6, &cbs, &ev), WS_CLOSE_BAD_DATA);
	/* a message that ends inside a character */
	n = frame(buf, 0, 1, 0, WS_OP_TEXT, "ab\xce", 3);
	assert_int_equal(run(buf, n, 0, 0, NULL), WS_CLOSE_BAD_DATA);
	/* binary and compressed payloads are not checked here */
	n = frame(buf, 0, 1, 0, WS_OP_BINARY, "\xff", 1);
	assert_int_equal(run(buf, n, 0, 0, NULL), 0);
	n = frame(buf, 0, 1, 4, WS_OP_TEXT, "\xff", 1);
	assert_int_equal(run(buf, n, 0, 1, NULL), 0);
}

static void test_utf8_stream(void **state)
{
	struct utf8_stream st = {0};
	assert_true(utf8_stream_feed(&st, "\xf0", 1));
	assert_false(utf8_stream_complete(&st));
	assert_true(utf8_stream_feed(&st, "\x90\x80", 2));
	assert_true(utf8_stream_feed(&st, "\x80", 1));
	assert_true(utf8_stream_complete(&st));
	memset(&st, 0, sizeof(st));
	assert_false(utf8_stream_feed(&st, "\xf0\x8f", 2)); /* overlong */
	assert_false(utf8_stream_feed(&st, "a", 1));	    /* stays failed */
	assert_false(utf8_valid("\xf4\x90\x80\x80", 4));    /* > U+10FFFF */
	assert_true(utf8_valid("\xf4\x8f\xbf\xbf", 4));
	assert_false(utf8_valid("\xc0\xaf", 2));
	assert_true(utf8_valid("abcdefghijklmnop\xc3\xa9", 18));
}

static void test_max_message(void **state)
{
	const char *why;
	size_t n = frame(buf, 0, 1, 0, WS_OP_TEXT, "0123456789", 10);
	assert_int_equal(run(buf, n, 10, 0, NULL), 0);
	n = frame(buf, 0, 1, 0, WS_OP_TEXT, "0123456789a", 11);
	assert_int_equal(run(buf, n, 10, 0, &why), WS_CLOSE_TOO_BIG);
	/* over the limit across fragments: fails at the header of the frame
	 * that crosses it, before its payload */
	n = frame(buf, 0, 0, 0, WS_OP_TEXT, "012345", 6);
	n = frame(buf, n, 1, 0, WS_OP_CONT, "6789a", 5);
	assert_int_equal(run(buf, n - 5, 10, 0, &why), WS_CLOSE_TOO_BIG);
	assert_string_equal(why, "message larger than max_message_bytes");
	/* control frames do not count */
	n = frame(buf, 0, 1, 0, WS_OP_PING, "0123456789abc", 13);
	assert_int_equal(run(buf, n, 10, 0, NULL), 0);
}

static void test_writers(void **state)
{
	uint8_t h[WS_HEADER_MAX];
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 0, 5), 2);
	assert_int_equal(h[0], 0x81);
	assert_int_equal(h[1], 5);
	assert_int_equal(ws_frame_header(h, WS_OP_TEXT, 1, 300), 4);
	assert_int_equal(h[0], 0xC1);
	assert_int_equal(h[1], 126);
	assert_int_equal(h[2] << 8 | h[3], 300);
	assert_int_equal(ws_frame_header(h, WS_OP_CLOSE, 0, 70000), 10);
	assert_int_equal(h[0], 0x88);
	uint8_t p[WS_CONTROL_MAX];
	assert_int_equal(ws_close_payload(p, 0, "x"), 0);
	assert_int_equal(ws_close_payload(p, 4001, "slow consumer"), 15);
	assert_int_equal(p[0] << 8 | p[1], 4001);
	char longwhy[200];
	memset(longwhy, 'a', sizeof(longwhy));
	memcpy(longwhy + 121, "\xe2\x82\xac", 3); /* a 3-byte character across 123 */
	longwhy[199] = '\0';
	assert_int_equal(ws_close_payload(p, 1000, longwhy), 2 + 121);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_binary_empty), cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_reserved_bits),     cmocka_unit_test(test_opcodes),
	    cmocka_unit_test(test_unmasked),	      cmocka_unit_test(test_fragmentation),
	    cmocka_unit_test(test_control_frames),    cmocka_unit_test(test_close_frames),
	    cmocka_unit_test(test_utf8_fail_fast),    cmocka_unit_test(test_utf8_stream),
	    cmocka_unit_test(test_max_message),	      cmocka_unit_test(test_writers),
	};
	return cmocka_run_group_tests_name("ws_frame", tests, NULL, NULL);
}
