/*
 * session.h — one WebSocket client connection: the upgrade (lws), then the
 * connection itself (wsconn.h: framing, the bounded send queue of shared
 * frames, batching per loop pass, the close handshake), its place in the
 * list of clients (clients.h) — and the message protocol spoken on it,
 * chosen by the upgrade's path: the native protocol v1 at ws_path (here),
 * tRPC at trpc_path (trpc.c), each a struct session_proto.
 */
#ifndef FANOUT_SESSION_H
#define FANOUT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "clients.h"
#include "guard.h"
#include "hub.h"
#include "outq.h"
#include "wsconn.h"

struct conn;
struct lws;
struct lws_protocols;
struct msg;
struct config;
struct buf;
struct session;

/* A message protocol on the WebSocket connection. */
struct session_proto {
	enum client_kind kind; /* for per-transport metrics */
	/* The connection is up and admitted (limits, origin): greet, set up.
	 * s->wsi is valid during this call only (request headers, query).
	 * 0, or -1 (out of memory: the connection is closed 1011). */
	int (*open)(struct session *s);
	/* One complete message (p[0..len), reassembled, inflated, at most
	 * max_message_bytes; text is valid UTF-8; binary: a binary frame). */
	void (*message)(struct session *s, const char *p, size_t len, int binary);
	/* A message over max_requests_per_s, not carried out: answer it the
	 * protocol's way (native: error rate_limited with its id). NULL: it
	 * is dropped unanswered. Sustained abuse closes 1008 without it. */
	void (*limited)(struct session *s, const char *p, size_t len);
	/* Shutdown began (s->draining is set). NULL: the session closes 1001
	 * once its queue is flushed; else the protocol leads the client away
	 * itself and the session stays until the client or the grace period
	 * ends it. */
	void (*drain)(struct session *s);
	/* 1: with ?connectionParams=1 the client may bring its access token in
	 * its first message instead of the upgrade (tRPC): the gate lets such
	 * an upgrade through without one, and the protocol calls
	 * session_token_set() (or closes the session) before it serves
	 * anything. */
	int token_in_band;
	/* The connection is gone (only after open): release the protocol's
	 * state and its hub subscriptions. */
	void (*closed)(struct session *s);
};

struct session {
	struct wsconn c;   /* the connection (its send queue is c.q) */
	struct lws *wsi;   /* the upgrade's lws connection: valid during open() only */
	struct conn *conn; /* its accounting (conn.h), released when the session ends */
	uint64_t serial;
	struct client cl;	   /* in clients.c's list */
	struct hub_subscriber hub; /* the native protocol's subscriber handle */
	/* The token's claims (NULL claims: tokens off) and the request rate.
	 * Set before proto->open(); a protocol with subscriber handles of its
	 * own points each one's claims at guard_claims(&s->guard). */
	struct guard guard;
	const struct session_proto *proto;
	void *proto_state; /* the protocol's per-connection state */
	int opened;	   /* proto->open() ran */
	int established;
	int draining; /* shutdown began: close 1001 once the queue is flushed */
};

extern const struct lws_protocols session_protocol;

/* Before the first client: c for its keys; the native protocol answers at
 * c->ws_path. */
void session_init(const struct config *c);
/* The WebSocket layer's limits (max_message_bytes, the early-flush size
 * from client_queue_bytes) from c again: a reload changed them. */
void session_limits(const struct config *c);
/* 1 when path (no query) is the upgrade path of a registered protocol. */
int session_has_path(const char *path);
/* 1 when the endpoint at path takes its token in band (token_in_band) and
 * the upgrade asks for it (?connectionParams=1 among its query args). */
int session_token_in_band(const char *path, struct lws *wsi);
/* The token the client brought in band: verified, its claims become the
 * session's (the expiry sweep watches them). 0; 1 when tokens are off
 * (the token is ignored); -1 with *why when it is missing or not valid. */
int session_token_set(struct session *s, const char *token, size_t len, const char **why);
/* Speak proto to upgrades at path (kept by reference). 0 or -1 (full). */
int session_add_proto(const char *path, const struct session_proto *proto);

/* The n-th argument of the upgrade URL's query ("name=value", as sent)
 * into out[len]; its length, or < 0 past the last one. */
int session_query_arg(struct session *s, int n, char *out, size_t len);

/* Queue a frame (takes its own reference). Applies client_queue_bytes:
 * over it the session is closed 4001 and its queue dropped. */
void session_enqueue(struct session *s, struct msg *m);
/* The same for a frame sent as head's bytes followed by m's (head may be
 * NULL): one frame on the wire, two references in the queue. */
void session_enqueue_pair(struct session *s, struct msg *head, struct msg *m);
/* Queue a small control frame built in b (takes b's memory). */
void session_send_buf(struct session *s, struct buf *b);
void session_send_error(struct session *s, const char *id, const char *code, const char *message);
void session_send_ack(struct session *s, const char *type, const char *id, const char *channel);
/* Bytes queued for the client now (what client_queue_bytes caps). */
static inline size_t session_queued(const struct session *s)
{
	return s->c.q.bytes;
}
/* Close with code after (flush=1) or instead of (flush=0) the queued frames. */
void session_close(struct session *s, int code, const char *why, int flush);

#endif
