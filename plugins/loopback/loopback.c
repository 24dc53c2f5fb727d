/*
 * loopback.c — the in-process backend: a publish is delivered straight back
 * to this instance's subscribers. For tests and single-instance use (no
 * broker; instances do not see each other's messages).
 *
 * Positions (ABI 1.1): with history_size > 0 (the default) every channel is
 * positioned: offsets 1, 2, 3, ... per channel, contiguous, inside an epoch
 * drawn at random when the process starts (so a restarted fanoutd is a new
 * epoch: its history is gone). The last history_size messages of each
 * channel are kept, each for at most history_ttl_s seconds (0: no expiry),
 * and answer top() and history() the way a broker's history would. A
 * channel's state (its offset counter) may be forgotten once it keeps no
 * message and nobody is subscribed (only when max_channels is reached); it
 * comes back with a new epoch ("<process epoch>-<n>"), so an offset is
 * never reused within an epoch.
 * The number of channels kept is capped by max_channels, the payload bytes
 * kept by all of them by history_bytes (the oldest go first, the publishing
 * channel's own before others'); past max_channels a publish to a new
 * channel is refused (FANOUT_EUNAVAIL) and counted.
 *
 * Test options: delay_confirm_ms answers subscribe, publish, top and
 * history only after that many ms (the asynchronous paths);
 * fail_subscribe refuses every subscribe; drop_every N (0: off) does not
 * deliver every Nth publish live (it is still kept in history), so the
 * host sees an offset jump — a lost broker message — and must repair it.
 *
 * Loop thread only. Allocates its state in init() and per channel on first
 * use; frees everything in destroy().
 */
#include <fanout/plugin.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One kept message. */
struct item {
	uint64_t offset;
	uint64_t at_ms; /* when published (host clock) */
	char *data;
	size_t len;
};

/* One channel's position and history (a ring of history_size items). */
struct chan {
	struct chan *next; /* hash chain */
	uint32_t hash;
	char epoch[65];
	uint64_t top;
	int subscribed;
	struct item *ring; /* history_size slots, NULL while nothing is kept */
	size_t head, n;	   /* oldest slot, items kept */
	char name[];
};

enum op { OP_SUBSCRIBE, OP_PUBLISH, OP_TOP, OP_HISTORY };

struct pending {
	struct pending *next;
	enum op op;
	uint64_t token, after, max;
	char *channel;
	char *epoch;
	char *data;
	size_t len;
};

struct loopback {
	const struct fanout_host *host;
	struct fanout_backend *b;
	long long delay_ms;
	int fail_subscribe;
	long long history_size, history_ttl_ms, max_channels, drop_every, history_bytes;
	long long kept_bytes;	      /* payload bytes in every channel's history */
	size_t evict_at;	      /* table bucket where the next eviction looks */
	char epoch[40];		      /* this process's epoch */
	unsigned long long forgotten; /* channel states forgotten so far */
	unsigned long long publishes;
	struct chan **table; /* hash table of channel states */
	size_t table_size;   /* power of two */
	long long n_chans;
	struct fanout_timer *timer;
	struct pending *head, *tail;
};

static const struct fanout_option options[] = {
    FANOUT_OPTION_INT("delay_confirm_ms", "0", 0, 60000,
		      "answer subscribe/publish/top/history after this many ms (tests)"),
    FANOUT_OPTION_BOOL("fail_subscribe", "false", "refuse every subscribe (tests)"),
    FANOUT_OPTION_INT("history_size", "1000", 0, 1000000,
		      "messages kept per channel for recovery (0: no positions, no history)"),
    FANOUT_OPTION_INT("history_ttl_s", "300", 0, 31536000,
		      "seconds a kept message stays in history (0: until pushed out)"),
    FANOUT_OPTION_INT("max_channels", "100000", 1, 100000000,
		      "channels whose position and history are kept"),
    FANOUT_OPTION_INT("drop_every", "0", 0, 1000000,
		      "tests: do not deliver every Nth publish live (history keeps it)"),
    FANOUT_OPTION_INT("history_bytes", "64m", 0, 1LL << 40,
		      "payload bytes kept in all channels' history together (0: no cap); "
		      "past it the oldest go"),
    FANOUT_OPTION_END,
};

/* ---- channels ---- */

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct chan *chan_find(struct loopback *lb, const char *name)
{
	uint32_t h = hash_name(name);
	for (struct chan *c = lb->table[h & (lb->table_size - 1)]; c; c = c->next)
		if (c->hash == h && !strcmp(c->name, name))
			return c;
	return NULL;
}

/* Forget c's oldest kept item. */
static void drop_oldest(struct loopback *lb, struct chan *c)
{
	struct item *it = &c->ring[c->head];
	lb->kept_bytes -= (long long)it->len;
	free(it->data);
	c->head = (c->head + 1) % (size_t)lb->history_size;
	c->n--;
}

