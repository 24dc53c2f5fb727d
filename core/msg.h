/*
 * msg.h — one outgoing ws frame shared by every session it is queued on.
 *
 * A broker payload is turned into a "message" frame once (protocol.c) and
 * copied once into a msg with MSG_PRE bytes of headroom; each subscriber's
 * queue holds a reference, not a copy. The WebSocket header is written into
 * the headroom once, the first time the frame goes out (msg_wire()), so the
 * bytes on the wire are one contiguous, shared run: a write is one iovec per
 * frame. A permessage-deflate variant of the frame (compressed once, for
 * every subscriber with the same parameters) hangs off the original and
 * dies with it. Loop thread only (plain int refcount).
 */
#ifndef FANOUT_MSG_H
#define FANOUT_MSG_H

#include <stddef.h>

#include "buf.h"

struct msg {
	int refs;
	int queued;	      /* send-queue entries holding it (budget.c counts it once) */
	size_t len;	      /* payload bytes (after the headroom) */
	char *data;	      /* allocation: MSG_PRE headroom + len bytes */
	unsigned char hlen;   /* ws header bytes in the headroom; 0 = not written yet */
	unsigned char op;     /* ws opcode; 0 = text (every protocol frame) */
	unsigned char zbits;  /* on a compressed variant: its window bits (RSV1 set) */
	unsigned char nogain; /* variant marker: compressing did not make it smaller */
	struct msg *alt;      /* compressed variants, chained; owned by this msg */
};

/* Headroom reserved before each frame (LWS_PRE, checked in msg.c). */
#define MSG_PRE 16

/* Take over a buffer built with buf_init(b, MSG_PRE); b is reset. NULL on OOM. */
struct msg *msg_from_buf(struct buf *b);
/* A copy of len bytes (for small control frames). */
struct msg *msg_new(const char *p, size_t len);
static inline struct msg *msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}
void msg_unref(struct msg *m);
static inline char *msg_payload(struct msg *m)
{
	return m->data + MSG_PRE;
}

/* The frame as it goes on the wire (header + payload, contiguous): writes
 * the header into the headroom the first time. */
static inline const char *msg_wire(struct msg *m, size_t *len);
/* A control frame (close, ping, pong) with its header written. NULL on OOM. */
struct msg *msg_control(int op, const void *payload, size_t len);
/* The compressed variant of m for window bits zbits, if one was made: the
 * variant, m itself when compressing was not worth it, or NULL. */
struct msg *msg_variant(struct msg *m, int zbits);
/* Attach v (built with msg_from_buf, payload compressed, or NULL for "not
 * worth it") as m's variant for zbits; m owns it. Returns what
 * msg_variant() will return from now on, or NULL on OOM. */
struct msg *msg_add_variant(struct msg *m, int zbits, struct msg *v);

size_t msg_write_header(struct msg *m);
static inline const char *msg_wire(struct msg *m, size_t *len)
{
	size_t h = m->hlen ? m->hlen : msg_write_header(m);
	*len = h + m->len;
	return m->data + MSG_PRE - h;
}

/* Messages alive right now and their bytes (for /metrics). */
extern long long msg_live_count, msg_live_bytes;

#endif
