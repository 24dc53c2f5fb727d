/*
 * session.c — owns each WebSocket client of the native protocol: the lws
 * "fanout-ws" protocol callback, the inbound reassembly buffer (capped at
 * max_message_bytes: bigger closes 1009), request dispatch to the hub, the
 * hub sink table of this transport (frames built by protocol.c, once per
 * event), and the outbound queue — a ring of references to shared frames,
 * capped at client_queue_bytes (over it the client is a slow consumer:
 * queue dropped, close 4001). Also the session layer: the list of every
 * session, max_clients, and draining at shutdown (close 1001 once flushed).
 *
 * Loop thread only. Allocates the ring and rx buffer per session (grown by
 * doubling, so steady-state delivery allocates nothing per subscriber);
 * frees everything on LWS_CALLBACK_CLOSED.
 */
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "session"
#include "clients.h"
#include "conn.h"
#include "gate.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "outq.h"
#include "protocol.h"
#include "refuse.h"
#include "session.h"

static uint64_t serials;
static const struct config *cfg;

/* Protocols by upgrade path: [0] is the native one at ws_path. */
#define MAX_PROTOS 4
static const struct session_proto native_proto;
static struct {
	const char *path;
	const struct session_proto *proto;
} protos[MAX_PROTOS];
static size_t n_protos;

void session_init(const struct config *c)
{
	cfg = c;
	protos[0].path = c->ws_path;
	protos[0].proto = &native_proto;
	n_protos = 1;
}

int session_add_proto(const char *path, const struct session_proto *proto)
{
	if (n_protos == MAX_PROTOS)
		return -1;
	protos[n_protos].path = path;
	protos[n_protos++].proto = proto;
	return 0;
}

int session_has_path(const char *path)
{
	for (size_t i = 0; i < n_protos; i++)
		if (!strcmp(path, protos[i].path))
			return 1;
	return 0;
}

int session_query_arg(struct session *s, int n, char *out, size_t len)
{
	return lws_hdr_copy_fragment(s->wsi, out, (int)len, WSI_TOKEN_HTTP_URI_ARGS, n);
}

/* The protocol the upgrade's path asks for, or NULL. */
static const struct session_proto *proto_for(struct lws *wsi)
{
	char uri[256];
	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return NULL;
	for (size_t i = 0; i < n_protos; i++)
		if (!strcmp(uri, protos[i].path))
			return protos[i].proto;
	return NULL;
}

/* clients.c asks every client to drain: the protocol's own way, or close
 * 1001 once the queue is flushed. */
static void drain(struct client *c)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, cl));
	s->draining = 1;
	if (s->proto->drain)
		s->proto->drain(s);
	else
		lws_callback_on_writable(s->wsi);
}

/* clients.c: nothing arrived for idle_timeout_s. */
static void idle(struct client *c)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, cl));
	session_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "idle timeout", 0);
}

void session_close(struct session *s, int code, const char *why, int flush)
{
	if (s->close_code)
		return;
	s->close_code = code;
	s->close_why = why;
	if (!flush)
		outq_clear(&s->q);
	lws_callback_on_writable(s->wsi);
	/* A client that does not read never makes the socket writable: give
	 * the close frame a few seconds, then drop the connection. */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, flush ? 30 : 3);
}

static struct session *flush_head;

static void flush_add(struct session *s)
{
	s->in_flush = 1;
	s->flush_prev = NULL;
	s->flush_next = flush_head;
	if (flush_head)
		flush_head->flush_prev = s;
	flush_head = s;
}

static void flush_del(struct session *s)
{
	if (!s->in_flush)
		return;
	if (s->flush_prev)
		s->flush_prev->flush_next = s->flush_next;
	else
		flush_head = s->flush_next;
	if (s->flush_next)
		s->flush_next->flush_prev = s->flush_prev;
	s->in_flush = 0;
	s->flush_prev = s->flush_next = NULL;
}

static int write_some(struct session *s, struct lws *wsi);

void session_flush_pending(void)
{
	while (flush_head) {
		struct session *s = flush_head;
		flush_del(s);
		if (!s->q.len || s->close_code)
			continue;
		if (lws_partial_buffered(s->wsi) || write_some(s, s->wsi) < 0 || s->q.len)
			lws_callback_on_writable(s->wsi); /* the rest on POLLOUT */
	}
}

void session_enqueue(struct session *s, struct msg *m)
{
	session_enqueue_pair(s, NULL, m);
}

