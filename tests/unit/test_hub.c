/*
 * test_hub.c — unit tests of the channel hub (core/hub.c) with the
 * transports and the plugin host replaced by recording stubs (a sink table
 * per fake transport, hub.h): the first local subscriber subscribes the
 * backend and the last one unsubscribes it, "subscribed" waits for the
 * backend's confirmation, one frame is shared by every subscriber of a
 * transport (refcounts) and built once per transport, payload caps, refused
 * subscriptions, publish completion, gap notices, pending subscriptions
 * (readiness), a token's claims on subscribe and publish and after a
 * refresh; and positions through the hub (v1.1): "subscribed" with the
 * position, offsets on frames, resumes served from the ring or from
 * history while live messages wait, hole repair, since on an unpositioned
 * channel, "published" with the position. (The recovery state machine's
 * own cases are in test_recovery.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "config.h"
#include "hub.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "plugin_host.h"
#include "protocol.h"
#include "recovery.h"

/* ---- stubs: what hub.c calls outside itself ---- */

struct metrics metrics;

#define MAX_EV 256
static char events[MAX_EV][320]; /* "sub ch", "unsub ch", "ack s1 subscribed id ch", ... */
static int n_events;
static struct msg *frames[MAX_EV]; /* frames queued to subscribers, with a ref */
static struct hub_subscriber *frame_dest[MAX_EV];
static void *frame_tag[MAX_EV];
static int n_framed; /* frame() calls */
static int n_frames;
static int backend_sub_rc;
static int backend_auto_confirm;

static void ev(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (n_events < MAX_EV)
		vsnprintf(events[n_events++], sizeof(events[0]), fmt, ap);
	va_end(ap);
}

static int has_event(const char *e)
{
	for (int i = 0; i < n_events; i++)
		if (!strcmp(events[i], e))
			return 1;
	return 0;
}

static int count_prefix(const char *p)
{
	int n = 0;
	for (int i = 0; i < n_events; i++)
		n += !strncmp(events[i], p, strlen(p));
	return n;
}

static struct fanout_backend backend;
static struct cfg_backend cfg_backend;
static struct config cfg;
static char *star[] = {"*", NULL};

/* A fake client: the handle embedded first, so the ops get it back. */
struct client {
	struct hub_subscriber h;
	unsigned serial;
};

static unsigned serial_of(struct hub_subscriber *h)
{
	return ((struct client *)h)->serial;
}

/* The native transport's frame() (as session.c's). */
static struct msg *t_frame(const struct hub_event *e)
{
	n_framed++;
	return msg_ref(e->frame);
}

/* Another transport's: rewraps the payload of the native frame. */
static struct msg *t2_frame(const struct hub_event *e)
{
	size_t off, len;
	uint64_t offset;
	char tmp[256];
	n_framed++;
	if (e->kind == HUB_EV_GAP)
		return msg_new("gap", 3);
	if (proto_message_data(msg_payload(e->frame), e->frame->len, &off, &len, &offset))
		return NULL;
	int n = snprintf(tmp, sizeof(tmp), "[%.*s]", (int)len, msg_payload(e->frame) + off);
	return msg_new(tmp, (size_t)n);
}

static void t_deliver(struct hub_subscriber *h, void *tag, struct msg *m)
{
	if (n_frames < MAX_EV) {
		frames[n_frames] = msg_ref(m);
		frame_tag[n_frames] = tag;
		frame_dest[n_frames++] = h;
	}
}

static void t_ack(struct hub_subscriber *h, const char *type, const char *id, const char *channel)
{
	ev("ack %u %s %s %s", serial_of(h), type, id && *id ? id : "-", channel);
}

static void t_error(struct hub_subscriber *h, const char *id, const char *code, const char *message)
{
	ev("err %u %s %s", serial_of(h), id && *id ? id : "-", code);
}

static const struct hub_sink_ops ops = {"t", t_frame, t_deliver, t_ack, t_error};
/* A second transport: same frames, its own table. */
static const struct hub_sink_ops ops2 = {"t2", t2_frame, t_deliver, t_ack, t_error};

/* A v1.1 transport: the native frames (with positions), and subscribed /
 * published with the position. The event's epoch/offset agree with the
 * frame's. */
static struct msg *p_frame(const struct hub_event *e)
{
	size_t off, len;
	uint64_t offset;
	n_framed++;
	if (e->kind == HUB_EV_MESSAGE && e->epoch) {
		assert_int_equal(
		    proto_message_data(msg_payload(e->frame), e->frame->len, &off, &len, &offset),
		    0);
		assert_int_equal(offset, e->offset);
	}
	return msg_ref(e->frame);
}

