/*
 * plugin_host.c — owns the loaded backends: finding each [backend NAME]'s
 * .so (by name in plugin_dir or by path), dlopen(RTLD_NOW | RTLD_LOCAL),
 * the ABI check made before any plugin code runs, the option check against
 * the plugin's specs, init/start/stop/destroy, and the host-services table
 * (struct fanout_host) through which plugins log, deliver, confirm and use
 * the loop — forwarded to the entry points the hub registered
 * (plugin_host_set_events) — plus routing (which backend serves a channel)
 * and readiness (every backend up, nothing pending).
 *
 * Loop thread only, except host_post() (thread-safe, forwards to
 * loop_post()). Allocates one struct fanout_backend per section; frees them
 * in plugin_host_unload() after destroy() and dlclose().
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_TAG "plugin"
#include "buf.h"
#include "contract.h"
#include "log.h"
#include "loop.h"
#include "plugin_host.h"
#include "protocol.h"
#include "protocol.h"

static struct fanout_backend *backends;
static size_t n_backends, cap_backends;
static const struct config *cfg;
static const struct plugin_host_events *to_hub;

void plugin_host_set_events(const struct plugin_host_events *ev)
{
	to_hub = ev;
}

/* ---- host services ---- */

static void host_log(struct fanout_backend *b, enum fanout_log_level level, const char *fmt, ...)
{
	char tag[64];
	va_list ap;
	snprintf(tag, sizeof(tag), "backend %s", b->cfg->name);
	va_start(ap, fmt);
	log_vwrite((enum log_level)level, tag, fmt, ap);
	va_end(ap);
}

static void host_deliver(struct fanout_backend *b, const char *channel, const void *data,
			 size_t len)
{
	to_hub->deliver(b, channel, data, len);
}

static void host_subscribed(struct fanout_backend *b, const char *channel, int ok)
{
	to_hub->subscribed(b, channel, ok);
}

static void host_published(struct fanout_backend *b, uint64_t token, int ok)
{
	to_hub->published(b, token, ok);
}

static void host_backend_state(struct fanout_backend *b, enum fanout_state state,
			       const char *reason)
{
	state = state == FANOUT_UP ? FANOUT_UP : FANOUT_DOWN;
	if (state != b->up)
		b->state_changes++;
	b->up = state;
	snprintf(b->reason, sizeof(b->reason), "%s", reason ? reason : "");
}

static void host_gap(struct fanout_backend *b, const char *channel, const char *reason)
{
	to_hub->gap(b, channel, reason ? reason : "unknown");
}

static void host_count(struct fanout_backend *b, const char *event, uint64_t delta);

/* ---- positions (ABI 1.1) ----
 * The boundary checks what a plugin says before the hub believes it: an
 * epoch must match [A-Za-z0-9_-]{1,64} and an offset be at least 1, else
 * the call keeps its 1.0 meaning (unpositioned) and the backend's event
 * counter "bad_positions" goes up. */

static int pos_ok(struct fanout_backend *b, const char *epoch, int need_offset, uint64_t offset)
{
	if (epoch && proto_epoch_valid(epoch, strnlen(epoch, PROTO_EPOCH_MAX + 1)) &&
	    (!need_offset || offset > 0))
		return 1;
	if (!b->bad_position_logged) {
		b->bad_position_logged = 1;
		log_warn("[backend %s] gave an invalid position (epoch \"%.70s\", offset %llu): "
			 "treated as unpositioned (logged once, counted as bad_positions)",
			 b->cfg->name, epoch ? epoch : "(null)", (unsigned long long)offset);
	}
	host_count(b, "bad_positions", 1);
	return 0;
}

static void host_subscribed_at(struct fanout_backend *b, const char *channel, int ok,
			       const char *epoch, uint64_t top, unsigned flags)
{
	if (ok && epoch && !pos_ok(b, epoch, 0, 0))
		epoch = NULL;
	if (!ok)
		epoch = NULL;
	to_hub->subscribed_at(b, channel, ok, epoch, top, flags);
}

