/*
 * sse.c — owns the Server-Sent Events transport (sse.h): the "fanout-sse"
 * lws protocol behind the sse_path mount, one struct sse_stream per
 * request (lws's per-session data), its hub subscriber handle, its send
 * queue and the chunked writes.
 *
 * A request is checked like a WebSocket upgrade (gate_stream(): per-IP cap,
 * Origin, token), counted against max_clients (clients.c), and subscribes
 * every ?channel= before it is answered: a channel that cannot be served
 * at all (bad name, not allowed, no backend, too many) is an HTTP error
 * (4xx, JSON body), which makes EventSource give up instead of retrying
 * forever. Then 200 text/event-stream (chunked on HTTP/1.1, else until the
 * connection closes), and events as the hub delivers them: the hub's
 * frame() op turns a message or gap into one "data:" event once per event
 * for every SSE stream, each stream queues a reference (outq.h) behind its
 * own small "id:" line (the positions of all its channels, sse_id.h, read
 * back from the native frame inside the event). Last-Event-ID resumes each
 * channel with hub_subscribe_at(); one that cannot gets a gap event. A stream
 * whose queue would pass client_queue_bytes is cut (slow consumer). While
 * draining, a stream ends once flushed (the final chunk); EventSource then
 * reconnects through the load balancer.
 *
 * Loop thread only. lws allocates the stream (per-session data) and frees
 * it after LWS_CALLBACK_CLOSED_HTTP; this file allocates its channel array
 * and the queue's ring, freed there.
 */
#include <libwebsockets.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "sse"
#include "auth.h"
#include "budget.h"
#include "clients.h"
#include "config.h"
#include "conn.h"
#include "gate.h"
#include "guard.h"
#include "http_reply.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "outq.h"
#include "protocol.h"
#include "sse.h"
#include "sse_id.h"

/* Bytes of queued events written in one chunk (one lws_write). */
#define SSE_WRITE_MAX (64 * 1024)
/* What EventSource waits before reconnecting (the "retry:" field). */
#define SSE_RETRY_MS 1000

struct sse_chan {
	char name[PROTO_CHANNEL_MAX + 1];
	int resume; /* Last-Event-ID named a position for it */
};

struct sse_stream {
	struct client cl;	   /* in clients.c's list */
	struct hub_subscriber hub; /* the hub's handle */
	struct guard guard;	   /* the token's claims (tokens on), expiry */
	struct lws *wsi;
	uint64_t serial;
	struct outq q;
	struct sse_stream *prev, *next; /* open streams (keepalives) */
	struct sse_chan *ch;
	struct proto_since *pos; /* ch[i]'s position: where the client stands */
	size_t n_ch;
	uint32_t fp;		 /* fingerprint of the channel list (sse_id.h) */
	unsigned resuming : 1;	 /* the request had a Last-Event-ID */
	unsigned resume_bad : 1; /* ... that named nothing of this stream */
	unsigned registered : 1; /* in clients.c's list */
	unsigned open : 1;	 /* 200 sent: events flow */
	unsigned chunked : 1;	 /* HTTP/1.1: Transfer-Encoding: chunked */
	unsigned closing : 1;	 /* end the stream once the queue is flushed */
	unsigned ended : 1;	 /* final chunk written: hang up at the next callback */
	unsigned cut : 1;	 /* slow consumer: hang up, drop the queue */
	unsigned in_setup : 1;	 /* subscribing before the answer */
	/* the first refusal while subscribing: answered as an HTTP error */
	int setup_status;
	char setup_why[240];
};

static const struct config *cfg;
static struct sse_stream *streams;
static struct fanout_timer *keepalive_timer;
static struct msg *keepalive_msg;
static uint64_t serials;
static unsigned char scratch[LWS_PRE + 16 + SSE_WRITE_MAX + 8];

static struct sse_stream *from_hub(struct hub_subscriber *h)
{
	return (struct sse_stream *)((char *)h - offsetof(struct sse_stream, hub));
}

static const char *peer(struct sse_stream *st)
{
	struct conn *c = conn_of(st->wsi);
	return c ? c->ip : "-";
}

/* ---- events ---- */

static struct msg *finish(struct buf *b)
{
	struct msg *m = b->oom ? NULL : msg_from_buf(b);
	if (!m)
		buf_free(b);
	return m;
}

/* "[event: NAME\n]data: JSON\n\n", JSON on one line: a frame's line breaks
 * can only be whitespace between JSON tokens (never inside a string), so
 * they become spaces. */
