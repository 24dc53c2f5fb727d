/*
 * test_ws_deflate.c — unit tests of core/ws_deflate.c: the offers real
 * clients send (Chromium, Node ws, Python websockets) and the ones that must
 * be refused, the RFC 7692 example, compress/inflate round trips, and the
 * inflate cap (a decompression bomb stops at the cap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws_deflate.h"

static int neg(const char *offer, char *out)
{
	return ws_deflate_negotiate(offer, strlen(offer), out);
}

#define BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

static void test_offers_accepted(void **state)
{
	char out[WS_DEFLATE_RESPONSE_MAX];
	/* Chromium, Node ws and Python websockets by default */
	assert_int_equal(neg("permessage-deflate; client_max_window_bits", out), 15);
	assert_string_equal(out, BASE);
	assert_int_equal(neg("permessage-deflate", out), 15);
	assert_string_equal(out, BASE);
	assert_int_equal(neg("permessage-deflate;server_no_context_takeover;"
			     "client_no_context_takeover;client_max_window_bits=10",
			     out),
			 15);
	assert_int_equal(neg("permessage-deflate; server_max_window_bits=10", out), 10);
	assert_string_equal(out, BASE "; server_max_window_bits=10");
	assert_int_equal(neg("permessage-deflate; server_max_window_bits=\"12\"", out), 12);
	/* the first acceptable offer wins */
	assert_int_equal(neg("permessage-deflate; server_max_window_bits=8, "
			     "permessage-deflate; client_max_window_bits",
			     out),
			 15);
	assert_int_equal(
	    neg("x-webkit-deflate-frame, PerMessage-Deflate ; client_max_window_bits", out), 15);
	assert_int_equal(neg("foo; bar=\"a,b\", permessage-deflate", out), 15);
}

static void test_offers_refused(void **state)
{
	char out[WS_DEFLATE_RESPONSE_MAX];
	static const char *const bad[] = {
	    "",
	    "x-webkit-deflate-frame",
	    "permessage-deflate; foo",
	    "permessage-deflate; server_no_context_takeover=1",
	    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
	    "permessage-deflate; server_max_window_bits",
	    "permessage-deflate; server_max_window_bits=8",
	    "permessage-deflate; server_max_window_bits=16",
	    "permessage-deflate; server_max_window_bits=010",
	    "permessage-deflate; client_max_window_bits=7",
	    "permessage-deflate; client_max_window_bits=\"16\"",
	    "permessage-deflate; server_max_window_bits=\"10",
	    "permessage-deflate @",
	    ", , ;",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(neg(bad[i], out), 0);
}

static void test_rfc7692_example(void **state)
{
	/* RFC 7692 7.2.3.1: "Hello" */
	static const unsigned char hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(ws_deflate_inflate(hello, sizeof(hello), 100, &b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(buf_data(&b), "Hello", 5);
	buf_reset(&b);
	/* 7.2.3.3: a stored block (no compression) */
	static const unsigned char stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 'H',
					       'e',  'l',  'l',	 'o',  0x00};
	assert_int_equal(ws_deflate_inflate(stored, sizeof(stored), 100, &b), 0);
	assert_memory_equal(buf_data(&b), "Hello", 5);
	buf_free(&b);
}

static void test_round_trip(void **state)
{
	static char msg[100000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = "{\"type\":\"message\",\"data\":[1,2,3]}"[i % 33];
	static const size_t sizes[] = {1, 64, 1024, 65536, sizeof(msg)};
	for (int wbits = 9; wbits <= 15; wbits++) {
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			struct buf z, back;
			buf_init(&z, 16);
			buf_init(&back, 0);
			assert_int_equal(ws_deflate_compress(msg, sizes[k], wbits, &z), 0);
			if (sizes[k] >= 1024)
				assert_true(z.len * 3 < sizes[k]);
			assert_int_equal(ws_deflate_inflate(buf_data(&z), z.len, sizes[k], &back),
					 0);
			assert_int_equal(back.len, sizes[k]);
			assert_memory_equal(buf_data(&back), msg, sizes[k]);
			/* one byte less room: over the cap */
			buf_reset(&back);
			assert_int_equal(
			    ws_deflate_inflate(buf_data(&z), z.len, sizes[k] - 1, &back), 1);
			buf_free(&z);
			buf_free(&back);
		}
	}
}

static void test_bomb_and_garbage(void **state)
{
	size_t n = 50u << 20; /* 50 MiB of zeros compress to ~50 KiB */
	char *zeros = calloc(1, n);
	struct buf z, out;
	buf_init(&z, 0);
	buf_init(&out, 0);
	assert_non_null(zeros);
	assert_int_equal(ws_deflate_compress(zeros, n, 15, &z), 0);
	free(zeros);
	assert_true(z.len < 100000);
	assert_int_equal(ws_deflate_inflate(buf_data(&z), z.len, 65536, &out), 1);
	assert_true(out.len <= 65537 + 4096); /* stopped at the cap, not at 50 MiB */
	assert_true(out.cap < (1u << 20));
	buf_free(&z);
	buf_reset(&out);
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x12};
	assert_int_equal(ws_deflate_inflate(junk, sizeof(junk), 1000, &out), -1);
	buf_reset(&out);
	/* "Hello" cut in the middle of its block */
	static const unsigned char cut[] = {0xf2, 0x48, 0xcd};
	assert_int_equal(ws_deflate_inflate(cut, sizeof(cut), 1000, &out), -1);
	buf_free(&out);
	ws_deflate_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offers_accepted),  cmocka_unit_test(test_offers_refused),
	    cmocka_unit_test(test_rfc7692_example),  cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_bomb_and_garbage),
	};
	return cmocka_run_group_tests_name("ws_deflate", tests, NULL, NULL);
}
