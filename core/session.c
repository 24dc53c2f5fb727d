/*
 * session.c — owns each WebSocket client connection from its upgrade on:
 * the lws "fanout-ws" protocol callback (which requests may upgrade here:
 * HTTP/1.1 at a registered path; the permessage-deflate answer), the
 * takeover of the connection right after the 101 (wsconn.c drives it from
 * then on), admission (max_clients, draining, origin), the bounded send
 * queue's cap (client_queue_bytes: over it the client is a slow consumer,
 * closed 4001), and the message protocol on the connection, picked by the
 * upgrade's path: the native protocol v1 at ws_path (request dispatch to
 * the hub, its hub sink table; frames built by protocol.c once per event).
 *
 * Loop thread only. Allocates one struct session per connection at the
 * upgrade (lws keeps only a pointer to it in its per-session data) and
 * frees it when wsconn reports the connection closed.
 */
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_TAG "session"
#include "auth.h"
#include "budget.h"
#include "clients.h"
#include "config.h"
#include "conn.h"
#include "gate.h"
#include "guard.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "outq.h"
#include "protocol.h"
#include "refuse.h"
#include "session.h"
#include "ws_deflate.h"
#include "wsconn.h"

/* What lws keeps per connection: the session once there is one, and the
 * deflate answer made while the 101 was written. */
struct ws_pss {
	struct wsconn *c;
	int zbits;
};

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

/* The WebSocket layer's limits from c (at start-up and after a reload). */
void session_limits(const struct config *c)
{
	struct wsconn_config wc = {
	    .max_message_bytes = (uint64_t)c->max_message_bytes,
	    .ping_interval_s = (int)c->ping_interval_s,
	    .flush_early_bytes = (size_t)c->client_queue_bytes / 4,
	};
	if (wc.flush_early_bytes > 65536)
		wc.flush_early_bytes = 65536;
	wsconn_config(&wc);
}

void session_init(const struct config *c)
{
	session_limits(c);
	cfg = c;
	protos[0].path = c->ws_path;
	protos[0].proto = &native_proto;
	n_protos = 1;
	gate_set_endpoints(session_has_path, session_token_in_band);
}

int session_add_proto(const char *path, const struct session_proto *proto)
{
	if (n_protos == MAX_PROTOS)
		return -1;
	protos[n_protos].path = path;
	protos[n_protos++].proto = proto;
	return 0;
}

static int query_has(struct lws *wsi, const char *arg)
{
	char frag[64];
	for (int n = 0; n < 64; n++) {
		int len =
		    lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, n);
		if (len < 0)
			return 0;
		if (!strcmp(frag, arg))
			return 1;
	}
	return 0;
}

int session_token_in_band(const char *path, struct lws *wsi)
{
	for (size_t i = 0; i < n_protos; i++)
		if (!strcmp(path, protos[i].path))
			return protos[i].proto->token_in_band &&
			       query_has(wsi, "connectionParams=1");
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
		session_close(s, WS_CLOSE_GOING_AWAY, "server shutting down", 1);
}

/* clients.c: nothing arrived for idle_timeout_s. */
static void idle(struct client *c)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, cl));
	session_close(s, WS_CLOSE_GOING_AWAY, "idle timeout", 0);
}

void session_close(struct session *s, int code, const char *why, int flush)
{
	wsconn_close(&s->c, code, why, flush);
}

void session_enqueue(struct session *s, struct msg *m)
{
	session_enqueue_pair(s, NULL, m);
}