static void p_subscribed(struct hub_subscriber *h, const char *id, const char *channel,
			 const char *epoch, uint64_t offset, int recovered)
{
	ev("subd %u %s %s %s %llu %d", serial_of(h), id && *id ? id : "-", channel,
	   epoch ? epoch : "-", (unsigned long long)offset, recovered);
}

static void p_published(struct hub_subscriber *h, const char *id, const char *channel,
			const char *epoch, uint64_t offset)
{
	ev("pubd %u %s %s %s %llu", serial_of(h), id && *id ? id : "-", channel,
	   epoch ? epoch : "-", (unsigned long long)offset);
}

static const struct hub_sink_ops pops = {"p",	  p_frame,	t_deliver,  t_ack,
					 t_error, p_subscribed, p_published};

/* The fake broker's positions: one epoch, contiguous offsets, history of
 * every channel's messages {"n":OFFSET} from `oldest` on. */
static int positioned;	       /* subscribe answers with subscribed_at */
static uint64_t bk_top;	       /* offsets published so far (one channel in the tests) */
static uint64_t bk_oldest = 1; /* first offset history still has */
static int history_async;      /* queue history answers for the test */
static struct {
	uint64_t token, after, max;
} hq[16];
static int n_hq;

static void answer_history(uint64_t token, uint64_t after, uint64_t max)
{
	if (after < bk_top && after + 1 < bk_oldest) {
		hub_history_done(&backend, token, FANOUT_ETRUNCATED, "E1", bk_top);
		return;
	}
	for (uint64_t o = after + 1; o <= bk_top && max; o++, max--) {
		char d[32];
		int n = snprintf(d, sizeof(d), "{\"n\":%llu}", (unsigned long long)o);
		hub_history_item(&backend, token, o, d, (size_t)n);
	}
	hub_history_done(&backend, token, FANOUT_OK, "E1", bk_top);
}

int backend_top(struct fanout_backend *b, const char *channel, uint64_t token)
{
	ev("top %s", channel);
	hub_top_done(b, token, FANOUT_OK, "E1", bk_top);
	return 0;
}

int backend_history(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t after, uint64_t max, uint64_t token)
{
	ev("history %s %s %llu %llu", channel, epoch, (unsigned long long)after,
	   (unsigned long long)max);
	if (history_async) {
		hq[n_hq].token = token;
		hq[n_hq].after = after;
		hq[n_hq++].max = max;
	} else {
		answer_history(token, after, max);
	}
	return 0;
}

/* Publish offset bk_top + 1 on the broker; deliver it live unless lost. */
static void bk_publish(const char *channel, int lost)
{
	char d[32];
	int n = snprintf(d, sizeof(d), "{\"n\":%llu}", (unsigned long long)++bk_top);
	if (!lost)
		hub_deliver_at(&backend, channel, "E1", bk_top, d, (size_t)n);
}

/* The offsets of the message frames subscriber h got, in order ("g" for
 * a gap), as a string like "1 2 3". */
static const char *offsets_of(struct hub_subscriber *h)
{
	static char out[1024];
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n_frames && o < sizeof(out) - 32; i++) {
		if (frame_dest[i] != h)
			continue;
		const char *p = msg_payload(frames[i]);
		const char *off = strstr(p, "\"offset\":");
		if (strstr(p, "\"type\":\"gap\""))
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%sg%lld", o ? " " : "",
					      off ? atoll(off + 9) : -1);
		else
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%lld", o ? " " : "",
					      off ? atoll(off + 9) : -1);
	}
	return out;
}

int backend_subscribe(struct fanout_backend *b, const char *channel)
{
	ev("sub %s", channel);
	if (backend_auto_confirm && positioned)
		hub_subscribed_at(b, channel, 1, "E1", bk_top, FANOUT_POS_CONTIGUOUS);
	else if (backend_auto_confirm)
		hub_subscribed(b, channel, 1);
	return backend_sub_rc;
}

int backend_unsubscribe(struct fanout_backend *b, const char *channel)
{
	ev("unsub %s", channel);
	return 0;
}

int backend_can_publish(const struct fanout_backend *b)
{
	return 1;
}

int backend_publish(struct fanout_backend *b, const char *channel, const void *data, size_t len,
		    uint64_t token)
{
	ev("pub %s %.*s %llu", channel, (int)len, (const char *)data, (unsigned long long)token);
	return 0;
}

struct fanout_backend *plugin_host_route(const char *channel)
{
	return strncmp(channel, "none.", 5) ? &backend : NULL;
}

