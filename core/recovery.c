/*
 * recovery.c — owns positions (recovery.h): per positioned channel its
 * epoch, the top offset fanned out by this instance, a ring of the most
 * recent messages (refcounted items holding the payload and the frames
 * each transport built for it, so resuming clients are served from memory
 * without a broker round trip or a second framing), the frames held while a hole
 * is repaired, and the subscribers waiting for their recovery; plus the
 * table of top()/history() requests to backends (capped in flight, the
 * rest queued in order) and the recovery metrics.
 *
 * The channel's frames always go out through one path, ch_fan(): it
 * advances the top, keeps the frame in the ring and hands it to the hub's
 * fan_out hook, which queues it to live subscribers and gives it back
 * (pos_sub_buffer) for subscribers still recovering. A recovering
 * subscriber therefore collects exactly the frames after its base; its
 * replay is history (since, base] + those frames, checked to be contiguous
 * before it is sent, or nothing.
 *
 * Work per message: one ring push (a reference) and a compare per waiting
 * subscriber; per resume: the replayed references; per history item: one
 * framing. Loop thread only. Allocates the channel states, rings, held and
 * buffered frame arrays, requests and waiting-subscriber states; each is
 * freed when its channel, request or subscriber goes (pos_free() frees the
 * rest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fanout/plugin.h>

#define LOG_TAG "recovery"
#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "recovery.h"

/* ---- a queue of (offset, frame) references ---- */

struct ent {
	uint64_t off; /* the message's offset; 0: a gap or unpositioned message */
	struct pos_item *m;
};

struct q {
	struct ent *e;
	size_t head, n, cap;
};

static int q_grow(struct q *q)
{
	size_t cap = q->cap ? q->cap * 2 : 8;
	struct ent *e = malloc(cap * sizeof(*e));
	if (!e)
		return -1;
	for (size_t i = 0; i < q->n; i++)
		e[i] = q->e[(q->head + i) % q->cap];
	free(q->e);
	q->e = e;
	q->cap = cap;
	q->head = 0;
	return 0;
}

static struct ent *q_at(const struct q *q, size_t i)
{
	return &q->e[(q->head + i) % q->cap];
}

/* Append (a new reference to m). */
static int q_push(struct q *q, uint64_t off, struct pos_item *m)
{
	if (q->n == q->cap && q_grow(q))
		return -1;
	*q_at(q, q->n) = (struct ent){off, pos_item_ref(m)};
	q->n++;
	return 0;
}

static int q_push_front(struct q *q, uint64_t off, struct pos_item *m)
{
	if (q->n == q->cap && q_grow(q))
		return -1;
	q->head = (q->head + q->cap - 1) % q->cap;
	q->e[q->head] = (struct ent){off, pos_item_ref(m)};
	q->n++;
	return 0;
}

/* Drop the oldest; returns its offset. */
static uint64_t q_pop(struct q *q)
{
	struct ent *e = q_at(q, 0);
	uint64_t off = e->off;
	pos_item_unref(e->m);
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return off;
}

static void q_clear(struct q *q)
{
	while (q->n)
		q_pop(q);
}

static void q_free(struct q *q)
{
	q_clear(q);
	free(q->e);
	*q = (struct q){0};
}

/* ---- items ---- */

static const char *instance; /* the config's, in frames of history items */

struct pos_item *pos_item_new(enum pos_item_kind kind, const char *epoch, uint64_t offset,
			      struct msg *frame, const char *reason)
{
	struct pos_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	if (reason && !(it->reason = strdup(reason))) {
		free(it);
		return NULL;
	}
	it->refs = 1;
	it->kind = kind;
	it->offset = offset;
	it->frame = msg_ref(frame);
	if (epoch) {
		it->positioned = 1;
		snprintf(it->epoch, sizeof(it->epoch), "%s", epoch);
	}
	return it;
}

void pos_item_unref(struct pos_item *it)
{
	if (!it || --it->refs > 0)
		return;
	for (int i = 0; i < it->n_frames; i++)
		msg_unref(it->frames[i].m);
	msg_unref(it->frame);
	free(it->reason);
	free(it);
}

/* Frame a message or gap natively and wrap it in an item; NULL on OOM. */
static struct pos_item *item_make(enum pos_item_kind kind, const char *channel, const char *epoch,
				  uint64_t offset, const void *data, size_t len, const char *reason)
{
	struct buf out;
	int r;
	buf_init(&out, MSG_PRE);
	if (kind == POS_GAP)
		r = proto_gap_at(&out, channel, reason, epoch, offset);
	else
		r = proto_message_at(&out, channel, instance, 1, offset, data, len, NULL);
	struct msg *m = r ? NULL : msg_from_buf(&out);
	if (!m) {
		buf_free(&out);
		return NULL;
	}
	struct pos_item *it = pos_item_new(kind, epoch, offset, m, reason);
	msg_unref(m);
	return it;
}

/* ---- state ---- */

enum req_kind { RQ_TOP, RQ_REPAIR, RQ_RECOVER };

struct pos_req {
	struct pos_req *hnext;	       /* token hash chain */
	struct pos_req *qnext;	       /* FIFO of requests waiting for a slot */
	struct pos_req *cprev, *cnext; /* the channel's recover requests */
	uint64_t token;
	enum req_kind kind;
	struct pos_chan *pc; /* NULL: orphaned (the channel went, or given up) */
	char epoch[PROTO_EPOCH_MAX + 1];
	uint64_t after, upto; /* history wanted: (after, upto] */
	struct q items;	      /* framed history items */
	int bad;	      /* items out of order, too many, or dropped */
	int issued;	      /* sent to the backend (counted in flight) */
	int queued;	      /* waiting for a slot (recovery_max_requests) */
	int delayed;	      /* waiting until send_at (a retry) */
	uint64_t send_at;
	uint64_t deadline;
	struct pos_sub *waiters; /* RQ_RECOVER: subscribers served by it */
};