static void host_deliver_at(struct fanout_backend *b, const char *channel, const char *epoch,
			    uint64_t offset, const void *data, size_t len)
{
	if (pos_ok(b, epoch, 1, offset))
		to_hub->deliver_at(b, channel, epoch, offset, data, len);
	else
		to_hub->deliver(b, channel, data, len);
}

static void host_published_at(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
			      uint64_t offset)
{
	if (ok && epoch && pos_ok(b, epoch, 1, offset))
		to_hub->published_at(b, token, ok, epoch, offset);
	else
		to_hub->published(b, token, ok);
}

static void host_top_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
			  uint64_t top)
{
	if (status == FANOUT_OK && !pos_ok(b, epoch, 0, 0))
		status = FANOUT_EIO;
	to_hub->top_done(b, token, status, status == FANOUT_OK ? epoch : NULL, top);
}

static void host_history_item(struct fanout_backend *b, uint64_t token, uint64_t offset,
			      const void *data, size_t len)
{
	to_hub->history_item(b, token, offset, data, len);
}

static void host_history_done(struct fanout_backend *b, uint64_t token, int status,
			      const char *epoch, uint64_t top)
{
	if (epoch && !proto_epoch_valid(epoch, strnlen(epoch, PROTO_EPOCH_MAX + 1))) {
		pos_ok(b, epoch, 0, 0);
		status = status == FANOUT_OK ? FANOUT_EIO : status;
		epoch = NULL;
	}
	to_hub->history_done(b, token, status, epoch, top);
}

static struct fanout_watch *host_watch_add(struct fanout_backend *b, int fd, unsigned events,
					   fanout_fd_cb cb, void *arg)
{
	return loop_watch_add(fd, events, cb, arg);
}

static struct fanout_timer *host_timer_add(struct fanout_backend *b, fanout_timer_cb cb, void *arg)
{
	return loop_timer_add(cb, arg);
}

/* A post() in flight: run only if the instance that posted it still runs. */
struct tagged_post {
	struct fanout_backend *b;
	unsigned incarnation;
	fanout_post_cb cb;
	void *arg;
};

static void run_post(void *arg)
{
	struct tagged_post *t = arg;
	pthread_mutex_lock(&t->b->post_lock);
	int current = t->incarnation == t->b->incarnation && !t->b->posts_closed;
	pthread_mutex_unlock(&t->b->post_lock);
	if (current)
		t->cb(t->arg);
	free(t);
}

static int host_post(struct fanout_backend *b, fanout_post_cb cb, void *arg)
{
	struct tagged_post *t = malloc(sizeof(*t));
	if (!t)
		return FANOUT_ENOMEM;
	pthread_mutex_lock(&b->post_lock);
	int closed = b->posts_closed;
	t->b = b;
	t->incarnation = b->incarnation;
	pthread_mutex_unlock(&b->post_lock);
	t->cb = cb;
	t->arg = arg;
	int r = closed ? FANOUT_EUNAVAIL : loop_post(run_post, t);
	if (r)
		free(t);
	return r;
}

static const char *host_instance(struct fanout_backend *b)
{
	return cfg->instance;
}

static const char *host_name(struct fanout_backend *b)
{
	return b->cfg->name;
}

static const char *const *host_channels(struct fanout_backend *b, size_t *n)
{
	*n = b->cfg->n_channels;
	return (const char *const *)b->cfg->channels;
}

static uint64_t host_now_ms(struct fanout_backend *b)
{
	return loop_now_ms();
}

