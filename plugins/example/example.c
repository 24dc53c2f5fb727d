/*
 * example.c — the smallest useful fanout backend, written to be copied.
 *
 * It builds with nothing but the installed header:
 *
 *     cc -shared -fPIC -o example.so example.c $(pkg-config --cflags --libs fanout-plugin)
 *
 * and does two things: a client publish is delivered straight back to this
 * instance's subscribers (like the loopback backend), and, when
 * `tick_ms` > 0, it delivers {"tick":N} on `tick_channel` every tick_ms —
 * showing how a backend uses a host timer. A real backend replaces both
 * with I/O to its broker: watch_add() on its socket, deliver() for each
 * message that arrives, subscribed()/published() when the broker answers.
 *
 * Positions (ABI 1.1, see POSITIONS in plugin.h). With `history_size` > 0
 * (the default) every channel is positioned, the way a broker that keeps
 * history makes it: each message gets the next offset of its channel
 * (1, 2, 3, ...) inside an epoch ("ex" + the start time: a restart loses
 * the history, so it is a new epoch), the last history_size messages are
 * kept, and the five positioned calls are used:
 *   subscribed_at()  confirms a subscribe with the channel's epoch and top
 *   deliver_at()     delivers a message with its epoch and offset
 *   published_at()   answers a publish with the position it was given
 *   top()            -> top_done(): "where is this channel now?"
 *   history()        -> history_item() for each kept message after an
 *                       offset, then history_done() with a status saying
 *                       whether the history reached back that far.
 * fanoutd does the rest: it replays to clients that resume, repairs holes,
 * and sends gap notices only for what the history cannot fill. A real
 * backend keeps the history in its broker (so every fanoutd instance can
 * serve any client) and assigns offsets there, atomically with the publish.
 *
 * Threading: every function here runs on fanoutd's loop thread; none may
 * block. Ownership: strings passed in are borrowed for the call.
 * Allocation: one struct per channel seen (at most EX_MAX_CHANNELS) and a
 * copy of each kept message; all freed in destroy().
 */
#include <fanout/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EX_MAX_CHANNELS 1024 /* channels with a position; more: refused */

/* A kept message. */
struct kept {
	uint64_t offset;
	char *data;
	size_t len;
};

/* One channel's position and its last history_size messages (a ring). */
struct chan {
	struct chan *next;
	uint64_t top; /* the newest offset, 0 before the first message */
	struct kept *ring;
	size_t head, n; /* the oldest kept, how many */
	char name[];
};

/* Everything the backend keeps: the host table and our handle first. */
struct example {
	const struct fanout_host *host;
	struct fanout_backend *b;
	long long tick_ms, history_size;
	char tick_channel[201];
	char epoch[32];
	unsigned long long ticks;
	struct fanout_timer *timer;
	struct chan *chans;
	int n_chans;
};

/*
 * The keys this backend accepts in its [backend NAME] section. fanoutd
 * checks the section against this list (types, bounds) before init() runs,
 * so init() can trust the values. The order here is the order of values[].
 */
static const struct fanout_option options[] = {
    FANOUT_OPTION_INT("tick_ms", "0", 0, 3600000, "deliver a tick message every N ms (0: off)"),
    FANOUT_OPTION_STRING("tick_channel", "tick", "channel the ticks are delivered on"),
    FANOUT_OPTION_INT("history_size", "100", 0, 100000,
		      "messages kept per channel (positions); 0: no positions"),
    FANOUT_OPTION_END,
};

/* ---- channels: the position and history a broker would keep ---- */

static struct chan *chan_get(struct example *ex, const char *name)
{
	for (struct chan *c = ex->chans; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	if (ex->n_chans >= EX_MAX_CHANNELS)
		return NULL;
	size_t len = strlen(name);
	struct chan *c = calloc(1, sizeof(*c) + len + 1);
	if (!c)
		return NULL;
	c->ring = calloc((size_t)ex->history_size, sizeof(*c->ring));
	if (!c->ring) {
		free(c);
		return NULL;
	}
	memcpy(c->name, name, len + 1);
	c->next = ex->chans;
	ex->chans = c;
	ex->n_chans++;
	return c;
}

/* Give the message the next offset and keep it; returns the offset, or 0
 * when out of memory. */
static uint64_t chan_append(struct example *ex, struct chan *c, const void *data, size_t len)
{
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, len);
	size_t cap = (size_t)ex->history_size;
	if (c->n == cap) { /* full: the oldest goes */
		free(c->ring[c->head].data);
		c->head = (c->head + 1) % cap;
		c->n--;
	}
	struct kept *k = &c->ring[(c->head + c->n) % cap];
	k->offset = ++c->top;
	k->data = copy;
	k->len = len;
	c->n++;
	return c->top;
}

/* Deliver a message: positioned when history is on, plain otherwise. */
static void deliver(struct example *ex, const char *channel, const void *data, size_t len,
		    uint64_t *offset_out)
{
	struct chan *c = ex->history_size ? chan_get(ex, channel) : NULL;
	uint64_t off = c ? chan_append(ex, c, data, len) : 0;
	if (off)
		ex->host->deliver_at(ex->b, channel, ex->epoch, off, data, len);
	else
		ex->host->deliver(ex->b, channel, data, len); /* no position: still delivered */
	if (offset_out)
		*offset_out = off;
}

/* ---- operations ---- */

static void on_tick(struct fanout_timer *t, void *arg)
{
	struct example *ex = arg;
	char payload[64];
	int n = snprintf(payload, sizeof(payload), "{\"tick\":%llu}", ++ex->ticks);
	/* The host copies the payload once and fans it out; it drops it
	 * cheaply when nobody here subscribes to the channel. */
	deliver(ex, ex->tick_channel, payload, (size_t)n, NULL);
	ex->host->timer_arm(t, (uint64_t)ex->tick_ms); /* timers are one-shot */
}

