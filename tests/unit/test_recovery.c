/*
 * test_recovery.c — unit tests of the position state machine (core/
 * recovery.c) with the hub and the backends replaced by recording stubs:
 * a fake channel whose live and recovering subscribers are modelled the
 * way the hub does it (fan_out gives frames to live ones, hands them to
 * pos_sub_buffer for the others), and a fake backend whose history
 * answers now, later (queued by the test) or never.
 *
 * Every test checks what each subscriber received as a list of offsets
 * (and gap positions), so "each offset once, in order, no silent hole" is
 * asserted literally. Single-threaded; frees everything (ASan/LSan catch
 * an item reference never returned).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fanout/plugin.h>

#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "protocol.h"
#include "recovery.h"

struct metrics metrics;

/* ---- the fake hub: one channel, up to 8 subscribers ---- */

#define MAX_SUBS 8
#define MAX_GOT	 2048

struct fsub {
	int live;	    /* receives fan_out directly */
	struct pos_sub *ps; /* recovering */
	int finished;	    /* finish was called */
	int recovered;
	char epoch[70];
	uint64_t sub_offset;
	/* what it received, in order: offsets; a gap is -(position) - 1 */
	long long got[MAX_GOT];
	int n_got;
};

static struct fsub subs[MAX_SUBS];
static int chan_token; /* &chan_token is the channel */
static uint64_t clock_ms;

/* A message's offset, or a gap's position as -(position) - 1. */
static long long item_key(const struct pos_item *it)
{
	if (it->kind == POS_GAP) {
		assert_true(it->positioned);
		return -(long long)it->offset - 1;
	}
	/* the payload the fake broker wrote is {"n":OFFSET}, in the native
	 * frame with the offset */
	size_t off, len;
	uint64_t offset;
	assert_int_equal(
	    proto_message_data(msg_payload(it->frame), it->frame->len, &off, &len, &offset), 0);
	assert_int_equal(offset, it->offset);
	assert_int_equal(atoll(msg_payload(it->frame) + off + 5), (long long)it->offset);
	return (long long)it->offset;
}

static void fs_push(struct fsub *s, struct pos_item *it)
{
	if (s->n_got < MAX_GOT)
		s->got[s->n_got++] = item_key(it);
}

static void h_fan_out(void *ch, struct pos_item *it)
{
	assert_ptr_equal(ch, &chan_token);
	for (int i = 0; i < MAX_SUBS; i++) {
		if (subs[i].live)
			fs_push(&subs[i], it);
		else if (subs[i].ps)
			pos_sub_buffer(subs[i].ps, it);
	}
}

static void h_finish(void *ch, void *sub, const char *epoch, uint64_t offset, int recovered,
		     struct pos_item *const *msgs, size_t n)
{
	struct fsub *s = sub;
	assert_ptr_equal(ch, &chan_token);
	assert_false(s->finished);
	s->finished = 1;
	s->ps = NULL;
	s->live = 1;
	s->recovered = recovered;
	snprintf(s->epoch, sizeof(s->epoch), "%s", epoch);
	s->sub_offset = offset;
	if (!recovered)
		assert_int_equal(n, 0); /* no partial replay, ever */
	for (size_t i = 0; i < n; i++)
		fs_push(s, msgs[i]);
}

/* ---- the fake backend ---- */

struct hist {
	char epoch[70];
	uint64_t top;
	uint64_t oldest; /* first kept offset (top + 1: none) */
	int answer;	 /* 0: answer at once; 1: queue; 2: never */
	int refuse;	 /* history()/top() return this (0: accept) */
	int top_at_call; /* queued top() answers give the top of the call's time */
};
static struct hist bk;

#define MAX_Q 64
static struct {
	int is_top;
	uint64_t token, after, max;
	char epoch[70];
	uint64_t top; /* top(): the broker's top when it was called */
} pendq[MAX_Q];
static int n_pendq;
static int n_top_calls, n_history_calls;

static void answer_history(uint64_t token, const char *epoch, uint64_t after, uint64_t max)
{
	if (strcmp(epoch, bk.epoch)) {
		pos_history_done(token, FANOUT_EEPOCH, bk.epoch, bk.top);
		return;
	}
	if (after < bk.top && after + 1 < bk.oldest) {
		pos_history_done(token, FANOUT_ETRUNCATED, bk.epoch, bk.top);
		return;
	}
	for (uint64_t o = after + 1; o <= bk.top && max; o++, max--) {
		char data[32];
		int len = snprintf(data, sizeof(data), "{\"n\":%llu}", (unsigned long long)o);
		pos_history_item(token, o, data, (size_t)len);
	}
	pos_history_done(token, FANOUT_OK, bk.epoch, bk.top);
}