static void chan_free(struct loopback *lb, struct chan *c)
{
	for (size_t i = 0; i < c->n; i++) {
		lb->kept_bytes -= (long long)c->ring[(c->head + i) % (size_t)lb->history_size].len;
		free(c->ring[(c->head + i) % (size_t)lb->history_size].data);
	}
	free(c->ring);
	free(c);
}

static void table_grow(struct loopback *lb)
{
	size_t nsize = lb->table_size * 2;
	struct chan **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return; /* chains just get longer */
	for (size_t i = 0; i < lb->table_size; i++)
		for (struct chan *c = lb->table[i], *next; c; c = next) {
			next = c->next;
			c->next = nt[c->hash & (nsize - 1)];
			nt[c->hash & (nsize - 1)] = c;
		}
	free(lb->table);
	lb->table = nt;
	lb->table_size = nsize;
}

/* Drop items older than history_ttl_s. */
static void chan_expire(struct loopback *lb, struct chan *c)
{
	if (!lb->history_ttl_ms || !c->n)
		return;
	uint64_t now = lb->host->now_ms(lb->b);
	while (c->n && now - c->ring[c->head].at_ms >= (uint64_t)lb->history_ttl_ms)
		drop_oldest(lb, c);
}

/* Over history_bytes: the channel adding drops its oldest first, then the
 * others in turn (each keeps its history contiguous: only heads go). */
static void make_room(struct loopback *lb, struct chan *c, size_t len)
{
	if (!lb->history_bytes)
		return; /* 0: no byte cap */
	while (c->n && lb->kept_bytes + (long long)len > lb->history_bytes)
		drop_oldest(lb, c);
	for (size_t tries = 0;
	     lb->kept_bytes + (long long)len > lb->history_bytes && tries < lb->table_size;
	     tries++) {
		size_t b = lb->evict_at++ % lb->table_size;
		for (struct chan *o = lb->table[b]; o; o = o->next)
			while (o->n && lb->kept_bytes + (long long)len > lb->history_bytes)
				drop_oldest(lb, o);
	}
}

static struct chan *chan_get(struct loopback *lb, const char *name)
{
	struct chan *c = chan_find(lb, name);
	if (c)
		return c;
	if (lb->n_chans >= lb->max_channels) {
		/* Make room from channels that keep nothing and serve nobody. */
		for (size_t i = 0; i < lb->table_size; i++)
			for (struct chan **pp = &lb->table[i]; *pp;) {
				struct chan *o = *pp;
				chan_expire(lb, o);
				if (!o->n && !o->subscribed) {
					*pp = o->next;
					chan_free(lb, o);
					lb->n_chans--;
					lb->forgotten++;
				} else {
					pp = &o->next;
				}
			}
		if (lb->n_chans >= lb->max_channels) {
			lb->host->count(lb->b, "channel_limit", 1);
			return NULL;
		}
	}
	size_t len = strlen(name);
	c = calloc(1, sizeof(*c) + len + 1);
	if (!c)
		return NULL;
	memcpy(c->name, name, len + 1);
	/* A channel state that comes back after being forgotten must not
	 * reuse its old epoch (its offsets start again at 1): the epoch names
	 * how many states had been forgotten when it was created. */
	if (lb->forgotten)
		snprintf(c->epoch, sizeof(c->epoch), "%s-%llu", lb->epoch, lb->forgotten);
	else
		snprintf(c->epoch, sizeof(c->epoch), "%s", lb->epoch);
	c->hash = hash_name(name);
	if ((size_t)lb->n_chans + 1 > lb->table_size)
		table_grow(lb);
	c->next = lb->table[c->hash & (lb->table_size - 1)];
	lb->table[c->hash & (lb->table_size - 1)] = c;
	lb->n_chans++;
	return c;
}

static int chan_keep(struct loopback *lb, struct chan *c, uint64_t offset, const void *data,
		     size_t len)
{
	if (!c->ring) {
		c->ring = calloc((size_t)lb->history_size, sizeof(*c->ring));
		if (!c->ring)
			return FANOUT_ENOMEM;
	}
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return FANOUT_ENOMEM;
	memcpy(copy, data, len);
	size_t cap = (size_t)lb->history_size;
	if (c->n == cap) /* full: the oldest goes */
		drop_oldest(lb, c);
	make_room(lb, c, len);
	struct item *it = &c->ring[(c->head + c->n) % cap];
	it->offset = offset;
	it->at_ms = lb->host->now_ms(lb->b);
	it->data = copy;
	it->len = len;
	c->n++;
	lb->kept_bytes += (long long)len;
	return 0;
}

