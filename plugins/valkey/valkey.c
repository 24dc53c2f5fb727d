/*
 * valkey.c — the valkey backend: Valkey/Redis pub/sub over hiredis async,
 * on the host's loop. This file holds the plugin's table, its options, its
 * life (init, start, stop, destroy) and the up/down state it reports; the
 * rest lives beside it, one concern per file (see vk.h): conn.c (the two
 * broker connections), subs.c (channels and SUBSCRIBE demand), probe.c
 * (liveness), publish.c (client publishes), redis_addr.c (the url option,
 * the parser shared with fanout-cli),
 * history.c + envelope.c (positions and history, history_size > 0).
 *
 * Threads: everything runs on the host's loop thread, except a short-lived
 * resolver thread per connect attempt (conn.c). stop() joins it.
 *
 * Memory: the state (struct vk) with its config strings and the probe
 * channel name, allocated by init() and freed by destroy(); each file frees
 * what it allocates (conn_free, subs_free, probe_free).
 */
#include "vk.h"

#include "library.h"
#include "redis_addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VK_VERSION "0.2.0"
#define VK_STR_(x) #x
#define VK_STR(x)  VK_STR_(x)

/* ---- options (order = index into values[]) ---- */

enum {
	O_URL,
	O_HOST,
	O_PORT,
	O_USERNAME,
	O_PASSWORD,
	O_DB,
	O_PREFIX,
	O_CONNECT_TIMEOUT,
	O_RECONNECT_MIN,
	O_RECONNECT_MAX,
	O_PROBE_INTERVAL,
	O_PROBE_TIMEOUT,
	O_MAX_PENDING,
	O_HISTORY_SIZE,
	O_HISTORY_TTL,
	O_CLUSTER,
	O_CLUSTER_REFRESH,
	O_COUNT
};

static const struct fanout_option vk_options[] = {
    FANOUT_OPTION_STRING("url", "redis://127.0.0.1:6379/0",
			 "broker: redis://[user:password@]host:port/db or unix:///path"),
    FANOUT_OPTION_STRING("host", NULL, "broker host name or address (overrides the url's)"),
    FANOUT_OPTION_INT("port", NULL, 1, 65535, "broker TCP port (overrides the url's)"),
    FANOUT_OPTION_STRING("username", NULL, "ACL user for AUTH (overrides the url's)"),
    {"password", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "password for AUTH (overrides the url's)",
     FANOUT_OPT_SECRET},
    FANOUT_OPTION_INT("db", NULL, 0, 1000000, "database for SELECT (overrides the url's)"),
    FANOUT_OPTION_STRING("channel_prefix", "", "client channel x is broker channel <prefix>x"),
    FANOUT_OPTION_INT("connect_timeout_ms", "2000", 10, 600000,
		      "give up a connect + handshake attempt after this long"),
    FANOUT_OPTION_INT("reconnect_min_ms", "100", 0, 3600000, "first reconnect delay"),
    FANOUT_OPTION_INT("reconnect_max_ms", "5000", 1, 3600000,
		      "cap of the exponential reconnect delay (full jitter)"),
    FANOUT_OPTION_INT("probe_interval_ms", "2000", 0, 3600000,
		      "publish a probe through the broker this often (0: off)"),
    FANOUT_OPTION_INT("probe_timeout_ms", "3000", 10, 3600000,
		      "a probe not back by then marks the subscriber connection dead"),
    FANOUT_OPTION_INT(
	"max_pending", "10000", 1, 100000000,
	"cap on in-flight publishes, top and history calls; over it they fail at once"),
    FANOUT_OPTION_INT("history_size", VK_STR(VK_HISTORY_SIZE_DEFAULT), 0, 100000,
		      "messages kept per channel for recovery (0: no history, no positions)"),
    FANOUT_OPTION_INT("history_ttl_s", VK_STR(VK_HISTORY_TTL_DEFAULT), 0, 315360000,
		      "a channel's position and history expire this long after its last use "
		      "(0: never)"),
    FANOUT_OPTION_BOOL("cluster", "no",
		       "Valkey/Redis Cluster: url is a seed node; sharded pub/sub per shard"),
    FANOUT_OPTION_INT("cluster_refresh_ms", "5000", 0, 3600000,
		      "cluster: re-read the slot map this often (0: only on MOVED, failover...)"),
    FANOUT_OPTION_END,
};