void session_enqueue_pair(struct session *s, struct msg *head, struct msg *m)
{
	if (s->close_code || !s->established)
		return;
	size_t len = (head ? head->len : 0) + m->len;
	if ((long long)(s->q.bytes + len) > cfg->client_queue_bytes) {
		metrics.slow_client_disconnects++;
		struct conn *c = conn_of(s->wsi);
		log_info("client #%llu (%s) is too slow (%zu bytes queued): closing 4001",
			 (unsigned long long)s->serial, c ? c->ip : "-", s->q.bytes);
		session_close(s, 4001, "slow consumer", 0);
		return;
	}
	int was_empty = s->q.len == 0;
	if (outq_push(&s->q, head, m)) {
		session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory", 0);
		return;
	}
	if (!was_empty || s->in_flush)
		return; /* already waiting for POLLOUT or for the flush below */
	if (loop_in_dispatch() && !cfg->permessage_deflate) {
		/* Inside a backend's callback: write when it returns, so every
		 * frame this client gets from one read of the broker goes out in
		 * one send() — no POLLOUT round trip, no poll() over every fd. */
		flush_add(s);
	} else {
		lws_callback_on_writable(s->wsi);
	}
}

void session_send_buf(struct session *s, struct buf *b)
{
	struct msg *m = msg_from_buf(b);
	if (!m) {
		buf_free(b);
		return;
	}
	session_enqueue(s, m);
	msg_unref(m);
}

void session_send_error(struct session *s, const char *id, const char *code, const char *message)
{
	struct buf b;
	int i = metric_err_index(code);
	if (i >= 0)
		metrics.errors[i]++;
	buf_init(&b, MSG_PRE);
	proto_error_frame(&b, id ? id : "", code, message);
	session_send_buf(s, &b);
}

void session_send_ack(struct session *s, const char *type, const char *id, const char *channel)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	proto_ack(&b, type, id ? id : "", channel);
	session_send_buf(s, &b);
}

/* ---- the hub's sink table for this transport ---- */

static struct session *from_hub(struct hub_subscriber *h)
{
	return (struct session *)((char *)h - offsetof(struct session, hub));
}

/* The hub's native frame is this transport's frame. */
static struct msg *ws_frame(const struct hub_event *ev)
{
	return msg_ref(ev->frame);
}

static void ws_deliver(struct hub_subscriber *h, void *tag, struct msg *m)
{
	(void)tag;
	session_enqueue(from_hub(h), m);
}

static void ws_ack(struct hub_subscriber *h, const char *type, const char *id, const char *channel)
{
	session_send_ack(from_hub(h), type, id, channel);
}

static void ws_error(struct hub_subscriber *h, const char *id, const char *code,
		     const char *message)
{
	session_send_error(from_hub(h), id, code, message);
}

static const struct hub_sink_ops ws_ops = {
    .name = "ws",
    .frame = ws_frame,
    .deliver = ws_deliver,
    .ack = ws_ack,
    .error = ws_error,
};

/* ---- the native protocol (protocol v1 at ws_path) ---- */

static void handle_request(struct session *s, const char *p, size_t len)
{
	struct proto_request req;
	struct proto_error err;
	struct buf b;

	if (proto_parse(p, len, &req, &err)) {
		session_send_error(s, err.id, err.code, err.message);
		return;
	}
	switch (req.type) {
	case PROTO_SUBSCRIBE:
		hub_subscribe(&s->hub, req.channel, req.id, NULL);
		break;
	case PROTO_UNSUBSCRIBE:
		hub_unsubscribe(&s->hub, req.channel, req.id);
		break;
	case PROTO_PUBLISH:
		hub_publish(&s->hub, req.channel, req.data, req.data_len, req.id);
		break;
	case PROTO_PING:
		buf_init(&b, MSG_PRE);
		proto_pong(&b, req.id);
		session_send_buf(s, &b);
		break;
	}
	proto_request_clear(&req);
}

static int query_channel(void *arg, const char *channel, size_t len)
{
	struct session *s = arg;
	char name[PROTO_CHANNEL_MAX + 1];
	if (!proto_channel_valid(channel, len)) {
		session_send_error(s, "", PROTO_E_BAD_CHANNEL, PROTO_CHANNEL_RULE);
		return 0;
	}
	memcpy(name, channel, len);
	name[len] = '\0';
	hub_subscribe(&s->hub, name, "", NULL);
	return 0;
}

static void subscribe_from_query(struct session *s)
{
	char frag[512];
	for (int n = 0; n < 256; n++) {
		int len =
		    lws_hdr_copy_fragment(s->wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, n);
		if (len < 0)
			break;
		if (!strncmp(frag, "channel=", 8))
			query_channel(s, frag + 8, (size_t)len - 8);
	}
}

