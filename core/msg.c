/*
 * msg.c — owns the refcounted frames (struct msg) that session queues share.
 * Loop thread only. A msg is freed when its last queue reference drops.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

_Static_assert(MSG_PRE >= LWS_PRE, "MSG_PRE must cover LWS_PRE");

long long msg_live_count, msg_live_bytes;

struct msg *msg_from_buf(struct buf *b)
{
	if (b->oom || b->head != MSG_PRE)
		return NULL;
	struct msg *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	m->refs = 1;
	m->len = b->len;
	m->data = buf_steal(b);
	if (!m->data) { /* empty buffer: allocate headroom anyway */
		m->data = malloc(MSG_PRE + 1);
		if (!m->data) {
			free(m);
			return NULL;
		}
	}
	msg_live_count++;
	msg_live_bytes += (long long)m->len;
	return m;
}

struct msg *msg_new(const char *p, size_t len)
{
	struct buf b;
	buf_init(&b, MSG_PRE);
	if (buf_append(&b, p, len)) {
		buf_free(&b);
		return NULL;
	}
	return msg_from_buf(&b);
}

void msg_unref(struct msg *m)
{
	if (!m || --m->refs > 0)
		return;
	msg_live_count--;
	msg_live_bytes -= (long long)m->len;
	free(m->data);
	free(m);
}