/* ---- state ---- */

/*
 * Log a failure of one connection once: the same reason again (every retry
 * of a broker that stays down) goes to debug only. Reset when it is ready.
 */
void vk_log_failure(struct vk *vk, char *last, size_t lastsz, enum fanout_log_level lvl,
		    const char *what)
{
	if (strcmp(last, what) == 0) {
		vk->host->log(vk->b, FANOUT_LOG_DEBUG, "%s (again)", what);
		return;
	}
	snprintf(last, lastsz, "%s", what);
	vk->host->log(vk->b, lvl, "%s", what);
}

/*
 * Recompute UP/DOWN. UP: both connections ready and the probe channel
 * subscribed. Each change is reported and logged once.
 */
void vk_update_state(struct vk *vk, const char *reason)
{
	bool up;
	char why[512];

	if (vk->cluster) {
		/* Up: a full slot map, every shard's two connections ready. While
		 * down, /readyz follows the reason as it changes. */
		up = cluster_up(vk, why, sizeof(why));
		if (up == vk->up && (up || strcmp(why, vk->down_why) == 0))
			return;
		if (!up && !vk->up) {
			snprintf(vk->down_why, sizeof(vk->down_why), "%s", why);
			vk->host->backend_state(vk->b, FANOUT_DOWN, why);
			return;
		}
		snprintf(vk->down_why, sizeof(vk->down_why), "%s", up ? "" : why);
		reason = why;
	} else {
		up = vk->conn[SUB].phase == C_READY && vk->conn[CMD].phase == C_READY &&
		     vk->probe_confirmed;
	}
	if (up == vk->up)
		return;
	vk->up = up;
	if (up) {
		vk->host->log(vk->b, FANOUT_LOG_INFO, "up: connected to %s%s", vk->target,
			      vk->cluster ? " (cluster)" : "");
		vk->host->backend_state(vk->b, FANOUT_UP, "connected");
	} else {
		vk->host->log(vk->b, FANOUT_LOG_WARN, "down: %s", reason);
		vk->host->backend_state(vk->b, FANOUT_DOWN, reason);
	}
}

/* The broker's name of a client channel: channel_prefix + channel (malloc). */
char *vk_broker_name(struct vk *vk, const char *channel, size_t *len)
{
	size_t cl = strlen(channel);
	char *full = malloc(vk->prefix_len + cl + 1);

	if (!full)
		return NULL;
	memcpy(full, vk->prefix, vk->prefix_len);
	memcpy(full + vk->prefix_len, channel, cl + 1);
	*len = vk->prefix_len + cl;
	return full;
}

/* The url option, parsed by fanout's one URL parser (redis_addr.c). */
static int apply_url(struct vk *vk, const char *url, char *err, size_t errlen)
{
	struct redis_addr a;
	char why[256];
	int rc = 0;

	if (redis_addr_parse(url, &a, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "url: %s", why);
		return FANOUT_EINVAL;
	}
	vk->port = a.port;
	vk->db = a.db;
	if ((a.unix_path[0] && !(vk->unix_path = strdup(a.unix_path))) ||
	    (a.host[0] && !(vk->host_name = strdup(a.host))) ||
	    (a.user[0] && !(vk->username = strdup(a.user))) ||
	    (a.password[0] && !(vk->password = strdup(a.password))))
		rc = FANOUT_ENOMEM;
	memset(a.password, 0, sizeof(a.password));
	return rc;
}

/* ---- life ---- */

static void vk_destroy(void *state);

