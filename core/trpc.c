/*
 * trpc.c — owns the tRPC transport (trpc.h): the per-connection state of
 * a WebSocket client at trpc_path (connectionParams, its subscriptions),
 * request handling (subscription, subscription.stop, batches, PING) and the
 * hub sink table of tRPC subscriptions.
 *
 * Each tRPC subscription is its own hub subscriber (struct trpc_sub embeds
 * the handle), so two subscriptions of one connection to the same channel
 * — two components using the same procedure — each get their own request
 * id, resume point and stop. A message's tRPC frame differs per
 * subscription only in the request id: the hub's frame() op builds the
 * shared body ("result":{…}} with the payload) once per message for every
 * tRPC subscriber, and each subscription queues its own small head
 * ({"id":N,), built once when it subscribed, in front of it: a pointer
 * pair per subscriber (outq.h), never a re-encode.
 *
 * Data events are always tracked ({id, data}): id is the message's
 * position "EPOCH:OFFSET" (or "~:N" without one), so the lastEventId the
 * client resubscribes with after a reconnect resumes it on any instance
 * (hub_subscribe_at()); a resume the hub cannot serve ends the subscription
 * with PRECONDITION_FAILED.
 *
 * A subscription the hub refuses, or one ended by a gap, is marked dead
 * inside the hub's callback (the hub may not be re-entered there) and freed
 * from a zero-delay timer or by the next request. Loop thread only.
 * Allocates per connection one struct trpc_conn and per subscription a
 * struct trpc_sub with its head; all freed when the subscription stops or
 * the connection closes.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "trpc"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "guard.h"
#include "protocol.h"
#include "session.h"
#include "trpc.h"
#include "trpc_proto.h"

struct trpc_conn;

struct trpc_sub {
	struct hub_subscriber h; /* first: the hub's handle */
	struct trpc_conn *c;
	struct trpc_sub *next; /* the connection's subscriptions */
	struct msg *head;      /* {"id":ID, */
	char id[PROTO_ID_MAX + 1];
	char path[TRPC_PATH_MAX + 1];
	char channel[PROTO_CHANNEL_MAX + 1];
	int jsonrpc;
	int resuming; /* subscribed with a lastEventId */
	int started;  /* "started" sent */
	int dead;     /* refused or ended: free at the next reap */
};

struct trpc_conn {
	struct session *s;
	struct trpc_sub *subs;
	size_t n_subs;	  /* live ones (max_subscriptions) */
	int await_params; /* ?connectionParams=1: the first message is them */
	/* on the list of connections with dead subscriptions to free */
	struct trpc_conn *reap_prev, *reap_next;
	int on_reap;
};

static const struct config *cfg;
static uint64_t unpositioned_seq; /* ids "~:N" of events without a position */
static struct fanout_timer *reap_timer;
static struct trpc_conn *reap_head;

/* ---- sending ---- */

static struct msg *finish(struct buf *b)
{
	struct msg *m = msg_from_buf(b);
	if (!m)
		buf_free(b);
	return m;
}

_Static_assert(TRPC__CODES <= sizeof(metrics.trpc_errors) / sizeof(metrics.trpc_errors[0]),
	       "metrics.trpc_errors covers every tRPC code");
_Static_assert(CLIENT__KINDS <=
		   sizeof(metrics.transport_clients) / sizeof(metrics.transport_clients[0]),
	       "metrics.transport_clients covers every transport");

/* One whole frame: head (id) + error body. */
static void send_error(struct trpc_conn *c, const char *id, int id_null, int jsonrpc,
		       enum trpc_code code, const char *message, const char *path)
{
	struct buf b;
	metrics.trpc_errors[code]++;
	buf_init(&b, MSG_PRE);
	trpc_head(&b, id, id_null, jsonrpc);
	trpc_error_body(&b, code, message, path);
	struct msg *m = finish(&b);
	if (m) {
		session_enqueue(c->s, m);
		msg_unref(m);
	}
}

static void send_body(struct trpc_sub *t, int (*body)(struct buf *))
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	body(&b);
	struct msg *m = finish(&b);
	if (m) {
		session_enqueue_pair(t->c->s, t->head, m);
		msg_unref(m);
	}
}

static void send_text(struct trpc_conn *c, const char *text)
{
	struct msg *m = msg_new(text, strlen(text));
	if (m) {
		session_enqueue(c->s, m);
		msg_unref(m);
	}
}

/* ---- subscriptions ---- */

static void sub_free(struct trpc_sub *t)
{
	hub_subscriber_gone(&t->h);
	msg_unref(t->head);
	free(t);
}