static int h_top(void *ch, uint64_t token)
{
	n_top_calls++;
	if (bk.refuse)
		return bk.refuse;
	if (bk.answer == 0) {
		pos_top_done(token, FANOUT_OK, bk.epoch, bk.top);
	} else if (bk.answer == 1) {
		assert_true(n_pendq < MAX_Q);
		pendq[n_pendq].is_top = 1;
		pendq[n_pendq].top = bk.top;
		snprintf(pendq[n_pendq].epoch, sizeof(pendq[0].epoch), "%s", bk.epoch);
		pendq[n_pendq++].token = token;
	}
	return 0;
}

static int h_history(void *ch, const char *epoch, uint64_t after, uint64_t max, uint64_t token)
{
	n_history_calls++;
	if (bk.refuse)
		return bk.refuse;
	if (bk.answer == 0) {
		answer_history(token, epoch, after, max);
	} else if (bk.answer == 1) {
		assert_true(n_pendq < MAX_Q);
		pendq[n_pendq].is_top = 0;
		pendq[n_pendq].token = token;
		pendq[n_pendq].after = after;
		pendq[n_pendq].max = max;
		snprintf(pendq[n_pendq].epoch, sizeof(pendq[0].epoch), "%s", epoch);
		n_pendq++;
	}
	return 0;
}

/* Answer every queued request, in order. */
static void answer_all(void)
{
	int n = n_pendq;
	n_pendq = 0;
	for (int i = 0; i < n; i++) {
		if (pendq[i].is_top && bk.top_at_call)
			pos_top_done(pendq[i].token, FANOUT_OK, pendq[i].epoch, pendq[i].top);
		else if (pendq[i].is_top)
			pos_top_done(pendq[i].token, FANOUT_OK, bk.epoch, bk.top);
		else
			answer_history(pendq[i].token, pendq[i].epoch, pendq[i].after,
				       pendq[i].max);
	}
}

static uint64_t h_now(void)
{
	return clock_ms;
}

static const struct pos_hooks hooks = {
    .top = h_top,
    .history = h_history,
    .fan_out = h_fan_out,
    .finish = h_finish,
    .now = h_now,
};

static struct pos_limits limits;

/* A live message as the broker would deliver it (an item, like the hub). */
static void live(struct pos_chan *pc, const char *epoch, uint64_t off)
{
	char data[32];
	struct buf out;
	int len = snprintf(data, sizeof(data), "{\"n\":%llu}", (unsigned long long)off);
	buf_init(&out, MSG_PRE);
	assert_int_equal(proto_message_at(&out, "c", "u1", 1, off, data, (size_t)len, NULL), 0);
	struct msg *m = msg_from_buf(&out);
	struct pos_item *it = pos_item_new(POS_MESSAGE, epoch, off, m, NULL);
	msg_unref(m);
	assert_non_null(it);
	pos_deliver(pc, it);
	pos_item_unref(it);
}

/* Publish on the fake broker and deliver live (unless lost). */
static void publish(struct pos_chan *pc, int lose)
{
	bk.top++;
	if (!lose)
		live(pc, bk.epoch, bk.top);
}

static struct pos_chan *attach(uint64_t top)
{
	struct pos_chan *pc = pos_chan_new(&chan_token, "c", bk.epoch, top, FANOUT_POS_CONTIGUOUS);
	assert_non_null(pc);
	return pc;
}

/* Resume subscriber i at (epoch, off). */
static void resume(struct pos_chan *pc, int i, const char *epoch, uint64_t off)
{
	struct proto_since s = {.set = 1, .offset = off};
	snprintf(s.epoch, sizeof(s.epoch), "%s", epoch);
	subs[i].ps = pos_recover(pc, &subs[i], &s);
	if (subs[i].finished)
		assert_null(subs[i].ps);
	else
		assert_non_null(subs[i].ps);
}

/* Subscriber i got exactly offsets from..to, in order (after `skip`
 * entries). */
static void expect_run(int i, int skip, uint64_t from, uint64_t to)
{
	struct fsub *s = &subs[i];
	int want = (int)(to >= from ? to - from + 1 : 0);
	if (s->n_got - skip != want) {
		for (int k = 0; k < s->n_got; k++)
			fprintf(stderr, "  got[%d] = %lld\n", k, s->got[k]);
		fail_msg("sub %d: %d frames after %d, want %d (%llu..%llu)", i, s->n_got - skip,
			 skip, want, (unsigned long long)from, (unsigned long long)to);
	}
	for (int k = 0; k < want; k++)
		assert_int_equal(s->got[skip + k], (long long)(from + (uint64_t)k));
}