static int vk_init(const struct fanout_host *host, struct fanout_backend *b,
		   const struct fanout_value *v, void **state)
{
	struct vk *vk = calloc(1, sizeof(*vk));
	char err[512] = "";
	int rc = FANOUT_ENOMEM;
	unsigned char rnd[8] = {0};
	char rhex[17];

	if (!vk)
		return FANOUT_ENOMEM;
	vk->host = host;
	vk->b = b;
	vk->port = 6379;
	vk->has_count =
	    host->struct_size >= offsetof(struct fanout_host, count) + sizeof(host->count);
	rc = apply_url(vk, v[O_URL].str ? v[O_URL].str : "redis://127.0.0.1:6379/0", err,
		       sizeof(err));
	if (rc < 0)
		goto fail;
	rc = FANOUT_ENOMEM;
	if (v[O_HOST].set && v[O_HOST].str && v[O_HOST].str[0]) {
		free(vk->unix_path);
		vk->unix_path = NULL;
		free(vk->host_name);
		if (!(vk->host_name = strdup(v[O_HOST].str)))
			goto fail;
	}
	if (v[O_PORT].set)
		vk->port = (int)v[O_PORT].num;
	if (v[O_USERNAME].set) {
		free(vk->username);
		vk->username = v[O_USERNAME].str[0] ? strdup(v[O_USERNAME].str) : NULL;
	}
	if (v[O_PASSWORD].set) {
		free(vk->password);
		vk->password = v[O_PASSWORD].str[0] ? strdup(v[O_PASSWORD].str) : NULL;
	}
	if (v[O_DB].set)
		vk->db = v[O_DB].num;
	if (vk->username && !vk->password) {
		snprintf(err, sizeof(err), "username set without a password");
		rc = FANOUT_EINVAL;
		goto fail;
	}
	if (!vk->unix_path && (!vk->host_name || !vk->host_name[0])) {
		snprintf(err, sizeof(err), "no broker host");
		rc = FANOUT_EINVAL;
		goto fail;
	}
	vk->prefix = strdup(v[O_PREFIX].str ? v[O_PREFIX].str : "");
	if (!vk->prefix)
		goto fail;
	vk->prefix_len = strlen(vk->prefix);
	if (vk->unix_path)
		snprintf(vk->target, sizeof(vk->target), "unix:%s", vk->unix_path);
	else
		snprintf(vk->target, sizeof(vk->target),
			 strchr(vk->host_name, ':') ? "[%s]:%d" : "%s:%d", vk->host_name, vk->port);
	vk->connect_timeout_ms = (unsigned)v[O_CONNECT_TIMEOUT].num;
	vk->reconnect_min_ms = (unsigned)v[O_RECONNECT_MIN].num;
	vk->reconnect_max_ms = (unsigned)v[O_RECONNECT_MAX].num;
	vk->probe_interval_ms = (unsigned)v[O_PROBE_INTERVAL].num;
	vk->probe_timeout_ms = (unsigned)v[O_PROBE_TIMEOUT].num;
	vk->max_pending = (size_t)v[O_MAX_PENDING].num;
	if (vk->reconnect_min_ms > vk->reconnect_max_ms) {
		snprintf(err, sizeof(err), "reconnect_min_ms (%u) > reconnect_max_ms (%u)",
			 vk->reconnect_min_ms, vk->reconnect_max_ms);
		rc = FANOUT_EINVAL;
		goto fail;
	}
	vk->history_size = v[O_HISTORY_SIZE].num;
	vk->history_ttl_s = v[O_HISTORY_TTL].num;
	/* Positions need the ABI 1.1 host calls (always there on a host that
	 * loaded this plugin; checked like count()). */
	vk->positioned = vk->history_size > 0 &&
			 host->struct_size >= offsetof(struct fanout_host, history_done) +
						  sizeof(host->history_done);
	vk->cluster = v[O_CLUSTER].num != 0;
	vk->cluster_refresh_ms = (unsigned)v[O_CLUSTER_REFRESH].num;
	if ((vk->positioned || vk->cluster) && strpbrk(vk->prefix, "{}")) {
		snprintf(err, sizeof(err),
			 "channel_prefix may not contain { or }: the broker channel is the hash "
			 "tag of its history key and decides its cluster slot");
		rc = FANOUT_EINVAL;
		goto fail;
	}
	if (vk->cluster && vk->unix_path) {
		snprintf(err, sizeof(err), "cluster = yes needs a TCP url (a seed host:port)");
		rc = FANOUT_EINVAL;
		goto fail;
	}
	if (vk->cluster && vk->db) {
		snprintf(err, sizeof(err),
			 "cluster = yes: a cluster has only database 0 (db = %lld)", vk->db);
		rc = FANOUT_EINVAL;
		goto fail;
	}
	if (vk->positioned && hist_init(vk, vk->cluster ? "SPUBLISH" : "PUBLISH") < 0)
		goto fail;

	/* Per-instance probe channel: instance id + random, so two fanoutd
	 * sharing an instance name never answer each other's probes. */
	{
		FILE *f = fopen("/dev/urandom", "rb");
		if (f) {
			if (fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd))
				memset(rnd, 0, sizeof(rnd));
			fclose(f);
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		vk->seed = (unsigned)ts.tv_nsec ^ (unsigned)getpid() ^ rnd[0] ^ (rnd[1] << 8);
		for (int i = 0; i < 8; i++)
			snprintf(rhex + 2 * i, 3, "%02x",
				 rnd[i] ^ (unsigned char)(rand_r(&vk->seed) & 0xff));
	}
	{
		const char *inst = host->instance ? host->instance(b) : "fanoutd";
		size_t l = vk->prefix_len + strlen(PROBE_TAG) + strlen(inst) + 1 + 16 + 1;
		vk->probe_chan = malloc(l);
		if (!vk->probe_chan)
			goto fail;
		snprintf(vk->probe_chan, l, "%s%s%s:%s", vk->prefix, PROBE_TAG, inst, rhex);
		vk->probe_chan_len = strlen(vk->probe_chan);
	}

	for (int k = 0; k < 2; k++)
		if (conn_init(vk, &vk->conn[k], (enum conn_kind)k, vk->host_name, vk->port,
			      vk->unix_path) < 0)
			goto fail;
	if (subs_init(vk) < 0 || probe_init(vk) < 0 || (vk->cluster && cluster_init(vk) < 0))
		goto fail;
	*state = vk;
	return 0;
fail:
	if (err[0])
		host->log(b, FANOUT_LOG_ERR, "%s", err);
	vk_destroy(vk);
	return rc;
}

