/*
 * fuzz_wsdeflate.c — libFuzzer harness for permessage-deflate
 * (core/ws_deflate.c). The first byte picks what the rest is:
 *   0: a Sec-WebSocket-Extensions header. An accepted offer gives window
 *      bits 9..15 and a response that is itself an acceptable offer with the
 *      same window bits.
 *   1: a client's compressed message, inflated under a 1000-byte cap: the
 *      output never passes the cap (plus the one byte that detects it).
 *   2: a message compressed with the window bits of the second byte, then
 *      inflated: the same bytes come back.
 * Single-threaded; frees everything.
 */
#include <string.h>

#include "fuzz_common.h"
#include "ws_deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		char out[WS_DEFLATE_RESPONSE_MAX], again[WS_DEFLATE_RESPONSE_MAX];
		int w = ws_deflate_negotiate((const char *)data, size, out);
		if (w) {
			CHECK(w >= 9 && w <= 15);
			CHECK(strlen(out) < WS_DEFLATE_RESPONSE_MAX);
			CHECK(!strncmp(out,
				       "permessage-deflate; server_no_context_takeover; "
				       "client_no_context_takeover",
				       74));
			CHECK(ws_deflate_negotiate(out, strlen(out), again) == w);
			CHECK(!strcmp(out, again));
		}
		return 0;
	}
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	if (mode == 1) {
		int rc = ws_deflate_inflate(data, size, 1000, &a);
		CHECK(rc == 0 || rc == 1 || rc == -1);
		CHECK(a.len <= 1001);
		if (rc == 0)
			CHECK(a.len <= 1000);
	} else {
		int wbits = 9 + data[0] % 7;
		CHECK(ws_deflate_compress(data + 1, size - 1, wbits, &a) == 0);
		CHECK(ws_deflate_inflate(buf_data(&a), a.len, size - 1, &b) == 0);
		CHECK(b.len == size - 1);
		if (b.len)
			CHECK(!memcmp(buf_data(&b), data + 1, b.len));
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