void session_enqueue_pair(struct session *s, struct msg *head, struct msg *m)
{
	if (s->c.closing || s->c.state >= WSC_LINGER || !s->established)
		return;
	size_t len = (head ? head->len : 0) + m->len;
	if ((long long)(s->c.q.bytes + len) > cfg->client_queue_bytes) {
		metrics.slow_client_disconnects++;
		log_info("client #%llu (%s) is too slow (%zu bytes queued): closing 4001",
			 (unsigned long long)s->serial, s->conn ? s->conn->ip : "-", s->c.q.bytes);
		session_close(s, 4001, "slow consumer", 0);
		return;
	}
	if (budget_admit(&s->cl, head, m)) { /* this one is furthest behind */
		session_close(s, 4001, "slow consumer (max_queued_bytes)", 0);
		return;
	}
	/* Written at the end of this loop pass, with every other frame the
	 * pass produced for this client, in one write. */
	wsconn_send(&s->c, head, m);
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

static void ws_subscribed(struct hub_subscriber *h, const char *id, const char *channel,
			  const char *epoch, uint64_t offset, int recovered)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	proto_subscribed(&b, id, channel, epoch, offset, recovered);
	session_send_buf(from_hub(h), &b);
}

static void ws_published(struct hub_subscriber *h, const char *id, const char *channel,
			 const char *epoch, uint64_t offset)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	proto_published(&b, id, channel, epoch, offset);
	session_send_buf(from_hub(h), &b);
}

static const struct hub_sink_ops ws_ops = {
    .name = "ws",
    .frame = ws_frame,
    .deliver = ws_deliver,
    .ack = ws_ack,
    .error = ws_error,
    .subscribed = ws_subscribed,
    .published = ws_published,
};

/* ---- the native protocol (protocol v1 at ws_path) ---- */

/* {"type":"auth","token":…}: a fresh token replaces the claims. */
static void on_auth(struct session *s, const struct proto_request *req)
{
	const char *why;
	char msg[160];
	if (guard_refresh(&s->guard, auth_process_key(), req->token, req->token_len,
			  (long long)time(NULL), &why)) {
		snprintf(msg, sizeof(msg), "token refused: %s", why);
		session_send_error(
		    s, req->id, auth_process_key() ? PROTO_E_FORBIDDEN : PROTO_E_BAD_REQUEST, msg);
		return;
	}
	metrics.token_refreshes++;
	session_send_ack(s, "authed", req->id, NULL);
	hub_claims_changed(&s->hub);
}

/* A message over max_requests_per_s: not carried out, answered
 * rate_limited (with its id when it has one). */
static void native_limited(struct session *s, const char *p, size_t len)
{
	struct proto_request req;
	struct proto_error err;
	const char *id = "";
	if (!proto_parse(p, len, &req, &err))
		id = req.id;
	else
		id = err.id;
	session_send_error(s, id, PROTO_E_RATE_LIMITED, "over max_requests_per_s: not done");
	proto_request_clear(&req);
}

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
		hub_subscribe_at(&s->hub, req.channel, req.id, NULL,
				 req.since.set ? &req.since : NULL);
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
	case PROTO_AUTH:
		on_auth(s, &req);
		break;
	}
	proto_request_clear(&req);
}

/* channel=NAME or channel=NAME@EPOCH:OFFSET (a resume, like "since"). */
static int query_channel(void *arg, const char *value, size_t len)
{
	struct session *s = arg;
	char name[PROTO_CHANNEL_MAX + 1];
	struct proto_since since;
	const char *why, *code = proto_query_subscription(value, len, name, &since, &why);
	if (code) {
		session_send_error(s, "", code, why);
		return 0;
	}
	hub_subscribe_at(&s->hub, name, "", NULL, since.set ? &since : NULL);
	return 0;
}

static void subscribe_from_query(struct session *s)
{
	if (!s->wsi)
		return;
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
    .limited = native_limited,
    .closed = native_closed,
};

/* ---- the connection ---- */

/* budget.c: cut as a slow consumer (max_queued_bytes); the queue goes at
 * once. 0 when it is closing already (nothing to cut). */
static int slow(struct client *cl)
{
	struct session *s = (struct session *)((char *)cl - offsetof(struct session, cl));
	if (s->c.closing || s->c.state >= WSC_LINGER)
		return 0;
	log_info("client #%llu (%s) is furthest behind (%zu bytes queued) at max_queued_bytes: "
		 "closing 4001",
		 (unsigned long long)s->serial, s->conn ? s->conn->ip : "-", s->c.q.bytes);
	session_close(s, 4001, "slow consumer (max_queued_bytes)", 0);
	return 1;
}

