/*
 * hub.c — owns the channels: a hash table of exact channel names, each with
 * the array of subscribers (transport-neutral handles, hub.h) subscribed to
 * it and the backend serving it.
 *
 * Demand drives the backends: the first local subscriber of a channel calls
 * backend subscribe(), the last one leaving calls unsubscribe(). Clients get
 * "subscribed" only once the backend confirmed (hub_subscribed), so nothing
 * published after that reply is missed. A backend message is framed once in
 * the native protocol (protocol.c) into a refcounted msg, each transport in
 * use turns that into its own frame once (its frame() op; the native one
 * just takes a reference), and each subscriber's queue takes a reference:
 * per-message work is once per message, per-subscriber work is one
 * deliver() call that pushes a pointer.
 *
 * Also owns client publishes awaiting the backend's published() (a token
 * table, capped). Replies reach clients only through their sink table.
 * Loop thread only. Allocates channels, the subscription arrays on both
 * sides and pending publishes; frees them when the last subscriber leaves,
 * when the subscriber goes, when the backend answers, and in hub_free().
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "hub"
#include "auth.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "plugin_host.h"
#include "protocol.h"
#include "recovery.h"

enum { CH_PENDING, CH_ACTIVE };

struct subref {
	struct hub_subscriber *s;
	size_t idx; /* index of the hub_sub in s->subs */
};

/* Channels brought into the hub per client address (max_channels_per_ip). */
struct ipcharge {
	struct ipcharge *next;
	struct netaddr addr;
	long long n;
};

struct channel {
	struct channel *next; /* hash chain */
	/* max_channels_per_ip: the subscriber whose address this channel is
	 * counted against (the one that brought it in, then the next one when
	 * that one leaves), and that address's count */
	struct hub_subscriber *owner;
	struct ipcharge *charge;
	uint32_t hash;
	int state;
	struct fanout_backend *b;
	struct subref *subs;
	size_t n_subs, cap_subs;
	struct pos_chan *pos; /* positioned (subscribed_at gave an epoch), else NULL */
	char name[];
};

struct pending_pub {
	struct pending_pub *next_hash;
	struct pending_pub *prev_s, *next_s; /* the subscriber's list */
	uint64_t token;
	struct fanout_backend *b;
	struct hub_subscriber *s; /* NULL once the subscriber left */
	char *id;
	char channel[PROTO_CHANNEL_MAX + 1];
};

#define PUB_BUCKETS 1024
#define PUB_MAX	    65536 /* publishes in flight over all subscribers */

static const struct config *cfg;
static struct channel **table;
static size_t table_size; /* power of two */
static size_t n_channels;
static struct pending_pub *pubs[PUB_BUCKETS];
static size_t n_pubs;
static uint64_t next_token = 1;
static uint64_t too_big_logged_ms;
static struct fanout_timer *pos_timer; /* recovery timeouts and probes */
static int stopped;

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static const struct plugin_host_events backend_events = {
    .deliver = hub_deliver,
    .subscribed = hub_subscribed,
    .published = hub_published,
    .gap = hub_gap,
    .subscribed_at = hub_subscribed_at,
    .deliver_at = hub_deliver_at,
    .published_at = hub_published_at,
    .top_done = hub_top_done,
    .history_item = hub_history_item,
    .history_done = hub_history_done,
    .resubscribe = hub_resubscribe,
};

static const struct pos_hooks pos_hooks;

int hub_init(const struct config *c)
{
	cfg = c;
	stopped = 0;
	table_size = 1024;
	table = calloc(table_size, sizeof(*table));
	plugin_host_set_events(&backend_events);
	struct pos_limits lim = {
	    .max_messages = (uint64_t)c->recovery_max_messages,
	    .buffer_messages = (uint64_t)c->recovery_buffer_messages,
	    .ring_messages = (uint64_t)c->recovery_ring_messages,
	    .ring_bytes = (uint64_t)c->recovery_ring_bytes,
	    .max_requests = (uint64_t)c->recovery_max_requests,
	    .timeout_ms = (uint64_t)c->recovery_timeout_ms,
	    .probe_ms = (uint64_t)c->position_probe_s * 1000,
	    /* A replay must leave room in the client's queue for live ones. */
	    .max_replay_bytes = (uint64_t)c->client_queue_bytes / 2,
	    .max_payload = (uint64_t)c->max_payload_bytes,
	};
	pos_init(&lim, &pos_hooks, c->instance);
	return table ? 0 : -1;
}

static struct channel *ch_find(const char *name)
{
	uint32_t h = hash_name(name);
	for (struct channel *ch = table[h & (table_size - 1)]; ch; ch = ch->next)
		if (ch->hash == h && !strcmp(ch->name, name))
			return ch;
	return NULL;
}