size_t plugin_host_count(void)
{
	return 1;
}

struct fanout_backend *plugin_host_get(size_t i)
{
	return &backend;
}

void plugin_host_set_events(const struct plugin_host_events *e)
{
	assert_ptr_equal(e->deliver, hub_deliver);
	assert_ptr_equal(e->subscribed, hub_subscribed);
	assert_ptr_equal(e->published, hub_published);
	assert_ptr_equal(e->gap, hub_gap);
	assert_ptr_equal(e->subscribed_at, hub_subscribed_at);
	assert_ptr_equal(e->deliver_at, hub_deliver_at);
	assert_ptr_equal(e->published_at, hub_published_at);
	assert_ptr_equal(e->top_done, hub_top_done);
	assert_ptr_equal(e->history_item, hub_history_item);
	assert_ptr_equal(e->history_done, hub_history_done);
}

uint64_t loop_now_ms(void)
{
	return 0;
}

/* The hub's recovery timer: created, armed and removed; never fires here. */
static int timers_alive;
struct fanout_timer *loop_timer_add(fanout_timer_cb cb, void *arg)
{
	(void)cb, (void)arg;
	timers_alive++;
	return (struct fanout_timer *)&timers_alive;
}

void loop_timer_arm(struct fanout_timer *t, uint64_t ms)
{
	(void)t, (void)ms;
}

void loop_timer_remove(struct fanout_timer *t)
{
	if (t)
		timers_alive--;
}

/* ---- fixtures ---- */

static struct client cl[4];
static struct hub_subscriber *sess[4];

static int setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.instance = "u1";
	cfg.max_subscriptions = 3;
	cfg.max_channels = 100;
	cfg.max_payload_bytes = 64;
	cfg.client_queue_bytes = 1 << 20;
	cfg.allow_publish = 1;
	cfg.channels = star;
	cfg.n_channels = 1;
	cfg.recovery_max_messages = 1000;
	cfg.recovery_buffer_messages = 1000;
	cfg.recovery_ring_messages = 256;
	cfg.recovery_ring_bytes = 1 << 20;
	cfg.recovery_max_requests = 64;
	cfg.recovery_timeout_ms = 5000;
	cfg.position_probe_s = 0;
	positioned = 0;
	bk_top = 0;
	bk_oldest = 1;
	history_async = 0;
	n_hq = 0;
	memset(&cfg_backend, 0, sizeof(cfg_backend));
	cfg_backend.name = "b";
	memset(&backend, 0, sizeof(backend));
	backend.cfg = &cfg_backend;
	backend.up = FANOUT_UP;
	memset(cl, 0, sizeof(cl));
	for (int i = 0; i < 4; i++) {
		cl[i].h.ops = &ops;
		cl[i].serial = (unsigned)i + 1;
		sess[i] = &cl[i].h;
	}
	n_events = 0;
	n_frames = 0;
	n_framed = 0;
	backend_sub_rc = 0;
	backend_auto_confirm = 0;
	memset(&metrics, 0, sizeof(metrics));
	return hub_init(&cfg);
}

static int teardown(void **state)
{
	for (int i = 0; i < 4; i++)
		hub_subscriber_gone(sess[i]);
	for (int i = 0; i < n_frames; i++)
		msg_unref(frames[i]);
	hub_free();
	assert_int_equal(msg_live_count, 0); /* every frame freed */
	assert_int_equal(timers_alive, 0);
	return 0;
}

/* ---- tests ---- */

static void first_and_last_subscriber_drive_the_backend(void **state)
{
	hub_subscribe(sess[0], "news", "1", NULL);
	hub_subscribe(sess[1], "news", "2", NULL);
	assert_int_equal(count_prefix("sub news"), 1); /* once, not per client */
	assert_int_equal(count_prefix("ack"), 0);      /* nobody confirmed yet */
	hub_subscribed(&backend, "news", 1);
	assert_true(has_event("ack 1 subscribed 1 news"));
	assert_true(has_event("ack 2 subscribed 2 news"));
	hub_subscribe(sess[2], "news", "3", NULL); /* already confirmed: at once */
	assert_true(has_event("ack 3 subscribed 3 news"));
	assert_int_equal(metrics.subscriptions, 3);
	assert_int_equal(metrics.channels, 1);

	hub_unsubscribe(sess[0], "news", "u1");
	hub_unsubscribe(sess[1], "news", "u2");
	assert_int_equal(count_prefix("unsub"), 0);
	hub_subscriber_gone(sess[2]); /* the last one leaves by disconnecting */
	assert_int_equal(count_prefix("unsub news"), 1);
	assert_int_equal(metrics.channels, 0);
	assert_int_equal(metrics.subscriptions, 0);
}

