/*
 * test_outq.c — the send queue of (head, body) frame references
 * (core/outq.c): order across ring growth and wrap-around, byte counts
 * (its own and the process gauge), references taken on push and released
 * on pop/clear/free, so shared frames are freed exactly once; the memory
 * all queues pin (max_queued_bytes) counts a shared frame once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "msg.h"
#include "outq.h"

struct metrics metrics;

static void order_bytes_and_references(void **state)
{
	struct outq q = {0};
	struct msg *head = msg_new("{\"id\":7,", 8);
	struct msg *body[40];
	for (int i = 0; i < 40; i++) {
		char t[16];
		int n = snprintf(t, sizeof(t), "m%d", i);
		body[i] = msg_new(t, (size_t)n);
	}
	/* 10 in, 5 out, 30 more in: the ring wraps and then grows */
	size_t want = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(outq_push(&q, i % 2 ? head : NULL, body[i]), 0);
		want += body[i]->len + (i % 2 ? 8 : 0);
	}
	assert_int_equal(q.bytes, want);
	assert_int_equal(metrics.queue_bytes, (long long)want);
	assert_int_equal(head->refs, 1 + 5);
	struct outq_ent e;
	for (int i = 0; i < 5; i++) {
		outq_pop(&q, &e);
		assert_ptr_equal(e.body, body[i]);
		assert_ptr_equal(e.head, i % 2 ? head : NULL);
		assert_int_equal(e.body->refs, 2);
		want -= outq_ent_len(&e);
		outq_ent_release(&e);
		assert_null(e.body);
		assert_int_equal(body[i]->refs, 1);
	}
	for (int i = 10; i < 40; i++)
		assert_int_equal(outq_push(&q, NULL, body[i]), 0);
	assert_int_equal(q.len, 35);
	for (int i = 5; i < 40; i++)
		assert_ptr_equal(outq_at(&q, (size_t)i - 5)->body, body[i]);
	outq_clear(&q);
	assert_int_equal(q.len, 0);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(metrics.queue_bytes, 0);
	assert_int_equal(head->refs, 1);
	outq_free(&q);
	outq_free(&q); /* idempotent */
	msg_unref(head);
	for (int i = 0; i < 40; i++)
		msg_unref(body[i]);
	assert_int_equal(msg_live_count, 0);
}

/* outq_pinned(): a frame held by several queues counts once; entries each
 * count; what is popped, truncated, replaced or cleared stops counting. */
static void pinned_counts_shared_frames_once(void **state)
{
	struct outq a = {0}, b = {0};
	struct msg *shared = msg_new("0123456789", 10), *own = msg_new("abc", 3);
	long long base = outq_pinned();
	const long long F = OUTQ_MSG_OVERHEAD, E = OUTQ_ENTRY_BYTES;

	assert_int_equal(outq_cost(NULL, shared), 10 + F + E);
	assert_int_equal(outq_push(&a, NULL, shared), 0);
	assert_int_equal(outq_cost(NULL, shared), E); /* queued already: an entry only */
	assert_int_equal(outq_push(&b, NULL, shared), 0);
	assert_int_equal(outq_push(&b, NULL, own), 0);
	assert_int_equal(outq_pinned() - base, (10 + F) + (3 + F) + 3 * E);
	struct outq_ent e;
	outq_pop(&a, &e); /* b still holds shared */
	outq_ent_release(&e);
	assert_int_equal(outq_pinned() - base, (10 + F) + (3 + F) + 2 * E);
	struct msg *pong = msg_new("p", 1);
	outq_set_body(&b, outq_at(&b, 1), pong); /* own -> pong in place */
	assert_int_equal(outq_pinned() - base, (10 + F) + (1 + F) + 2 * E);
	outq_truncate(&b, 1);
	assert_int_equal(outq_pinned() - base, (10 + F) + E);
	outq_free(&b);
	outq_free(&a);
	assert_int_equal(outq_pinned(), base);
	assert_int_equal(metrics.queue_pinned_bytes, base);
	msg_unref(shared);
	msg_unref(own);
	msg_unref(pong);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(order_bytes_and_references),
	    cmocka_unit_test(pinned_counts_shared_frames_once),
	};
	return cmocka_run_group_tests_name("outq", tests, NULL, NULL);
}
