/*
 * outq.c — owns the ring of (head, body) frame references of a client's
 * send queue (outq.h). Loop thread only. The ring is allocated by the first
 * push and doubled when full (so steady-state queueing allocates nothing),
 * freed by outq_free(); each entry holds one reference to each of its
 * msgs, released when the entry is popped and released, or cleared. Every
 * entry taken and let go is counted in the memory all queues pin (each
 * frame once, however many queues hold it: msg->queued), which budget.c
 * holds against max_queued_bytes.
 */
#include <stdlib.h>

#include "metrics.h"
#include "msg.h"
#include "outq.h"

static long long pinned; /* all queues: distinct frames + entries (outq.h) */

long long outq_pinned(void)
{
	return pinned;
}

static long long cost_hold(struct msg *m)
{
	return m && m->queued++ == 0 ? (long long)m->len + OUTQ_MSG_OVERHEAD : 0;
}

static long long cost_drop(struct msg *m)
{
	return m && --m->queued == 0 ? (long long)m->len + OUTQ_MSG_OVERHEAD : 0;
}

/* An entry took / let go of head (may be NULL) and body. */
static void budget_hold(struct msg *head, struct msg *body)
{
	pinned += cost_hold(head) + cost_hold(body) + OUTQ_ENTRY_BYTES;
	metrics.queue_pinned_bytes = pinned;
}

static void budget_drop(struct msg *head, struct msg *body)
{
	pinned -= cost_drop(head) + cost_drop(body) + OUTQ_ENTRY_BYTES;
	metrics.queue_pinned_bytes = pinned;
}

long long outq_cost(const struct msg *head, const struct msg *body)
{
	long long n = OUTQ_ENTRY_BYTES;
	if (head && !head->queued)
		n += (long long)head->len + OUTQ_MSG_OVERHEAD;
	if (!body->queued)
		n += (long long)body->len + OUTQ_MSG_OVERHEAD;
	return n;
}

size_t outq_ent_len(const struct outq_ent *e)
{
	return (e->head ? e->head->len : 0) + e->body->len;
}

static int grow(struct outq *q)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct outq_ent *n = malloc(cap * sizeof(*n));
		if (!n)
			return -1;
		for (size_t i = 0; i < q->len; i++)
			n[i] = q->e[(q->first + i) % q->cap];
		free(q->e);
		q->e = n;
		q->cap = cap;
		q->first = 0;
	}
	return 0;
}

static void fill(struct outq *q, struct outq_ent *e, struct msg *head, struct msg *body)
{
	q->len++;
	e->head = head ? msg_ref(head) : NULL;
	e->body = msg_ref(body);
	budget_hold(e->head, e->body);
	size_t n = outq_ent_len(e);
	q->bytes += n;
	metrics.queue_bytes += (long long)n;
}

int outq_push(struct outq *q, struct msg *head, struct msg *body)
{
	if (grow(q))
		return -1;
	fill(q, &q->e[(q->first + q->len) % q->cap], head, body);
	return 0;
}

int outq_push_front(struct outq *q, struct msg *head, struct msg *body)
{
	if (grow(q))
		return -1;
	q->first = (q->first + q->cap - 1) % q->cap;
	fill(q, &q->e[q->first], head, body);
	return 0;
}

void outq_truncate(struct outq *q, size_t keep)
{
	while (q->len > keep) {
		struct outq_ent *e = outq_at(q, q->len - 1);
		size_t n = outq_ent_len(e);
		q->len--;
		q->bytes -= n;
		metrics.queue_bytes -= (long long)n;
		budget_drop(e->head, e->body);
		outq_ent_release(e);
	}
}

struct outq_ent *outq_at(struct outq *q, size_t i)
{
	return &q->e[(q->first + i) % q->cap];
}

void outq_pop(struct outq *q, struct outq_ent *out)
{
	*out = q->e[q->first];
	budget_drop(out->head, out->body);
	q->first = (q->first + 1) % q->cap;
	q->len--;
	size_t n = outq_ent_len(out);
	q->bytes -= n;
	metrics.queue_bytes -= (long long)n;
}

void outq_set_body(struct outq *q, struct outq_ent *e, struct msg *body)
{
	long long d = (long long)body->len - (long long)e->body->len;
	budget_drop(NULL, e->body);
	msg_unref(e->body);
	e->body = msg_ref(body);
	budget_hold(NULL, e->body);
	q->bytes = (size_t)((long long)q->bytes + d);
	metrics.queue_bytes += d;
}

void outq_ent_release(struct outq_ent *e)
{
	msg_unref(e->head);
	msg_unref(e->body);
	e->head = e->body = NULL;
}

void outq_clear(struct outq *q)
{
	struct outq_ent e;
	while (q->len) {
		outq_pop(q, &e);
		outq_ent_release(&e);
	}
}

void outq_free(struct outq *q)
{
	outq_clear(q);
	free(q->e);
	q->e = NULL;
	q->cap = q->first = 0;
}