static void host_count(struct fanout_backend *b, const char *event, uint64_t delta)
{
	for (int i = 0; i < b->n_events; i++)
		if (!strcmp(b->events[i].name, event)) {
			b->events[i].value += delta;
			return;
		}
	if (b->n_events >= BACKEND_MAX_EVENTS || strlen(event) >= sizeof(b->events[0].name))
		return;
	for (const char *p = event; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return;
	snprintf(b->events[b->n_events].name, sizeof(b->events[0].name), "%s", event);
	b->events[b->n_events++].value = delta;
}

static const struct fanout_host host_table = {
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR,
    .struct_size = sizeof(struct fanout_host),
    .log = host_log,
    .deliver = host_deliver,
    .subscribed = host_subscribed,
    .published = host_published,
    .backend_state = host_backend_state,
    .gap = host_gap,
    .watch_add = host_watch_add,
    .watch_set = loop_watch_set,
    .watch_remove = loop_watch_remove,
    .timer_add = host_timer_add,
    .timer_arm = loop_timer_arm,
    .timer_disarm = loop_timer_disarm,
    .timer_remove = loop_timer_remove,
    .post = host_post,
    .instance = host_instance,
    .name = host_name,
    .now_ms = host_now_ms,
    .count = host_count,
    .subscribed_at = host_subscribed_at,
    .deliver_at = host_deliver_at,
    .published_at = host_published_at,
    .top_done = host_top_done,
    .history_item = host_history_item,
    .history_done = host_history_done,
    .channels = host_channels,
};

/* ---- loading ---- */

static char *resolve_path(const char *plugin_dir, const char *plugin)
{
	char *path;
	if (strchr(plugin, '/'))
		return strdup(plugin);
	if (asprintf(&path, "%s/%s.so", plugin_dir, plugin) < 0)
		return NULL;
	return path;
}

/*
 * dlopen path and check the exported table without running plugin code.
 * On success *dl and *p are set and 0 is returned; otherwise one line goes
 * to errf and an exit code is returned.
 */
static int open_plugin(const char *path, const char *section, void **dl_out,
		       const struct fanout_plugin **p_out, FILE *errf)
{
	const char *who = section ? section : path;
	if (access(path, R_OK)) {
		fprintf(errf, "plugin %s: [backend %s]: cannot open: %s\n", path, who,
			strerror(errno));
		return EXIT_PLUGIN;
	}
	dlerror();
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(errf, "plugin %s: [backend %s]: cannot load: %s\n", path, who, dlerror());
		return EXIT_PLUGIN;
	}
	const struct fanout_plugin *p = dlsym(dl, FANOUT_PLUGIN_SYMBOL_NAME);
	if (!p) {
		fprintf(errf, "plugin %s: [backend %s]: not a fanout plugin (no symbol %s)\n", path,
			who, FANOUT_PLUGIN_SYMBOL_NAME);
		goto fail;
	}
	char why[300];
	if (contract_check_plugin(p, why, sizeof(why))) {
		fprintf(errf, "plugin %s: [backend %s]: %s\n", path, who, why);
		goto fail;
	}
	*dl_out = dl;
	*p_out = p;
	return 0;
fail:
	dlclose(dl);
	return EXIT_PLUGIN;
}

int plugin_host_check_file(const char *path, FILE *errf)
{
	void *dl;
	const struct fanout_plugin *p;
	int rc = open_plugin(path, NULL, &dl, &p, errf);
	if (!rc)
		dlclose(dl);
	return rc;
}

static const struct fanout_option no_options[] = {FANOUT_OPTION_END};

int plugin_host_load(const struct config *c)
{
	int rc = 0;
	cfg = c;
	/* Room for the sections reloads add: a handle never moves (the hub
	 * keeps pointers to it). */
	cap_backends = c->n_backends + PLUGIN_HOST_SPARE;
	backends = calloc(cap_backends, sizeof(*backends));
	if (!backends)
		return EXIT_RUNTIME;
	n_backends = c->n_backends;
	for (size_t i = 0; i < n_backends; i++) {
		struct fanout_backend *b = &backends[i];
		pthread_mutex_init(&b->post_lock, NULL);
		b->cfg = &c->backends[i];
		b->up = FANOUT_DOWN;
		snprintf(b->reason, sizeof(b->reason), "not started");
		b->path = resolve_path(c->plugin_dir, b->cfg->plugin);
		if (!b->path)
			return EXIT_RUNTIME;
		int r = open_plugin(b->path, b->cfg->name, &b->dl, &b->p, stderr);
		if (r) {
			rc = rc ? rc : r;
			continue;
		}
		if (config_backend_values(c, b->cfg, b->p->options ? b->p->options : no_options,
					  &b->values, stderr)) {
			rc = rc ? rc : EXIT_CONFIG;
			continue;
		}
		log_debug("[backend %s]: %s %s from %s", b->cfg->name, b->p->name, b->p->version,
			  b->path);
	}
	return rc;
}

