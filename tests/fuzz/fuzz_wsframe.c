/*
 * fuzz_wsframe.c — libFuzzer harness for the WebSocket frame parser
 * (core/ws_frame.c). Input: one flags byte (bit 0: permessage-deflate
 * negotiated; bits 1-2 pick max_message: 0 = none, 16, 200, 70000), one
 * seed byte for how the rest is split, then the client's byte stream.
 *
 * The stream is parsed twice: whole, and in pieces of pseudo-random sizes
 * (1..64 bytes, as reads would deliver it). Checks the parser's promises:
 * both runs give the same messages, control frames and result (no split of
 * the input changes anything); every message fits max_message; every
 * uncompressed text message is valid UTF-8; control payloads are at most
 * 125 bytes; a close payload is empty or a valid code + UTF-8 reason;
 * failures are 1002, 1007 or 1009 with a reason; nothing follows a close.
 * Single-threaded; frees everything.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ws_frame.h"

struct run {
	uint64_t max;
	/* the message being reassembled */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	int msg_op, msg_z;
	/* log of events: a running hash and counts */
	uint64_t hash;
	unsigned messages, controls, closes;
};

static void mix(struct run *r, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		r->hash = (r->hash ^ b[i]) * 1099511628211ull;
}

static int on_data(void *arg, int opcode, int compressed, const uint8_t *p, size_t len, int last)
{
	struct run *r = arg;
	CHECK(opcode == WS_OP_TEXT || opcode == WS_OP_BINARY);
	CHECK(r->closes == 0);
	if (r->msg_len == 0 && r->msg_op == 0) {
		r->msg_op = opcode;
		r->msg_z = compressed;
	}
	CHECK(r->msg_op == opcode && r->msg_z == compressed);
	if (len) {
		if (r->msg_len + len > r->msg_cap) {
			size_t cap = (r->msg_len + len) * 2;
			uint8_t *n = realloc(r->msg, cap);
			CHECK(n != NULL);
			r->msg = n;
			r->msg_cap = cap;
		}
		memcpy(r->msg + r->msg_len, p, len);
		r->msg_len += len;
	}
	CHECK(!r->max || r->msg_len <= r->max);
	if (last) {
		if (opcode == WS_OP_TEXT && !compressed)
			CHECK(utf8_valid((const char *)r->msg, r->msg_len));
		uint8_t tag[3] = {'M', (uint8_t)opcode, (uint8_t)compressed};
		mix(r, tag, sizeof(tag));
		mix(r, &r->msg_len, sizeof(r->msg_len));
		if (r->msg_len)
			mix(r, r->msg, r->msg_len);
		r->messages++;
		r->msg_len = 0;
		r->msg_op = 0;
	}
	return 0;
}

static int on_control(void *arg, int opcode, const uint8_t *p, size_t len)
{
	struct run *r = arg;
	CHECK(opcode == WS_OP_CLOSE || opcode == WS_OP_PING || opcode == WS_OP_PONG);
	CHECK(len <= WS_CONTROL_MAX);
	CHECK(r->closes == 0);
	if (opcode == WS_OP_CLOSE) {
		CHECK(len != 1);
		if (len >= 2) {
			CHECK(ws_close_code_valid((unsigned)p[0] << 8 | p[1]));
			CHECK(utf8_valid((const char *)p + 2, len - 2));
		}
		r->closes++;
	}
	uint8_t tag[2] = {'C', (uint8_t)opcode};
	mix(r, tag, sizeof(tag));
	mix(r, &len, sizeof(len));
	if (len)
		mix(r, p, len);
	r->controls++;
	return 0;
}

static const struct ws_rx_cb cbs = {on_data, on_control};

static int parse(struct run *r, int rsv1, const uint8_t *in, size_t n, unsigned seed,
		 const char **why)
{
	struct ws_rx rx;
	uint8_t *copy = malloc(n ? n : 1);
	int rc = 0;
	CHECK(copy != NULL);
	memcpy(copy, in, n);
	ws_rx_init(&rx, r->max, rsv1);
	if (!seed) {
		rc = ws_rx_feed(&rx, copy, n, &cbs, r);
	} else {
		size_t i = 0;
		while (i < n && !rc) {
			seed = seed * 1103515245u + 12345u;
			size_t k = 1 + (seed >> 16) % 64;
			if (k > n - i)
				k = n - i;
			rc = ws_rx_feed(&rx, copy + i, k, &cbs, r);
			i += k;
		}
	}
	if (rc) {
		/* A failed parser keeps failing with the same code. */
		uint8_t more[2] = {0x81, 0x80};
		CHECK(ws_rx_feed(&rx, more, sizeof(more), &cbs, r) == rc);
	}
	*why = rx.why;
	free(copy);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[4] = {0, 16, 200, 70000};
	struct run a, b;
	const char *why_a = NULL, *why_b = NULL;

	if (size < 2)
		return 0;
	int rsv1 = data[0] & 1;
	uint64_t max = maxes[(data[0] >> 1) & 3];
	unsigned seed = data[1] | 0x100u; /* nonzero: split */
	data += 2;
	size -= 2;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.max = b.max = max;
	int rc_a = parse(&a, rsv1, data, size, 0, &why_a);
	int rc_b = parse(&b, rsv1, data, size, seed, &why_b);

	CHECK(rc_a == rc_b);
	CHECK(a.hash == b.hash && a.messages == b.messages && a.controls == b.controls);
	CHECK(rc_a == 0 || rc_a == WS_CLOSE_PROTOCOL || rc_a == WS_CLOSE_BAD_DATA ||
	      rc_a == WS_CLOSE_TOO_BIG);
	if (rc_a) {
		CHECK(why_a != NULL && why_b != NULL && !strcmp(why_a, why_b));
	}
	free(a.msg);
	free(b.msg);

	/* The writers. A header for len bytes, masked as a client would, parses
	 * back to one message of len bytes. */
	{
		size_t len = size % 70000;
		uint8_t *f = calloc(1, WS_HEADER_MAX + 4 + len);
		CHECK(f != NULL);
		size_t h = ws_frame_header(f, WS_OP_BINARY, 0, len);
		CHECK(h == (len < 126 ? 2u : len < 65536 ? 4u : 10u));
		f[1] |= 0x80; /* masked, key 0 0 0 0 follows */
		struct run c;
		const char *why = NULL;
		memset(&c, 0, sizeof(c));
		CHECK(parse(&c, 0, f, h + 4 + len, 0, &why) == 0);
		CHECK(c.messages == 1 && c.controls == 0);
		free(c.msg);
		free(f);
	}
	/* A close payload is a valid code and a whole-character reason. */
	{
		char why[200];
		size_t k = size < sizeof(why) - 1 ? size : sizeof(why) - 1;
		memcpy(why, data, k);
		why[k] = '\0';
		uint8_t out[WS_CONTROL_MAX];
		size_t n = ws_close_payload(out, 1000, why);
		CHECK(n >= 2 && n <= WS_CONTROL_MAX);
		if (utf8_valid(why, strlen(why)))
			CHECK(utf8_valid((const char *)out + 2, n - 2));
	}
	return 0;
}