static void table_grow(void)
{
	size_t nsize = table_size * 2;
	struct channel **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return; /* chains just get longer */
	for (size_t i = 0; i < table_size; i++)
		for (struct channel *ch = table[i], *next; ch; ch = next) {
			next = ch->next;
			ch->next = nt[ch->hash & (nsize - 1)];
			nt[ch->hash & (nsize - 1)] = ch;
		}
	free(table);
	table = nt;
	table_size = nsize;
}

static struct channel *ch_create(const char *name, struct fanout_backend *b)
{
	size_t len = strlen(name);
	struct channel *ch = calloc(1, sizeof(*ch) + len + 1);
	if (!ch)
		return NULL;
	memcpy(ch->name, name, len + 1);
	ch->hash = hash_name(name);
	ch->b = b;
	ch->state = CH_PENDING;
	if (n_channels + 1 > table_size)
		table_grow();
	ch->next = table[ch->hash & (table_size - 1)];
	table[ch->hash & (table_size - 1)] = ch;
	n_channels++;
	metrics.channels = (long long)n_channels;
	return ch;
}

/* ---- max_channels_per_ip ---- */

#define IP_BUCKETS 1024
static struct ipcharge *charges[IP_BUCKETS];

static unsigned ip_hash(const struct netaddr *a)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(a->a); i++)
		h = (h ^ a->a[i]) * 16777619u;
	return h % IP_BUCKETS;
}

static struct ipcharge *charge_find(const struct netaddr *a)
{
	for (struct ipcharge *e = charges[ip_hash(a)]; e; e = e->next)
		if (netaddr_equal(&e->addr, a))
			return e;
	return NULL;
}

/* One more channel counted against a's address; NULL when out of memory. */
static struct ipcharge *charge_add(const struct netaddr *a)
{
	struct ipcharge *e = charge_find(a);
	if (!e) {
		if (!(e = calloc(1, sizeof(*e))))
			return NULL;
		e->addr = *a;
		e->next = charges[ip_hash(a)];
		charges[ip_hash(a)] = e;
	}
	e->n++;
	return e;
}