/* ---- the operations, answered now or from the delay timer ---- */

static void do_subscribe(struct loopback *lb, const char *channel)
{
	if (lb->fail_subscribe) {
		lb->host->subscribed(lb->b, channel, 0);
		return;
	}
	if (!lb->history_size) {
		lb->host->subscribed(lb->b, channel, 1);
		return;
	}
	struct chan *c = chan_get(lb, channel);
	if (!c) {
		lb->host->subscribed(lb->b, channel, 0);
		return;
	}
	c->subscribed = 1;
	lb->host->subscribed_at(lb->b, channel, 1, c->epoch, c->top, FANOUT_POS_CONTIGUOUS);
}

static void do_publish(struct loopback *lb, const char *channel, const void *data, size_t len,
		       uint64_t token)
{
	int live = !lb->drop_every || ++lb->publishes % (unsigned long long)lb->drop_every;
	if (!lb->history_size) {
		if (live)
			lb->host->deliver(lb->b, channel, data, len);
		lb->host->published(lb->b, token, 1);
		return;
	}
	struct chan *c = chan_get(lb, channel);
	if (!c || chan_keep(lb, c, c->top + 1, data, len)) {
		lb->host->published(lb->b, token, 0);
		return;
	}
	uint64_t off = ++c->top;
	if (live)
		lb->host->deliver_at(lb->b, channel, c->epoch, off, data, len);
	else
		lb->host->count(lb->b, "dropped_live", 1);
	lb->host->published_at(lb->b, token, 1, c->epoch, off);
}

static void do_top(struct loopback *lb, const char *channel, uint64_t token)
{
	struct chan *c = chan_get(lb, channel);
	if (!c)
		lb->host->top_done(lb->b, token, FANOUT_EUNAVAIL, NULL, 0);
	else
		lb->host->top_done(lb->b, token, FANOUT_OK, c->epoch, c->top);
}

static void do_history(struct loopback *lb, const char *channel, const char *epoch, uint64_t after,
		       uint64_t max, uint64_t token)
{
	struct chan *c = chan_get(lb, channel);
	if (!c) {
		lb->host->history_done(lb->b, token, FANOUT_EUNAVAIL, NULL, 0);
		return;
	}
	if (strcmp(epoch, c->epoch)) {
		lb->host->history_done(lb->b, token, FANOUT_EEPOCH, c->epoch, c->top);
		return;
	}
	chan_expire(lb, c);
	if (after < c->top) {
		uint64_t oldest = c->n ? c->ring[c->head].offset : c->top + 1;
		if (after + 1 < oldest) {
			lb->host->history_done(lb->b, token, FANOUT_ETRUNCATED, c->epoch, c->top);
			return;
		}
		/* Offsets in the ring are contiguous: the item after `after`
		 * sits at index after + 1 - oldest. */
		size_t cap = (size_t)lb->history_size;
		for (uint64_t i = after + 1 - oldest; i < c->n && max; i++, max--) {
			struct item *it = &c->ring[(c->head + i) % cap];
			lb->host->history_item(lb->b, token, it->offset, it->data, it->len);
		}
	}
	lb->host->history_done(lb->b, token, FANOUT_OK, c->epoch, c->top);
}

static void run_one(struct loopback *lb, struct pending *p)
{
	switch (p->op) {
	case OP_SUBSCRIBE:
		do_subscribe(lb, p->channel);
		break;
	case OP_PUBLISH:
		do_publish(lb, p->channel, p->data, p->len, p->token);
		break;
	case OP_TOP:
		do_top(lb, p->channel, p->token);
		break;
	case OP_HISTORY:
		do_history(lb, p->channel, p->epoch, p->after, p->max, p->token);
		break;
	}
}

static void pending_free(struct pending *p)
{
	free(p->channel);
	free(p->epoch);
	free(p->data);
	free(p);
}

static void run_pending(struct fanout_timer *t, void *arg)
{
	struct loopback *lb = arg;
	struct pending *p = lb->head;
	lb->head = lb->tail = NULL;
	while (p) {
		struct pending *next = p->next;
		run_one(lb, p);
		pending_free(p);
		p = next;
	}
}

static int defer(struct loopback *lb, const struct pending *tmpl, const void *data)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return FANOUT_ENOMEM;
	*p = *tmpl;
	p->next = NULL;
	p->channel = strdup(tmpl->channel);
	p->epoch = tmpl->epoch ? strdup(tmpl->epoch) : NULL;
	p->data = tmpl->len ? malloc(tmpl->len) : NULL;
	if (!p->channel || (tmpl->epoch && !p->epoch) || (tmpl->len && !p->data)) {
		pending_free(p);
		return FANOUT_ENOMEM;
	}
	if (tmpl->len)
		memcpy(p->data, data, tmpl->len);
	if (lb->tail)
		lb->tail->next = p;
	else
		lb->head = p;
	lb->tail = p;
	lb->host->timer_arm(lb->timer, (uint64_t)lb->delay_ms);
	return 0;
}

