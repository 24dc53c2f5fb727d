/*
 * plugin_host.h — the host side of the plugin ABI: finding, opening and
 * checking backend .so files, the host-services table they get, and the
 * calls the hub makes into them.
 */
#ifndef FANOUT_PLUGIN_HOST_H
#define FANOUT_PLUGIN_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>

#include <fanout/plugin.h>

#include "config.h"

/* Exit codes of fanoutd (fanoutd(8)). */
enum exit_code {
	EXIT_OK_ = 0,
	EXIT_RUNTIME = 1,
	EXIT_USAGE = 2,
	EXIT_CONFIG = 3,
	EXIT_PLUGIN = 4,
	EXIT_PLUGIN_INIT = 5,
};

#define BACKEND_MAX_EVENTS 32

struct fanout_backend {
	const struct cfg_backend *cfg;
	char *path; /* resolved .so path */
	void *dl;   /* dlopen handle */
	const struct fanout_plugin *p;
	struct fanout_value *values; /* checked option values (for init) */
	void *state;		     /* the plugin's */
	int inited, started, stopped;
	enum fanout_state up;
	char reason[160];
	long long state_changes;
	long long messages_in;
	long long pending_subs; /* channels waiting for subscribed() */
	struct {
		char name[40];
		uint64_t value;
	} events[BACKEND_MAX_EVENTS];
	int n_events;
	int bad_position_logged; /* an invalid epoch/offset was logged once */
	/* post(): callbacks posted by an instance a reload replaced are dropped
	 * (tagged with the incarnation they were posted in); closed while the
	 * old instance stops. Guarded by post_lock (post() runs on any thread). */
	pthread_mutex_t post_lock;
	unsigned incarnation;
	int posts_closed;
};

/*
 * Open and check every backend of c (no plugin code runs: ABI fields, the
 * mandatory ops, the option specs against the section). Returns 0 or an
 * exit code (EXIT_PLUGIN, EXIT_CONFIG) after logging one line per problem.
 */
int plugin_host_load(const struct config *c);
/* init + start every backend in file order; 0 or EXIT_PLUGIN_INIT. */
int plugin_host_start(void);
/* --check-config: run each backend's init (which by the ABI checks its
 * values and does no I/O) and destroy it at once, so a value only the
 * backend can judge (a broker URL) is refused as start-up would refuse it.
 * 0, or EXIT_PLUGIN_INIT after logging the backend's reason. */
int plugin_host_check(void);
/* stop every started backend (loop still running), then destroy + dlclose. */
void plugin_host_stop(void);
void plugin_host_unload(void);

size_t plugin_host_count(void);
struct fanout_backend *plugin_host_get(size_t i);
/* The backend serving channel (first matching `channels` glob), or NULL. */
struct fanout_backend *plugin_host_route(const char *channel);

/*
 * Readiness: 1 when every backend is up and none has a subscription pending
 * (pending_subs, kept by the hub); else 0. Either way appends a JSON object
 * describing each backend ({"backends":{NAME:{"state",…}}}) to why_json.
 */
struct buf;
int plugin_host_ready(struct buf *why_json);

/*
 * Where the backends' host-service callbacks go: the hub registers its
 * entry points here (hub_init) before any backend starts, so this module
 * calls no module above it by name.
 */
struct plugin_host_events {
	void (*deliver)(struct fanout_backend *b, const char *channel, const void *data,
			size_t len);
	void (*subscribed)(struct fanout_backend *b, const char *channel, int ok);
	void (*published)(struct fanout_backend *b, uint64_t token, int ok);
	void (*gap)(struct fanout_backend *b, const char *channel, const char *reason);
	/* ABI 1.1 positions; epochs checked ([A-Za-z0-9_-]{1,64}) and offsets
	 * non-zero before they get here. */
	void (*subscribed_at)(struct fanout_backend *b, const char *channel, int ok,
			      const char *epoch, uint64_t top, unsigned flags);
	void (*deliver_at)(struct fanout_backend *b, const char *channel, const char *epoch,
			   uint64_t offset, const void *data, size_t len);
	void (*published_at)(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
			     uint64_t offset);
	void (*top_done)(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
			 uint64_t top);
	void (*history_item)(struct fanout_backend *b, uint64_t token, uint64_t offset,
			     const void *data, size_t len);
	void (*history_done)(struct fanout_backend *b, uint64_t token, int status,
			     const char *epoch, uint64_t top);
	/* b was restarted by a reload: subscribe its channels again */
	void (*resubscribe)(struct fanout_backend *b, const char *reason);
};
void plugin_host_set_events(const struct plugin_host_events *ev);

/* Calls into a backend (loop thread). */
int backend_subscribe(struct fanout_backend *b, const char *channel);
int backend_unsubscribe(struct fanout_backend *b, const char *channel);
int backend_can_publish(const struct fanout_backend *b);
int backend_publish(struct fanout_backend *b, const char *channel, const void *data, size_t len,
		    uint64_t token);

/* ABI 1.1 positions: 1 when the plugin implements top() and history()
 * (a plugin built for ABI 1.0 never does). The calls return FANOUT_ENOTSUP
 * for a plugin without them; their answers arrive through the host's
 * top_done / history_item / history_done services. */
int backend_positioned(const struct fanout_backend *b);
int backend_top(struct fanout_backend *b, const char *channel, uint64_t token);
int backend_history(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t after, uint64_t max, uint64_t token);

/*
 * Reload (reload.c), in two steps. plugin_host_reload_check(next): before
 * anything changes, open the plugin of every [backend NAME] of next that is
 * new or differs from the running one and check its keys (one line per
 * problem to errf; returns their count, 0 when next can be applied).
 * Sections next lacks keep running: they are moved into next, each named
 * through note(). Then, after config_apply() gave the running config next's
 * sections, plugin_host_reload_apply(run, serving): every backend follows
 * its section of run; a changed one is restarted behind the same handle
 * (serving: stop + destroy the old instance, init + start the new one,
 * its channels subscribed again with a gap), a new one is started.
 * Without serving (the workers' supervisor) only the tables change, for
 * the workers it forks later. Returns how many backends failed to start.
 */
int plugin_host_reload_check(struct config *next, FILE *errf,
			     void (*note)(void *arg, const char *what), void *arg);
int plugin_host_reload_apply(const struct config *run, int serving);
/* Sections a reload may add beyond those the process started with. */
#define PLUGIN_HOST_SPARE 16

/* Test hook: check one .so file as plugin_host_load would; 0 or exit code. */
int plugin_host_check_file(const char *path, FILE *errf);

#endif