/* clients.c's token sweep: the token ran out without a refresh. */
static void token_expired(struct client *cl)
{
	struct session *s = (struct session *)((char *)cl - offsetof(struct session, cl));
	metrics.clients_closed_token_expired++;
	session_close(s, 4003, "token expired", 0);
}

/* The token the gate accepted (tokens on) and the request-rate bucket:
 * from now on the hub checks the claims on every subscribe and publish.
 * 0, or -1 when the session is being closed (4003). */
static int admit_token(struct session *s, struct lws *wsi)
{
	struct auth_claims claims;
	const char *why = NULL;
	char tok[8];
	int t = gate_claims(wsi, s->conn, &claims, &why);
	guard_init(&s->guard, cfg->max_requests_per_s, loop_now_ms(), t == 0 ? &claims : NULL);
	s->hub.claims = guard_claims(&s->guard);
	if (t < 0 && s->proto->token_in_band && query_has(wsi, "connectionParams=1") &&
	    gate_request_token(wsi, tok, sizeof(tok)) == 0)
		return 0; /* it comes in the first message: session_token_set() */
	if (t < 0) {	  /* expired since the gate looked (or no gate ran) */
		metrics.clients_closed_token_expired++;
		session_close(s, 4003, "token expired", 0);
		return -1;
	}
	if (t == 0) {
		s->cl.guard = &s->guard;
		s->cl.token_expired = token_expired;
		clients_watch_tokens();
	}
	return 0;
}

int session_token_set(struct session *s, const char *token, size_t len, const char **why)
{
	const struct auth_key *k = auth_process_key();
	if (!k)
		return 1;
	if (!token || !len) {
		*why = "a token is required (connectionParams.token)";
		return -1;
	}
	if (guard_refresh(&s->guard, k, token, len, (long long)time(NULL), why))
		return -1;
	s->hub.claims = guard_claims(&s->guard);
	s->cl.guard = &s->guard;
	s->cl.token_expired = token_expired;
	clients_watch_tokens();
	return 0;
}

static void conn_message(struct wsconn *c, int opcode, const char *p, size_t len)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, c));
	if (!s->opened || s->c.closing)
		return;
	/* Every message counts against max_requests_per_s. */
	switch (guard_request(&s->guard, loop_now_ms())) {
	case GUARD_OK:
		break;
	case GUARD_LIMITED:
		metrics.requests_rate_limited++;
		if (s->proto->limited)
			s->proto->limited(s, p, len);
		return;
	case GUARD_ABUSE:
		metrics.clients_closed_abuse++;
		log_info("client #%llu (%s) kept sending over max_requests_per_s: closing 1008",
			 (unsigned long long)s->serial, s->conn ? s->conn->ip : "-");
		session_close(s, WS_CLOSE_POLICY, "request rate too high", 0);
		return;
	}
	if (!len && opcode == WS_OP_TEXT) {
		/* An empty message is not a request (and not a UTF-8 problem). */
		session_send_error(s, "", PROTO_E_BAD_JSON, "empty message");
		return;
	}
	s->proto->message(s, p, len, opcode == WS_OP_BINARY);
}

static void conn_closed(struct wsconn *c)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, c));
	if (s->opened)
		s->proto->closed(s);
	s->hub.claims = NULL;
	guard_free(&s->guard);
	clients_remove(&s->cl);
	if (s->conn)
		conn_release(s->conn);
	free(s);
}

/* Something arrived (a frame of any kind, a pong): not idle. */
static void conn_activity(struct wsconn *c)
{
	struct session *s = (struct session *)((char *)c - offsetof(struct session, c));
	clients_touch(&s->cl);
}

static const struct wsconn_ops conn_ops = {
    .message = conn_message,
    .closed = conn_closed,
    .activity = conn_activity,
};