/* Unlink t from its connection and free it. */
static void sub_drop(struct trpc_sub *t)
{
	struct trpc_conn *c = t->c;
	for (struct trpc_sub **pp = &c->subs; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	if (!t->dead)
		c->n_subs--;
	sub_free(t);
}

static void reap_conn(struct trpc_conn *c)
{
	for (struct trpc_sub **pp = &c->subs; *pp;) {
		struct trpc_sub *t = *pp;
		if (!t->dead) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		sub_free(t);
	}
	if (!c->on_reap)
		return;
	if (c->reap_prev)
		c->reap_prev->reap_next = c->reap_next;
	else
		reap_head = c->reap_next;
	if (c->reap_next)
		c->reap_next->reap_prev = c->reap_prev;
	c->reap_prev = c->reap_next = NULL;
	c->on_reap = 0;
}

static void reap_all(struct fanout_timer *tm, void *arg)
{
	(void)tm, (void)arg;
	while (reap_head)
		reap_conn(reap_head);
}

/* Inside a hub callback: t ends; freed later. */
static void mark_dead(struct trpc_sub *t)
{
	struct trpc_conn *c = t->c;
	if (t->dead)
		return;
	t->dead = 1;
	c->n_subs--;
	if (!c->on_reap) {
		c->on_reap = 1;
		c->reap_prev = NULL;
		c->reap_next = reap_head;
		if (reap_head)
			reap_head->reap_prev = c;
		reap_head = c;
	}
	loop_timer_arm(reap_timer, 0);
}

static struct trpc_sub *find_sub(struct trpc_conn *c, const char *id)
{
	for (struct trpc_sub *t = c->subs; t; t = t->next)
		if (!t->dead && !strcmp(t->id, id))
			return t;
	return NULL;
}

/* ---- the hub's sink table for tRPC subscriptions ---- */

/* Once per event for every tRPC subscriber: the body after the head. */
static struct msg *trpc_frame(const struct hub_event *ev)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	if (ev->kind == HUB_EV_GAP) {
		char text[400];
		snprintf(text, sizeof(text),
			 "messages on channel %s may have been missed (%s): fetch the current "
			 "state and subscribe again",
			 ev->channel, ev->reason ? ev->reason : "unknown");
		trpc_error_body(&b, TRPC_PRECONDITION_FAILED, text, NULL);
		metrics.trpc_errors[TRPC_PRECONDITION_FAILED]++; /* once per gap, not per client */
		return finish(&b);
	}
	size_t off, len;
	uint64_t offset;
	const char *f = msg_payload(ev->frame);
	if (proto_message_data(f, ev->frame->len, &off, &len, &offset)) {
		buf_free(&b);
		return NULL;
	}
	/* Always a tracked event ({id, data}, the shape a tRPC server's
	 * tracked() gives): its position "EPOCH:OFFSET", which lastEventId
	 * resumes from on any instance; on a channel without positions "~:N",
	 * which cannot resume (the client is told so when it tries). */
	(void)offset;
	if (ev->epoch)
		trpc_data_body(&b, ev->epoch, ev->offset, f + off, len);
	else
		trpc_data_body(&b, "~", ++unpositioned_seq, f + off, len);
	return finish(&b);
}

static void trpc_deliver(struct hub_subscriber *h, void *tag, struct msg *m)
{
	struct trpc_sub *t = (struct trpc_sub *)h;
	(void)tag;
	if (t->dead)
		return;
	session_enqueue_pair(t->c->s, t->head, m);
	/* A gap ends the subscription (the body is an "error"): the client's
	 * subscription is over once it reads it. */
	if (m->len > 2 && msg_payload(m)[1] == 'e')
		mark_dead(t);
}

static void trpc_ack(struct hub_subscriber *h, const char *type, const char *id,
		     const char *channel)
{
	struct trpc_sub *t = (struct trpc_sub *)h;
	(void)id, (void)channel;
	if (t->dead || strcmp(type, "subscribed") || t->started)
		return;
	t->started = 1;
	send_body(t, trpc_started_body);
}

/* Inside a hub callback: t ends with an error frame (its head + the body). */
static void sub_fail(struct trpc_sub *t, enum trpc_code code, const char *message)
{
	struct buf b;
	metrics.trpc_errors[code]++;
	buf_init(&b, MSG_PRE);
	trpc_error_body(&b, code, message, t->path);
	struct msg *m = finish(&b);
	if (m) {
		session_enqueue_pair(t->c->s, t->head, m);
		msg_unref(m);
	}
	mark_dead(t);
}

/* The subscription is live (v1.1: with its position). A resume that could
 * not be served ends it: tRPC cannot say "some are missing" otherwise. */