static void charge_del(struct ipcharge *e)
{
	if (!e || --e->n > 0)
		return;
	struct ipcharge **pp = &charges[ip_hash(&e->addr)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	free(e);
}

/* The owner of ch is leaving it: count ch against the next subscriber's
 * address (or nobody's when it has none). */
static void charge_move(struct channel *ch)
{
	struct hub_subscriber *next = ch->n_subs ? ch->subs[0].s : NULL;
	ch->owner = next;
	if (next && next->has_addr && ch->charge && netaddr_equal(&ch->charge->addr, &next->addr))
		return;
	charge_del(ch->charge);
	/* counted only while the cap is on (a reload may turn it on or off) */
	ch->charge =
	    next && next->has_addr && cfg->max_channels_per_ip > 0 ? charge_add(&next->addr) : NULL;
}

static void ch_destroy(struct channel *ch)
{
	charge_del(ch->charge);
	ch->charge = NULL;
	struct channel **pp = &table[ch->hash & (table_size - 1)];
	while (*pp && *pp != ch)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ch->next;
	if (ch->state == CH_PENDING && ch->b->pending_subs > 0)
		ch->b->pending_subs--;
	pos_chan_free(ch->pos);
	n_channels--;
	metrics.channels = (long long)n_channels;
	free(ch->subs);
	free(ch);
}

/* Remove subscription i of subscriber s (both sides' arrays, swap-remove). */
static void sub_remove(struct hub_subscriber *s, size_t i, int call_backend)
{
	struct hub_sub *hs = &s->subs[i];
	struct channel *ch = hs->ch;

	/* channel side */
	size_t slot = hs->slot;
	ch->subs[slot] = ch->subs[--ch->n_subs];
	if (slot < ch->n_subs) {
		struct subref *moved = &ch->subs[slot];
		moved->s->subs[moved->idx].slot = slot;
	}
	/* subscriber side */
	if (hs->rec)
		pos_sub_cancel(hs->rec);
	free(hs->id);
	free(hs->since);
	s->subs[i] = s->subs[--s->n_subs];
	if (i < s->n_subs) {
		struct hub_sub *moved = &s->subs[i];
		moved->ch->subs[moved->slot].idx = i;
	}
	metrics.subscriptions--;
	if (ch->owner == s && ch->n_subs)
		charge_move(ch);

	if (ch->n_subs == 0) {
		if (call_backend) {
			int r = backend_unsubscribe(ch->b, ch->name);
			if (r)
				log_warn("[backend %s] unsubscribe %s failed (%d)",
					 ch->b->cfg->name, ch->name, r);
		}
		ch_destroy(ch);
	}
}

static int sub_add(struct hub_subscriber *s, struct channel *ch, const char *id, void *tag)
{
	if (s->n_subs == s->cap_subs) {
		size_t cap = s->cap_subs ? s->cap_subs * 2 : 4;
		struct hub_sub *n = realloc(s->subs, cap * sizeof(*n));
		if (!n)
			return -1;
		s->subs = n;
		s->cap_subs = cap;
	}
	if (ch->n_subs == ch->cap_subs) {
		size_t cap = ch->cap_subs ? ch->cap_subs * 2 : 4;
		struct subref *n = realloc(ch->subs, cap * sizeof(*n));
		if (!n)
			return -1;
		ch->subs = n;
		ch->cap_subs = cap;
	}
	struct hub_sub *hs = &s->subs[s->n_subs];
	hs->ch = ch;
	hs->slot = ch->n_subs;
	hs->confirmed = 0;
	hs->id = id && *id ? strdup(id) : NULL;
	hs->tag = tag;
	hs->since = NULL;
	hs->rec = NULL;
	ch->subs[ch->n_subs].s = s;
	ch->subs[ch->n_subs].idx = s->n_subs;
	ch->n_subs++;
	s->n_subs++;
	metrics.subscriptions++;
	return 0;
}

static long find_sub(struct hub_subscriber *s, const char *channel)
{
	for (size_t i = 0; i < s->n_subs; i++)
		if (!strcmp(s->subs[i].ch->name, channel))
			return (long)i;
	return -1;
}

static int channel_allowed(const char *channel)
{
	for (size_t i = 0; i < cfg->n_channels; i++)
		if (!fnmatch(cfg->channels[i], channel, 0))
			return 1;
	return 0;
}

/* Send "subscribed" (with the position where the channel has one). */
static void send_subscribed(struct hub_subscriber *s, struct hub_sub *hs, const char *epoch,
			    uint64_t offset, int recovered)
{
	const char *id = hs->id ? hs->id : "";
	hs->confirmed = 1;
	if (s->ops->subscribed)
		s->ops->subscribed(s, id, hs->ch->name, epoch, offset, recovered);
	else
		s->ops->ack(s, "subscribed", id, hs->ch->name);
	free(hs->id);
	hs->id = NULL;
	free(hs->since);
	hs->since = NULL;
}

/* The backend confirmed the channel: answer hs, resuming it if it gave a
 * position (recovery may answer now or later, through pos_finish). */
static void confirm(struct hub_subscriber *s, struct hub_sub *hs)
{
	struct channel *ch = hs->ch;
	if (!ch->pos) {
		if (hs->since) { /* nothing to recover from: say so */
			metrics.rec.recoveries++;
			metrics.rec.failed[RF_UNPOSITIONED]++;
		}
		send_subscribed(s, hs, NULL, 0, hs->since ? 0 : -1);
		return;
	}
	if (!hs->since) {
		send_subscribed(s, hs, pos_epoch(ch->pos), pos_top(ch->pos), -1);
		return;
	}
	struct proto_since since = *hs->since;
	size_t idx = (size_t)(hs - s->subs);
	struct pos_sub *ps = pos_recover(ch->pos, s, &since);
	if (ps)
		s->subs[idx].rec = ps;
}

void hub_subscribe(struct hub_subscriber *s, const char *channel, const char *id, void *tag)
{
	hub_subscribe_at(s, channel, id, tag, NULL);
}

void hub_subscribe_at(struct hub_subscriber *s, const char *channel, const char *id, void *tag,
		      const struct proto_since *since)
{
	if (!channel_allowed(channel)) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN, "channel not allowed by this server");
		return;
	}
	if (s->claims && !auth_may_subscribe(s->claims, channel)) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN, "channel not allowed by your token");
		return;
	}
	long i = find_sub(s, channel);
	if (i >= 0) {
		struct hub_sub *hs = &s->subs[i];
		if (hs->confirmed) {
			/* Already live: no replay (the stream never stopped). */
			struct pos_chan *pc = hs->ch->pos;
			if (s->ops->subscribed)
				s->ops->subscribed(s, id, channel, pc ? pos_epoch(pc) : NULL,
						   pc ? pos_top(pc) : 0, since ? 0 : -1);
			else
				s->ops->ack(s, "subscribed", id, channel);
		} else {
			free(hs->id);
			hs->id = id && *id ? strdup(id) : NULL;
		}
		return;
	}
	if ((long long)s->n_subs >= cfg->max_subscriptions) {
		s->ops->error(s, id, PROTO_E_TOO_MANY_SUBS,
			      "subscription limit reached (max_subscriptions)");
		return;
	}
	struct channel *ch = ch_find(channel);
	int created = 0;
	if (!ch) {
		struct fanout_backend *b = plugin_host_route(channel);
		if (!b) {
			s->ops->error(s, id, PROTO_E_NO_BACKEND, "no backend serves this channel");
			return;
		}
		if ((long long)n_channels >= cfg->max_channels) {
			metrics.channel_limit_hits++;
			s->ops->error(s, id, PROTO_E_BACKEND_UNAVAIL,
				      "channel limit reached (max_channels)");
			return;
		}
		/* A few connections from one address must not use up
		 * max_channels: a new channel counts against the address
		 * that brings it in (existing channels cost nothing). */
		struct ipcharge *e = NULL;
		if (cfg->max_channels_per_ip > 0 && s->has_addr && (e = charge_find(&s->addr)) &&
		    e->n >= cfg->max_channels_per_ip) {
			metrics.channel_ip_limit_hits++;
			s->ops->error(
			    s, id, PROTO_E_TOO_MANY_SUBS,
			    "channel limit of this address reached (max_channels_per_ip)");
			return;
		}
		ch = ch_create(channel, b);
		if (!ch)
			goto oom;
		created = 1;
	}
	struct proto_since *sc = since ? malloc(sizeof(*sc)) : NULL;
	if ((since && !sc) || sub_add(s, ch, id, tag)) {
		free(sc);
		if (created)
			ch_destroy(ch);
		goto oom;
	}
	if (created) {
		ch->owner = s;
		if (cfg->max_channels_per_ip > 0 && s->has_addr)
			ch->charge = charge_add(&s->addr);
	}
	if (sc) {
		*sc = *since;
		s->subs[s->n_subs - 1].since = sc;
	}
	if (!created) {
		if (ch->state == CH_ACTIVE)
			confirm(s, &s->subs[s->n_subs - 1]);
		return;
	}
	/* First local subscriber: ask the backend (it may confirm at once,
	 * from inside this call). */
	ch->b->pending_subs++;
	int r = backend_subscribe(ch->b, channel);
	if (r) {
		ch = ch_find(channel);
		if (ch && ch->state == CH_PENDING)
			hub_subscribed(ch->b, channel, 0);
	}
	return;