struct pos_chan {
	struct pos_chan *prev, *next; /* every positioned channel */
	void *ch;
	const char *name;
	char epoch[PROTO_EPOCH_MAX + 1];
	char old_epoch[PROTO_EPOCH_MAX + 1]; /* the one before (a resume in it is stale) */
	uint64_t top;			     /* the last offset fanned out */
	int contiguous;
	struct q ring;	    /* recent frames: every message in (ring_from, top] */
	uint64_t ring_from; /* see ring */
	size_t ring_bytes;
	int repairing;		/* a hole repair is on: live frames wait in hold */
	struct pos_req *repair; /* its history request (in flight, queued or a retry) */
	uint64_t repair_to;	/* the repair fills (top, repair_to] */
	struct q hold;		/* frames held while the repair runs */
	struct pos_req *probe;	/* the top() in flight, or NULL */
	uint64_t active_ms;	/* last frame or probe */
	int suspect;		/* messages may be lost: probe until a probe answers */
	char why[96];		/* the backend's reason for the suspicion, for gap frames */
	uint64_t probed_ms;	/* when the last probe was sent */
	struct pos_sub *subs;	/* subscribers waiting for their recovery */
	struct pos_req *recovers;
};

/*
 * PS_HISTORY: since is behind the top; waits for its history request.
 * PS_CATCHUP: since is ahead of this instance's top (another instance
 *   delivered more already); waits for the top to get there.
 * PS_EPOCH: since names an epoch this instance does not have; it may be
 *   newer (the broker lost its history and this instance has not seen it
 *   yet: its backend is still reconnecting). Waits for the channel to
 *   change to that epoch (then PS_CATCHUP in it) or for the broker to say
 *   it has another one. Frames of the old epoch are not for it: answering
 *   from there would send the client the new epoch again from its start.
 */
enum sub_state { PS_HISTORY, PS_CATCHUP, PS_EPOCH };

struct pos_sub {
	struct pos_sub *prev, *next; /* the channel's waiting list */
	struct pos_sub *wnext;	     /* the request's waiters */
	struct pos_chan *pc;
	void *sub;
	enum sub_state state;
	char epoch[PROTO_EPOCH_MAX + 1]; /* since.epoch */
	uint64_t since;			 /* since.offset */
	uint64_t base;			 /* buf holds every frame fanned out after base */
	struct q buf;
	struct pos_req *req; /* PS_HISTORY: the request it waits on */
	uint64_t deadline;
	/* PS_CATCHUP, PS_EPOCH: only a probe sent after the resume began
	 * (token >= asked) may judge it; judged: one did, and since exists. */
	uint64_t asked;
	int judged;
	int saw_gap;
};

#define REQ_BUCKETS 256
/* A channel whose backend reconnected is probed again this often until a
 * probe is answered. */
#define SUSPECT_RETRY_MS 1000
/* A repair or resume whose backend was unreachable asks again after this
 * long, until recovery_timeout_ms since it began. */
#define RETRY_MS 200
/* The status a request ends with when recovery_timeout_ms passes. */
#define POS_ETIMEDOUT (-1000)

static struct pos_limits lim;
static struct pos_hooks hooks;
static struct pos_chan *chans;
static struct pos_req *reqs[REQ_BUCKETS];
static struct pos_req *queue_head, *queue_tail;
static struct pos_req *delayed; /* retries waiting for their time (qnext) */
static uint64_t next_token = 1;
static uint64_t inflight;
static uint64_t next_probe_scan;

int pos_init(const struct pos_limits *l, const struct pos_hooks *h, const char *inst)
{
	lim = *l;
	hooks = *h;
	instance = inst;
	next_probe_scan = 0;
	return 0;
}

const char *pos_epoch(const struct pos_chan *pc)
{
	return pc->epoch;
}

uint64_t pos_top(const struct pos_chan *pc)
{
	return pc->top;
}

/* ---- requests ---- */

static void req_unhash(struct pos_req *r)
{
	struct pos_req **pp = &reqs[r->token % REQ_BUCKETS];
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
}

static struct pos_req *req_find(uint64_t token)
{
	for (struct pos_req *r = reqs[token % REQ_BUCKETS]; r; r = r->hnext)
		if (r->token == token)
			return r;
	return NULL;
}

static void req_unlink_chan(struct pos_req *r)
{
	struct pos_chan *pc = r->pc;
	if (!pc)
		return;
	if (pc->repair == r)
		pc->repair = NULL;
	if (pc->probe == r)
		pc->probe = NULL;
	if (r->kind == RQ_RECOVER) {
		if (r->cprev)
			r->cprev->cnext = r->cnext;
		else if (pc->recovers == r)
			pc->recovers = r->cnext;
		if (r->cnext)
			r->cnext->cprev = r->cprev;
		r->cprev = r->cnext = NULL;
	}
	r->pc = NULL;
}

static void pump(void);

/* The request is answered, timed out or abandoned: forget it. */
static void req_free(struct pos_req *r)
{
	req_unhash(r);
	req_unlink_chan(r);
	if (r->issued) {
		inflight--;
		metrics.rec.requests_inflight--;
	} else if (r->delayed) {
		struct pos_req **pp = &delayed;
		while (*pp && *pp != r)
			pp = &(*pp)->qnext;
		if (*pp)
			*pp = r->qnext;
	} else if (r->queued) {
		metrics.rec.requests_queued--;
		struct pos_req **pp = &queue_head;
		while (*pp && *pp != r)
			pp = &(*pp)->qnext;
		if (*pp) {
			*pp = r->qnext;
			if (queue_tail == r) {
				queue_tail = NULL;
				for (struct pos_req *t = queue_head; t; t = t->qnext)
					queue_tail = t;
			}
		}
	}
	q_free(&r->items);
	free(r);
}