static void one_frame_shared_by_all_subscribers(void **state)
{
	backend_auto_confirm = 1;
	for (int i = 0; i < 3; i++)
		hub_subscribe(sess[i], "c", NULL, NULL);
	hub_deliver(&backend, "c", "{\"a\":1}", 7);
	assert_int_equal(n_frames, 3);
	assert_ptr_equal(frames[0], frames[1]); /* the same bytes, not copies */
	assert_ptr_equal(frames[1], frames[2]);
	assert_int_equal(frames[0]->refs, 3); /* hub dropped its own reference */
	const char *want = "{\"type\":\"message\",\"channel\":\"c\",\"instance\":\"u1\","
			   "\"data\":{\"a\":1}}";
	assert_int_equal(frames[0]->len, strlen(want));
	assert_memory_equal(msg_payload(frames[0]), want, strlen(want));
	assert_int_equal(metrics.deliveries, 3);
	assert_int_equal(msg_live_count, 1);
}

static void payload_rules(void **state)
{
	backend_auto_confirm = 1;
	hub_subscribe(sess[0], "c", NULL, NULL);
	char big[65];
	memset(big, 'x', sizeof(big));
	hub_deliver(&backend, "c", big, sizeof(big)); /* over max_payload_bytes */
	assert_int_equal(n_frames, 0);
	assert_int_equal(metrics.messages_too_big, 1);
	hub_deliver(&backend, "nobody", "1", 1);
	assert_int_equal(metrics.messages_no_subscriber, 1);
	hub_deliver(&backend, "c", "not json", 8); /* embedded as a string */
	assert_int_equal(n_frames, 1);
	assert_non_null(strstr(msg_payload(frames[0]), "\"data\":\"not json\"}"));
	hub_deliver(&backend, "c", "\xff\xfe", 2); /* invalid UTF-8: replaced, counted */
	assert_int_equal(n_frames, 2);
	assert_non_null(strstr(msg_payload(frames[1]), "\"data\":\"\xef\xbf\xbd"));
	assert_int_equal(metrics.messages_utf8_replaced, 1);
}

static void limits_and_refusals(void **state)
{
	backend_auto_confirm = 1;
	hub_subscribe(sess[0], "a", "1", NULL);
	hub_subscribe(sess[0], "b", "2", NULL);
	hub_subscribe(sess[0], "c", "3", NULL);
	hub_subscribe(sess[0], "d", "4", NULL);
	assert_true(has_event("err 1 4 too_many_subscriptions"));
	hub_subscribe(sess[1], "none.x", "5", NULL);
	assert_true(has_event("err 2 5 no_backend"));
	backend_auto_confirm = 0;
	hub_subscribe(sess[1], "e", "6", NULL);
	hub_subscribe(sess[2], "e", "7", NULL);
	hub_subscribed(&backend, "e", 0); /* the backend refuses */
	assert_true(has_event("err 2 6 backend_unavailable"));
	assert_true(has_event("err 3 7 backend_unavailable"));
	assert_int_equal(metrics.channels, 3);
	assert_int_equal(backend.pending_subs, 0);
	/* a subscribe() that fails at once answers at once */
	backend_sub_rc = FANOUT_EUNAVAIL;
	hub_subscribe(sess[3], "f", "8", NULL);
	assert_true(has_event("err 4 8 backend_unavailable"));
	assert_int_equal(metrics.channels, 3);
}

/* Readiness (plugin_host_ready) reads pending_subs, which the hub keeps:
 * one per channel awaiting the backend, not one per client. */
static void pending_subscriptions_counted_per_channel(void **state)
{
	hub_subscribe(sess[0], "p", "1", NULL);
	hub_subscribe(sess[1], "p", "2", NULL);
	assert_int_equal(backend.pending_subs, 1);
	hub_subscribed(&backend, "p", 1);
	assert_int_equal(backend.pending_subs, 0);
	hub_subscribe(sess[0], "q", "3", NULL);
	assert_int_equal(backend.pending_subs, 1);
	hub_unsubscribe(sess[0], "q", "4"); /* left before the confirmation */
	assert_true(has_event("err 1 3 backend_unavailable"));
	assert_int_equal(backend.pending_subs, 0);
}

/* Two transports on one channel: one frame() per transport per event, a
 * reference per subscriber, each subscription's tag handed back. */