static int setup(void **state)
{
	(void)state;
	memset(subs, 0, sizeof(subs));
	memset(&bk, 0, sizeof(bk));
	snprintf(bk.epoch, sizeof(bk.epoch), "E1");
	bk.oldest = 1;
	n_pendq = n_top_calls = n_history_calls = 0;
	clock_ms = 1000;
	memset(&metrics, 0, sizeof(metrics));
	log_set_level(LOG_LVL_WARN); /* gaps and epoch changes are logged at info */
	limits = (struct pos_limits){
	    .max_messages = 1000,
	    .buffer_messages = 100,
	    .ring_messages = 16,
	    .ring_bytes = 1 << 20,
	    .max_requests = 4,
	    .timeout_ms = 5000,
	    .probe_ms = 30000,
	    .max_replay_bytes = 1 << 20,
	    .max_payload = 1 << 20,
	};
	pos_init(&limits, &hooks, "u1");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pos_free();
	assert_int_equal(metrics.rec.ring_messages, 0);
	assert_int_equal(msg_live_count, 0); /* every item (and its frame) freed */
	return 0;
}

/* ---- live path ---- */

static void test_live_in_order_and_duplicates(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	for (int i = 0; i < 5; i++)
		publish(pc, 0);
	live(pc, "E1", 3); /* a duplicate */
	live(pc, "E1", 5);
	expect_run(0, 0, 1, 5);
	assert_int_equal(pos_top(pc), 5);
	assert_int_equal(metrics.rec.duplicates, 2);
	pos_chan_free(pc);
}

static void test_hole_repaired_before_later_messages(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	bk.answer = 1; /* history answers later */
	publish(pc, 0);
	publish(pc, 1); /* 2 lost */
	publish(pc, 1); /* 3 lost */
	publish(pc, 0); /* 4: the hole shows; held */
	publish(pc, 0); /* 5: held */
	expect_run(0, 0, 1, 1);
	assert_int_equal(n_history_calls, 1);
	answer_all();
	expect_run(0, 0, 1, 5);
	assert_int_equal(metrics.rec.holes, 1);
	assert_int_equal(metrics.rec.holes_repaired, 1);
	assert_int_equal(metrics.rec.hole_messages, 2);
	assert_int_equal(metrics.rec.gaps, 0);
	/* the held 4 and 5 came from the live path, not twice */
	publish(pc, 0);
	expect_run(0, 0, 1, 6);
	pos_chan_free(pc);
}

static void test_hole_history_cannot_fill_is_one_gap(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	publish(pc, 1);
	publish(pc, 1);
	bk.oldest = 4; /* 2 and 3 trimmed from history */
	publish(pc, 0);
	/* 1, then a gap standing at 3, then 4 */
	assert_int_equal(subs[0].n_got, 3);
	assert_int_equal(subs[0].got[0], 1);
	assert_int_equal(subs[0].got[1], -3 - 1);
	assert_int_equal(subs[0].got[2], 4);
	assert_int_equal(metrics.rec.gaps, 1);
	assert_int_equal(metrics.rec.holes_repaired, 0);
	pos_chan_free(pc);
}

static void test_hole_repair_times_out(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	bk.answer = 2; /* never answers */
	publish(pc, 0);
	publish(pc, 1);
	publish(pc, 0); /* held */
	publish(pc, 0); /* held */
	assert_int_equal(subs[0].n_got, 1);
	clock_ms += 4999;
	pos_tick();
	assert_int_equal(subs[0].n_got, 1);
	clock_ms += 1;
	pos_tick();
	assert_int_equal(subs[0].n_got, 4);
	assert_int_equal(subs[0].got[1], -2 - 1);
	assert_int_equal(subs[0].got[2], 3);
	assert_int_equal(subs[0].got[3], 4);
	assert_int_equal(metrics.rec.request_timeouts, 1);
	pos_chan_free(pc);
}

static void test_repair_retried_while_backend_unreachable(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	publish(pc, 1);
	bk.refuse = FANOUT_EUNAVAIL; /* reconnecting: history refused at once */
	publish(pc, 0);		     /* 3 shows the hole; held */
	assert_int_equal(n_history_calls, 1);
	expect_run(0, 0, 1, 1);
	clock_ms += 199;
	pos_tick();
	assert_int_equal(n_history_calls, 1);
	bk.refuse = 0;
	clock_ms += 1;
	pos_tick(); /* the retry */
	assert_int_equal(n_history_calls, 2);
	expect_run(0, 0, 1, 3);
	assert_int_equal(metrics.rec.gaps, 0);
	/* unreachable for longer than recovery_timeout_ms: then a gap */
	publish(pc, 1);
	bk.refuse = FANOUT_EUNAVAIL;
	publish(pc, 0);
	for (int i = 0; i < 30; i++) {
		clock_ms += 200;
		pos_tick();
	}
	assert_int_equal(metrics.rec.gaps, 1);
	assert_int_equal(subs[0].got[3], -4 - 1);
	assert_int_equal(subs[0].got[4], 5);
	pos_chan_free(pc);
}