static void req_complete(struct pos_req *r, int status, const char *epoch, uint64_t top);

static void req_send(struct pos_req *r)
{
	uint64_t token = r->token;
	int rc;
	r->issued = 1;
	inflight++;
	metrics.rec.requests_inflight++;
	metrics.rec.requests[r->kind]++;
	if (r->kind == RQ_TOP)
		rc = hooks.top(r->pc->ch, token);
	else
		rc = hooks.history(r->pc->ch, r->epoch, r->after, r->upto - r->after, token);
	/* The answer may have come inside the call (r is gone then). */
	if (rc && (r = req_find(token)))
		req_complete(r, rc, NULL, 0);
}

/* Send queued requests while slots are free. */
static void pump(void)
{
	while (queue_head && inflight < lim.max_requests) {
		struct pos_req *r = queue_head;
		queue_head = r->qnext;
		if (!queue_head)
			queue_tail = NULL;
		r->qnext = NULL;
		r->queued = 0;
		metrics.rec.requests_queued--;
		if (!r->pc) { /* orphaned while it waited */
			req_free(r);
			continue;
		}
		req_send(r);
	}
}

static struct pos_req *req_new(struct pos_chan *pc, enum req_kind kind, uint64_t after,
			       uint64_t upto)
{
	struct pos_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->token = next_token++;
	r->kind = kind;
	r->pc = pc;
	memcpy(r->epoch, pc->epoch, sizeof(r->epoch));
	r->after = after;
	r->upto = upto;
	r->deadline = hooks.now() + lim.timeout_ms;
	r->hnext = reqs[r->token % REQ_BUCKETS];
	reqs[r->token % REQ_BUCKETS] = r;
	if (kind == RQ_RECOVER) {
		r->cnext = pc->recovers;
		if (r->cnext)
			r->cnext->cprev = r;
		pc->recovers = r;
	}
	return r;
}

/* Send now or queue behind the others. The caller must not touch r after
 * this returns (it may have been answered and freed). */
static void req_start(struct pos_req *r)
{
	if (inflight < lim.max_requests && !queue_head) {
		req_send(r);
		return;
	}
	metrics.rec.requests_queued++;
	r->queued = 1;
	if (queue_tail)
		queue_tail->qnext = r;
	else
		queue_head = r;
	queue_tail = r;
}

/* Send r no earlier than ms from now (a retry after a transient failure). */
static void req_delay(struct pos_req *r, uint64_t ms)
{
	r->delayed = 1;
	r->send_at = hooks.now() + ms;
	r->qnext = delayed;
	delayed = r;
}

/* A retry of r (same range, same deadline, its waiters) in RETRY_MS, or
 * NULL when the deadline leaves no time or memory is short. */
static struct pos_req *req_retry(struct pos_req *r)
{
	if (!r->pc || hooks.now() + RETRY_MS >= r->deadline)
		return NULL;
	struct pos_req *n = req_new(r->pc, r->kind, r->after, r->upto);
	if (!n)
		return NULL;
	memcpy(n->epoch, r->epoch, sizeof(n->epoch));
	n->deadline = r->deadline;
	n->waiters = r->waiters;
	r->waiters = NULL;
	for (struct pos_sub *w = n->waiters; w; w = w->wnext)
		w->req = n;
	req_delay(n, RETRY_MS);
	return n;
}

/* A status worth another try (the backend was not reachable), not an
 * answer about the history itself. */
static int transient(int status)
{
	return status != FANOUT_OK && status != FANOUT_ETRUNCATED && status != FANOUT_EEPOCH &&
	       status != POS_ETIMEDOUT;
}

/* ---- the channel's frames ---- */

static void ring_drop_oldest(struct pos_chan *pc)
{
	size_t len = q_at(&pc->ring, 0)->m->frame->len;
	pc->ring_from = q_pop(&pc->ring);
	pc->ring_bytes -= len;
	metrics.rec.ring_bytes -= (long long)len;
	metrics.rec.ring_messages--;
}

static void ring_clear(struct pos_chan *pc, uint64_t from)
{
	while (pc->ring.n)
		ring_drop_oldest(pc);
	pc->ring_from = from;
}

static void ring_push(struct pos_chan *pc, uint64_t off, struct pos_item *m)
{
	if (!lim.ring_messages) {
		pc->ring_from = off;
		return;
	}
	if (pc->ring.n >= lim.ring_messages)
		ring_drop_oldest(pc);
	if (q_push(&pc->ring, off, m)) {
		ring_clear(pc, off);
		return;
	}
	pc->ring_bytes += m->frame->len;
	metrics.rec.ring_bytes += (long long)m->frame->len;
	metrics.rec.ring_messages++;
	/* Over the process-wide budget: this channel gives up its oldest. */
	while (pc->ring.n && (uint64_t)metrics.rec.ring_bytes > lim.ring_bytes)
		ring_drop_oldest(pc);
}

static void sub_finish(struct pos_sub *ps, int recovered, struct pos_req *r);

/* Subscribers waiting for the top to reach their since. */
static void catchup_check(struct pos_chan *pc)
{
	for (struct pos_sub *ps = pc->subs, *next; ps; ps = next) {
		next = ps->next;
		if (ps->state == PS_CATCHUP && pc->top >= ps->since)
			sub_finish(ps, 1, NULL);
	}
}

/* The one way out for the channel's positioned frames. */
static void ch_fan(struct pos_chan *pc, uint64_t off, struct pos_item *m)
{
	pc->top = off;
	ring_push(pc, off, m);
	hooks.fan_out(pc->ch, m);
	if (pc->subs)
		catchup_check(pc);
}