/* ---- the plugin table ---- */

static void make_epoch(char *out, size_t size)
{
	unsigned char r[8] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		/* No urandom: time and pid still differ between starts. */
		uint64_t x = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
		memcpy(r, &x, sizeof(r));
	}
	if (fd >= 0)
		close(fd);
	snprintf(out, size, "lb%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
		 r[5], r[6], r[7]);
}

static int lb_init(const struct fanout_host *host, struct fanout_backend *b,
		   const struct fanout_value *values, void **state)
{
	struct loopback *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return FANOUT_ENOMEM;
	lb->host = host;
	lb->b = b;
	lb->delay_ms = values[0].num;
	lb->fail_subscribe = (int)values[1].num;
	lb->history_size = values[2].num;
	lb->history_ttl_ms = values[3].num * 1000;
	lb->max_channels = values[4].num;
	lb->drop_every = values[5].num;
	lb->history_bytes = values[6].num;
	make_epoch(lb->epoch, sizeof(lb->epoch));
	lb->table_size = 64;
	lb->table = calloc(lb->table_size, sizeof(*lb->table));
	if (!lb->table) {
		free(lb);
		return FANOUT_ENOMEM;
	}
	*state = lb;
	return 0;
}

static int lb_start(void *state)
{
	struct loopback *lb = state;
	lb->timer = lb->host->timer_add(lb->b, run_pending, lb);
	if (!lb->timer)
		return FANOUT_ENOMEM;
	lb->host->backend_state(lb->b, FANOUT_UP, "in-process");
	return 0;
}

static int lb_subscribe(void *state, const char *channel)
{
	struct loopback *lb = state;
	if (lb->delay_ms)
		return defer(lb, &(struct pending){.op = OP_SUBSCRIBE, .channel = (char *)channel},
			     NULL);
	do_subscribe(lb, channel);
	return 0;
}

static int lb_unsubscribe(void *state, const char *channel)
{
	struct loopback *lb = state;
	struct chan *c = chan_find(lb, channel);
	if (c)
		c->subscribed = 0;
	return 0;
}

static int lb_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct loopback *lb = state;
	if (lb->delay_ms)
		return defer(
		    lb,
		    &(struct pending){
			.op = OP_PUBLISH, .channel = (char *)channel, .len = len, .token = token},
		    data);
	do_publish(lb, channel, data, len, token);
	return 0;
}

static int lb_top(void *state, const char *channel, uint64_t token)
{
	struct loopback *lb = state;
	if (!lb->history_size)
		return FANOUT_ENOTSUP;
	if (lb->delay_ms)
		return defer(
		    lb, &(struct pending){.op = OP_TOP, .channel = (char *)channel, .token = token},
		    NULL);
	do_top(lb, channel, token);
	return 0;
}

static int lb_history(void *state, const char *channel, const char *epoch, uint64_t after,
		      uint64_t max, uint64_t token)
{
	struct loopback *lb = state;
	if (!lb->history_size)
		return FANOUT_ENOTSUP;
	if (lb->delay_ms)
		return defer(lb,
			     &(struct pending){.op = OP_HISTORY,
					       .channel = (char *)channel,
					       .epoch = (char *)epoch,
					       .after = after,
					       .max = max,
					       .token = token},
			     NULL);
	do_history(lb, channel, epoch, after, max, token);
	return 0;
}

static void lb_stop(void *state)
{
	struct loopback *lb = state;
	lb->host->timer_remove(lb->timer);
	lb->timer = NULL;
	lb->host->backend_state(lb->b, FANOUT_DOWN, "stopped");
}

static void lb_destroy(void *state)
{
	struct loopback *lb = state;
	for (struct pending *p = lb->head, *next; p; p = next) {
		next = p->next;
		pending_free(p);
	}
	for (size_t i = 0; i < lb->table_size; i++)
		for (struct chan *c = lb->table[i], *next; c; c = next) {
			next = c->next;
			chan_free(lb, c);
		}
	free(lb->table);
	free(lb);
}

FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "loopback",
    .version = "0.2.0",
    .description = "in-process: publishes are delivered to this instance's subscribers",
    .options = options,
    .init = lb_init,
    .start = lb_start,
    .subscribe = lb_subscribe,
    .unsubscribe = lb_unsubscribe,
    .publish = lb_publish,
    .stop = lb_stop,
    .destroy = lb_destroy,
    .top = lb_top,
    .history = lb_history,
};