static int native_open(struct session *s)
{
	struct buf b;
	s->hub.ops = &ws_ops;
	buf_init(&b, MSG_PRE);
	proto_hello(&b, cfg->instance, PROTO_VERSION);
	session_send_buf(s, &b);
	subscribe_from_query(s);
	return 0;
}

static void native_message(struct session *s, const char *p, size_t len, int binary)
{
	if (binary)
		session_send_error(s, "", PROTO_E_BAD_REQUEST, "binary frames are not supported");
	else
		handle_request(s, p, len);
}

static void native_closed(struct session *s)
{
	hub_subscriber_gone(&s->hub);
}

static const struct session_proto native_proto = {
    .kind = CLIENT_WS,
    .open = native_open,
    .message = native_message,
    .closed = native_closed,
};

/* ---- the connection ---- */

static int on_established(struct session *s, struct lws *wsi)
{
	memset(s, 0, sizeof(*s));
	s->wsi = wsi;
	s->serial = ++serials;
	s->established = 1;
	s->proto = proto_for(wsi);
	if (!s->proto) /* the filter let it in: cannot happen */
		s->proto = &native_proto;
	s->cl.kind = s->proto->kind;
	s->cl.drain = drain;
	s->cl.idle = idle;

	switch (clients_add(&s->cl)) {
	case CLIENTS_DRAINING:
		session_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down", 0);
		return 0;
	case CLIENTS_FULL: {
		struct conn *c = conn_of(wsi);
		refuse_log(REFUSE_MAX_CLIENTS, c ? c->ip : "-", "max_clients reached: close 1013");
		session_close(s, 1013, "server full", 0);
		return 0;
	}
	case CLIENTS_OK:
		break;
	}
	struct conn *c = conn_of(wsi);
	log_debug("client #%llu connected from %s", (unsigned long long)s->serial, c ? c->ip : "-");
	s->opened = 1;
	if (s->proto->open(s))
		session_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory", 0);
	return 0;
}

static int on_receive(struct session *s, struct lws *wsi, const char *in, size_t len)
{
	if (s->close_code)
		return 0;
	if ((long long)(s->rx_len + len) > cfg->max_message_bytes) {
		metrics.clients_closed_too_big++;
		static const char why[] = "message larger than max_message_bytes";
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
				 sizeof(why) - 1);
		return -1;
	}
	if (!len && !s->rx_len && lws_is_final_fragment(wsi)) {
		/* An empty message: no buffer to hand the parser (memcpy into
		 * a NULL buffer was UB), and it is not a UTF-8 problem. */
		if (lws_frame_is_binary(wsi))
			session_send_error(s, "", PROTO_E_BAD_REQUEST,
					   "binary frames are not supported");
		else
			session_send_error(s, "", PROTO_E_BAD_JSON, "empty message");
		return 0;
	}
	if (s->rx_len + len > s->rx_cap) {
		size_t cap = s->rx_cap ? s->rx_cap : 256;
		while (cap < s->rx_len + len)
			cap *= 2;
		char *n = realloc(s->rx, cap);
		if (!n)
			return -1;
		s->rx = n;
		s->rx_cap = cap;
	}
	if (len)
		memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (!lws_is_final_fragment(wsi))
		return 0;
	s->proto->message(s, s->rx, s->rx_len, lws_frame_is_binary(wsi));
	s->rx_len = 0;
	/* Don't keep a big buffer around after one big request. */
	if (s->rx_cap > 4096) {
		free(s->rx);
		s->rx = NULL;
		s->rx_cap = 0;
	}
	return 0;
}

/* Frames of one write when a client has fallen behind: coalesced into one
 * buffer (server frames are unmasked, so header + payload are the same
 * bytes for every subscriber) and handed to lws as raw bytes: one syscall
 * instead of one per frame. Loop thread only, so one scratch buffer. */
#define COALESCE_MAX (64 * 1024)
static unsigned char coalesce_buf[LWS_PRE + COALESCE_MAX];