static void test_resume_retried_while_backend_unreachable(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(100);
	bk.top = 100;
	bk.refuse = FANOUT_EUNAVAIL;
	resume(pc, 0, "E1", 90);
	assert_false(subs[0].finished);
	bk.refuse = 0;
	clock_ms += 200;
	pos_tick();
	assert_true(subs[0].recovered);
	expect_run(0, 0, 91, 100);
	assert_int_equal(metrics.rec.requests_queued, 0);
	assert_int_equal(metrics.rec.requests_inflight, 0);
	pos_chan_free(pc);
}

static void test_hold_overflow_gives_up_repair(void **state)
{
	(void)state;
	limits.buffer_messages = 3;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	bk.answer = 1;
	publish(pc, 1);
	for (int i = 0; i < 3; i++)
		publish(pc, 0); /* 2, 3, 4 held */
	assert_int_equal(subs[0].n_got, 0);
	publish(pc, 0); /* 5: over the cap */
	assert_int_equal(metrics.rec.hold_overflows, 1);
	assert_int_equal(subs[0].n_got, 5);
	assert_int_equal(subs[0].got[0], -1 - 1);
	expect_run(0, 1, 2, 5);
	answer_all(); /* the late answer changes nothing */
	assert_int_equal(subs[0].n_got, 5);
	pos_chan_free(pc);
}

static void test_hole_too_big_is_gap_at_once(void **state)
{
	(void)state;
	limits.max_messages = 10;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	live(pc, "E1", 20);
	assert_int_equal(n_history_calls, 0);
	assert_int_equal(subs[0].n_got, 2);
	assert_int_equal(subs[0].got[0], -19 - 1);
	assert_int_equal(subs[0].got[1], 20);
	pos_chan_free(pc);
}

static void test_probe_finds_lost_last_message(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	publish(pc, 1); /* lost, and the channel stays quiet */
	clock_ms += 29999;
	pos_tick();
	assert_int_equal(n_top_calls, 0);
	clock_ms += 30000;
	pos_tick();
	assert_int_equal(n_top_calls, 1);
	expect_run(0, 0, 1, 2);
	assert_int_equal(metrics.rec.holes_repaired, 1);
	pos_chan_free(pc);
}

static void test_suspect_after_reconnect(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	for (int i = 0; i < 4; i++)
		publish(pc, 1); /* published while the backend was disconnected */
	pos_suspect(pc, "backend reconnected");
	expect_run(0, 0, 1, 5);
	pos_chan_free(pc);
}

static void test_quiet_probes_fill_free_slots_only(void **state)
{
	(void)state;
	limits.max_requests = 2;
	pos_init(&limits, &hooks, "u1");
	bk.answer = 1; /* answers wait for the test */
	struct pos_chan *pc[5];
	for (int i = 0; i < 5; i++)
		pc[i] = attach(0);
	clock_ms += 30000;
	pos_tick();
	assert_int_equal(n_top_calls, 2); /* not 5 queued at once */
	assert_int_equal(metrics.rec.requests_queued, 0);
	answer_all();
	clock_ms += 7501; /* the next scan */
	pos_tick();
	assert_int_equal(n_top_calls, 4);
	answer_all();
	clock_ms += 7501;
	pos_tick();
	assert_int_equal(n_top_calls, 5);
	answer_all();
	for (int i = 0; i < 5; i++)
		pos_chan_free(pc[i]);
}

static void test_suspect_probe_retried_until_answered(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	publish(pc, 1);
	bk.refuse = FANOUT_EUNAVAIL; /* the backend is not back yet */
	pos_suspect(pc, "backend reconnected");
	assert_int_equal(n_top_calls, 1);
	clock_ms += 999;
	pos_tick();
	assert_int_equal(n_top_calls, 1);
	bk.refuse = 0;
	clock_ms += 1;
	pos_tick();
	assert_int_equal(n_top_calls, 2);
	expect_run(0, 0, 1, 2);
	clock_ms += 5000;
	pos_tick(); /* answered: no more probes until position_probe_s */
	assert_int_equal(n_top_calls, 2);
	pos_chan_free(pc);
}

static void test_epoch_change(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	publish(pc, 0);
	/* the broker lost everything: a new epoch, 2 messages published in it */
	snprintf(bk.epoch, sizeof(bk.epoch), "E2");
	bk.top = 0;
	publish(pc, 1);
	publish(pc, 0); /* E2:2 arrives: gap to E2:0, then 1 from history, then 2 */
	assert_int_equal(subs[0].n_got, 5);
	assert_int_equal(subs[0].got[0], 1);
	assert_int_equal(subs[0].got[1], 2);
	assert_int_equal(subs[0].got[2], -0 - 1);
	assert_int_equal(subs[0].got[3], 1);
	assert_int_equal(subs[0].got[4], 2);
	assert_string_equal(pos_epoch(pc), "E2");
	assert_int_equal(metrics.rec.epoch_changes, 1);
	pos_chan_free(pc);
}

