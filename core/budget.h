/*
 * budget.h — max_queued_bytes: one process-wide budget for the memory all
 * clients' send queues pin, whatever their transport. Per-client caps
 * (client_queue_bytes) alone let N slow clients on N channels hold N times
 * the cap; this bounds the sum.
 *
 * What counts (outq_pinned(), outq.h): each distinct frame held by at
 * least one queue, once (its bytes plus OUTQ_MSG_OVERHEAD), and
 * OUTQ_ENTRY_BYTES per queue entry (the references). A frame shared by
 * 10,000 subscribers is one frame, so a broadcast burst to many clients
 * that are a little behind costs what it really costs.
 *
 * At the budget: before a transport queues a frame it calls budget_admit();
 * when the frame would take the total past max_queued_bytes, the clients
 * furthest behind (most bytes queued) are closed as slow consumers (4001)
 * until the total is back under 7/8 of the budget, so the next burst does
 * not cut again at once. Loop thread only.
 */
#ifndef FANOUT_BUDGET_H
#define FANOUT_BUDGET_H

#include <stddef.h>

struct msg;
struct client;
struct config;

/* The budget for this process: c->max_queued_bytes, or when that is
 * "auto" (-1) a quarter of the memory the process may use (RAM, or its
 * cgroup's memory.max when lower), at most 1 GiB, divided by the workers.
 * Returns the budget in bytes. */
long long budget_init(const struct config *c);
long long budget_limit(void);

/*
 * Before queueing head (may be NULL) and body for self: 0 — go on (other
 * clients may have been closed 4001 to make room); -1 — self is the client
 * furthest behind: do not queue, close it as a slow consumer (4001).
 */
int budget_admit(struct client *self, struct msg *head, struct msg *body);

#endif