static struct msg *event(const char *name, const char *json, size_t len)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	buf_reserve(&b, len + 32);
	if (name) {
		buf_puts(&b, "event: ");
		buf_puts(&b, name);
		buf_putc(&b, '\n');
	}
	buf_puts(&b, "data: ");
	size_t at = b.len;
	buf_append(&b, json, len);
	if (!b.oom)
		for (char *p = buf_data(&b) + at, *e = buf_data(&b) + b.len; p < e; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	buf_puts(&b, "\n\n");
	return finish(&b);
}

static void cut(struct sse_stream *st, const char *why)
{
	if (st->cut)
		return;
	st->cut = 1;
	outq_clear(&st->q);
	log_info("event stream #%llu (%s): %s: closing", (unsigned long long)st->serial, peer(st),
		 why);
	/* closes it from the loop, whether or not the socket ever drains */
	lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* budget.c: cut at max_queued_bytes (the queue goes now). */
static int slow(struct client *c)
{
	struct sse_stream *st = (struct sse_stream *)((char *)c - offsetof(struct sse_stream, cl));
	if (st->cut || st->ended)
		return 0;
	cut(st, "too slow (max_queued_bytes)");
	return 1;
}

static void enqueue(struct sse_stream *st, struct msg *head, struct msg *m)
{
	if (!m || st->cut || st->ended)
		return;
	size_t len = (head ? head->len : 0) + m->len;
	if ((long long)(st->q.bytes + len) > cfg->client_queue_bytes) {
		metrics.slow_client_disconnects++;
		cut(st, "too slow (client_queue_bytes)");
		return;
	}
	if (budget_admit(&st->cl, head, m)) {
		cut(st, "too slow (max_queued_bytes)");
		return;
	}
	int was_empty = st->q.len == 0;
	if (outq_push(&st->q, head, m)) {
		cut(st, "out of memory");
		return;
	}
	if (was_empty && st->open)
		lws_callback_on_writable(st->wsi);
}

static void send_event(struct sse_stream *st, const char *name, struct buf *json)
{
	struct msg *m = json->oom ? NULL : event(name, buf_data(json), json->len);
	buf_free(json);
	enqueue(st, NULL, m);
	msg_unref(m);
}

/* clients.c's token sweep: the token expired; the stream ends with an
 * "expired" event (the client reconnects with a fresh token). */
static void token_expired(struct client *c)
{
	struct sse_stream *st = (struct sse_stream *)((char *)c - offsetof(struct sse_stream, cl));
	struct buf b;
	metrics.clients_closed_token_expired++;
	buf_init(&b, 0);
	buf_puts(&b, "{\"reason\":\"token expired\"}");
	send_event(st, "expired", &b);
	st->closing = 1;
	if (st->open)
		lws_callback_on_writable(st->wsi);
}

/* ---- the hub's sink table for event streams ---- */

/* Once per event for every stream. */
static struct msg *sse_frame(const struct hub_event *ev)
{
	return event(ev->kind == HUB_EV_GAP ? "gap" : NULL, msg_payload(ev->frame), ev->frame->len);
}

/* The stream's positions as an "id: …" line for the next event, or NULL
 * (no channel positioned yet, or an id over SSE_ID_MAX). */
static struct msg *id_line(struct sse_stream *st)
{
	struct buf b;
	int any = 0;
	for (size_t i = 0; i < st->n_ch && !any; i++)
		any = st->pos[i].set;
	if (!any)
		return NULL;
	buf_init(&b, MSG_PRE);
	buf_puts(&b, "id: ");
	if (sse_id_write(&b, st->fp, st->pos, st->n_ch)) {
		buf_free(&b);
		return NULL;
	}
	buf_putc(&b, '\n');
	return finish(&b);
}

/* A message or gap event for channel (tag - 1): note its position (read
 * back from the native frame inside the event), then queue the event
 * behind this stream's id line. */
static void sse_deliver(struct hub_subscriber *h, void *tag, struct msg *m)
{
	struct sse_stream *st = from_hub(h);
	size_t i = (size_t)(uintptr_t)tag - 1;
	if (i < st->n_ch && !st->cut) {
		const char *p = msg_payload(m), *json = memmem(p, m->len, "data: ", 6);
		size_t n = json ? m->len - (size_t)(json + 6 - p) - 2 : 0; /* less "\n\n" */
		size_t off, len;
		uint64_t offset;
		if (json && p[0] != 'e' && st->pos[i].set &&
		    !proto_message_data(json + 6, n, &off, &len, &offset) && offset)
			st->pos[i].offset = offset;
		else if (json && p[0] == 'e') /* event: gap — its new position */
			proto_gap_position(json + 6, n, &st->pos[i]);
	}
	struct msg *head = id_line(st);
	enqueue(st, head, m);
	msg_unref(head);
}

/* Our subscribe ids are the channel's index in the request. */
static struct sse_chan *chan_of(struct sse_stream *st, const char *id)
{
	char *end;
	unsigned long i = strtoul(id ? id : "", &end, 10);
	return id && *id && !*end && i < st->n_ch ? &st->ch[i] : NULL;
}

/* A channel is live (v1.1: with the position the client stands at). Its
 * event carries the stream's id, so even a stream that got no message yet
 * can resume; a resume that could not be served is said with a gap. */
static void sse_subscribed(struct hub_subscriber *h, const char *id, const char *channel,
			   const char *epoch, uint64_t offset, int recovered)
{
	struct sse_stream *st = from_hub(h);
	struct sse_chan *ch = chan_of(st, id);
	struct buf b;
	if (!ch)
		return;
	struct proto_since *pos = &st->pos[ch - st->ch];
	pos->set = epoch != NULL;
	if (epoch) {
		snprintf(pos->epoch, sizeof(pos->epoch), "%s", epoch);
		pos->offset = offset;
	}
	buf_init(&b, 0);
	proto_subscribed(&b, "", channel, epoch, offset, st->resuming ? (recovered == 1) : -1);
	struct msg *head = id_line(st),
		   *m = b.oom ? NULL : event("subscribed", buf_data(&b), b.len);
	buf_free(&b);
	enqueue(st, head, m);
	msg_unref(m);
	if (st->resuming && recovered != 1) {
		const char *why = st->resume_bad ? "Last-Event-ID names another stream"
				  : !epoch	 ? "this channel keeps no history"
				  : !ch->resume	 ? "no position for it in Last-Event-ID"
						 : "history no longer reaches back";
		char reason[120];
		snprintf(reason, sizeof(reason), "cannot resume: %s", why);
		buf_init(&b, 0);
		if (epoch)
			proto_gap_at(&b, channel, reason, epoch, offset);
		else
			proto_gap(&b, channel, reason);
		m = b.oom ? NULL : event("gap", buf_data(&b), b.len);
		buf_free(&b);
		enqueue(st, head, m);
		msg_unref(m);
	}
	msg_unref(head);
}

static void sse_ack(struct hub_subscriber *h, const char *type, const char *id, const char *channel)
{
	struct sse_stream *st = from_hub(h);
	struct buf b;
	(void)id;
	if (strcmp(type, "subscribed"))
		return;
	buf_init(&b, 0);
	proto_ack(&b, "subscribed", "", channel);
	send_event(st, "subscribed", &b);
}

static int status_of(const char *code)
{
	if (!strcmp(code, PROTO_E_FORBIDDEN))
		return 403;
	if (!strcmp(code, PROTO_E_NO_BACKEND))
		return 404;
	if (!strcmp(code, PROTO_E_BACKEND_UNAVAIL))
		return 503;
	return 400;
}

static void sse_error(struct hub_subscriber *h, const char *id, const char *code,
		      const char *message)
{
	struct sse_stream *st = from_hub(h);
	struct sse_chan *ch = chan_of(st, id);
	const char *name = ch ? ch->name : "?";
	int i = metric_err_index(code);
	if (i >= 0)
		metrics.errors[i]++;
	if (st->in_setup) {
		if (!st->setup_status) {
			st->setup_status = status_of(code);
			snprintf(st->setup_why, sizeof(st->setup_why), "channel %s: %s (%s)", name,
				 message, code);
		}
		return;
	}
	/* Refused later (the backend could not subscribe): say so and end
	 * the stream; EventSource retries, which is right for this one. */
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"type\":\"error\",\"channel\":");
	json_append_string(&b, name, strlen(name), NULL);
	buf_printf(&b, ",\"code\":\"%s\",\"message\":", code);
	json_append_string(&b, message, strlen(message), NULL);
	buf_putc(&b, '}');
	send_event(st, "refused", &b);
	st->closing = 1;
	if (st->open)
		lws_callback_on_writable(st->wsi);
}

