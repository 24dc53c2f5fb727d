/*
 * msg.h — one outgoing ws frame shared by every session it is queued on.
 *
 * A broker payload is turned into a "message" frame once (protocol.c) and
 * copied once into a msg with LWS_PRE bytes of headroom; each subscriber's
 * queue holds a reference, not a copy. Loop thread only (plain int refcount).
 */
#ifndef FANOUT_MSG_H
#define FANOUT_MSG_H

#include <stddef.h>

#include "buf.h"

struct msg {
	int refs;
	size_t len;  /* payload bytes (after the headroom) */
	char *data;  /* allocation: MSG_PRE headroom + len bytes */
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

/* Messages alive right now and their bytes (for /metrics). */
extern long long msg_live_count, msg_live_bytes;

#endif
