/*
 * outq.h — a client's send queue: a ring of entries, each a shared frame
 * (struct msg, by reference) optionally preceded by a small per-subscriber
 * head, also by reference. The native WebSocket protocol queues bodies
 * alone; tRPC queues its {"id":N, prefix (one msg per subscription) before
 * the body every tRPC subscriber of the message shares; SSE its id: line.
 * The writer sends head then body as one frame or event: per subscriber a
 * pointer pair, never a copy of the body at queue time.
 *
 * The queue counts its bytes (head + body) for the owner's cap
 * (client_queue_bytes) and the process gauge metrics.queue_bytes. It does
 * not enforce a cap itself. Loop thread only.
 */
#ifndef FANOUT_OUTQ_H
#define FANOUT_OUTQ_H

#include <stddef.h>

struct msg;

struct outq_ent {
	struct msg *head; /* NULL: the body alone */
	struct msg *body;
};

struct outq {
	struct outq_ent *e; /* ring of cap entries */
	size_t first, len, cap;
	size_t bytes; /* head + body bytes queued */
};

/* The memory all queues of the process pin (max_queued_bytes, budget.h):
 * each queued frame once, however many queues hold it, plus its overhead
 * (struct msg, headroom, allocator), plus OUTQ_ENTRY_BYTES per entry. */
#define OUTQ_MSG_OVERHEAD 72
#define OUTQ_ENTRY_BYTES  16
long long outq_pinned(void);
/* What queueing (head, body) once more would add to outq_pinned(). */
long long outq_cost(const struct msg *head, const struct msg *body);

/* Bytes of one entry. */
size_t outq_ent_len(const struct outq_ent *e);
/* Append body (and head, may be NULL), taking a reference to each.
 * 0, or -1 when out of memory (nothing queued). */
int outq_push(struct outq *q, struct msg *head, struct msg *body);
/* The i-th entry from the front (i < q->len). */
struct outq_ent *outq_at(struct outq *q, size_t i);
/* Remove the front entry into *out; its references become the caller's
 * (outq_ent_release). q->len must be > 0. */
void outq_pop(struct outq *q, struct outq_ent *out);
void outq_ent_release(struct outq_ent *e);
/* Replace the body of entry e (in q) by body, in place (a newer pong). */
void outq_set_body(struct outq *q, struct outq_ent *e, struct msg *body);
/* Put body (and head) first, before every other entry. 0 or -1. */
int outq_push_front(struct outq *q, struct msg *head, struct msg *body);
/* Drop every entry after the first keep ones (references released). */
void outq_truncate(struct outq *q, size_t keep);
/* Drop every entry (references released); the ring stays allocated. */
void outq_clear(struct outq *q);
/* Drop every entry and the ring; q is then empty and reusable. */
void outq_free(struct outq *q);

#endif