/* A hole history cannot fill: every subscriber is told, and stands at
 * offset from now on. */
static void emit_gap(struct pos_chan *pc, const char *what, uint64_t offset)
{
	/* "file truncated: history lost (new epoch)": the backend's own reason
	 * first, when it told us why it suspected a loss. */
	char reason[200];
	if (pc->why[0])
		snprintf(reason, sizeof(reason), "%s: %s", pc->why, what);
	else
		snprintf(reason, sizeof(reason), "%s", what);
	static uint64_t logged_ms;
	uint64_t now = hooks.now();
	if (now - logged_ms >= 1000 || !logged_ms) {
		logged_ms = now;
		log_info("%s: gap to %s:%llu after %llu: %s (%lld gaps so far)", pc->name,
			 pc->epoch, (unsigned long long)offset, (unsigned long long)pc->top, reason,
			 metrics.rec.gaps + 1);
	}
	metrics.rec.gaps++;
	pc->top = offset;
	ring_clear(pc, offset);
	for (struct pos_sub *ps = pc->subs; ps; ps = ps->next)
		ps->saw_gap = 1;
	struct pos_item *m = item_make(POS_GAP, pc->name, pc->epoch, offset, NULL, 0, reason);
	if (!m)
		return;
	hooks.fan_out(pc->ch, m);
	pos_item_unref(m);
	if (pc->subs)
		catchup_check(pc);
}

static void process(struct pos_chan *pc, const char *epoch, uint64_t off, struct pos_item *m);
static void repair_fail(struct pos_chan *pc, const char *reason);

/* Frames held during a repair go out (or into a new repair) in order. */
static void release_hold(struct pos_chan *pc)
{
	struct q held = pc->hold;
	pc->hold = (struct q){0};
	for (size_t i = 0; i < held.n; i++) {
		struct ent *e = q_at(&held, i);
		if (pc->repairing) { /* a new hole: the rest waits again */
			if (q_push(&pc->hold, e->off, e->m))
				break;
		} else if (!e->off) {
			hooks.fan_out(pc->ch, e->m);
		} else {
			process(pc, pc->epoch, e->off, e->m);
		}
	}
	q_free(&held);
}

/* Repair (top, target] from history; m (if any) is the frame that showed
 * the hole and waits in the hold. */
static void repair_start(struct pos_chan *pc, uint64_t target, uint64_t off, struct pos_item *m)
{
	if (m && q_push(&pc->hold, off, m)) {
		emit_gap(pc, "out of memory", target);
		release_hold(pc);
		return;
	}
	struct pos_req *r = req_new(pc, RQ_REPAIR, pc->top, target);
	if (!r) {
		emit_gap(pc, "out of memory", target);
		release_hold(pc);
		return;
	}
	pc->repairing = 1;
	pc->repair = r;
	pc->repair_to = target;
	req_start(r);
}

/* Give up the repair in flight: a gap up to its target, then the held
 * frames. */
static void repair_fail(struct pos_chan *pc, const char *reason)
{
	struct pos_req *r = pc->repair;
	if (!pc->repairing)
		return;
	pc->repairing = 0;
	if (r) {
		req_unlink_chan(r); /* its answer, if it comes, is ignored */
		if (!r->issued)
			req_free(r);
	}
	emit_gap(pc, reason, pc->repair_to > pc->top ? pc->repair_to : pc->top);
	release_hold(pc);
}

static void sub_fail(struct pos_sub *ps, enum recovery_fail why);

/* The broker's history of this channel was lost: a new epoch. */
static void epoch_change(struct pos_chan *pc, const char *epoch, int have_top, uint64_t top)
{
	metrics.rec.epoch_changes++;
	log_info("%s: epoch %s -> %s (the backend's history of it was lost)", pc->name, pc->epoch,
		 epoch);
	if (pc->repairing)
		repair_fail(pc, "history lost");
	/* Resumes in the old epoch cannot be served any more; those that
	 * waited for this one (PS_EPOCH) go on in it. */
	for (struct pos_sub *ps = pc->subs, *next; ps; ps = next) {
		next = ps->next;
		if (ps->state != PS_EPOCH || strcmp(ps->epoch, epoch))
			sub_fail(ps, RF_EPOCH);
	}
	while (pc->recovers)
		req_unlink_chan(pc->recovers);
	snprintf(pc->old_epoch, sizeof(pc->old_epoch), "%s", pc->epoch);
	snprintf(pc->epoch, sizeof(pc->epoch), "%s", epoch);
	emit_gap(pc, "history lost (new epoch)", 0);
	/* The gap is not news to those: they stand at since in this epoch
	 * and wait for the top to reach it, collecting frames from 1 on. */
	for (struct pos_sub *ps = pc->subs; ps; ps = ps->next) {
		if (ps->state != PS_EPOCH)
			continue;
		ps->state = PS_CATCHUP;
		ps->base = 0;
		ps->saw_gap = 0;
		q_clear(&ps->buf);
	}
	if (pc->subs)
		catchup_check(pc);
	if (have_top && top > 0) {
		metrics.rec.holes++;
		repair_start(pc, top, 0, NULL);
	}
}

static void process(struct pos_chan *pc, const char *epoch, uint64_t off, struct pos_item *m)
{
	if (strcmp(epoch, pc->epoch))
		epoch_change(pc, epoch, 0, 0);
	if (off <= pc->top) {
		metrics.rec.duplicates++;
		return;
	}
	if (pc->contiguous && off > pc->top + 1) {
		metrics.rec.holes++;
		if (off - 1 - pc->top > lim.max_messages) {
			emit_gap(pc, "messages lost (more than recovery_max_messages)", off - 1);
		} else {
			repair_start(pc, off - 1, off, m);
			return;
		}
	}
	ch_fan(pc, off, m);
}