static void framed_once_per_transport(void **state)
{
	int tag_a, tag_b;
	backend_auto_confirm = 1;
	cl[1].h.ops = &ops2;
	cl[2].h.ops = &ops2;
	hub_subscribe(sess[0], "c", "1", &tag_a);
	hub_subscribe(sess[1], "c", "2", &tag_b);
	hub_subscribe(sess[2], "c", "3", NULL);
	hub_subscribe(sess[1], "c", "4", NULL); /* again: keeps its first tag */
	assert_true(has_event("ack 2 subscribed 4 c"));
	hub_deliver(&backend, "c", "1", 1);
	assert_int_equal(n_framed, 2);
	assert_int_equal(n_frames, 3);
	assert_ptr_not_equal(frames[0], frames[1]); /* ops, then ops2 */
	assert_ptr_equal(frames[1], frames[2]);
	assert_int_equal(frames[0]->refs, 1); /* the hub's native frame, its ref dropped */
	assert_int_equal(frames[1]->refs, 2);
	assert_int_equal(msg_live_count, 2);
	assert_memory_equal(msg_payload(frames[1]), "[1]", 3);
	assert_ptr_equal(frame_tag[0], &tag_a);
	assert_ptr_equal(frame_tag[1], &tag_b);
	assert_null(frame_tag[2]);
	hub_gap(&backend, "c", "reset");
	assert_int_equal(n_framed, 4);
	assert_int_equal(metrics.gaps, 3);
}

static void publish_completes_by_token(void **state)
{
	hub_publish(sess[0], "c", "{\"x\":1}", 7, "p1");
	hub_publish(sess[1], "c", "2", 1, "p2");
	assert_true(has_event("pub c {\"x\":1} 1"));
	assert_true(has_event("pub c 2 2"));
	hub_published(&backend, 2, 0);
	assert_true(has_event("err 2 p2 backend_unavailable"));
	hub_subscriber_gone(sess[0]); /* the answer to a departed client is dropped */
	hub_published(&backend, 1, 1);
	assert_int_equal(count_prefix("ack 1 published"), 0);
	hub_published(&backend, 99, 1); /* unknown token: ignored */
	assert_int_equal(metrics.publish_ok, 1);
	assert_int_equal(metrics.publish_failed, 1);
	cfg.allow_publish = 0;
	hub_publish(sess[2], "c", "1", 1, "p3");
	assert_true(has_event("err 3 p3 forbidden"));
}

static void gap_reaches_every_subscriber_of_the_backend(void **state)
{
	backend_auto_confirm = 1;
	hub_subscribe(sess[0], "a", NULL, NULL);
	hub_subscribe(sess[1], "b", NULL, NULL);
	hub_gap(&backend, NULL, "backend reconnected");
	assert_int_equal(n_frames, 2);
	assert_non_null(strstr(msg_payload(frames[0]), "\"type\":\"gap\""));
	assert_non_null(strstr(msg_payload(frames[0]), "backend reconnected"));
	hub_gap(&backend, "a", "file truncated");
	assert_int_equal(n_frames, 3);
	assert_ptr_equal(frame_dest[2], sess[0]);
}

/* A subscriber with token claims: only its globs, for subscribe and publish;
 * narrower claims after a refresh drop what they no longer allow. */
static void token_claims_enforced(void **state)
{
	char *subs[] = {"news.*", "user/alice"}, *pubs[] = {"chat.*"};
	struct auth_claims c = {
	    .exp = 1, .channels = subs, .n_channels = 2, .publish = pubs, .n_publish = 1};
	backend_auto_confirm = 1;
	sess[0]->claims = &c;
	hub_subscribe(sess[0], "news.1", "1", NULL);
	hub_subscribe(sess[0], "user/alice", "2", NULL);
	hub_subscribe(sess[0], "user/bob", "3", NULL);
	assert_true(has_event("ack 1 subscribed 1 news.1"));
	assert_true(has_event("ack 1 subscribed 2 user/alice"));
	assert_true(has_event("err 1 3 forbidden"));
	assert_int_equal(count_prefix("sub user/bob"), 0); /* the backend never heard of it */
	hub_publish(sess[0], "chat.x", "1", 1, "4");
	hub_publish(sess[0], "news.1", "1", 1, "5");
	assert_int_equal(count_prefix("pub chat.x"), 1);
	assert_true(has_event("err 1 5 forbidden"));
	assert_int_equal(count_prefix("pub news.1"), 0);
	/* no claims (tokens off): anything the server allows */
	hub_subscribe(sess[1], "user/bob", "6", NULL);
	assert_true(has_event("ack 2 subscribed 6 user/bob"));

	/* refreshed: news only; user/alice goes, with an error naming it */
	char *narrow[] = {"news.*"};
	struct auth_claims c2 = {.exp = 2, .channels = narrow, .n_channels = 1};
	sess[0]->claims = &c2;
	n_events = 0;
	hub_claims_changed(sess[0]);
	assert_int_equal(count_prefix("err 1 - forbidden"), 1);
	assert_int_equal(count_prefix("unsub user/alice"), 1);
	assert_int_equal(sess[0]->n_subs, 1);
	hub_publish(sess[0], "chat.x", "1", 1, "7"); /* no publish claim any more */
	assert_true(has_event("err 1 7 forbidden"));
	sess[0]->claims = NULL;
}