static const struct hub_sink_ops sse_ops = {
    .name = "sse",
    .frame = sse_frame,
    .deliver = sse_deliver,
    .ack = sse_ack,
    .subscribed = sse_subscribed,
    .error = sse_error,
};

/* ---- the stream's lifecycle ---- */

static void drain(struct client *c)
{
	struct sse_stream *st = (struct sse_stream *)((char *)c - offsetof(struct sse_stream, cl));
	st->closing = 1;
	if (st->open)
		lws_callback_on_writable(st->wsi);
}

static void list_add(struct sse_stream *st)
{
	st->prev = NULL;
	st->next = streams;
	if (streams)
		streams->prev = st;
	streams = st;
}

static void list_del(struct sse_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else if (streams == st)
		streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	st->prev = st->next = NULL;
}

static void keepalive(struct fanout_timer *t, void *arg)
{
	(void)arg;
	for (struct sse_stream *st = streams; st; st = st->next)
		if (!st->closing)
			enqueue(st, NULL, keepalive_msg);
	loop_timer_arm(t, (uint64_t)cfg->ping_interval_s * 1000);
}

/* The ?channel= arguments into st->ch (duplicates dropped). 0, or an
 * HTTP status with why. */
static int read_channels(struct sse_stream *st, const char **why)
{
	char frag[PROTO_CHANNEL_MAX + 16];
	size_t cap = 0;
	for (int i = 0;; i++) {
		int n =
		    lws_hdr_copy_fragment(st->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			break;
		if (strncmp(frag, "channel=", 8))
			continue;
		const char *name = frag + 8;
		size_t len = (size_t)n - 8;
		if (!proto_channel_valid(name, len)) {
			*why = "channel must be 1-200 bytes of [A-Za-z0-9_.:/-]";
			return 400;
		}
		int dup = 0;
		for (size_t k = 0; k < st->n_ch && !dup; k++)
			dup = !strcmp(st->ch[k].name, name);
		if (dup)
			continue;
		if ((long long)st->n_ch >= cfg->max_subscriptions) {
			*why = "more channels than max_subscriptions";
			return 400;
		}
		if (st->n_ch == cap) {
			cap = cap ? cap * 2 : 4;
			struct sse_chan *nc = realloc(st->ch, cap * sizeof(*nc));
			if (!nc) {
				*why = "out of memory";
				return 503;
			}
			st->ch = nc;
		}
		memcpy(st->ch[st->n_ch].name, name, len + 1);
		st->ch[st->n_ch].resume = 0;
		st->fp = sse_id_fingerprint_add(st->n_ch ? st->fp : SSE_ID_FP_INIT, name);
		st->n_ch++;
	}
	if (!st->n_ch) {
		*why = "name at least one channel: ?channel=NAME (repeat it for more)";
		return 400;
	}
	st->pos = calloc(st->n_ch, sizeof(*st->pos));
	if (!st->pos) {
		*why = "out of memory";
		return 503;
	}
	return 0;
}

static int add_hdr(struct lws *wsi, enum lws_token_indexes t, const char *v, unsigned char **p,
		   unsigned char *end)
{
	return lws_add_http_header_by_token(wsi, t, (const unsigned char *)v, (int)strlen(v), p,
					    end);
}

/* Last-Event-ID (the header EventSource sends when it reconnects, or
 * ?lastEventId= for clients that cannot set headers): where each channel
 * resumes. */
static void resume_from(struct sse_stream *st)
{
	char lid[SSE_ID_MAX + 1];
	int n = lws_hdr_custom_length(st->wsi, "last-event-id:", 14);
	if (n > SSE_ID_MAX)
		n = -2;
	else if (n > 0)
		n = lws_hdr_custom_copy(st->wsi, lid, sizeof(lid), "last-event-id:", 14);
	for (int i = 0; n == -1; i++) {
		char frag[SSE_ID_MAX + 16];
		int len =
		    lws_hdr_copy_fragment(st->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (len < 0)
			break;
		if (!strncmp(frag, "lastEventId=", 12)) {
			n = len - 12;
			memcpy(lid, frag + 12, (size_t)n + 1);
		}
	}
	if (n == 0 || n == -1)
		return; /* a fresh stream */
	st->resuming = 1;
	if (n < 0 || sse_id_parse(lid, (size_t)n, st->fp, st->pos, st->n_ch)) {
		st->resume_bad = 1;
		return;
	}
	for (size_t i = 0; i < st->n_ch; i++)
		st->ch[i].resume = st->pos[i].set;
}

/* 200, text/event-stream, written now. 0 or -1. */
static int answer(struct sse_stream *st)
{
	unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
					   *end = hdr + sizeof(hdr) - 1;
	struct lws *wsi = st->wsi;
	char ver[16], origin[600];

	/* HTTP/2 frames the stream itself and has no Connection header */
	int h2 = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COLON_PATH) > 0;
	st->chunked = !h2 && lws_hdr_copy(wsi, ver, sizeof(ver), WSI_TOKEN_HTTP) > 0 &&
		      !strcmp(ver, "HTTP/1.1");
	if (lws_add_http_header_status(wsi, HTTP_STATUS_OK, &p, end) ||
	    add_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, "text/event-stream", &p, end) ||
	    add_hdr(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, "no-cache", &p, end) ||
	    /* nginx: pass events through at once even without proxy_buffering off */
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
					(const unsigned char *)"no", 2, &p, end))
		return -1;
	if (st->chunked && add_hdr(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, "chunked", &p, end))
		return -1;
	if (!st->chunked && !h2 && add_hdr(wsi, WSI_TOKEN_CONNECTION, "close", &p, end))
		return -1;
	/* The Origin passed the gate: a cross-origin EventSource may read. */
	int on = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	if (on > 0 &&
	    (lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
					 (const unsigned char *)origin, on, &p, end) ||
	     add_hdr(wsi, WSI_TOKEN_HTTP_VARY, "Origin", &p, end)))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	/* A stream lives on: no idle timeout, and the request's header
	 * storage goes back to lws (lws_http_mark_sse() does both on h2 and
	 * complains on h1). */
	if (h2) {
		lws_http_mark_sse(wsi);
	} else {
		lws_http_headers_detach(wsi);
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	}
	return 0;
}