static size_t ws_header(unsigned char *h, size_t len)
{
	h[0] = 0x81; /* FIN + text */
	if (len < 126) {
		h[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

/* Write several queued frames in one go; returns bytes of frames or -1. */
static int write_coalesced(struct session *s, struct lws *wsi)
{
	unsigned char *p = coalesce_buf + LWS_PRE, *end = p + COALESCE_MAX;
	int frames = 0;
	while (s->q.len) {
		struct outq_ent e = *outq_at(&s->q, 0);
		size_t len = outq_ent_len(&e);
		if ((size_t)(end - p) < len + 10)
			break;
		outq_pop(&s->q, &e);
		p += ws_header(p, len);
		if (e.head) {
			memcpy(p, msg_payload(e.head), e.head->len);
			p += e.head->len;
		}
		memcpy(p, msg_payload(e.body), e.body->len);
		p += e.body->len;
		metrics.bytes_out += (long long)len;
		outq_ent_release(&e);
		frames++;
	}
	metrics.frames_out += frames;
	metrics.writes++;
	metrics.coalesced_writes++;
	size_t n = (size_t)(p - (coalesce_buf + LWS_PRE));
	return lws_write(wsi, coalesce_buf + LWS_PRE, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

/* One frame through lws's framing (so permessage-deflate applies). A
 * frame with a head is joined into one buffer first: the scratch buffer,
 * or a temporary one for a frame bigger than that. 0 or -1. */
static int write_one(struct session *s, struct lws *wsi)
{
	struct outq_ent e;
	outq_pop(&s->q, &e);
	size_t len = outq_ent_len(&e);
	unsigned char *p = (unsigned char *)msg_payload(e.body), *tmp = NULL;
	if (e.head) {
		p = coalesce_buf + LWS_PRE;
		if (len > COALESCE_MAX) {
			tmp = malloc(LWS_PRE + len);
			if (!tmp) {
				outq_ent_release(&e);
				return -1;
			}
			p = tmp + LWS_PRE;
		}
		memcpy(p, msg_payload(e.head), e.head->len);
		memcpy(p + e.head->len, msg_payload(e.body), e.body->len);
	}
	int n = lws_write(wsi, p, len, LWS_WRITE_TEXT);
	free(tmp);
	metrics.frames_out++;
	metrics.writes++;
	metrics.bytes_out += (long long)len;
	outq_ent_release(&e);
	return n < 0 ? -1 : 0;
}

/* One write: all queued frames coalesced when there are several, else the
 * one frame through lws's framing. 0 or -1. */
static int write_some(struct session *s, struct lws *wsi)
{
	if (s->q.len > 1 && !cfg->permessage_deflate &&
	    outq_ent_len(outq_at(&s->q, 0)) + outq_ent_len(outq_at(&s->q, 1)) + 20 <= COALESCE_MAX)
		return write_coalesced(s, wsi);
	return write_one(s, wsi);
}

static int on_writeable(struct session *s, struct lws *wsi)
{
	if (s->close_code && s->q.len == 0) {
		const char *why = s->close_why ? s->close_why : "";
		lws_close_reason(wsi, (enum lws_close_status)s->close_code, (unsigned char *)why,
				 strlen(why));
		return -1;
	}
	if (s->q.len == 0) {
		if (s->draining && !s->proto->drain)
			session_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down", 1);
		return 0;
	}
	int rc = write_some(s, wsi);
	if (rc < 0)
		return -1;
	if (s->q.len || s->close_code || (s->draining && !s->proto->drain))
		lws_callback_on_writable(wsi);
	return 0;
}

static void on_closed(struct session *s)
{
	if (!s->established)
		return;
	s->established = 0;
	flush_del(s);
	if (s->opened)
		s->proto->closed(s);
	outq_free(&s->q);
	free(s->rx);
	clients_remove(&s->cl);
}

static int session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			    size_t len)
{
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return gate_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return proto_for(wsi) ? 0 : 1;
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(s, wsi);
	case LWS_CALLBACK_RECEIVE:
		if (s->established)
			clients_touch(&s->cl);
		return on_receive(s, wsi, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s->established)
			clients_touch(&s->cl);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(s, wsi);
	case LWS_CALLBACK_CLOSED:
		on_closed(s);
		break;
	default:
		/* This protocol is the vhost default (clients that send no
		 * subprotocol land here), so plain HTTP traffic — static files
		 * and their keep-alive completion — reaches this callback too:
		 * hand it to lws's stock HTTP handling. */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
	return 0;
}

const struct lws_protocols session_protocol = {
    .name = "fanout-ws",
    .callback = session_callback,
    .per_session_data_size = sizeof(struct session),
    /* lws allocates this per connection at the upgrade: keep it small.
     * Client requests are small; bigger ones arrive in pieces and are
     * reassembled in on_receive(), up to max_message_bytes. */
    .rx_buffer_size = 512,
};