void pos_deliver(struct pos_chan *pc, struct pos_item *m)
{
	const char *epoch = m->epoch;
	uint64_t offset = m->offset;
	pc->active_ms = hooks.now();
	if (pc->repairing) {
		if (strcmp(epoch, pc->epoch)) {
			repair_fail(pc, "history lost");
		} else if (pc->hold.n >= lim.buffer_messages) {
			metrics.rec.hold_overflows++;
			repair_fail(pc, "messages lost (recovery_buffer_messages)");
		} else {
			if (q_push(&pc->hold, offset, m))
				repair_fail(pc, "out of memory");
			else
				return;
		}
	}
	process(pc, epoch, offset, m);
}

void pos_deliver_plain(struct pos_chan *pc, struct pos_item *m)
{
	if (pc->repairing && pc->hold.n < lim.buffer_messages && !q_push(&pc->hold, 0, m))
		return;
	hooks.fan_out(pc->ch, m);
}

static void probe_start(struct pos_chan *pc)
{
	if (pc->probe)
		return;
	struct pos_req *r = req_new(pc, RQ_TOP, 0, 0);
	if (!r)
		return;
	metrics.rec.probes++;
	pc->probe = r;
	pc->active_ms = pc->probed_ms = hooks.now();
	req_start(r);
}

void pos_suspect(struct pos_chan *pc, const char *why)
{
	snprintf(pc->why, sizeof(pc->why), "%s", why ? why : "");
	/* Right after a reconnect the backend may not answer yet: keep asking
	 * (pos_tick, about once a second) until a probe gets an answer. */
	pc->suspect = 1;
	probe_start(pc);
}

void pos_observe(struct pos_chan *pc, const char *epoch, uint64_t top)
{
	if (!epoch)
		return;
	if (strcmp(epoch, pc->epoch)) {
		epoch_change(pc, epoch, 1, top);
		return;
	}
	if (top > pc->top && !pc->repairing) {
		metrics.rec.holes++;
		if (top - pc->top > lim.max_messages)
			emit_gap(pc, "messages lost (more than recovery_max_messages)", top);
		else
			repair_start(pc, top, 0, NULL);
	}
}

/* ---- channels ---- */

struct pos_chan *pos_chan_new(void *ch, const char *name, const char *epoch, uint64_t top,
			      unsigned flags)
{
	struct pos_chan *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->ch = ch;
	pc->name = name;
	snprintf(pc->epoch, sizeof(pc->epoch), "%s", epoch);
	pc->top = top;
	pc->ring_from = top;
	pc->contiguous = !!(flags & FANOUT_POS_CONTIGUOUS);
	pc->active_ms = hooks.now();
	pc->next = chans;
	if (chans)
		chans->prev = pc;
	chans = pc;
	return pc;
}

void pos_chan_free(struct pos_chan *pc)
{
	if (!pc)
		return;
	while (pc->subs)
		pos_sub_cancel(pc->subs);
	if (pc->repair) {
		struct pos_req *r = pc->repair;
		req_unlink_chan(r);
		if (!r->issued)
			req_free(r);
	}
	if (pc->probe) {
		struct pos_req *r = pc->probe;
		req_unlink_chan(r);
		if (!r->issued)
			req_free(r);
	}
	while (pc->recovers) {
		struct pos_req *r = pc->recovers;
		req_unlink_chan(r);
		if (!r->issued)
			req_free(r);
	}
	ring_clear(pc, 0);
	q_free(&pc->ring);
	q_free(&pc->hold);
	if (pc->prev)
		pc->prev->next = pc->next;
	else
		chans = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	free(pc);
}

/* ---- resuming subscribers ---- */

static void sub_unlink(struct pos_sub *ps)
{
	struct pos_chan *pc = ps->pc;
	if (ps->prev)
		ps->prev->next = ps->next;
	else
		pc->subs = ps->next;
	if (ps->next)
		ps->next->prev = ps->prev;
	if (ps->req) {
		struct pos_sub **pp = &ps->req->waiters;
		while (*pp && *pp != ps)
			pp = &(*pp)->wnext;
		if (*pp)
			*pp = ps->wnext;
		ps->req = NULL;
	}
	metrics.rec.waiting--;
}

static void sub_free(struct pos_sub *ps)
{
	q_free(&ps->buf);
	free(ps);
}

/* Answer "not recovered": the subscriber stands at the top, no replay. */
static void fail_now(struct pos_chan *pc, void *sub, enum recovery_fail why)
{
	metrics.rec.failed[why]++;
	hooks.finish(pc->ch, sub, pc->epoch, pc->top, 0, NULL, 0);
}

static void sub_fail(struct pos_sub *ps, enum recovery_fail why)
{
	struct pos_chan *pc = ps->pc;
	sub_unlink(ps);
	fail_now(pc, ps->sub, why);
	sub_free(ps);
}

/*
 * Replay to a subscriber: the history items of r (if any) after since,
 * then the frames in q after since (positioned ones; frames without a
 * position are passed through), checked to be exactly since+1 .. top on a
 * contiguous channel. Calls finish (recovered or not).
 */