/* max_channels_per_ip: new channels count against the address that brings
 * them in; existing ones are free; the count follows the channel to the
 * next subscriber when the first one leaves. */
static void channels_per_ip(void **state)
{
	struct netaddr a, b;
	assert_int_equal(netaddr_parse("10.0.0.1", 8, &a), 0);
	assert_int_equal(netaddr_parse("10.0.0.2", 8, &b), 0);
	cfg.max_channels_per_ip = 2;
	cfg.max_subscriptions = 10;
	backend_auto_confirm = 1;
	sess[0]->addr = a, sess[0]->has_addr = 1;
	sess[1]->addr = a, sess[1]->has_addr = 1; /* same address, another connection */
	sess[2]->addr = b, sess[2]->has_addr = 1;
	hub_subscribe(sess[0], "c1", "1", NULL);
	hub_subscribe(sess[1], "c2", "2", NULL);
	hub_subscribe(sess[1], "c3", "3", NULL); /* a's third new channel */
	assert_true(has_event("err 2 3 too_many_subscriptions"));
	assert_int_equal(metrics.channel_ip_limit_hits, 1);
	hub_subscribe(sess[1], "c1", "4", NULL); /* exists: free */
	assert_true(has_event("ack 2 subscribed 4 c1"));
	hub_subscribe(sess[2], "c3", "5", NULL); /* b has its own count */
	hub_subscribe(sess[2], "c1", "6", NULL);
	assert_true(has_event("ack 3 subscribed 5 c3"));
	/* sess[0] (a) leaves c1: c1 now counts against the next subscriber */
	hub_unsubscribe(sess[0], "c1", "7");
	hub_unsubscribe(sess[1], "c1", "8"); /* a's c1 subscriptions gone */
	/* c1 is b's now (b: c3, c1 = 2): b is full, a has room for one more */
	hub_subscribe(sess[2], "c4", "9", NULL);
	assert_true(has_event("err 3 9 too_many_subscriptions"));
	hub_subscribe(sess[0], "c4", "10", NULL);
	assert_true(has_event("ack 1 subscribed 10 c4"));
	/* the channel goes: the count goes */
	hub_unsubscribe(sess[2], "c3", "11");
	hub_subscribe(sess[2], "c5", "12", NULL);
	assert_true(has_event("ack 3 subscribed 12 c5"));
	cfg.max_channels_per_ip = 0;
}

/* max_channels_per_ip changed by SIGHUP (the running config changed in
 * place): channels brought in while it was off are not counted, not even
 * when their first subscriber leaves; the ones after it are; off again,
 * nothing is refused. */
static void channels_per_ip_reloaded(void **state)
{
	struct netaddr a;
	assert_int_equal(netaddr_parse("10.0.0.3", 8, &a), 0);
	cfg.max_channels_per_ip = 0;
	cfg.max_subscriptions = 10;
	backend_auto_confirm = 1;
	sess[0]->addr = a, sess[0]->has_addr = 1;
	sess[1]->addr = a, sess[1]->has_addr = 1;
	hub_subscribe(sess[0], "l1", "1", NULL);
	hub_subscribe(sess[1], "l1", "2", NULL);
	hub_unsubscribe(sess[0], "l1", "3"); /* l1 passes to sess[1], uncounted */
	cfg.max_channels_per_ip = 1;	     /* reloaded: on */
	hub_subscribe(sess[0], "l2", "4", NULL);
	assert_true(has_event("ack 1 subscribed 4 l2"));
	hub_subscribe(sess[1], "l3", "5", NULL);
	assert_true(has_event("err 2 5 too_many_subscriptions"));
	cfg.max_channels_per_ip = 0; /* reloaded: off */
	hub_subscribe(sess[1], "l3", "6", NULL);
	assert_true(has_event("ack 2 subscribed 6 l3"));
}

