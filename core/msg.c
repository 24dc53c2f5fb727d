/*
 * msg.c — owns the refcounted frames (struct msg) that session queues share,
 * their WebSocket headers (written into the headroom once) and their
 * compressed variants. Loop thread only. A msg is freed when its last
 * reference drops, its variants with it.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "ws_frame.h"

_Static_assert(MSG_PRE >= LWS_PRE, "MSG_PRE must cover LWS_PRE");
_Static_assert(MSG_PRE >= WS_HEADER_MAX, "MSG_PRE must hold a ws header");

long long msg_live_count, msg_live_bytes;

struct msg *msg_from_buf(struct buf *b)
{
	if (b->oom || b->head != MSG_PRE)
		return NULL;
	struct msg *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->refs = 1;
	m->queued = 0;
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
	while (m && --m->refs == 0) {
		struct msg *alt = m->alt;
		msg_live_count--;
		msg_live_bytes -= (long long)m->len;
		free(m->data);
		free(m);
		m = alt; /* the variants hang off the original, one reference each */
	}
}

size_t msg_write_header(struct msg *m)
{
	unsigned char h[WS_HEADER_MAX];
	size_t n = ws_frame_header(h, m->op ? m->op : WS_OP_TEXT, m->zbits != 0, m->len);
	memcpy(m->data + MSG_PRE - n, h, n);
	m->hlen = (unsigned char)n;
	return n;
}

struct msg *msg_control(int op, const void *payload, size_t len)
{
	struct msg *m = msg_new(payload, len);
	if (m) {
		m->op = (unsigned char)op;
		msg_write_header(m);
	}
	return m;
}

struct msg *msg_variant(struct msg *m, int zbits)
{
	for (struct msg *v = m->alt; v; v = v->alt)
		if (v->zbits == zbits)
			return v->nogain ? m : v;
	return NULL;
}

struct msg *msg_add_variant(struct msg *m, int zbits, struct msg *v)
{
	if (!v) { /* remember "not worth it" with an empty marker */
		v = msg_new("", 0);
		if (!v)
			return NULL;
		v->nogain = 1;
	}
	v->zbits = (unsigned char)zbits;
	v->alt = m->alt;
	m->alt = v;
	return v->nogain ? m : v;
}