static void test_epoch_change_seen_by_probe(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	publish(pc, 0);
	snprintf(bk.epoch, sizeof(bk.epoch), "E3");
	bk.top = 0;
	publish(pc, 1);
	pos_suspect(pc, "backend reconnected");
	assert_string_equal(pos_epoch(pc), "E3");
	assert_int_equal(subs[0].n_got, 3);
	assert_int_equal(subs[0].got[1], -0 - 1);
	assert_int_equal(subs[0].got[2], 1);
	pos_chan_free(pc);
}

/* ---- resumes ---- */

static void test_resume_from_ring(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	for (int i = 0; i < 10; i++)
		publish(pc, 0);
	resume(pc, 1, "E1", 4);
	assert_true(subs[1].finished);
	assert_true(subs[1].recovered);
	assert_int_equal(subs[1].sub_offset, 10);
	expect_run(1, 0, 5, 10);
	assert_int_equal(n_history_calls, 0); /* from memory */
	publish(pc, 0);
	expect_run(1, 0, 5, 11);
	assert_int_equal(metrics.rec.ring_hits, 1);
	assert_int_equal(metrics.rec.recovered_messages, 6);
	/* at the top: recovered, nothing to replay */
	resume(pc, 2, "E1", 11);
	assert_true(subs[2].recovered);
	assert_int_equal(subs[2].n_got, 0);
	pos_chan_free(pc);
}

static void test_resume_from_history_merges_live(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	for (int i = 0; i < 40; i++)
		publish(pc, 0); /* the ring (16) keeps 25..40 */
	bk.answer = 1;
	resume(pc, 1, "E1", 3);
	assert_false(subs[1].finished);
	assert_int_equal(n_history_calls, 1);
	assert_int_equal(pendq[0].after, 3);
	assert_int_equal(pendq[0].max, 21); /* (3, 24]: the ring has the rest */
	publish(pc, 0);			    /* 41 arrives meanwhile */
	publish(pc, 0);			    /* 42 */
	answer_all();
	assert_true(subs[1].recovered);
	assert_int_equal(subs[1].sub_offset, 42);
	expect_run(1, 0, 4, 42);
	publish(pc, 0);
	expect_run(1, 0, 4, 43);
	pos_chan_free(pc);
}

static void test_resume_storm_shares_requests(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(100); /* a cold channel: nothing in memory */
	bk.top = 100;
	bk.answer = 1;
	for (int i = 0; i < MAX_SUBS - 1; i++)
		resume(pc, i, "E1", 90 + (uint64_t)i % 3);
	assert_int_equal(n_history_calls, 1); /* one request serves all */
	publish(pc, 0);
	answer_all();
	for (int i = 0; i < MAX_SUBS - 1; i++) {
		assert_true(subs[i].recovered);
		expect_run(i, 0, 91 + (uint64_t)i % 3, 101);
	}
	/* Its items continued the ring downwards: the next resume on this
	 * channel is served from memory. */
	resume(pc, MAX_SUBS - 1, "E1", 95);
	assert_int_equal(n_history_calls, 1);
	assert_true(subs[MAX_SUBS - 1].recovered);
	expect_run(MAX_SUBS - 1, 0, 96, 101);
	pos_chan_free(pc);
}

static void test_resume_stale_epoch(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(7);
	resume(pc, 0, "OLD", 3);
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_string_equal(subs[0].epoch, "E1");
	assert_int_equal(subs[0].sub_offset, 7);
	assert_int_equal(metrics.rec.failed[RF_EPOCH], 1);
	pos_chan_free(pc);
}

static void test_resume_older_than_history(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(50);
	bk.top = 50;
	bk.oldest = 30;
	resume(pc, 0, "E1", 10);
	assert_false(subs[0].recovered);
	assert_int_equal(subs[0].n_got, 0); /* no partial replay */
	assert_int_equal(subs[0].sub_offset, 50);
	assert_int_equal(metrics.rec.failed[RF_TRUNCATED], 1);
	pos_chan_free(pc);
}

static void test_resume_too_far(void **state)
{
	(void)state;
	limits.max_messages = 20;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(50);
	bk.top = 50;
	resume(pc, 0, "E1", 29);
	assert_false(subs[0].recovered);
	assert_int_equal(n_history_calls, 0);
	assert_int_equal(metrics.rec.failed[RF_TOO_FAR], 1);
	resume(pc, 1, "E1", 30); /* exactly 20 behind: fine */
	assert_true(subs[1].recovered);
	expect_run(1, 0, 31, 50);
	pos_chan_free(pc);
}

