/*
 * notify.c — owns fanoutd's side of the systemd service protocol: the
 * notify socket's messages (READY, STATUS, WATCHDOG, RELOADING, STOPPING)
 * through libsystemd's sd_notify(), and, in a single-process fanoutd, the
 * loop timer that checks readiness (plugin_host_ready(), as /readyz does)
 * and sends the watchdog keep-alive — so a loop that stops turning stops
 * the keep-alives and systemd restarts the service.
 *
 * Main thread / loop thread only. Allocates one loop timer (freed by
 * notify_loop_stop()) and a status buffer for the readiness text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define LOG_TAG "notify"
#include "buf.h"
#include "clients.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "plugin_host.h"

static int enabled;
static uint64_t watchdog_ms; /* half of WATCHDOG_USEC */
static int ready_sent;
static char last_status[256];
static struct fanout_timer *timer;

static void say(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	if (!enabled)
		return;
	int r = sd_notify(0, msg);
	if (r < 0)
		log_warn("sd_notify(%.40s): %s", msg, strerror(-r));
#else
	(void)msg;
#endif
}

int notify_supported(void)
{
#ifdef HAVE_LIBSYSTEMD
	return 1;
#else
	return 0;
#endif
}

void notify_init(void)
{
	enabled = notify_supported() && getenv("NOTIFY_SOCKET") != NULL;
	watchdog_ms = 0;
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;
	if (enabled && sd_watchdog_enabled(0, &usec) > 0)
		watchdog_ms = usec / 2000 ? usec / 2000 : 1;
#endif
	if (enabled)
		log_debug("systemd notify socket %s, watchdog %s", getenv("NOTIFY_SOCKET"),
			  watchdog_ms ? "on" : "off");
}

void notify_disable(void)
{
	enabled = 0;
	watchdog_ms = 0;
}

int notify_enabled(void)
{
	return enabled;
}

uint64_t notify_watchdog_ms(void)
{
	return watchdog_ms;
}

void notify_state(int ready, const char *status)
{
	if (!enabled)
		return;
	if (status && strncmp(status, last_status, sizeof(last_status) - 1)) {
		char msg[300];
		snprintf(last_status, sizeof(last_status), "%s", status);
		snprintf(msg, sizeof(msg), "STATUS=%s", last_status);
		say(msg);
	}
	if (ready && !ready_sent) {
		ready_sent = 1;
		say("READY=1");
		log_info("ready (told systemd)");
	}
}

void notify_watchdog(void)
{
	if (watchdog_ms)
		say("WATCHDOG=1");
}

void notify_reloading(void)
{
	ready_sent = 0;
	say("RELOADING=1");
}

void notify_stopping(void)
{
	say("STOPPING=1");
}

/* ---- single process: readiness and keep-alives from the loop ---- */

/* "waiting: valkey down (connecting), news 2 subscriptions pending" */
static void waiting_text(char *out, size_t n)
{
	int w = snprintf(out, n, "waiting:");
	for (size_t i = 0; i < plugin_host_count() && w > 0 && (size_t)w < n; i++) {
		const struct fanout_backend *b = plugin_host_get(i);
		if (b->up != FANOUT_UP)
			w += snprintf(out + w, n - (size_t)w, " %s down (%s)", b->cfg->name,
				      b->reason);
		else if (b->pending_subs)
			w += snprintf(out + w, n - (size_t)w, " %s %lld subscriptions pending",
				      b->cfg->name, b->pending_subs);
	}
}

static void tick(struct fanout_timer *t, void *arg)
{
	struct buf why;
	char status[256];

	buf_init(&why, 0);
	int ready = plugin_host_ready(&why) && !clients_draining();
	buf_free(&why);
	if (clients_draining())
		snprintf(status, sizeof(status), "draining");
	else if (ready)
		snprintf(status, sizeof(status), "serving");
	else
		waiting_text(status, sizeof(status));
	notify_state(ready, status);
	notify_watchdog();
	uint64_t next = ready_sent ? 1000 : 100;
	if (watchdog_ms && watchdog_ms < next)
		next = watchdog_ms;
	loop_timer_arm(t, next);
}

void notify_loop_start(void)
{
	if (!enabled || timer)
		return;
	timer = loop_timer_add(tick, NULL);
	if (timer)
		loop_timer_arm(timer, 0);
}

void notify_loop_stop(void)
{
	if (timer) {
		loop_timer_remove(timer);
		timer = NULL;
	}
}