oom:
	s->ops->error(s, id, PROTO_E_BACKEND_UNAVAIL, "out of memory");
}

void hub_unsubscribe(struct hub_subscriber *s, const char *channel, const char *id)
{
	long i = find_sub(s, channel);
	if (i >= 0) {
		struct hub_sub *hs = &s->subs[i];
		if (!hs->confirmed) /* the pending subscribe gets its answer now */
			s->ops->error(s, hs->id, PROTO_E_BACKEND_UNAVAIL,
				      "unsubscribed before the backend confirmed");
		sub_remove(s, (size_t)i, 1);
	}
	/* Unsubscribing from a channel one is not subscribed to is not an error. */
	s->ops->ack(s, "unsubscribed", id, channel);
}

static void pos_timer_fire(struct fanout_timer *t, void *arg)
{
	(void)arg;
	loop_timer_arm(t, pos_tick());
}

void hub_subscribed_at(struct fanout_backend *b, const char *channel, int ok, const char *epoch,
		       uint64_t top, unsigned flags)
{
	struct channel *ch = ch_find(channel);
	if (!ch || ch->b != b)
		return;
	if (ch->state != CH_PENDING) {
		/* A resubscribe after a reconnect: the position tells whether
		 * anything was missed meanwhile. */
		if (ok && ch->pos && epoch)
			pos_observe(ch->pos, epoch, top);
		return;
	}
	if (ok && epoch && !ch->pos) {
		ch->pos = pos_chan_new(ch, ch->name, epoch, top, flags);
		if (!ch->pos)
			log_err("out of memory: %s is served without positions", ch->name);
		if (!pos_timer && !stopped && (pos_timer = loop_timer_add(pos_timer_fire, NULL)))
			loop_timer_arm(pos_timer, pos_tick());
	}
	hub_subscribed(b, channel, ok);
}

void hub_subscribed(struct fanout_backend *b, const char *channel, int ok)
{
	struct channel *ch = ch_find(channel);
	if (!ch || ch->b != b || ch->state != CH_PENDING)
		return; /* a resubscribe after reconnect, or nobody waits any more */
	if (b->pending_subs > 0)
		b->pending_subs--;
	if (ok) {
		ch->state = CH_ACTIVE;
		for (size_t i = 0; i < ch->n_subs; i++) {
			struct hub_subscriber *s = ch->subs[i].s;
			struct hub_sub *hs = &s->subs[ch->subs[i].idx];
			if (!hs->confirmed)
				confirm(s, hs);
		}
		return;
	}
	/* Refused: every subscriber is told and dropped, the channel goes. */
	ch->state = CH_ACTIVE; /* so ch_destroy does not decrement again */
	while (ch->n_subs > 0) {
		struct hub_subscriber *s = ch->subs[ch->n_subs - 1].s;
		size_t idx = ch->subs[ch->n_subs - 1].idx;
		struct hub_sub *hs = &s->subs[idx];
		s->ops->error(s, hs->id ? hs->id : "", PROTO_E_BACKEND_UNAVAIL,
			      "the backend could not subscribe");
		int last = ch->n_subs == 1;
		sub_remove(s, idx, 0);
		if (last)
			break; /* ch was freed */
	}
}