static void test_resume_ahead_catches_up(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(10);
	bk.top = 12; /* the broker has 11 and 12; this instance not yet */
	bk.answer = 1;
	subs[0].live = 1;
	resume(pc, 1, "E1", 12);
	assert_false(subs[1].finished);
	assert_int_equal(n_top_calls, 1);
	live(pc, "E1", 11);
	assert_false(subs[1].finished);
	live(pc, "E1", 12);
	assert_true(subs[1].finished);
	assert_true(subs[1].recovered);
	assert_int_equal(subs[1].sub_offset, 12);
	assert_int_equal(subs[1].n_got, 0); /* it had 11 and 12 */
	live(pc, "E1", 13);
	expect_run(1, 0, 13, 13);
	answer_all(); /* the probe's late answer: top 12 < 13, nothing to do */
	expect_run(0, 0, 11, 13);
	pos_chan_free(pc);
}

static void test_resume_ahead_of_broker(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(10);
	bk.top = 10;
	resume(pc, 0, "E1", 1000000); /* a made-up offset */
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_int_equal(subs[0].sub_offset, 10);
	assert_int_equal(metrics.rec.failed[RF_AHEAD], 1);
	pos_chan_free(pc);
}

static void test_resume_ahead_times_out(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(10);
	bk.answer = 2;
	resume(pc, 0, "E1", 11);
	clock_ms += 5000;
	pos_tick();
	assert_false(subs[0].recovered);
	assert_int_equal(metrics.rec.failed[RF_TIMEOUT], 1);
	pos_chan_free(pc);
}

static void test_resume_buffer_cap(void **state)
{
	(void)state;
	limits.buffer_messages = 5;
	limits.ring_messages = 0; /* (ring frames would count too) */
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(0);
	for (int i = 0; i < 40; i++)
		publish(pc, 0);
	bk.answer = 1;
	resume(pc, 0, "E1", 2);
	for (int i = 0; i < 5; i++)
		publish(pc, 0);
	assert_false(subs[0].finished);
	publish(pc, 0); /* the 6th frame while waiting */
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_int_equal(subs[0].sub_offset, 46);
	publish(pc, 0);
	expect_run(0, 0, 47, 47);
	answer_all();
	assert_int_equal(metrics.rec.failed[RF_BUFFER], 1);
	pos_chan_free(pc);
}

/* A resume far ahead of this instance (which repairs its way up from
 * history) does not count the frames it already has against
 * recovery_buffer_messages: failing there would place the client behind
 * its own position, and those frames would then reach it twice. */
static void test_resume_catch_up_buffers_only_after_since(void **state)
{
	(void)state;
	limits.buffer_messages = 5;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(10);
	bk.top = 40; /* 11..40 published; this instance has not seen them */
	bk.answer = 1;
	resume(pc, 0, "E1", 38);
	answer_all(); /* the probe: top 40, a repair of (10, 40] */
	assert_false(subs[0].finished);
	answer_all(); /* the history: 11..40, 28 of them before since */
	assert_true(subs[0].finished);
	assert_true(subs[0].recovered);
	assert_int_equal(metrics.rec.failed[RF_BUFFER], 0);
	publish(pc, 0);
	expect_run(0, 0, 39, 41);
	pos_chan_free(pc);
}

static void test_resume_gap_meanwhile_is_not_recovered(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	for (int i = 0; i < 40; i++)
		publish(pc, 0);
	bk.answer = 1;
	resume(pc, 0, "E1", 2); /* waits for history */
	publish(pc, 1);
	bk.oldest = 42; /* 41 is gone from history too */
	publish(pc, 0); /* hole at 41: repair queued */
	answer_all();	/* the resume's and the repair's answers */
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_int_equal(metrics.rec.failed[RF_GAP] + metrics.rec.failed[RF_TRUNCATED], 1);
	pos_chan_free(pc);
}

static void test_resume_epoch_change_meanwhile(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	for (int i = 0; i < 40; i++)
		publish(pc, 0);
	bk.answer = 1;
	resume(pc, 0, "E1", 2);
	snprintf(bk.epoch, sizeof(bk.epoch), "E9");
	bk.top = 0;
	publish(pc, 0); /* E9:1 */
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	/* then, live, the gap to E9:0 and E9:1 */
	assert_int_equal(subs[0].n_got, 2);
	assert_int_equal(subs[0].got[0], -0 - 1);
	assert_int_equal(subs[0].got[1], 1);
	answer_all(); /* the orphaned history answer is ignored */
	pos_chan_free(pc);
}

/*
 * The client knows a newer epoch than this instance: it resumed from
 * another instance after a broker restart without persistence that this
 * instance has not noticed yet (its backend still reconnecting). The
 * instance must not answer from its old epoch: the gap to the new epoch
 * and the new epoch's messages that follow would then repeat what the
 * client already has. It waits for the channel to reach the client's
 * epoch and replays only what is after since. (fault_delivery.mjs saw
 * "seq 405 after 649: a duplicate" this way.)
 */