int plugin_host_check(void)
{
	for (size_t i = 0; i < n_backends; i++) {
		struct fanout_backend *b = &backends[i];
		void *state = NULL;
		int r = b->p->init(&host_table, b, b->values, &state);
		if (r) {
			log_err("[backend %s]: %s: init refuses this configuration: %s (%d)",
				b->cfg->name, b->path, fanout_strerror(r), r);
			return EXIT_PLUGIN_INIT;
		}
		b->p->destroy(state);
	}
	return 0;
}

int plugin_host_start(void)
{
	for (size_t i = 0; i < n_backends; i++) {
		struct fanout_backend *b = &backends[i];
		int r = b->p->init(&host_table, b, b->values, &b->state);
		if (r) {
			log_err("[backend %s]: %s: init failed: %s (%d)", b->cfg->name, b->path,
				fanout_strerror(r), r);
			return EXIT_PLUGIN_INIT;
		}
		b->inited = 1;
		free(b->values);
		b->values = NULL;
		snprintf(b->reason, sizeof(b->reason), "starting");
		r = b->p->start(b->state);
		if (r) {
			log_err("[backend %s]: %s: start failed: %s (%d)", b->cfg->name, b->path,
				fanout_strerror(r), r);
			return EXIT_PLUGIN_INIT;
		}
		b->started = 1;
		log_info("[backend %s]: %s %s started (channels: %s%s)", b->cfg->name, b->p->name,
			 b->p->version, b->cfg->channels[0], b->cfg->n_channels > 1 ? ", ..." : "");
	}
	return 0;
}

void plugin_host_stop(void)
{
	for (size_t i = n_backends; i-- > 0;) {
		struct fanout_backend *b = &backends[i];
		if (b->started && !b->stopped && b->p->stop)
			b->p->stop(b->state);
		b->stopped = 1;
	}
}

void plugin_host_unload(void)
{
	for (size_t i = n_backends; i-- > 0;) {
		struct fanout_backend *b = &backends[i];
		if (b->inited)
			b->p->destroy(b->state);
		free(b->values);
		free(b->path);
		/* Under ASan keep the code mapped so leak reports keep symbols. */
#ifndef FANOUT_NO_DLCLOSE
		if (b->dl)
			dlclose(b->dl);
#endif
		pthread_mutex_destroy(&b->post_lock);
	}
	free(backends);
	backends = NULL;
	n_backends = 0;
}

size_t plugin_host_count(void)
{
	return n_backends;
}

struct fanout_backend *plugin_host_get(size_t i)
{
	return i < n_backends ? &backends[i] : NULL;
}

struct fanout_backend *plugin_host_route(const char *channel)
{
	const struct cfg_backend *cb = config_route(cfg, channel);
	if (!cb)
		return NULL;
	for (size_t i = 0; i < n_backends; i++)
		if (backends[i].cfg == cb)
			return &backends[i];
	return NULL;
}

int plugin_host_ready(struct buf *why)
{
	int ready = 1;
	buf_puts(why, "{\"backends\":{");
	for (size_t i = 0; i < n_backends; i++) {
		struct fanout_backend *b = &backends[i];
		int ok = b->up == FANOUT_UP && b->pending_subs == 0;
		if (!ok)
			ready = 0;
		if (i)
			buf_putc(why, ',');
		json_append_string(why, b->cfg->name, strlen(b->cfg->name), NULL);
		buf_printf(why, ":{\"state\":\"%s\",\"pending_subscriptions\":%lld,\"reason\":",
			   b->up == FANOUT_UP ? "up" : "down", b->pending_subs);
		json_append_string(why, b->reason, strlen(b->reason), NULL);
		buf_putc(why, '}');
	}
	buf_puts(why, "}}");
	return ready;
}

int backend_subscribe(struct fanout_backend *b, const char *channel)
{
	return b->started && !b->stopped ? b->p->subscribe(b->state, channel) : FANOUT_EUNAVAIL;
}