/* Transports in use at once (ws, tRPC, SSE, …); a fan-out frames the event
 * once for each. */
#define FAN_TRANSPORTS 8

/*
 * Hand ev (its native frame built in out, whose memory is taken) to every
 * subscriber of ch: each transport's frame() makes its refcounted frame the
 * first time one of its subscribers needs it, and each subscriber's
 * deliver() takes a reference. Returns how many subscribers got it. A
 * subscriber may be marked for closing meanwhile (queue cap): deliver never
 * changes the subscription arrays, closing happens later.
 */
static size_t fan_out(struct channel *ch, struct hub_event *ev, struct buf *out)
{
	const struct hub_sink_ops *ops[FAN_TRANSPORTS];
	struct msg *frames[FAN_TRANSPORTS];
	size_t n_ops = 0, delivered = 0;

	ev->frame = msg_from_buf(out);
	if (!ev->frame) {
		buf_free(out);
		log_err("out of memory framing an event on %s", ch->name);
		return 0;
	}
	for (size_t i = 0; i < ch->n_subs; i++) {
		struct hub_subscriber *s = ch->subs[i].s;
		size_t k = 0;
		while (k < n_ops && ops[k] != s->ops)
			k++;
		if (k == n_ops) {
			if (n_ops == FAN_TRANSPORTS)
				continue; /* cannot happen: fewer transports exist */
			ops[k] = s->ops;
			frames[k] = s->ops->frame(ev);
			n_ops++;
		}
		if (!frames[k])
			continue; /* out of memory framing it for this transport */
		s->ops->deliver(s, s->subs[ch->subs[i].idx].tag, frames[k]);
		delivered++;
	}
	for (size_t k = 0; k < n_ops; k++)
		if (frames[k])
			msg_unref(frames[k]);
		else
			log_err("out of memory framing an event on %s (%s)", ch->name,
				ops[k]->name);
	msg_unref(ev->frame);
	return delivered;
}

/* The frame of it for one transport: built once, kept in the item. */
static struct msg *item_frame(struct pos_item *it, const struct hub_sink_ops *ops,
			      const struct channel *ch)
{
	for (int i = 0; i < it->n_frames; i++)
		if (it->frames[i].key == ops)
			return msg_ref(it->frames[i].m);
	struct hub_event ev = {
	    .kind = it->kind == POS_GAP ? HUB_EV_GAP : HUB_EV_MESSAGE,
	    .channel = ch->name,
	    .frame = it->frame,
	    .reason = it->reason,
	    .epoch = it->positioned ? it->epoch : NULL,
	    .offset = it->offset,
	};
	struct msg *m = ops->frame(&ev);
	if (!m) {
		log_err("out of memory framing an event on %s (%s)", ch->name, ops->name);
		return NULL;
	}
	if (it->n_frames < POS_ITEM_FRAMES) {
		it->frames[it->n_frames].key = ops;
		it->frames[it->n_frames++].m = msg_ref(m);
	}
	return m;
}

/*
 * recovery.c's way out for a positioned channel's events (pos_hooks): like
 * fan_out(), but framed through the item's cache, and subscribers still
 * recovering hand the item back to recovery. Subscribers not yet answered
 * get nothing: their "subscribed" will say where they stand.
 */
static void pos_fan_out(void *chp, struct pos_item *it)
{
	struct channel *ch = chp;
	const struct hub_sink_ops *ops[FAN_TRANSPORTS];
	struct msg *frames[FAN_TRANSPORTS];
	size_t n_ops = 0, delivered = 0;

	for (size_t i = 0; i < ch->n_subs; i++) {
		struct hub_subscriber *s = ch->subs[i].s;
		struct hub_sub *hs = &s->subs[ch->subs[i].idx];
		if (hs->rec) {
			pos_sub_buffer(hs->rec, it); /* may answer it: it then goes live */
			continue;
		}
		if (!hs->confirmed)
			continue;
		size_t k = 0;
		while (k < n_ops && ops[k] != s->ops)
			k++;
		if (k == n_ops) {
			if (n_ops == FAN_TRANSPORTS)
				continue;
			ops[k] = s->ops;
			frames[k] = item_frame(it, s->ops, ch);
			n_ops++;
		}
		if (!frames[k])
			continue;
		s->ops->deliver(s, hs->tag, frames[k]);
		delivered++;
	}
	for (size_t k = 0; k < n_ops; k++)
		msg_unref(frames[k]);
	if (it->kind == POS_GAP)
		metrics.gaps += (long long)delivered;
	else
		metrics.deliveries += (long long)delivered;
}