static int on_established(struct ws_pss *pss, struct lws *wsi)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	if (wsconn_adopt(&s->c, wsi, &conn_ops, pss->zbits)) {
		free(s);
		return -1; /* lws closes it */
	}
	pss->c = &s->c;
	s->c.slot = &pss->c;
	/* The connection outlives lws's wsi now: its accounting (per-IP
	 * count, address for logs) moves from the wsi to the session. */
	s->conn = conn_of(wsi);
	if (s->conn) {
		lws_set_opaque_user_data(wsi, NULL);
		s->hub.addr = s->conn->client; /* max_channels_per_ip */
		s->hub.has_addr = 1;
	}
	if (pss->zbits)
		metrics.deflate_clients++;
	s->wsi = wsi;
	s->serial = ++serials;
	s->established = 1;
	s->proto = proto_for(wsi);
	if (!s->proto) /* the filter let it in: cannot happen */
		s->proto = &native_proto;
	s->cl.kind = s->proto->kind;
	s->cl.drain = drain;
	s->cl.idle = idle;
	s->cl.q = &s->c.q;
	s->cl.slow = slow;

	switch (clients_add(&s->cl)) {
	case CLIENTS_DRAINING:
		session_close(s, WS_CLOSE_GOING_AWAY, "server shutting down", 0);
		goto out;
	case CLIENTS_FULL:
		refuse_log(REFUSE_MAX_CLIENTS, s->conn ? s->conn->ip : "-",
			   "max_clients reached: close 1013");
		session_close(s, WS_CLOSE_TRY_AGAIN, "server full", 0);
		goto out;
	case CLIENTS_OK:
		break;
	}
	log_debug("client #%llu connected from %s", (unsigned long long)s->serial,
		  s->conn ? s->conn->ip : "-");
	if (admit_token(s, wsi))
		goto out;
	s->opened = 1;
	if (s->proto->open(s))
		session_close(s, WS_CLOSE_INTERNAL, "out of memory", 0);
out:
	s->wsi = NULL; /* lws drops its connection on its next turn */
	return 0;
}

/* While lws writes the 101: answer a permessage-deflate offer ourselves
 * (lws's own extension is not used: see ws_deflate.h). */
static int add_headers(struct ws_pss *pss, struct lws *wsi, struct lws_process_html_args *args)
{
	char offer[1024], answer[WS_DEFLATE_RESPONSE_MAX];
	pss->zbits = 0;
	if (!cfg->permessage_deflate || !lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE))
		return 0;
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS);
	if (n <= 0 || n >= (int)sizeof(offer) ||
	    lws_hdr_copy(wsi, offer, sizeof(offer), WSI_TOKEN_EXTENSIONS) <= 0)
		return 0;
	int zbits = ws_deflate_negotiate(offer, strlen(offer), answer);
	if (!zbits)
		return 0;
	int k =
	    snprintf(args->p, (size_t)args->max_len, "Sec-WebSocket-Extensions: %s\r\n", answer);
	if (k <= 0 || k >= args->max_len)
		return 0; /* no room: run uncompressed */
	args->p += k;
	args->max_len -= k;
	pss->zbits = zbits;
	return 0;
}

static int session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			    size_t len)
{
	struct ws_pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return gate_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return proto_for(wsi) ? 0 : 1;
	case LWS_CALLBACK_ADD_HEADERS:
		if (pss && lws_hdr_total_length(wsi, WSI_TOKEN_KEY))
			return add_headers(pss, wsi, in);
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(pss, wsi);
	case LWS_CALLBACK_RECEIVE:
		if (pss->c)
			wsconn_lws_receive(pss->c);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (pss->c)
			wsconn_lws_writeable(pss->c);
		return 0;
	case LWS_CALLBACK_CLOSED:
		if (pss->c)
			wsconn_lws_closed(pss->c);
		return 0;
	default:
		/* This protocol is the vhost default (clients that send no
		 * subprotocol land here), so plain HTTP traffic — static files
		 * and their keep-alive completion — reaches this callback too:
		 * hand it to lws's stock HTTP handling. */
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

const struct lws_protocols session_protocol = {
    .name = "fanout-ws",
    .callback = session_callback,
    .per_session_data_size = sizeof(struct ws_pss),
    /* lws parses nothing on the connection after the upgrade (it is taken
     * over in ESTABLISHED), so its per-connection rx buffer stays small. */
    .rx_buffer_size = 128,
};