int backend_unsubscribe(struct fanout_backend *b, const char *channel)
{
	if (!b->started || b->stopped || !b->p->unsubscribe)
		return 0;
	return b->p->unsubscribe(b->state, channel);
}

int backend_can_publish(const struct fanout_backend *b)
{
	return b->p->publish != NULL;
}

int backend_publish(struct fanout_backend *b, const char *channel, const void *data, size_t len,
		    uint64_t token)
{
	if (!b->started || b->stopped)
		return FANOUT_EUNAVAIL;
	return b->p->publish(b->state, channel, data, len, token);
}

/* The plugin's table reaches field f (it may be built for an older minor). */
#define HAS_OP(p, f)                                                                               \
	((p)->struct_size >= offsetof(struct fanout_plugin, f) + sizeof((p)->f) && (p)->f)

int backend_positioned(const struct fanout_backend *b)
{
	return HAS_OP(b->p, top) && HAS_OP(b->p, history);
}

int backend_top(struct fanout_backend *b, const char *channel, uint64_t token)
{
	if (!b->started || b->stopped)
		return FANOUT_EUNAVAIL;
	if (!backend_positioned(b))
		return FANOUT_ENOTSUP;
	return b->p->top(b->state, channel, token);
}

int backend_history(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t after, uint64_t max, uint64_t token)
{
	if (!b->started || b->stopped)
		return FANOUT_EUNAVAIL;
	if (!backend_positioned(b))
		return FANOUT_ENOTSUP;
	return b->p->history(b->state, channel, epoch, after, max, token);
}

/* ---- reload ---- */

/* A section of the next config that is new or changed, opened and checked. */
struct prepared {
	char name[128];
	char *path;
	void *dl;
	const struct fanout_plugin *p;
	struct fanout_value *values; /* point into the section's strings */
};
static struct prepared *prep;
static size_t n_prep;

static void prep_free(int close_dl)
{
	for (size_t i = 0; i < n_prep; i++) {
		free(prep[i].path);
		free(prep[i].values);
#ifndef FANOUT_NO_DLCLOSE
		if (close_dl && prep[i].dl)
			dlclose(prep[i].dl);
#endif
	}
	free(prep);
	prep = NULL;
	n_prep = 0;
}

static struct fanout_backend *find_running(const char *name)
{
	for (size_t i = 0; i < n_backends; i++)
		if (!strcmp(backends[i].cfg->name, name))
			return &backends[i];
	return NULL;
}

int plugin_host_reload_check(struct config *next, FILE *errf,
			     void (*note)(void *arg, const char *what), void *arg)
{
	int nerr = 0;
	size_t added = 0;
	char msg[300];

	prep_free(1);
	prep = calloc(next->n_backends + 1, sizeof(*prep));
	if (!prep)
		return 1;
	/* Sections the file lost keep running (a restart removes them). */
	for (size_t i = 0; i < n_backends; i++) {
		const char *name = backends[i].cfg->name;
		if (config_find_backend(next, name))
			continue;
		size_t j;
		for (j = 0; j < cfg->n_backends && strcmp(cfg->backends[j].name, name); j++)
			;
		if (j == cfg->n_backends || config_copy_backend(next, &cfg->backends[j])) {
			fprintf(errf, "[backend %s]: out of memory\n", name);
			nerr++;
			continue;
		}
		snprintf(
		    msg, sizeof(msg),
		    "[backend %s] is not in the file any more: it keeps running until a restart",
		    name);
		if (note)
			note(arg, msg);
	}
	for (size_t i = 0; i < next->n_backends; i++) {
		const struct cfg_backend *nb = &next->backends[i];
		struct fanout_backend *b = find_running(nb->name);
		if (b && config_backend_equal(b->cfg, nb))
			continue;
		if (!b && n_backends + ++added > cap_backends) {
			fprintf(errf,
				"[backend %s]: a reload can add %d sections to the ones fanoutd "
				"started with; restart to add more\n",
				nb->name, PLUGIN_HOST_SPARE);
			nerr++;
			continue;
		}
		struct prepared *pp = &prep[n_prep++];
		snprintf(pp->name, sizeof(pp->name), "%s", nb->name);
		pp->path = resolve_path(next->plugin_dir, nb->plugin);
		if (!pp->path || open_plugin(pp->path, nb->name, &pp->dl, &pp->p, errf)) {
			nerr++;
			continue;
		}
		if (config_backend_values(next, nb, pp->p->options ? pp->p->options : no_options,
					  &pp->values, errf))
			nerr++;
	}
	if (nerr)
		prep_free(1);
	return nerr;
}