static int on_request(struct sse_stream *st, struct lws *wsi)
{
	char *uri;
	int uri_len;
	const char *why = NULL;

	memset(st, 0, sizeof(*st));
	st->wsi = wsi;
	st->serial = ++serials;
	if (lws_http_get_uri_and_method(wsi, &uri, &uri_len) != LWSHUMETH_GET)
		return http_error(wsi, 405, "an event stream is a GET", HTTP_CLOSE), -1;
	int g = gate_stream(wsi);
	if (g)
		return -1; /* refused and answered */
	/* The token the gate accepted: its claims for every subscribe, its
	 * expiry ends the stream (an event stream cannot be refreshed in-band:
	 * the client opens a new one with a fresh token). */
	struct auth_claims claims;
	int t = gate_claims(wsi, conn_of(wsi), &claims, &why);
	if (t < 0)
		return http_error(wsi, 401, why, HTTP_CLOSE), -1;
	guard_init(&st->guard, 0, loop_now_ms(), t == 0 ? &claims : NULL);
	struct conn *cn = conn_of(wsi);
	if (cn) { /* max_channels_per_ip */
		st->hub.addr = cn->client;
		st->hub.has_addr = 1;
	}
	st->hub.claims = guard_claims(&st->guard);
	if (t == 0) {
		st->cl.guard = &st->guard;
		st->cl.token_expired = token_expired;
	}
	int status = read_channels(st, &why);
	if (status)
		return http_error(wsi, status, why, HTTP_CLOSE), -1;
	resume_from(st);

	st->cl.kind = CLIENT_SSE;
	st->cl.drain = drain;
	st->cl.q = &st->q;
	st->cl.slow = slow;
	st->registered = 1;
	if (st->cl.guard)
		clients_watch_tokens();
	switch (clients_add(&st->cl)) {
	case CLIENTS_FULL:
		return http_error(wsi, 503, "server full (max_clients)", HTTP_CLOSE), -1;
	case CLIENTS_DRAINING:
		return http_error(wsi, 503, "server shutting down", HTTP_CLOSE), -1;
	case CLIENTS_OK:
		break;
	}

	/* Events may be queued while subscribing (a channel already live is
	 * confirmed at once): they go out after the answer. */
	struct buf b;
	buf_init(&b, MSG_PRE);
	buf_printf(&b, ": fanout %s\nretry: %d\n\n", cfg->instance, SSE_RETRY_MS);
	struct msg *hello = finish(&b);
	enqueue(st, NULL, hello);
	msg_unref(hello);
	st->hub.ops = &sse_ops;
	st->in_setup = 1;
	for (size_t i = 0; i < st->n_ch && !st->setup_status; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%zu", i);
		hub_subscribe_at(&st->hub, st->ch[i].name, id, (void *)(uintptr_t)(i + 1),
				 st->ch[i].resume ? &st->pos[i] : NULL);
	}
	st->in_setup = 0;
	if (st->setup_status)
		return http_error(wsi, st->setup_status, st->setup_why, HTTP_CLOSE), -1;
	if (answer(st))
		return -1;
	st->open = 1;
	list_add(st);
	lws_callback_on_writable(wsi);
	return 0;
}