static void replay(struct pos_chan *pc, void *sub, uint64_t since, const struct q *items,
		   const struct q *frames)
{
	size_t n = (items ? items->n : 0) + (frames ? frames->n : 0), k = 0, bytes = 0;
	struct pos_item **msgs = n ? malloc(n * sizeof(*msgs)) : NULL;
	uint64_t at = since;
	int ok = 1;
	if (n && !msgs) {
		fail_now(pc, sub, RF_ERROR);
		return;
	}
	const struct q *src[2] = {items, frames};
	for (int s = 0; s < 2 && ok; s++)
		for (size_t i = 0; src[s] && i < src[s]->n; i++) {
			struct ent *e = q_at(src[s], i);
			if (e->off && e->off <= at)
				continue; /* the client has it */
			if (e->off) {
				if (pc->contiguous && e->off != at + 1) {
					ok = 0; /* never a silent hole */
					break;
				}
				at = e->off;
			}
			msgs[k++] = e->m;
			bytes += e->m->frame->len;
		}
	if (ok && at != pc->top)
		ok = 0;
	if (!ok) {
		free(msgs);
		fail_now(pc, sub, RF_GAP);
		return;
	}
	if (bytes > lim.max_replay_bytes) {
		free(msgs);
		fail_now(pc, sub, RF_TOO_BIG);
		return;
	}
	metrics.rec.recovered++;
	metrics.rec.recovered_messages += (long long)k;
	hooks.finish(pc->ch, sub, pc->epoch, pc->top, 1, msgs, k);
	free(msgs);
}

/* The waiting subscriber is done: replay (r's items, then its buffer) or
 * fail. */
static void sub_finish(struct pos_sub *ps, int recovered, struct pos_req *r)
{
	struct pos_chan *pc = ps->pc;
	sub_unlink(ps);
	if (!recovered || ps->saw_gap)
		fail_now(pc, ps->sub, ps->saw_gap ? RF_GAP : RF_ERROR);
	else
		replay(pc, ps->sub, ps->since, r ? &r->items : NULL, &ps->buf);
	sub_free(ps);
}

static struct pos_sub *sub_new(struct pos_chan *pc, void *sub, const char *epoch, uint64_t since,
			       uint64_t base, enum sub_state state)
{
	struct pos_sub *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->pc = pc;
	ps->sub = sub;
	snprintf(ps->epoch, sizeof(ps->epoch), "%s", epoch);
	ps->since = since;
	ps->base = base;
	ps->state = state;
	ps->deadline = hooks.now() + lim.timeout_ms;
	ps->asked = next_token;
	/* The frames after base that the ring already has are its first
	 * (none of another epoch's). */
	for (size_t i = 0; state != PS_EPOCH && i < pc->ring.n; i++) {
		struct ent *e = q_at(&pc->ring, i);
		if (e->off > base && q_push(&ps->buf, e->off, e->m)) {
			sub_free(ps);
			return NULL;
		}
	}
	ps->next = pc->subs;
	if (ps->next)
		ps->next->prev = ps;
	pc->subs = ps;
	metrics.rec.waiting++;
	return ps;
}

/* ps is still waiting (an answer inside a call may have finished it). */
static int sub_alive(const struct pos_chan *pc, const struct pos_sub *ps)
{
	for (const struct pos_sub *w = pc->subs; w; w = w->next)
		if (w == ps)
			return 1;
	return 0;
}

struct pos_sub *pos_recover(struct pos_chan *pc, void *sub, const struct proto_since *since)
{
	metrics.rec.recoveries++;
	uint64_t n = since->offset;
	int other = strcmp(since->epoch, pc->epoch) != 0;
	if (other && !strcmp(since->epoch, pc->old_epoch)) {
		fail_now(pc, sub, RF_EPOCH); /* the client is the stale one */
		return NULL;
	}
	if (other || n > pc->top) {
		/* Ahead of this instance: another one may have delivered newer
		 * messages already, or seen the broker's new epoch. Wait for
		 * them (bounded), and ask the broker whether that position
		 * exists at all. */
		struct pos_sub *ps =
		    sub_new(pc, sub, since->epoch, n, pc->top, other ? PS_EPOCH : PS_CATCHUP);
		if (!ps) {
			fail_now(pc, sub, RF_ERROR);
			return NULL;
		}
		probe_start(pc);
		return sub_alive(pc, ps) ? ps : NULL;
	}
	if (pc->top - n > lim.max_messages) {
		fail_now(pc, sub, RF_TOO_FAR);
		return NULL;
	}
	if (n >= pc->ring_from) {
		/* Everything after since is in memory. */
		metrics.rec.ring_hits++;
		replay(pc, sub, n, NULL, &pc->ring);
		return NULL;
	}
	/* History (since, ring_from] from the backend, the ring's frames after
	 * that. Share a request in flight that starts at or before since and
	 * whose end the ring still continues from. */
	struct pos_req *r = pc->recovers;
	while (r && !(r->after <= n && r->upto >= pc->ring_from && r->upto <= pc->top))
		r = r->cnext;
	int fresh = !r;
	if (fresh && !(r = req_new(pc, RQ_RECOVER, n, pc->ring_from))) {
		fail_now(pc, sub, RF_ERROR);
		return NULL;
	}
	struct pos_sub *ps = sub_new(pc, sub, pc->epoch, n, r->upto, PS_HISTORY);
	if (!ps) {
		if (fresh)
			req_free(r);
		fail_now(pc, sub, RF_ERROR);
		return NULL;
	}
	ps->req = r;
	ps->wnext = r->waiters;
	r->waiters = ps;
	ps->deadline = r->deadline;
	if (fresh)
		req_start(r);
	return sub_alive(pc, ps) ? ps : NULL;
}

void pos_sub_buffer(struct pos_sub *ps, struct pos_item *m)
{
	if (ps->state == PS_EPOCH)
		return; /* the old epoch's frames: older than where it stands */
	int pos = m->kind == POS_MESSAGE && m->positioned;
	/* The client has it (a catch-up sees the frames up to since go by):
	 * the replay would skip it, and it must not fill the buffer. */
	if (pos && m->offset <= ps->since)
		return;
	if (ps->buf.n >= lim.buffer_messages) {
		sub_fail(ps, RF_BUFFER);
		return;
	}
	if (q_push(&ps->buf, pos ? m->offset : 0, m))
		sub_fail(ps, RF_ERROR);
}

