/*
 * session.h — one WebSocket client: its bounded send queue of shared
 * frames, its inbound reassembly buffer, its hub state.
 */
#ifndef FANOUT_SESSION_H
#define FANOUT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

struct lws;
struct lws_protocols;
struct msg;

struct session {
	struct lws *wsi;
	uint64_t serial;
	struct session *prev, *next; /* all sessions (server.c's list) */
	struct hub_client hub;

	/* send queue: ring of shared frames */
	struct msg **q;
	size_t q_head, q_len, q_cap;
	size_t q_bytes;

	/* inbound message being reassembled */
	char *rx;
	size_t rx_len, rx_cap;

	int close_code;       /* nonzero: close with this once flushed / at once */
	const char *close_why;
	int established;
	int draining;         /* shutdown: close 1001 once the queue is empty */

	/* on the list of sessions to write at the end of this dispatch */
	struct session *flush_prev, *flush_next;
	int in_flush;
};

extern const struct lws_protocols session_protocol;

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