/* A subscriber's recovery is over (pos_hooks): "subscribed", the replay,
 * then live. */
static void pos_finish(void *chp, void *subp, const char *epoch, uint64_t offset, int recovered,
		       struct pos_item *const *items, size_t n)
{
	struct channel *ch = chp;
	struct hub_subscriber *s = subp;
	struct hub_sub *hs = NULL;
	for (size_t i = 0; i < s->n_subs && !hs; i++)
		if (s->subs[i].ch == ch)
			hs = &s->subs[i];
	if (!hs)
		return;
	hs->rec = NULL;
	send_subscribed(s, hs, epoch, offset, recovered);
	for (size_t i = 0; i < n; i++) {
		struct msg *m = item_frame(items[i], s->ops, ch);
		if (!m)
			continue;
		s->ops->deliver(s, hs->tag, m);
		msg_unref(m);
	}
	metrics.deliveries += (long long)n;
}

static int pos_top_hook(void *chp, uint64_t token)
{
	struct channel *ch = chp;
	return backend_top(ch->b, ch->name, token);
}

static int pos_history_hook(void *chp, const char *epoch, uint64_t after, uint64_t max,
			    uint64_t token)
{
	struct channel *ch = chp;
	return backend_history(ch->b, ch->name, epoch, after, max, token);
}

static const struct pos_hooks pos_hooks = {
    .top = pos_top_hook,
    .history = pos_history_hook,
    .fan_out = pos_fan_out,
    .finish = pos_finish,
    .now = loop_now_ms,
};

/* Common to deliver and deliver_at: caps, the channel, the fan-out. */
static void deliver(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t offset, const void *data, size_t len)
{
	b->messages_in++;
	if ((long long)len > cfg->max_payload_bytes) {
		metrics.messages_too_big++;
		uint64_t now = loop_now_ms();
		if (now - too_big_logged_ms > 1000) {
			too_big_logged_ms = now;
			log_warn("[backend %s] dropped a %zu-byte message on %s (max_payload_bytes "
				 "%lld; %lld dropped so far)",
				 b->cfg->name, len, channel, cfg->max_payload_bytes,
				 metrics.messages_too_big);
		}
		return;
	}
	struct channel *ch = ch_find(channel);
	if (!ch || ch->b != b || ch->n_subs == 0) {
		metrics.messages_no_subscriber++;
		return;
	}
	metrics.messages_in++;
	/* The native frame, once per message (with its offset when it has one). */
	struct buf out;
	int replaced = 0;
	buf_init(&out, MSG_PRE);
	if (proto_message_at(&out, channel, cfg->instance, epoch != NULL, offset, data, len,
			     &replaced)) {
		buf_free(&out);
		log_err("out of memory framing a message on %s", channel);
		return;
	}
	if (replaced)
		metrics.messages_utf8_replaced++;
	if (ch->pos) {
		/* Positioned: recovery orders, dedups, repairs, keeps it. */
		struct msg *m = msg_from_buf(&out);
		struct pos_item *it = m ? pos_item_new(POS_MESSAGE, epoch, offset, m, NULL) : NULL;
		if (m)
			msg_unref(m);
		else
			buf_free(&out);
		if (!it) {
			log_err("out of memory taking a message on %s", ch->name);
			return;
		}
		if (epoch)
			pos_deliver(ch->pos, it);
		else
			pos_deliver_plain(ch->pos, it);
		pos_item_unref(it);
		return;
	}
	struct hub_event ev = {.kind = HUB_EV_MESSAGE, .channel = ch->name};
	metrics.deliveries += (long long)fan_out(ch, &ev, &out);
}

void hub_deliver(struct fanout_backend *b, const char *channel, const void *data, size_t len)
{
	deliver(b, channel, NULL, 0, data, len);
}

void hub_deliver_at(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t offset, const void *data, size_t len)
{
	deliver(b, channel, epoch, offset, data, len);
}

static void gap_channel(struct channel *ch, const char *reason)
{
	if (ch->pos) {
		/* Messages may be lost: find out from the top, repair from
		 * history, gap only what it cannot fill. */
		pos_suspect(ch->pos, reason);
		return;
	}
	struct buf out;
	buf_init(&out, MSG_PRE);
	proto_gap(&out, ch->name, reason);
	struct hub_event ev = {.kind = HUB_EV_GAP, .channel = ch->name, .reason = reason};
	metrics.gaps += (long long)fan_out(ch, &ev, &out);
}