void pos_sub_cancel(struct pos_sub *ps)
{
	sub_unlink(ps);
	sub_free(ps);
}

/* ---- backend answers ---- */

/* Fan out a repair's items, then gap what they did not fill. */
static void repair_done(struct pos_chan *pc, struct pos_req *r, int status, const char *epoch,
			uint64_t top)
{
	pc->repair = NULL;
	/* The backend was not reachable (just reconnecting): ask again while
	 * recovery_timeout_ms allows; live frames keep waiting. */
	if (transient(status) && (pc->repair = req_retry(r)))
		return;
	if (status == FANOUT_EEPOCH || (status == FANOUT_OK && epoch && strcmp(epoch, pc->epoch))) {
		repair_fail(pc, "history lost");
		if (epoch)
			epoch_change(pc, epoch, 1, top);
		return;
	}
	pc->repairing = 0;
	long long gaps = metrics.rec.gaps;
	if (status == FANOUT_OK && !r->bad)
		for (size_t i = 0; i < r->items.n; i++) {
			struct ent *e = q_at(&r->items, i);
			if (e->off <= pc->top)
				continue;
			if (e->off > pc->repair_to)
				break;
			/* A message history itself lacks (dropped as too big). */
			if (pc->contiguous && e->off != pc->top + 1)
				emit_gap(pc, "messages lost (not in history)", e->off - 1);
			metrics.rec.hole_messages++;
			ch_fan(pc, e->off, e->m);
		}
	if (pc->top < pc->repair_to)
		emit_gap(pc,
			 status == FANOUT_ETRUNCATED
			     ? "messages lost (history no longer reaches back)"
			 : status == FANOUT_OK	   ? "messages lost (not in history)"
			 : status == POS_ETIMEDOUT ? "messages lost (history timed out)"
						   : "messages lost (history unavailable)",
			 pc->repair_to);
	if (metrics.rec.gaps == gaps)
		metrics.rec.holes_repaired++;
	if (!pc->suspect)
		pc->why[0] = '\0';
	release_hold(pc);
}

static void recover_done(struct pos_chan *pc, struct pos_req *r, int status, const char *epoch)
{
	/* Unreachable backend: the waiters wait for a retry (same deadline). */
	if (transient(status) && r->waiters && req_retry(r))
		return;
	/* Complete when every offset (after, upto] came (contiguous), or the
	 * backend said OK (not contiguous: offsets may skip). */
	int ok = status == FANOUT_OK && !r->bad && (!epoch || !strcmp(epoch, pc->epoch));
	if (ok && pc->contiguous) {
		uint64_t at = r->after;
		for (size_t i = 0; i < r->items.n && at < r->upto; i++)
			if (q_at(&r->items, i)->off == at + 1)
				at++;
		ok = at == r->upto;
	}
	enum recovery_fail why = status == FANOUT_ETRUNCATED ? RF_TRUNCATED
				 : status == FANOUT_EEPOCH   ? RF_EPOCH
				 : status == POS_ETIMEDOUT   ? RF_TIMEOUT
							     : RF_ERROR;
	while (r->waiters) {
		struct pos_sub *ps = r->waiters;
		if (ok) {
			sub_finish(ps, 1, r);
		} else {
			sub_unlink(ps);
			fail_now(pc, ps->sub, ps->saw_gap ? RF_GAP : why);
			sub_free(ps);
		}
	}
	/* Keep the items in the ring when they continue it downwards, so the
	 * next resumes on this channel are served from memory. */
	if (ok && r->upto == pc->ring_from && r->items.n &&
	    pc->ring.n + r->items.n <= lim.ring_messages) {
		size_t bytes = 0;
		for (size_t i = 0; i < r->items.n; i++)
			bytes += q_at(&r->items, i)->m->frame->len;
		if ((uint64_t)metrics.rec.ring_bytes + bytes <= lim.ring_bytes) {
			for (size_t i = r->items.n; i-- > 0;) {
				struct ent *e = q_at(&r->items, i);
				if (e->off > r->upto || q_push_front(&pc->ring, e->off, e->m))
					continue;
				pc->ring_bytes += e->m->frame->len;
				metrics.rec.ring_bytes += (long long)e->m->frame->len;
				metrics.rec.ring_messages++;
			}
			pc->ring_from = r->after;
		}
	}
}

/* A probe (sent as token) answered epoch:top. Resumes ahead of what the
 * broker has never get there: not recovered. Only a probe sent after a
 * resume began may judge it (an older one may predate its position):
 * those not judged get a new probe. */
static void judge_ahead(struct pos_chan *pc, uint64_t token, const char *epoch, uint64_t top)
{
	int unjudged = 0;
	for (struct pos_sub *ps = pc->subs, *next; ps; ps = next) {
		next = ps->next;
		if (ps->state == PS_HISTORY || ps->judged)
			continue;
		if (token < ps->asked)
			unjudged = 1;
		else if (ps->state == PS_EPOCH)
			sub_fail(ps, RF_EPOCH); /* the broker is in another epoch */
		else if (strcmp(epoch, pc->epoch) || ps->since > top)
			sub_fail(ps, RF_AHEAD);
		else
			ps->judged = 1;
	}
	if (unjudged && !pc->probe)
		probe_start(pc);
}

/* The backend has no top(): no probe will ever judge. A resume in
 * another epoch is not recovered (as if the client were the stale one); one
 * ahead waits for the top to get there until recovery_timeout_ms. */
static void no_judge(struct pos_chan *pc)
{
	for (struct pos_sub *ps = pc->subs, *next; ps; ps = next) {
		next = ps->next;
		if (ps->state == PS_EPOCH)
			sub_fail(ps, RF_EPOCH);
		else if (ps->state == PS_CATCHUP)
			ps->judged = 1;
	}
}