static void trpc_subscribed(struct hub_subscriber *h, const char *id, const char *channel,
			    const char *epoch, uint64_t offset, int recovered)
{
	struct trpc_sub *t = (struct trpc_sub *)h;
	(void)id, (void)offset;
	if (t->dead || t->started)
		return;
	if (t->resuming && recovered != 1) {
		char why[400];
		snprintf(why, sizeof(why),
			 "cannot resume %s from lastEventId: %s; fetch the current state and "
			 "subscribe again without it",
			 channel,
			 !epoch ? "this channel keeps no history"
				: "the history no longer reaches back (or the epoch changed)");
		sub_fail(t, TRPC_PRECONDITION_FAILED, why);
		return;
	}
	t->started = 1;
	send_body(t, trpc_started_body);
}

static void trpc_error(struct hub_subscriber *h, const char *id, const char *code,
		       const char *message)
{
	struct trpc_sub *t = (struct trpc_sub *)h;
	(void)id;
	if (!t->dead)
		sub_fail(t, trpc_code_from_proto(code), message);
}

static const struct hub_sink_ops trpc_ops = {
    .name = "trpc",
    .frame = trpc_frame,
    .deliver = trpc_deliver,
    .ack = trpc_ack,
    .subscribed = trpc_subscribed,
    .error = trpc_error,
};

/* ---- requests ---- */

static void subscribe(struct trpc_conn *c, const struct trpc_req *r)
{
	char why[300], channel[PROTO_CHANNEL_MAX + 1];

	if (find_sub(c, r->id)) {
		snprintf(why, sizeof(why), "Duplicate id %s", r->id);
		send_error(c, r->id, 0, r->jsonrpc, TRPC_BAD_REQUEST, why, r->path);
		return;
	}
	const char *tpl = config_trpc_channel(cfg, r->path);
	if (!tpl) {
		snprintf(why, sizeof(why), "No \"subscription\"-procedure on path \"%s\"", r->path);
		send_error(c, r->id, 0, r->jsonrpc, TRPC_NOT_FOUND, why, r->path);
		return;
	}
	if (trpc_template_expand(tpl, r->input, channel, why, sizeof(why))) {
		send_error(c, r->id, 0, r->jsonrpc, TRPC_BAD_REQUEST, why, r->path);
		return;
	}
	if ((long long)c->n_subs >= cfg->max_subscriptions) {
		send_error(c, r->id, 0, r->jsonrpc, TRPC_TOO_MANY_REQUESTS,
			   "subscription limit reached (max_subscriptions)", r->path);
		return;
	}
	struct proto_since since = {0};
	if (r->last_event_id[0] &&
	    proto_position_parse(r->last_event_id, strlen(r->last_event_id), &since)) {
		/* not one of our positions ("~:N": a channel without history) */
		snprintf(why, sizeof(why),
			 "cannot resume from lastEventId \"%s\": not a position in this channel's "
			 "history; fetch the current state and subscribe again without it",
			 r->last_event_id);
		send_error(c, r->id, 0, r->jsonrpc, TRPC_PRECONDITION_FAILED, why, r->path);
		return;
	}
	struct trpc_sub *t = calloc(1, sizeof(*t));
	struct buf b;
	if (!t)
		goto oom;
	buf_init(&b, MSG_PRE);
	trpc_head(&b, r->id, 0, r->jsonrpc);
	t->head = finish(&b);
	if (!t->head) {
		free(t);
		goto oom;
	}
	t->h.ops = &trpc_ops;
	t->h.claims = guard_claims(&c->s->guard); /* the connection's token (NULL: none) */
	t->h.addr = c->s->hub.addr;		  /* max_channels_per_ip */
	t->h.has_addr = c->s->hub.has_addr;
	t->c = c;
	memcpy(t->id, r->id, sizeof(t->id));
	memcpy(t->path, r->path, sizeof(t->path));
	memcpy(t->channel, channel, sizeof(t->channel));
	t->jsonrpc = r->jsonrpc;
	t->resuming = since.set;
	t->next = c->subs;
	c->subs = t;
	c->n_subs++;
	hub_subscribe_at(&t->h, channel, t->id, NULL, since.set ? &since : NULL);
	if (t->dead) /* refused at once: no hub callback is running now */
		reap_conn(c);
	return;
oom:
	send_error(c, r->id, 0, r->jsonrpc, TRPC_INTERNAL_SERVER_ERROR, "out of memory", r->path);
}

