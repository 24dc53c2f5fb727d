/*
 * buf.h — a growable byte buffer with optional headroom, used to build
 * frames. The first `head` bytes are reserved (LWS_PRE for ws frames) so a
 * frame can be handed to lws_write() without a copy.
 */
#ifndef FANOUT_BUF_H
#define FANOUT_BUF_H

#include <stddef.h>

struct buf {
	char *p;     /* allocation; data starts at p + head */
	size_t head; /* reserved headroom */
	size_t len;  /* bytes of data after the headroom */
	size_t cap;  /* bytes allocated after the headroom */
	int oom;     /* set once an allocation failed; later appends are no-ops */
};

void buf_init(struct buf *b, size_t head);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
int buf_reserve(struct buf *b, size_t more);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline char *buf_data(const struct buf *b)
{
	return b->p ? b->p + b->head : NULL;
}
/* Give the allocation away (caller frees b->p); b is reset to empty. */
char *buf_steal(struct buf *b);

#endif