static void many_channels_and_churn(void **state)
{
	char name[32];
	backend_auto_confirm = 1;
	cfg.max_subscriptions = 100000;
	cfg.max_channels = 5000;
	for (int i = 0; i < 5000; i++) { /* forces the table to grow */
		snprintf(name, sizeof(name), "ch.%d", i);
		hub_subscribe(sess[i % 4], name, NULL, NULL);
	}
	assert_int_equal(metrics.channels, 5000);
	n_events = 0;
	hub_subscribe(sess[0], "one.more", "x", NULL);
	assert_true(has_event("err 1 x backend_unavailable"));
	for (int i = 0; i < 5000; i += 2) {
		snprintf(name, sizeof(name), "ch.%d", i);
		hub_unsubscribe(sess[i % 4], name, NULL);
	}
	assert_int_equal(metrics.channels, 2500);
	hub_deliver(&backend, "ch.1", "1", 1);
	assert_int_equal(n_frames, 1);
	assert_ptr_equal(frame_dest[0], sess[1]);
}

/* ---- positions (v1.1) ---- */

static void positioned_subscribe_and_offsets(void **state)
{
	backend_auto_confirm = positioned = 1;
	cl[0].h.ops = cl[1].h.ops = &pops;
	bk_top = 7;
	hub_subscribe(sess[0], "c", "1", NULL);
	assert_true(has_event("subd 1 1 c E1 7 -1"));
	bk_publish("c", 0);
	bk_publish("c", 0);
	assert_string_equal(offsets_of(sess[0]), "8 9");
	assert_non_null(strstr(msg_payload(frames[0]), "\"instance\":\"u1\",\"offset\":8,"));
	/* a v1 transport on the same channel: ack without position, frames
	 * as its frame() builds them */
	hub_subscribe(sess[2], "c", "2", NULL);
	assert_true(has_event("ack 3 subscribed 2 c"));
	/* subscribing again while live: no replay, and no recovery with it */
	hub_subscribe_at(sess[0], "c", "3", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 1});
	assert_true(has_event("subd 1 3 c E1 9 0"));
	assert_string_equal(offsets_of(sess[0]), "8 9");
}

static void resume_served_from_the_ring(void **state)
{
	backend_auto_confirm = positioned = 1;
	cl[0].h.ops = cl[1].h.ops = &pops;
	hub_subscribe(sess[0], "c", NULL, NULL);
	for (int i = 0; i < 5; i++)
		bk_publish("c", 0);
	n_events = 0;
	hub_subscribe_at(sess[1], "c", "r", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 2});
	assert_true(has_event("subd 2 r c E1 5 1"));
	assert_int_equal(count_prefix("history"), 0); /* from memory */
	bk_publish("c", 0);
	assert_string_equal(offsets_of(sess[1]), "3 4 5 6");
	assert_string_equal(offsets_of(sess[0]), "1 2 3 4 5 6");
	/* one frame per message, shared by the live and the replayed copies */
	assert_int_equal(n_framed, 6);
	assert_int_equal(metrics.rec.recovered, 1);
}

static void resume_from_history_while_live_messages_wait(void **state)
{
	backend_auto_confirm = positioned = 1;
	cfg.recovery_ring_messages = 0; /* everything comes from history */
	hub_free();
	hub_init(&cfg);
	cl[0].h.ops = cl[1].h.ops = &pops;
	hub_subscribe(sess[0], "c", NULL, NULL);
	for (int i = 0; i < 5; i++)
		bk_publish("c", 0);
	history_async = 1;
	n_events = 0;
	hub_subscribe_at(sess[1], "c", "r", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 1});
	assert_true(has_event("history c E1 1 4"));
	assert_int_equal(count_prefix("subd"), 0); /* not before the replay is ready */
	bk_publish("c", 0);			   /* 6: live meanwhile */
	assert_string_equal(offsets_of(sess[1]), "");
	answer_history(hq[0].token, hq[0].after, hq[0].max);
	assert_true(has_event("subd 2 r c E1 6 1"));
	assert_string_equal(offsets_of(sess[1]), "2 3 4 5 6");
	bk_publish("c", 0);
	assert_string_equal(offsets_of(sess[1]), "2 3 4 5 6 7");
	assert_string_equal(offsets_of(sess[0]), "1 2 3 4 5 6 7");
	assert_int_equal(metrics.subscriptions, 2);
}