void hub_gap(struct fanout_backend *b, const char *channel, const char *reason)
{
	if (channel) {
		struct channel *ch = ch_find(channel);
		if (ch && ch->b == b)
			gap_channel(ch, reason);
		return;
	}
	for (size_t i = 0; i < table_size; i++)
		for (struct channel *ch = table[i]; ch; ch = ch->next)
			if (ch->b == b)
				gap_channel(ch, reason);
}

void hub_top_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
		  uint64_t top)
{
	(void)b;
	pos_top_done(token, status, epoch, top);
}

void hub_history_item(struct fanout_backend *b, uint64_t token, uint64_t offset, const void *data,
		      size_t len)
{
	(void)b;
	pos_history_item(token, offset, data, len);
}

void hub_history_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
		      uint64_t top)
{
	(void)b;
	pos_history_done(token, status, epoch, top);
}

/* ---- publishes ---- */

static void pub_unlink_subscriber(struct pending_pub *p)
{
	if (!p->s)
		return;
	if (p->prev_s)
		p->prev_s->next_s = p->next_s;
	else
		p->s->pubs = p->next_s;
	if (p->next_s)
		p->next_s->prev_s = p->prev_s;
	p->prev_s = p->next_s = NULL;
	p->s = NULL;
}

static struct pending_pub *pub_take(uint64_t token)
{
	struct pending_pub **pp = &pubs[token % PUB_BUCKETS];
	for (; *pp; pp = &(*pp)->next_hash)
		if ((*pp)->token == token) {
			struct pending_pub *p = *pp;
			*pp = p->next_hash;
			n_pubs--;
			return p;
		}
	return NULL;
}

void hub_publish(struct hub_subscriber *s, const char *channel, const char *data, size_t len,
		 const char *id)
{
	if (!cfg->allow_publish && !s->publisher) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN, "publishing is disabled on this server");
		return;
	}
	if (!channel_allowed(channel)) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN, "channel not allowed by this server");
		return;
	}
	if (s->claims && !auth_may_publish(s->claims, channel)) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN,
			      "publishing here is not allowed by your token");
		return;
	}
	struct fanout_backend *b = plugin_host_route(channel);
	if (!b) {
		s->ops->error(s, id, PROTO_E_NO_BACKEND, "no backend serves this channel");
		return;
	}
	if (!backend_can_publish(b)) {
		s->ops->error(s, id, PROTO_E_FORBIDDEN, "this channel's backend does not publish");
		return;
	}
	if ((long long)len > cfg->max_payload_bytes) {
		s->ops->error(s, id, PROTO_E_BAD_REQUEST, "data larger than max_payload_bytes");
		return;
	}
	if (n_pubs >= PUB_MAX) {
		metrics.publish_failed++;
		s->ops->error(s, id, PROTO_E_BACKEND_UNAVAIL, "too many publishes in flight");
		return;
	}
	struct pending_pub *p = calloc(1, sizeof(*p));
	if (!p) {
		s->ops->error(s, id, PROTO_E_BACKEND_UNAVAIL, "out of memory");
		return;
	}
	p->token = next_token++;
	p->b = b;
	p->s = s;
	p->id = id && *id ? strdup(id) : NULL;
	snprintf(p->channel, sizeof(p->channel), "%s", channel);
	p->next_s = s->pubs;
	if (p->next_s)
		p->next_s->prev_s = p;
	s->pubs = p;
	p->next_hash = pubs[p->token % PUB_BUCKETS];
	pubs[p->token % PUB_BUCKETS] = p;
	n_pubs++;
	uint64_t token = p->token;
	int r = backend_publish(b, channel, data, len, token);
	if (r && (p = pub_take(token))) { /* refused at once, and not answered yet */
		struct hub_subscriber *ps = p->s;
		pub_unlink_subscriber(p);
		metrics.publish_failed++;
		if (ps)
			ps->ops->error(ps, p->id, PROTO_E_BACKEND_UNAVAIL,
				       "the backend refused the publish");
		free(p->id);
		free(p);
	}
}

void hub_published(struct fanout_backend *b, uint64_t token, int ok)
{
	hub_published_at(b, token, ok, NULL, 0);
}

void hub_published_at(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
		      uint64_t offset)
{
	struct pending_pub *p = pub_take(token);
	if (!p)
		return;
	struct hub_subscriber *s = p->s;
	pub_unlink_subscriber(p);
	if (ok)
		metrics.publish_ok++;
	else
		metrics.publish_failed++;
	if (s) {
		if (ok && s->ops->published)
			s->ops->published(s, p->id ? p->id : "", p->channel, epoch, offset);
		else if (ok)
			s->ops->ack(s, "published", p->id ? p->id : "", p->channel);
		else
			s->ops->error(s, p->id ? p->id : "", PROTO_E_BACKEND_UNAVAIL,
				      "the backend could not publish");
	}
	free(p->id);
	free(p);
}