/* Queued events in one chunk (as many whole ones as fit). 0 or -1. */
static int write_some(struct sse_stream *st)
{
	unsigned char *body = scratch + LWS_PRE + 16, *p = body, *big = NULL;
	size_t total = 0;

	if (outq_ent_len(outq_at(&st->q, 0)) > SSE_WRITE_MAX) {
		/* one event bigger than the scratch buffer: a buffer of its own */
		big = malloc(LWS_PRE + 16 + outq_ent_len(outq_at(&st->q, 0)) + 8);
		if (!big)
			return -1;
		body = p = big + LWS_PRE + 16;
	}
	while (st->q.len) {
		struct outq_ent *e = outq_at(&st->q, 0);
		size_t n = outq_ent_len(e);
		if (total && total + n > SSE_WRITE_MAX)
			break;
		struct outq_ent x;
		outq_pop(&st->q, &x);
		if (x.head) {
			memcpy(p, msg_payload(x.head), x.head->len);
			p += x.head->len;
		}
		memcpy(p, msg_payload(x.body), x.body->len);
		p += x.body->len;
		total += n;
		outq_ent_release(&x);
		if (big)
			break;
	}
	unsigned char *start = body;
	if (st->chunked) {
		char h[16];
		int hn = snprintf(h, sizeof(h), "%zx\r\n", total);
		start -= hn;
		memcpy(start, h, (size_t)hn);
		*p++ = '\r';
		*p++ = '\n';
	}
	metrics.bytes_out += (long long)total;
	metrics.writes++;
	int rc = lws_write(st->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP);
	free(big);
	return rc < 0 ? -1 : 0;
}

