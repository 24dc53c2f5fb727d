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
 * Threading: every function here runs on fanoutd's loop thread; none may
 * block. Ownership: strings passed in are borrowed for the call.
 */
#include <fanout/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything the backend keeps: the host table and our handle first. */
struct example {
	const struct fanout_host *host;
	struct fanout_backend *b;
	long long tick_ms;
	char tick_channel[201];
	unsigned long long ticks;
	struct fanout_timer *timer;
};

/*
 * The keys this backend accepts in its [backend NAME] section. fanoutd
 * checks the section against this list (types, bounds) before init() runs,
 * so init() can trust the values. The order here is the order of values[].
 */
static const struct fanout_option options[] = {
    FANOUT_OPTION_INT("tick_ms", "0", 0, 3600000, "deliver a tick message every N ms (0: off)"),
    FANOUT_OPTION_STRING("tick_channel", "tick", "channel the ticks are delivered on"),
    FANOUT_OPTION_END,
};

static void on_tick(struct fanout_timer *t, void *arg)
{
	struct example *ex = arg;
	char payload[64];
	int n = snprintf(payload, sizeof(payload), "{\"tick\":%llu}", ++ex->ticks);
	/* The host copies the payload once and fans it out; it drops it
	 * cheaply when nobody here subscribes to the channel. */
	ex->host->deliver(ex->b, ex->tick_channel, payload, (size_t)n);
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
	/* Nothing to ask a broker: confirm at once. A networked backend calls
	 * subscribed() when the broker acknowledges. */
	ex->host->subscribed(ex->b, channel, 1);
	return 0;
}

static int ex_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct example *ex = state;
	ex->host->deliver(ex->b, channel, data, len);
	ex->host->published(ex->b, token, 1);
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
	free(state);
}

/* The one exported symbol. FANOUT_PLUGIN_HEADER stamps the ABI version
 * the plugin was built against; ops not named stay NULL. */
FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,  .name = "example",
    .version = "1.0.0",	   .description = "echoes publishes locally and delivers optional ticks",
    .options = options,	   .init = ex_init,
    .start = ex_start,	   .subscribe = ex_subscribe,
    .publish = ex_publish, .stop = ex_stop,
    .destroy = ex_destroy,
};
