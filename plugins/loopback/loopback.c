/*
 * loopback.c — the in-process backend: a publish is delivered straight back
 * to this instance's subscribers. For tests and single-instance use (no
 * broker; instances do not see each other's messages).
 *
 * Loop thread only. Allocates its state in init(), frees it in destroy().
 * Option `delay_confirm_ms` (tests): answer subscribe/publish only after
 * that many ms, to exercise the asynchronous confirmation path.
 */
#include <fanout/plugin.h>
#include <stdlib.h>
#include <string.h>

struct pending {
	struct pending *next;
	int is_publish;
	uint64_t token;
	char *channel;
	char *data;
	size_t len;
};

struct loopback {
	const struct fanout_host *host;
	struct fanout_backend *b;
	long long delay_ms;
	int fail_subscribe; /* tests: refuse every subscribe */
	struct fanout_timer *timer;
	struct pending *head, *tail;
};

static const struct fanout_option options[] = {
    FANOUT_OPTION_INT("delay_confirm_ms", "0", 0, 60000,
		      "answer subscribe/publish after this many ms (tests)"),
    FANOUT_OPTION_BOOL("fail_subscribe", "false", "refuse every subscribe (tests)"),
    FANOUT_OPTION_END,
};

static void run_pending(struct fanout_timer *t, void *arg)
{
	struct loopback *lb = arg;
	struct pending *p = lb->head;
	lb->head = lb->tail = NULL;
	while (p) {
		struct pending *next = p->next;
		if (p->is_publish) {
			lb->host->deliver(lb->b, p->channel, p->data, p->len);
			lb->host->published(lb->b, p->token, 1);
		} else {
			lb->host->subscribed(lb->b, p->channel, !lb->fail_subscribe);
		}
		free(p->channel);
		free(p->data);
		free(p);
		p = next;
	}
}

static int defer(struct loopback *lb, int is_publish, const char *channel, const void *data,
		 size_t len, uint64_t token)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return FANOUT_ENOMEM;
	p->is_publish = is_publish;
	p->token = token;
	p->channel = strdup(channel);
	p->data = len ? malloc(len) : NULL;
	if (!p->channel || (len && !p->data)) {
		free(p->channel);
		free(p->data);
		free(p);
		return FANOUT_ENOMEM;
	}
	if (len)
		memcpy(p->data, data, len);
	p->len = len;
	if (lb->tail)
		lb->tail->next = p;
	else
		lb->head = p;
	lb->tail = p;
	lb->host->timer_arm(lb->timer, (uint64_t)lb->delay_ms);
	return 0;
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
		return defer(lb, 0, channel, NULL, 0, 0);
	lb->host->subscribed(lb->b, channel, !lb->fail_subscribe);
	return 0;
}

static int lb_unsubscribe(void *state, const char *channel)
{
	return 0;
}

static int lb_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct loopback *lb = state;
	if (lb->delay_ms)
		return defer(lb, 1, channel, data, len, token);
	lb->host->deliver(lb->b, channel, data, len);
	lb->host->published(lb->b, token, 1);
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
		free(p->channel);
		free(p->data);
		free(p);
	}
	free(lb);
}

FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "loopback",
    .version = "0.1.0",
    .description = "in-process: publishes are delivered to this instance's subscribers",
    .options = options,
    .init = lb_init,
    .start = lb_start,
    .subscribe = lb_subscribe,
    .unsubscribe = lb_unsubscribe,
    .publish = lb_publish,
    .stop = lb_stop,
    .destroy = lb_destroy,
};