static void test_resume_newer_epoch_than_instance(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(0);
	subs[0].live = 1;
	for (int i = 0; i < 10; i++)
		publish(pc, 0); /* E1:1..10; the ring holds them */
	/* The broker restarts without its data; this instance is away. */
	snprintf(bk.epoch, sizeof(bk.epoch), "E2");
	bk.top = 0;
	bk.answer = 1;
	bk.top_at_call = 1;
	for (int i = 0; i < 8; i++)
		publish(pc, 1);
	pos_suspect(pc, "backend reconnected"); /* its probe sees E2:8 */
	for (int i = 0; i < 7; i++)
		publish(pc, 1); /* E2:9..15, not here yet */
	/* A client that read E2 up to 15 on another instance resumes here. */
	resume(pc, 1, "E2", 15);
	for (int i = 0; i < 4; i++)
		publish(pc, 1); /* E2:16..19 */
	/* The probe from before the resume (E2:8) changes the epoch but
	 * cannot say whether E2:15 exists; a fresh probe (E2:19) can. */
	while (n_pendq)
		answer_all();
	assert_string_equal(pos_epoch(pc), "E2");
	expect_run(1, 0, 16, 19); /* nothing of E2 up to 15 again */
	assert_true(subs[1].finished);
	assert_true(subs[1].recovered);
	assert_string_equal(subs[1].epoch, "E2");
	assert_int_equal(subs[1].sub_offset, 15); /* live from there: the repair's 16..19 */
	publish(pc, 0);
	expect_run(1, 0, 16, 20);
	/* The instance's own subscriber: E1:1..10, the gap to E2:0, E2:1..20. */
	for (int k = 0; k < 10; k++)
		assert_int_equal(subs[0].got[k], k + 1);
	assert_int_equal(subs[0].got[10], -0 - 1);
	expect_run(0, 11, 1, 20);
	assert_int_equal(metrics.rec.failed[RF_EPOCH], 0);
	/* A client still in the epoch this instance left: not recovered, at
	 * once, without asking the broker. */
	int tops = n_top_calls;
	resume(pc, 2, "E1", 10);
	assert_true(subs[2].finished);
	assert_false(subs[2].recovered);
	assert_string_equal(subs[2].epoch, "E2");
	assert_int_equal(subs[2].sub_offset, 20);
	assert_int_equal(n_top_calls, tops);
	pos_chan_free(pc);
}

/* An epoch neither this instance nor the broker has: not recovered, once
 * the broker answered; and while the broker cannot be reached, not
 * recovered after recovery_timeout_ms. */
static void test_resume_unknown_epoch_asks_broker(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(5);
	bk.top = 5;
	bk.answer = 1;
	resume(pc, 0, "E7", 3);
	assert_false(subs[0].finished);
	answer_all();
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_string_equal(subs[0].epoch, "E1");
	assert_int_equal(subs[0].sub_offset, 5);
	assert_int_equal(metrics.rec.failed[RF_EPOCH], 1);
	bk.refuse = FANOUT_EUNAVAIL;
	resume(pc, 1, "E7", 3);
	for (int i = 0; i < 24; i++) {
		clock_ms += 200;
		pos_tick();
	}
	assert_false(subs[1].finished);
	assert_true(n_top_calls > 5); /* asked again while it waits */
	clock_ms += 200;
	pos_tick();
	assert_true(subs[1].finished);
	assert_false(subs[1].recovered);
	assert_int_equal(metrics.rec.failed[RF_TIMEOUT], 1);
	assert_int_equal(subs[1].n_got, 0);
	/* a backend without top(): no verdict will come, not recovered now */
	bk.refuse = FANOUT_ENOTSUP;
	resume(pc, 2, "E7", 3);
	assert_true(subs[2].finished);
	assert_false(subs[2].recovered);
	assert_int_equal(metrics.rec.failed[RF_EPOCH], 2);
	pos_chan_free(pc);
}

/* A resume ahead of this instance is judged only by a probe sent after
 * it: the answer of one already in flight may predate the client's
 * offset, and "ahead of the broker" would then place the client behind
 * its own position (the messages in between twice). */
static void test_resume_ahead_not_judged_by_older_probe(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(10);
	bk.top = 10;
	bk.answer = 1;
	bk.top_at_call = 1;
	subs[0].live = 1;
	pos_suspect(pc, "backend reconnected"); /* a probe: the broker is at 10 */
	bk.top = 12;				/* 11 and 12 published, not here yet */
	resume(pc, 1, "E1", 12);
	while (n_pendq)
		answer_all();
	assert_int_equal(metrics.rec.failed[RF_AHEAD], 0);
	assert_true(subs[1].finished);
	assert_true(subs[1].recovered);
	assert_int_equal(subs[1].sub_offset, 12);
	assert_int_equal(subs[1].n_got, 0); /* it had 11 and 12 */
	live(pc, "E1", 11);		    /* late live copies: duplicates */
	live(pc, "E1", 12);
	publish(pc, 0);
	expect_run(1, 0, 13, 13);
	expect_run(0, 0, 11, 13);
	pos_chan_free(pc);
}