/* Start b's instance (init + start); 0 or -1 (logged, b left stopped). */
static int start_one(struct fanout_backend *b)
{
	int r = b->p->init(&host_table, b, b->values, &b->state);
	free(b->values);
	b->values = NULL;
	if (r) {
		log_err("[backend %s]: %s: init failed: %s (%d)", b->cfg->name, b->path,
			fanout_strerror(r), r);
		b->stopped = 1;
		snprintf(b->reason, sizeof(b->reason), "init failed: %s", fanout_strerror(r));
		return -1;
	}
	b->inited = 1;
	snprintf(b->reason, sizeof(b->reason), "starting");
	r = b->p->start(b->state);
	if (r) {
		log_err("[backend %s]: %s: start failed: %s (%d)", b->cfg->name, b->path,
			fanout_strerror(r), r);
		b->stopped = 1;
		snprintf(b->reason, sizeof(b->reason), "start failed: %s", fanout_strerror(r));
		return -1;
	}
	b->started = 1;
	return 0;
}

int plugin_host_reload_apply(const struct config *run, int serving)
{
	int failed = 0;

	cfg = run;
	/* Every running backend follows its (equal or changed) section. */
	for (size_t i = 0; i < n_backends; i++) {
		struct fanout_backend *b = &backends[i];
		const struct cfg_backend *nb = config_find_backend(run, b->cfg->name);
		if (nb)
			b->cfg = nb;
	}
	for (size_t k = 0; k < n_prep; k++) {
		struct prepared *pp = &prep[k];
		struct fanout_backend *b = find_running(pp->name);
		int restart = b != NULL;
		if (!b) { /* a new section */
			b = &backends[n_backends++];
			memset(b, 0, sizeof(*b));
			pthread_mutex_init(&b->post_lock, NULL);
			b->up = FANOUT_DOWN;
		} else if (serving) {
			/* The old instance goes: nothing it posted runs any more. */
			pthread_mutex_lock(&b->post_lock);
			b->posts_closed = 1;
			b->incarnation++;
			pthread_mutex_unlock(&b->post_lock);
			if (b->started && !b->stopped && b->p->stop)
				b->p->stop(b->state);
			if (b->inited)
				b->p->destroy(b->state);
		}
		b->cfg = config_find_backend(run, pp->name);
#ifndef FANOUT_NO_DLCLOSE
		if (b->dl)
			dlclose(b->dl);
#endif
		free(b->path);
		free(b->values);
		b->path = pp->path;
		b->dl = pp->dl;
		b->p = pp->p;
		b->values = pp->values;
		pp->path = NULL;
		pp->dl = NULL;
		pp->values = NULL;
		b->state = NULL;
		b->inited = b->started = b->stopped = 0;
		if (!serving)
			continue;
		b->up = FANOUT_DOWN;
		snprintf(b->reason, sizeof(b->reason), "restarting");
		pthread_mutex_lock(&b->post_lock);
		b->posts_closed = 0;
		pthread_mutex_unlock(&b->post_lock);
		if (start_one(b)) {
			failed++;
			continue;
		}
		log_info("[backend %s]: %s %s %s (channels: %s%s)", b->cfg->name, b->p->name,
			 b->p->version, restart ? "restarted with its new section" : "started",
			 b->cfg->channels[0], b->cfg->n_channels > 1 ? ", ..." : "");
		if (restart && to_hub && to_hub->resubscribe)
			to_hub->resubscribe(b, "backend reconfigured");
	}
	prep_free(0);
	return failed;
}
