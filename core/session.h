/*
 * session.h — the native WebSocket transport (protocol v1 at ws_path) and
 * the session layer: one client's bounded send queue of shared frames, its
 * inbound reassembly buffer, its hub subscriber handle; the list of every
 * session, the client cap, and draining at shutdown.
 */
#ifndef FANOUT_SESSION_H
#define FANOUT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

struct lws;
struct lws_protocols;
struct msg;
struct config;
struct buf;

struct session {
	struct lws *wsi;
	uint64_t serial;
	struct session *prev, *next; /* all sessions (this layer's list) */
	struct hub_subscriber hub;   /* ops: the native protocol's sink table */

	/* send queue: ring of shared frames */
	struct msg **q;
	size_t q_head, q_len, q_cap;
	size_t q_bytes;

	/* inbound message being reassembled */
	char *rx;
	size_t rx_len, rx_cap;

	int close_code; /* nonzero: close with this once flushed / at once */
	const char *close_why;
	int established;
	int draining; /* shutdown: close 1001 once the queue is empty */

	/* on the list of sessions to write at the end of this dispatch */
	struct session *flush_prev, *flush_next;
	int in_flush;
};

extern const struct lws_protocols session_protocol;

/* Configure the layer before the first client: c for its keys, max_clients
 * (after clamping to the fd limit: over it a new client is closed 1013),
 * on_drained called when draining and the last session has closed. */
void session_init(const struct config *c, long long max_clients, void (*on_drained)(void));
/* Begin draining (shutdown): every session closes 1001 once its queue is
 * flushed, a new one is closed 1001 at once. Returns the sessions open. */
long long session_drain_all(void);
/* 1 once session_drain_all() was called. */
int session_draining(void);
/* Sessions open now. */
long long session_count(void);

/* Queue a frame (takes its own reference). Applies client_queue_bytes:
 * over it the session is closed 4001 and its queue dropped. */
void session_enqueue(struct session *s, struct msg *m);
/* Queue a small control frame built in b (takes b's memory). */
void session_send_buf(struct session *s, struct buf *b);
void session_send_error(struct session *s, const char *id, const char *code, const char *message);
void session_send_ack(struct session *s, const char *type, const char *id, const char *channel);
/* Write every session that got frames during the current loop dispatch
 * (called by the loop layer when a watch, timer or post callback returns). */
void session_flush_pending(void);
/* Close with code after (flush=1) or instead of (flush=0) the queued frames. */
void session_close(struct session *s, int code, const char *why, int flush);

#endif