static int ex_init(const struct fanout_host *host, struct fanout_backend *b,
		   const struct fanout_value *values, void **state)
{
	struct example *ex = calloc(1, sizeof(*ex));
	if (!ex)
		return FANOUT_ENOMEM;
	ex->host = host;
	ex->b = b;
	ex->tick_ms = values[0].num;
	snprintf(ex->tick_channel, sizeof(ex->tick_channel), "%s", values[1].str);
	ex->history_size = values[2].num;
	/* An epoch names one unbroken history: [A-Za-z0-9_-], at most 64. */
	snprintf(ex->epoch, sizeof(ex->epoch), "ex%llx",
		 (unsigned long long)host->now_ms(b) ^ (unsigned long long)(uintptr_t)ex);
	*state = ex;
	return 0;
}

static int ex_start(void *state)
{
	struct example *ex = state;
	if (ex->tick_ms > 0) {
		ex->timer = ex->host->timer_add(ex->b, on_tick, ex);
		if (!ex->timer)
			return FANOUT_ENOMEM;
		ex->host->timer_arm(ex->timer, (uint64_t)ex->tick_ms);
	}
	/* Tell /readyz we can serve. A networked backend says FANOUT_UP only
	 * once connected, and FANOUT_DOWN (with a reason) when it loses it. */
	ex->host->backend_state(ex->b, FANOUT_UP, "ready");
	ex->host->log(ex->b, FANOUT_LOG_INFO, "example backend started (tick every %lld ms)",
		      ex->tick_ms);
	return 0;
}

static int ex_subscribe(void *state, const char *channel)
{
	struct example *ex = state;
	struct chan *c = ex->history_size ? chan_get(ex, channel) : NULL;
	/* Nothing to ask a broker: confirm at once. A networked backend
	 * confirms when the broker acknowledges, and reads the top only after
	 * that, so every message newer than the top reaches deliver_at(). */
	if (c)
		ex->host->subscribed_at(ex->b, channel, 1, ex->epoch, c->top,
					FANOUT_POS_CONTIGUOUS);
	else
		ex->host->subscribed(ex->b, channel, 1);
	return 0;
}

static int ex_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct example *ex = state;
	uint64_t off;
	deliver(ex, channel, data, len, &off);
	/* The answer names the position the message got (published() for an
	 * unpositioned one). */
	if (off)
		ex->host->published_at(ex->b, token, 1, ex->epoch, off);
	else
		ex->host->published(ex->b, token, 1);
	return 0;
}

/* Where is the channel now? (fanoutd asks after a reconnect, for quiet
 * channels, and when a client resumes ahead of what it has seen.) */
static int ex_top(void *state, const char *channel, uint64_t token)
{
	struct example *ex = state;
	struct chan *c = ex->history_size ? chan_get(ex, channel) : NULL;
	if (!c)
		return FANOUT_EUNAVAIL; /* no answer will come */
	ex->host->top_done(ex->b, token, FANOUT_OK, ex->epoch, c->top);
	return 0;
}

/* The kept messages after `after` of `epoch`, at most max, oldest first. */
static int ex_history(void *state, const char *channel, const char *epoch, uint64_t after,
		      uint64_t max, uint64_t token)
{
	struct example *ex = state;
	struct chan *c = ex->history_size ? chan_get(ex, channel) : NULL;
	if (!c)
		return FANOUT_EUNAVAIL;
	/* Another epoch: those offsets mean nothing any more. */
	if (strcmp(epoch, ex->epoch)) {
		ex->host->history_done(ex->b, token, FANOUT_EEPOCH, ex->epoch, c->top);
		return 0;
	}
	/* Trimmed: the oldest kept message is newer than after + 1, so part
	 * of what was asked is gone. Never answer with a partial history. */
	uint64_t oldest = c->n ? c->ring[c->head].offset : c->top + 1;
	if (after < c->top && after + 1 < oldest) {
		ex->host->history_done(ex->b, token, FANOUT_ETRUNCATED, ex->epoch, c->top);
		return 0;
	}
	/* Offsets are contiguous: the message after `after` is at index
	 * after + 1 - oldest. The answer may come later too (a broker's
	 * reply); here it comes at once, from inside this call. */
	for (uint64_t i = after >= oldest ? after + 1 - oldest : 0; i < c->n && max; i++, max--) {
		const struct kept *k = &c->ring[(c->head + i) % (size_t)ex->history_size];
		ex->host->history_item(ex->b, token, k->offset, k->data, k->len);
	}
	ex->host->history_done(ex->b, token, FANOUT_OK, ex->epoch, c->top);
	return 0;
}

static void ex_stop(void *state)
{
	struct example *ex = state;
	ex->host->timer_remove(ex->timer);
	ex->timer = NULL;
}

static void ex_destroy(void *state)
{
	struct example *ex = state;
	for (struct chan *c = ex->chans, *next; c; c = next) {
		next = c->next;
		for (size_t i = 0; i < c->n; i++)
			free(c->ring[(c->head + i) % (size_t)ex->history_size].data);
		free(c->ring);
		free(c);
	}
	free(ex);
}

/* The one exported symbol. FANOUT_PLUGIN_HEADER stamps the ABI version
 * the plugin was built against; ops not named stay NULL (top and history
 * left out: no positioned channels). */
FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "example",
    .version = "1.1.0",
    .description = "echoes publishes locally, with positions and history, and optional ticks",
    .options = options,
    .init = ex_init,
    .start = ex_start,
    .subscribe = ex_subscribe,
    .publish = ex_publish,
    .stop = ex_stop,
    .destroy = ex_destroy,
    .top = ex_top,
    .history = ex_history,
};