static int on_writeable(struct sse_stream *st)
{
	if (st->cut || st->ended)
		return -1;
	if (!st->open)
		return 0;
	if (st->q.len) {
		if (write_some(st))
			return -1;
		lws_callback_on_writable(st->wsi);
		return 0;
	}
	if (st->closing) {
		/* the end of the stream: the last chunk, then hang up */
		static const char last[] = "0\r\n\r\n";
		unsigned char b[LWS_PRE + sizeof(last)];
		memcpy(b + LWS_PRE, last, sizeof(last) - 1);
		if (st->chunked &&
		    lws_write(st->wsi, b + LWS_PRE, sizeof(last) - 1, LWS_WRITE_HTTP) < 0)
			return -1;
		st->ended = 1;
		lws_callback_on_writable(st->wsi);
	}
	return 0;
}

static void on_closed(struct sse_stream *st)
{
	if (st->open)
		list_del(st);
	st->open = 0;
	if (st->registered) {
		st->registered = 0;
		hub_subscriber_gone(&st->hub);
		clients_remove(&st->cl);
	}
	st->hub.claims = NULL;
	guard_free(&st->guard);
	outq_free(&st->q);
	free(st->ch);
	free(st->pos);
	st->pos = NULL;
	st->ch = NULL;
	st->n_ch = 0;
}

static int sse_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct sse_stream *st = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_request(st, wsi);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return st ? on_writeable(st) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (st)
			on_closed(st);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return gate_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* never a WebSocket */
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

const struct lws_protocols sse_protocol = {
    .name = SSE_PROTOCOL_NAME,
    .callback = sse_callback,
    .per_session_data_size = sizeof(struct sse_stream),
    .rx_buffer_size = 0,
    /* a whole chunk goes to the kernel at once */
    .tx_packet_size = LWS_PRE + 16 + SSE_WRITE_MAX + 8,
};

int sse_init(const struct config *c)
{
	cfg = c;
	keepalive_msg = msg_new(": keepalive\n\n", 13);
	if (!keepalive_msg)
		return -1;
	if (c->ping_interval_s > 0) {
		keepalive_timer = loop_timer_add(keepalive, NULL);
		if (!keepalive_timer)
			return -1;
		loop_timer_arm(keepalive_timer, (uint64_t)c->ping_interval_s * 1000);
	}
	return 0;
}

void sse_free(void)
{
	loop_timer_remove(keepalive_timer);
	keepalive_timer = NULL;
	msg_unref(keepalive_msg);
	keepalive_msg = NULL;
	streams = NULL;
}
