/*
 * test_sse_id.c — event stream ids (core/sse_id.c): positions written and
 * read back for every channel of a stream, empty positions, the channel
 * list's fingerprint, and every malformed Last-Event-ID refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sse_id.h"

static void round_trip(void **state)
{
	const char *names[] = {"a", "b.c", "d"};
	uint32_t fp = sse_id_fingerprint(names, 3);
	struct proto_since in[3] = {{1, "E1", 41}, {0, "", 0}, {1, "x_-Y", 9007199254740991ULL}};
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(sse_id_write(&b, fp, in, 3), 0);
	char want[128];
	snprintf(want, sizeof(want), "v1;%08x;E1:41,,x_-Y:9007199254740991", fp);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(buf_data(&b), want, b.len);
	struct proto_since out[3];
	assert_int_equal(sse_id_parse(buf_data(&b), b.len, fp, out, 3), 0);
	assert_true(out[0].set && out[2].set && !out[1].set);
	assert_string_equal(out[0].epoch, "E1");
	assert_int_equal(out[0].offset, 41);
	assert_int_equal(out[2].offset, 9007199254740991ULL);
	/* another channel list (order matters): nothing resumes */
	const char *other[] = {"b.c", "a", "d"};
	assert_int_not_equal(sse_id_fingerprint(other, 3), fp);
	assert_int_equal(sse_id_parse(buf_data(&b), b.len, sse_id_fingerprint(other, 3), out, 3),
			 -1);
	assert_false(out[0].set || out[1].set || out[2].set);
	buf_free(&b);
}

static void malformed(void **state)
{
	const char *names[] = {"a", "b"};
	uint32_t fp = sse_id_fingerprint(names, 2);
	char ok[64];
	snprintf(ok, sizeof(ok), "v1;%08x;E:1,F:2", fp);
	struct proto_since out[2];
	assert_int_equal(sse_id_parse(ok, strlen(ok), fp, out, 2), 0);
	const char *tails[] = {"E:1",	   "E:1,F:2,G:3", "E:01,F:2",
			       "E:1,F:",   ":1,F:2",	  "E:-1,F:2",
			       "E:1,F:2x", "E 1,F:2",	  "E:1,F:9007199254740992",
			       "E:1;F:2",  "E:1,,"};
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char id[128];
		snprintf(id, sizeof(id), "v1;%08x;%s", fp, tails[i]);
		if (!sse_id_parse(id, strlen(id), fp, out, 2))
			fail_msg("accepted: %s", id);
		assert_false(out[0].set || out[1].set);
	}
	assert_int_equal(sse_id_parse("v2;00000000;", 12, 0, out, 0), -1);
	assert_int_equal(sse_id_parse("", 0, fp, out, 2), -1);
	/* empty positions are fine: nothing known yet */
	snprintf(ok, sizeof(ok), "v1;%08x;,", fp);
	assert_int_equal(sse_id_parse(ok, strlen(ok), fp, out, 2), 0);
	assert_false(out[0].set || out[1].set);
	/* an epoch of 65 bytes */
	char id[160];
	snprintf(id, sizeof(id), "v1;%08x;%065d:1,", fp, 0);
	assert_int_equal(sse_id_parse(id, strlen(id), fp, out, 2), -1);
}

static void too_long(void **state)
{
	enum { N = 100 };
	struct proto_since p[N];
	for (int i = 0; i < N; i++) {
		p[i].set = 1;
		memset(p[i].epoch, 'e', PROTO_EPOCH_MAX);
		p[i].epoch[PROTO_EPOCH_MAX] = 0;
		p[i].offset = 123456789;
	}
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "id: ");
	assert_int_equal(sse_id_write(&b, 1, p, N), -1);
	assert_int_equal(b.len, 4); /* nothing appended */
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(malformed),
	    cmocka_unit_test(too_long),
	};
	return cmocka_run_group_tests_name("sse_id", tests, NULL, NULL);
}