static void resume_not_recovered_and_leaving_while_waiting(void **state)
{
	backend_auto_confirm = positioned = 1;
	cl[0].h.ops = cl[1].h.ops = cl[2].h.ops = &pops;
	bk_top = 100;
	bk_oldest = 50;
	hub_subscribe_at(sess[0], "c", "a", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 10});
	assert_true(has_event("subd 1 a c E1 100 0")); /* older than history */
	hub_subscribe_at(sess[1], "c", "b", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E0", .offset = 99});
	assert_true(has_event("subd 2 b c E1 100 0")); /* another epoch */
	/* leaving while the history request is out */
	history_async = 1;
	hub_subscribe_at(sess[2], "c", "w", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 90});
	assert_int_equal(n_hq, 1);
	hub_unsubscribe(sess[2], "c", "u");
	assert_true(has_event("err 3 w backend_unavailable"));
	answer_history(hq[0].token, hq[0].after, hq[0].max); /* lands nowhere */
	assert_int_equal(count_prefix("subd 3"), 0);
	assert_int_equal(metrics.rec.waiting, 0);
}

static void since_on_an_unpositioned_channel(void **state)
{
	backend_auto_confirm = 1;
	cl[0].h.ops = &pops;
	hub_subscribe_at(sess[0], "c", "s", NULL,
			 &(struct proto_since){.set = 1, .epoch = "E1", .offset = 3});
	assert_true(has_event("subd 1 s c - 0 0"));
	hub_deliver(&backend, "c", "1", 1);
	assert_string_equal(offsets_of(sess[0]), "-1"); /* no offset field */
	assert_int_equal(metrics.rec.failed[RF_UNPOSITIONED], 1);
}

static void hole_repaired_through_the_hub(void **state)
{
	backend_auto_confirm = positioned = 1;
	cl[0].h.ops = &pops;
	hub_subscribe(sess[0], "c", NULL, NULL);
	bk_publish("c", 0);
	bk_publish("c", 1); /* lost on the way */
	bk_publish("c", 0);
	assert_string_equal(offsets_of(sess[0]), "1 2 3");
	bk_oldest = 6;
	bk_publish("c", 1);
	bk_publish("c", 1);
	bk_publish("c", 0); /* 6: 4 and 5 are gone from history too */
	assert_string_equal(offsets_of(sess[0]), "1 2 3 g5 6");
	/* a reconnect: the top tells what was missed */
	bk_publish("c", 1);
	hub_gap(&backend, NULL, "backend reconnected");
	assert_true(has_event("top c"));
	assert_string_equal(offsets_of(sess[0]), "1 2 3 g5 6 7");
}

static void published_carries_the_position(void **state)
{
	unsigned long long t1, t2;
	cl[0].h.ops = &pops;
	hub_publish(sess[0], "c", "1", 1, "p1");
	assert_int_equal(sscanf(events[n_events - 1], "pub c 1 %llu", &t1), 1);
	hub_published_at(&backend, t1, 1, "E1", 42);
	assert_true(has_event("pubd 1 p1 c E1 42"));
	hub_publish(sess[0], "c", "1", 1, "p2");
	assert_int_equal(sscanf(events[n_events - 1], "pub c 1 %llu", &t2), 1);
	hub_published(&backend, t2, 1);
	assert_true(has_event("pubd 1 p2 c - 0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(first_and_last_subscriber_drive_the_backend, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(one_frame_shared_by_all_subscribers, setup, teardown),
	    cmocka_unit_test_setup_teardown(payload_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(limits_and_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(pending_subscriptions_counted_per_channel, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(framed_once_per_transport, setup, teardown),
	    cmocka_unit_test_setup_teardown(publish_completes_by_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(gap_reaches_every_subscriber_of_the_backend, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(many_channels_and_churn, setup, teardown),
	    cmocka_unit_test_setup_teardown(token_claims_enforced, setup, teardown),
	    cmocka_unit_test_setup_teardown(channels_per_ip, setup, teardown),
	    cmocka_unit_test_setup_teardown(channels_per_ip_reloaded, setup, teardown),
	    cmocka_unit_test_setup_teardown(positioned_subscribe_and_offsets, setup, teardown),
	    cmocka_unit_test_setup_teardown(resume_served_from_the_ring, setup, teardown),
	    cmocka_unit_test_setup_teardown(resume_from_history_while_live_messages_wait, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(resume_not_recovered_and_leaving_while_waiting, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(since_on_an_unpositioned_channel, setup, teardown),
	    cmocka_unit_test_setup_teardown(hole_repaired_through_the_hub, setup, teardown),
	    cmocka_unit_test_setup_teardown(published_carries_the_position, setup, teardown),
	};
	return cmocka_run_group_tests_name("hub", tests, NULL, NULL);
}