static void test_requests_capped_and_queued(void **state)
{
	(void)state;
	limits.max_requests = 2;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(100);
	bk.top = 100;
	bk.answer = 1;
	for (int i = 0; i < 5; i++)
		resume(pc, i, "E1", 14 - (uint64_t)i); /* each older: not shareable */
	assert_int_equal(n_history_calls, 2);
	assert_int_equal(metrics.rec.requests_inflight, 2);
	assert_int_equal(metrics.rec.requests_queued, 3);
	while (n_pendq)
		answer_all(); /* each answer sends the next */
	for (int i = 0; i < 5; i++) {
		assert_true(subs[i].recovered);
		expect_run(i, 0, 15 - (uint64_t)i, 100);
	}
	assert_int_equal(metrics.rec.requests_inflight, 0);
	assert_int_equal(metrics.rec.requests_queued, 0);
	pos_chan_free(pc);
}

static void test_backend_refuses(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(100);
	bk.top = 100;
	bk.refuse = FANOUT_EUNAVAIL;
	resume(pc, 0, "E1", 50); /* retried every 200 ms, until the timeout */
	assert_false(subs[0].finished);
	for (int i = 0; i < 30 && !subs[0].finished; i++) {
		clock_ms += 200;
		pos_tick();
	}
	assert_true(subs[0].finished);
	assert_false(subs[0].recovered);
	assert_true(n_history_calls >= 20);
	assert_int_equal(metrics.rec.failed[RF_ERROR], 1); /* unreachable to the end */
	assert_int_equal(metrics.rec.requests_inflight, 0);
	pos_chan_free(pc);
}

static void test_replay_byte_cap(void **state)
{
	(void)state;
	limits.max_replay_bytes = 200;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(0);
	for (int i = 0; i < 10; i++)
		publish(pc, 0);
	resume(pc, 0, "E1", 0); /* 10 frames of ~70 bytes */
	assert_false(subs[0].recovered);
	assert_int_equal(metrics.rec.failed[RF_TOO_BIG], 1);
	resume(pc, 1, "E1", 8);
	assert_true(subs[1].recovered);
	pos_chan_free(pc);
}

static void test_ring_byte_budget(void **state)
{
	(void)state;
	limits.ring_bytes = 300;
	pos_init(&limits, &hooks, "u1");
	struct pos_chan *pc = attach(0);
	for (int i = 0; i < 10; i++)
		publish(pc, 0);
	assert_true(metrics.rec.ring_bytes <= 300);
	assert_true(metrics.rec.ring_messages >= 3);
	pos_chan_free(pc);
	assert_int_equal(metrics.rec.ring_bytes, 0);
	assert_int_equal(metrics.rec.ring_messages, 0);
}

static void test_cancel_while_waiting(void **state)
{
	(void)state;
	struct pos_chan *pc = attach(100);
	bk.top = 100;
	bk.answer = 1;
	resume(pc, 0, "E1", 50);
	resume(pc, 1, "E1", 50);
	pos_sub_cancel(subs[0].ps);
	subs[0].ps = NULL;
	answer_all();
	assert_false(subs[0].finished);
	assert_true(subs[1].recovered);
	expect_run(1, 0, 51, 100);
	/* a channel that goes with a request in flight */
	resume(pc, 2, "E1", 60);
	pos_sub_cancel(subs[2].ps);
	subs[2].ps = NULL;
	pos_chan_free(pc);
	answer_all(); /* answers for a gone channel are ignored */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_live_in_order_and_duplicates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hole_repaired_before_later_messages, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hole_history_cannot_fill_is_one_gap, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hole_repair_times_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repair_retried_while_backend_unreachable, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_retried_while_backend_unreachable, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_hold_overflow_gives_up_repair, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hole_too_big_is_gap_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_probe_finds_lost_last_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_suspect_after_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quiet_probes_fill_free_slots_only, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_suspect_probe_retried_until_answered, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_epoch_change, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_epoch_change_seen_by_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_from_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_from_history_merges_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_storm_shares_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_stale_epoch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_older_than_history, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_too_far, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_ahead_catches_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_ahead_of_broker, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_ahead_times_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_buffer_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_catch_up_buffers_only_after_since, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_gap_meanwhile_is_not_recovered, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_epoch_change_meanwhile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_newer_epoch_than_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_unknown_epoch_asks_broker, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_ahead_not_judged_by_older_probe, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_requests_capped_and_queued, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backend_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_byte_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_byte_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_while_waiting, setup, teardown),
	};
	return cmocka_run_group_tests_name("recovery", tests, NULL, NULL);
}