static int vk_start(void *state)
{
	struct vk *vk = state;

	vk->started = true;
	vk->host->log(vk->b, FANOUT_LOG_INFO, "connecting to %s (db %lld, prefix \"%s\"%s)",
		      vk->target, vk->db, vk->prefix, vk->password ? ", with AUTH" : "");
	vk->host->backend_state(vk->b, FANOUT_DOWN, "connecting");
	if (vk->cluster) {
		cluster_start(vk); /* the seed; the shards follow from its slot map */
		return 0;
	}
	conn_start(&vk->conn[SUB]);
	conn_start(&vk->conn[CMD]);
	return 0;
}

static void vk_stop(void *state)
{
	struct vk *vk = state;

	if (!vk || vk->stopping || !vk->started)
		return;
	vk->stopping = true;
	if (vk->cluster)
		cluster_stop(vk);
	for (int k = 0; k < 2; k++)
		conn_close(&vk->conn[k]);
	vk->host->timer_disarm(vk->t_flush);
	vk->host->timer_disarm(vk->t_confirm);
	vk->host->timer_disarm(vk->t_resub);
	vk->host->timer_disarm(vk->t_probe);
	vk->host->timer_disarm(vk->t_probe_timeout);
}

static void vk_destroy(void *state)
{
	struct vk *vk = state;

	if (!vk)
		return;
	vk_stop(vk);
	for (int k = 0; k < 2; k++)
		conn_free(&vk->conn[k]);
	if (vk->cluster)
		cluster_free(vk);
	subs_free(vk);
	probe_free(vk);
	free(vk->host_name);
	free(vk->unix_path);
	free(vk->username);
	if (vk->password) {
		memset(vk->password, 0, strlen(vk->password));
		free(vk->password);
	}
	free(vk->prefix);
	free(vk->probe_chan);
	hist_free(vk);
	free(vk);
}

FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "valkey",
    .version = VK_VERSION,
    .description = "Valkey/Redis pub/sub (hiredis async on the host loop)",
    .options = vk_options,
    .init = vk_init,
    .start = vk_start,
    .subscribe = subs_subscribe,
    .unsubscribe = subs_unsubscribe,
    .publish = pub_publish,
    .top = hist_top,
    .history = hist_history,
    .stop = vk_stop,
    .destroy = vk_destroy,
};