/* A resume waits for a probe's verdict (the last one failed or was too
 * old). */
static int needs_probe(const struct pos_chan *pc)
{
	for (const struct pos_sub *ps = pc->subs; ps; ps = ps->next)
		if (ps->state != PS_HISTORY && !ps->judged)
			return 1;
	return 0;
}

static void req_complete(struct pos_req *r, int status, const char *epoch, uint64_t top)
{
	struct pos_chan *pc = r->pc;
	if (!pc) {
		req_free(r);
		pump();
		return;
	}
	switch (r->kind) {
	case RQ_TOP:
		pc->probe = NULL;
		if (status == FANOUT_OK && epoch) {
			pc->suspect = 0;
			/* The reason stays for the gaps this answer may cause:
			 * until the repair it starts is over. */
			pos_observe(pc, epoch, top);
			if (!pc->repairing)
				pc->why[0] = '\0';
			judge_ahead(pc, r->token, epoch, top);
		} else if (status == FANOUT_ENOTSUP) {
			no_judge(pc);
		}
		break;
	case RQ_REPAIR:
		if (pc->repair == r)
			repair_done(pc, r, status, epoch, top);
		break;
	case RQ_RECOVER:
		recover_done(pc, r, status, epoch);
		break;
	}
	req_free(r);
	pump();
}

void pos_top_done(uint64_t token, int status, const char *epoch, uint64_t top)
{
	struct pos_req *r = req_find(token);
	if (r && r->kind == RQ_TOP && r->issued)
		req_complete(r, status, status == FANOUT_OK ? epoch : NULL, top);
}

void pos_history_item(uint64_t token, uint64_t offset, const void *data, size_t len)
{
	struct pos_req *r = req_find(token);
	if (!r || r->kind == RQ_TOP || !r->issued || !r->pc || r->bad)
		return;
	uint64_t last = r->items.n ? q_at(&r->items, r->items.n - 1)->off : r->after;
	if (offset <= last) {
		r->bad = 1; /* out of order */
		return;
	}
	if (offset > r->upto)
		return; /* beyond what is needed (offsets that skip) */
	if (len > lim.max_payload) {
		/* Dropped like its live copy. On a contiguous channel the
		 * missing offset shows; otherwise nothing would: fail all. */
		if (!r->pc->contiguous)
			r->bad = 1;
		return;
	}
	struct pos_item *m = item_make(POS_MESSAGE, r->pc->name, r->epoch, offset, data, len, NULL);
	if (!m || q_push(&r->items, offset, m))
		r->bad = 1;
	pos_item_unref(m);
}

void pos_history_done(uint64_t token, int status, const char *epoch, uint64_t top)
{
	struct pos_req *r = req_find(token);
	if (r && r->kind != RQ_TOP && r->issued)
		req_complete(r, status, epoch, top);
}

/* ---- time ---- */

uint64_t pos_tick(void)
{
	uint64_t now = hooks.now();
	/* Retries whose time has come. */
	for (struct pos_req **pp = &delayed; *pp;) {
		struct pos_req *r = *pp;
		if (now < r->send_at) {
			pp = &r->qnext;
			continue;
		}
		*pp = r->qnext;
		r->qnext = NULL;
		r->delayed = 0;
		if (!r->pc) {
			req_free(r);
			pp = &delayed; /* freeing may not touch the list, but be safe */
			continue;
		}
		req_start(r);
		pp = &delayed; /* a synchronous answer may have changed the list */
	}
	/* Requests past their deadline (a backend that never answers). */
	for (size_t b = 0; b < REQ_BUCKETS; b++)
		for (struct pos_req *r = reqs[b], *next; r; r = next) {
			next = r->hnext;
			if (now < r->deadline)
				continue;
			if (r->issued)
				metrics.rec.request_timeouts++;
			req_complete(r, POS_ETIMEDOUT, NULL, 0);
			next = reqs[b]; /* the chain may have changed */
		}
	for (struct pos_chan *pc = chans; pc; pc = pc->next) {
		for (struct pos_sub *ps = pc->subs, *next; ps; ps = next) {
			next = ps->next;
			if (ps->state != PS_HISTORY && now >= ps->deadline)
				sub_fail(ps, RF_TIMEOUT);
		}
		/* A resume waiting for the broker's word: ask again soon (its
		 * own deadline bounds this), a repair running or not. */
		if (!pc->probe && pc->subs && now - pc->probed_ms >= RETRY_MS && needs_probe(pc)) {
			probe_start(pc);
			continue;
		}
		if (pc->probe || pc->repairing)
			continue;
		/* Periodic probes only fill free request slots: with many quiet
		 * channels they spread over several ticks instead of queueing
		 * one request per channel at once. */
		if (inflight >= lim.max_requests || queue_head)
			continue;
		if (pc->suspect && now - pc->probed_ms >= SUSPECT_RETRY_MS)
			probe_start(pc);
		else if (lim.probe_ms && now >= next_probe_scan &&
			 now - pc->active_ms >= lim.probe_ms)
			probe_start(pc);
	}
	if (now >= next_probe_scan)
		next_probe_scan = now + (lim.probe_ms ? lim.probe_ms / 4 + 1 : 1000);
	return 250;
}

void pos_free(void)
{
	while (chans)
		pos_chan_free(chans);
	for (size_t b = 0; b < REQ_BUCKETS; b++)
		while (reqs[b]) {
			struct pos_req *r = reqs[b];
			reqs[b] = r->hnext;
			q_free(&r->items);
			free(r);
		}
	queue_head = queue_tail = NULL;
	inflight = 0;
	metrics.rec.requests_inflight = metrics.rec.requests_queued = 0;
}