void hub_claims_changed(struct hub_subscriber *s)
{
	if (!s->claims)
		return;
	/* From the end: sub_remove() moves the last entry into slot i, and
	 * that one was looked at already. */
	for (size_t i = s->n_subs; i-- > 0;) {
		struct hub_sub *hs = &s->subs[i];
		if (auth_may_subscribe(s->claims, hs->ch->name))
			continue;
		char msg[PROTO_CHANNEL_MAX + 64];
		snprintf(msg, sizeof(msg), "unsubscribed from %s: the new token does not allow it",
			 hs->ch->name);
		char *id = hs->confirmed ? NULL : hs->id; /* a pending subscribe's answer */
		hs->id = NULL;
		sub_remove(s, i, 1);
		s->ops->error(s, id ? id : "", PROTO_E_FORBIDDEN, msg);
		free(id);
	}
}

void hub_subscriber_gone(struct hub_subscriber *s)
{
	while (s->n_subs > 0)
		sub_remove(s, s->n_subs - 1, 1);
	free(s->subs);
	s->subs = NULL;
	s->cap_subs = 0;
	/* Pending publishes stay in the table (the backend will answer) but no
	 * longer point at the subscriber. */
	while (s->pubs)
		pub_unlink_subscriber(s->pubs);
}

void hub_stop(void)
{
	stopped = 1;
	loop_timer_remove(pos_timer);
	pos_timer = NULL;
}

void hub_free(void)
{
	hub_stop();
	for (size_t i = 0; i < table_size; i++)
		for (struct channel *ch = table[i], *next; ch; ch = next) {
			next = ch->next;
			pos_chan_free(ch->pos);
			free(ch->subs);
			free(ch);
		}
	free(table);
	table = NULL;
	for (size_t i = 0; i < IP_BUCKETS; i++)
		while (charges[i]) {
			struct ipcharge *e = charges[i];
			charges[i] = e->next;
			free(e);
		}
	for (size_t i = 0; i < PUB_BUCKETS; i++)
		for (struct pending_pub *p = pubs[i], *next; p; p = next) {
			next = p->next_hash;
			free(p->id);
			free(p);
		}
	memset(pubs, 0, sizeof(pubs));
	n_pubs = 0;
	n_channels = 0;
	pos_free();
}

/*
 * b was restarted behind the same handle (a reload changed its section):
 * the new instance knows no channel. Publishes the old one never answered
 * fail (backend_unavailable); every channel b serves is asked for again —
 * a pending one is confirmed to its clients as usual, an active one's
 * confirmation is ignored as after a broker reconnect — and its
 * subscribers get a gap (reason), since messages published meanwhile are
 * lost. Names are collected first: a refusal destroys the channel.
 */
void hub_resubscribe(struct fanout_backend *b, const char *reason)
{
	uint64_t *tokens = NULL;
	size_t nt = 0, cap = 0;
	for (size_t i = 0; i < PUB_BUCKETS; i++)
		for (struct pending_pub *p = pubs[i]; p; p = p->next_hash) {
			if (p->b != b)
				continue;
			if (nt == cap) {
				uint64_t *q =
				    realloc(tokens, (cap = cap ? cap * 2 : 16) * sizeof(*q));
				if (!q)
					break;
				tokens = q;
			}
			tokens[nt++] = p->token;
		}
	for (size_t i = 0; i < nt; i++)
		hub_published(b, tokens[i], 0);
	free(tokens);

	char **names = NULL;
	size_t n = 0, ncap = 0;
	for (size_t i = 0; i < table_size; i++)
		for (struct channel *ch = table[i]; ch; ch = ch->next) {
			if (ch->b != b)
				continue;
			if (n == ncap) {
				char **q =
				    realloc(names, (ncap = ncap ? ncap * 2 : 16) * sizeof(*q));
				if (!q)
					goto out;
				names = q;
			}
			if (!(names[n] = strdup(ch->name)))
				goto out;
			n++;
		}
	for (size_t i = 0; i < n; i++) {
		int r = backend_subscribe(b, names[i]);
		struct channel *ch = ch_find(names[i]);
		if (r && ch && ch->b == b && ch->state == CH_PENDING)
			hub_subscribed(b, names[i], 0);
		else if (r)
			log_warn("[backend %s] subscribe %s after restart failed: %s", b->cfg->name,
				 names[i], fanout_strerror(r));
	}
	hub_gap(b, NULL, reason);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