static void stop(struct trpc_conn *c, const struct trpc_req *r)
{
	struct trpc_sub *t = find_sub(c, r->id);
	if (!t)
		return; /* as @trpc/server: stopping an unknown id is not answered */
	struct buf b;
	buf_init(&b, MSG_PRE);
	trpc_head(&b, t->id, 0, r->jsonrpc || t->jsonrpc);
	trpc_stopped_body(&b);
	struct msg *m = finish(&b);
	if (m) {
		session_enqueue(c->s, m);
		msg_unref(m);
	}
	sub_drop(t);
}

static void request(struct trpc_conn *c, const struct trpc_req *r)
{
	char why[TRPC_PATH_MAX + 64];

	if (r->id_null) {
		send_error(c, NULL, 1, r->jsonrpc, TRPC_PARSE_ERROR, "`id` is required", NULL);
		return;
	}
	switch (r->method) {
	case TRPC_SUBSCRIPTION:
		subscribe(c, r);
		break;
	case TRPC_STOP:
		stop(c, r);
		break;
	case TRPC_QUERY:
	case TRPC_MUTATION:
		snprintf(why, sizeof(why), "No \"%s\"-procedure on path \"%s\"",
			 r->method == TRPC_QUERY ? "query" : "mutation", r->path);
		send_error(c, r->id, 0, r->jsonrpc, TRPC_NOT_FOUND, why, r->path);
		break;
	}
}

/* ---- the session protocol ---- */

static int trpc_open(struct session *s)
{
	struct trpc_conn *c = calloc(1, sizeof(*c));
	char arg[64];
	if (!c)
		return -1;
	c->s = s;
	s->proto_state = c;
	for (int i = 0; session_query_arg(s, i, arg, sizeof(arg)) >= 0; i++)
		if (!strcmp(arg, "connectionParams=1"))
			c->await_params = 1;
	return 0;
}

static void trpc_message(struct session *s, const char *p, size_t len, int binary)
{
	struct trpc_conn *c = s->proto_state;
	char why[300];

	reap_conn(c);
	if (!binary && len == 4 && !memcmp(p, "PING", 4)) {
		send_text(c, "PONG");
		return;
	}
	if (!binary && len == 4 && !memcmp(p, "PONG", 4))
		return;
	if (binary) {
		send_error(c, NULL, 1, 0, TRPC_PARSE_ERROR,
			   "binary messages are not supported (JSON in text frames)", NULL);
		return;
	}
	if (c->await_params) {
		char *token = NULL;
		c->await_params = 0;
		if (trpc_parse_params(p, len, &token, why, sizeof(why))) {
			send_error(c, NULL, 1, 0, TRPC_PARSE_ERROR, why, NULL);
			session_close(s, 1000, "bad connectionParams", 1);
			return;
		}
		/* [auth] on: connectionParams.token is the access token (the
		 * gate let this upgrade in without one) */
		const char *bad = NULL;
		int t = session_token_set(s, token, token ? strlen(token) : 0, &bad);
		free(token);
		if (t < 0) {
			send_error(c, NULL, 1, 0, TRPC_UNAUTHORIZED, bad, NULL);
			session_close(s, 4003, "token refused", 1);
		}
		return;
	}
	struct trpc_batch b;
	if (trpc_parse(p, len, &b, why, sizeof(why))) {
		send_error(c, NULL, 1, 0, TRPC_PARSE_ERROR, why, NULL);
		return;
	}
	for (size_t i = 0; i < b.n && !s->c.closing; i++)
		request(c, &b.reqs[i]);
	trpc_batch_free(&b);
}

/* Shutdown: tell the client to move. @trpc/client then opens a new socket
 * (through the load balancer: another instance), resubscribes there and
 * closes this one itself; the grace period ends stragglers. */
static void trpc_drain(struct session *s)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	trpc_reconnect(&b);
	struct msg *m = finish(&b);
	if (m) {
		session_enqueue(s, m);
		msg_unref(m);
	}
}

static void trpc_closed(struct session *s)
{
	struct trpc_conn *c = s->proto_state;
	if (!c)
		return;
	while (c->subs) {
		struct trpc_sub *t = c->subs;
		c->subs = t->next;
		sub_free(t);
	}
	c->n_subs = 0;
	reap_conn(c); /* off the reap list */
	free(c);
	s->proto_state = NULL;
}

const struct session_proto trpc_proto = {
    .kind = CLIENT_TRPC,
    .token_in_band = 1, /* connectionParams.token */
    .open = trpc_open,
    .message = trpc_message,
    .drain = trpc_drain,
    .closed = trpc_closed,
};

int trpc_init(const struct config *c)
{
	cfg = c;
	reap_timer = loop_timer_add(reap_all, NULL);
	return reap_timer ? 0 : -1;
}

void trpc_free(void)
{
	loop_timer_remove(reap_timer);
	reap_timer = NULL;
	reap_head = NULL;
}
