/*
 * reload.c — owns SIGHUP: the config file (with the command line's -o
 * overrides) is read again and checked whole — every key, every backend
 * section that is new or changed against its plugin, the token key — before
 * anything changes. A file that does not load is refused: its errors are
 * logged (FILE:LINE as at start-up) and the running config stays.
 * Otherwise it is applied in place (every module keeps its pointer to the
 * running struct config, config_apply()):
 *   - keys marked live in the key table take effect for new requests
 *     (origins, limits, channel globs, log level, token key, TLS files,
 *     API key, ...); each change is logged;
 *   - other keys (listen, workers, paths, ...) keep their running value and
 *     a warning says a restart applies them;
 *   - existing connections and their subscriptions stay;
 *   - a [backend NAME] section that changed is restarted behind the same
 *     handle: the old instance is stopped (nothing it posted runs any
 *     more), the new one started, its channels subscribed again and their
 *     subscribers sent a gap (plugin_host_reload_apply, hub_resubscribe);
 *     a new section is started; a removed one keeps running until a
 *     restart.
 * With workers the supervisor checks and applies the file to its own copy
 * (for workers it forks later) and forwards SIGHUP to every worker, which
 * reloads itself.
 *
 * Loop thread (from the signal watch) in a serving process; the
 * supervisor's thread otherwise. Allocates the new config for the length of
 * a reload and copies of the file name and overrides until reload_free().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "reload"
#include "auth.h"
#include "budget.h"
#include "config.h"
#include "conn.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "plugin_host.h"
#include "reload.h"
#include "session.h"
#include "tls.h"

static struct config *run;
static char *path;
static char **overrides;
static size_t n_overrides;
static struct lws_context *ctx;

int reload_init(struct config *c, const char *file, const char *const *ov, size_t n)
{
	reload_free();
	run = c;
	path = strdup(file);
	overrides = calloc(n + 1, sizeof(*overrides));
	if (!path || !overrides)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!(overrides[n_overrides++] = strdup(ov[i])))
			return -1;
	return 0;
}

void reload_free(void)
{
	for (size_t i = 0; i < n_overrides; i++)
		free(overrides[i]);
	free(overrides);
	free(path);
	overrides = NULL;
	path = NULL;
	n_overrides = 0;
	run = NULL;
	ctx = NULL;
}

void reload_set_context(struct lws_context *c)
{
	ctx = c;
}

/* Each line of text (errors collected from a loader) as one log line. */
static void log_lines(enum log_level level, const char *text)
{
	for (const char *p = text; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n)
			log_write(level, LOG_TAG, "%.*s", (int)n, p);
		p = e ? e + 1 : NULL;
	}
}

static void note_key(void *arg, const char *key, int live, const char *old, const char *new)
{
	int *applied = arg;
	if (live) {
		log_info("%s: %s -> %s", key, old, new);
		++*applied;
	} else {
		log_warn("%s: changed to %s in the file, needs a restart (keeps %s)", key, new,
			 old);
	}
}

static void note_line(void *arg, const char *what)
{
	log_warn("%s", what);
}

int reload_run(int serving)
{
	struct config next;
	char *errs = NULL;
	size_t len = 0;
	int rc = -1, applied = 0;
	struct auth_key *key = NULL;

	if (!run)
		return -1;
	notify_reloading();
	log_info("SIGHUP: reading %s", path);
	FILE *ef = open_memstream(&errs, &len);
	if (!ef)
		goto done;
	int nerr = config_load(&next, path, (const char *const *)overrides, n_overrides, ef);
	if (!nerr) {
		/* The listener speaks TLS or it does not: switching needs a restart. */
		if (tls_enabled(run) != tls_enabled(&next)) {
			log_warn("tls_cert/tls_key: TLS switched %s in the file, needs a restart",
				 tls_enabled(&next) ? "on" : "off");
			if (config_keep_key(&next, run, "tls_cert") ||
			    config_keep_key(&next, run, "tls_key"))
				nerr++;
		}
		struct auth_opts ao = {next.jwt_secret, next.jwt_public_key, next.jwt_audience,
				       next.jwt_leeway_s};
		char why[256];
		if (auth_key_load(&ao, &key, why, sizeof(why))) {
			fprintf(ef, "%s: [auth] %s: %s\n", path,
				*next.jwt_public_key ? "jwt_public_key" : "jwt_secret", why);
			nerr++;
		}
		if (!nerr)
			nerr = plugin_host_reload_check(&next, ef, note_line, NULL);
		if (nerr)
			config_free(&next);
	}
	fclose(ef);
	if (nerr) {
		log_lines(LOG_LVL_ERR, errs);
		log_err("reload refused: %d error%s in %s; the running configuration stays", nerr,
			nerr == 1 ? "" : "s", path);
		auth_key_free(key);
		goto done;
	}

	int restart = config_apply(run, &next, note_key, &applied);
	log_set_level((enum log_level)run->log_level);
	/* Tokens: new connections and refreshes use the new key (or none). */
	auth_key_free(auth_swap_process_key(key));
	key = NULL;
	if (serving) {
		if (gate_init(run) || conn_reload(run))
			log_err("reload: origins or proxies could not be applied");
		session_limits(run);
		/* max_queued_bytes (auto: computed again, the same) */
		metrics.queue_budget_bytes = budget_init(run);
		if (ctx && tls_enabled(run))
			tls_reload(ctx, run);
	}
	int failed = plugin_host_reload_apply(run, serving);
	config_free(&next);
	log_info("reloaded %s: %d change%s applied%s%s%s", path, applied, applied == 1 ? "" : "s",
		 restart ? ", some need a restart (see above)" : "",
		 failed ? "; a backend failed to start (see above)" : "",
		 serving ? "" : "; forwarding SIGHUP to the workers");
	rc = 0;
done:
	free(errs);
	notify_state(1, NULL);
	return rc;
}
