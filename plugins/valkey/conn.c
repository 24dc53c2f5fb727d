/*
 * conn.c — the valkey backend's broker connections and their life:
 * resolve, connect, handshake, ready, lost, reconnect with exponential
 * backoff and full jitter. A command connection (the single broker's, a
 * cluster's seed and each shard's) is a hiredis async context driven by
 * the host's fd watches through a five-hook hiredis adapter
 * (addRead/delRead/addWrite/delWrite/cleanup → watch_add/watch_set/
 * watch_remove); its handshake is AUTH, SELECT, PING and FUNCTION LOAD.
 * The single broker's subscriber connection is an rconn (rconn.c: our own
 * socket, RESP read with redisReader; handshake AUTH + PING), because
 * hiredis 0.14's async API drops the connection on an error reply to a
 * SUBSCRIBE (an ACL -NOPERM) instead of handing it to anyone; pub/sub is
 * the same in every database, so it sends no SELECT.
 *
 * Threads: everything runs on the host's loop thread, except a short-lived
 * resolver thread per connect attempt when the broker is given by host name:
 * it runs getaddrinfo() and hands the result back with host->post().
 * conn_close() joins a resolver still running (bounded by the resolver's own
 * timeout).
 *
 * Memory: per connection three host timers (connect deadline, retry
 * backoff, a 0 ms "drop" timer so an async context is never freed inside its
 * own callback), made by conn_init() and freed by conn_free(); the hiredis
 * context (freed by hiredis after a disconnect, or by conn_drop_now() /
 * conn_close()), or the subscriber's rconn (its buffers and timers, freed
 * by conn_free()); one struct resolve_job per resolver thread (freed on the
 * loop after join).
 */
#include "vk.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- hiredis adapter on host watches ---- */

static void on_fd(struct fanout_watch *w, int fd, unsigned revents, void *arg)
{
	struct conn *cn = arg;
	redisAsyncContext *ac = cn->ac;

	(void)w;
	(void)fd;
	if (!ac)
		return;
	if (revents & FANOUT_FD_READ)
		redisAsyncHandleRead(ac);
	/* The read may have freed the context (disconnect): check before writing. */
	if ((revents & FANOUT_FD_WRITE) && cn->ac == ac)
		redisAsyncHandleWrite(ac);
}

static void ev_update(struct conn *cn, unsigned events)
{
	struct vk *vk = cn->vk;

	cn->events = events;
	if (!cn->ac)
		return;
	if (!cn->watch) {
		if (!events)
			return;
		cn->watch = vk->host->watch_add(vk->b, cn->ac->c.fd, events, on_fd, cn);
		if (!cn->watch)
			vk->host->log(vk->b, FANOUT_LOG_ERR, "%s: cannot watch fd", cn->label);
		return;
	}
	vk->host->watch_set(cn->watch, events);
}

static void ev_add_read(void *p)
{
	struct conn *cn = p;
	ev_update(cn, cn->events | FANOUT_FD_READ);
}
static void ev_del_read(void *p)
{
	struct conn *cn = p;
	ev_update(cn, cn->events & ~FANOUT_FD_READ);
}
static void ev_add_write(void *p)
{
	struct conn *cn = p;
	ev_update(cn, cn->events | FANOUT_FD_WRITE);
}
static void ev_del_write(void *p)
{
	struct conn *cn = p;
	ev_update(cn, cn->events & ~FANOUT_FD_WRITE);
}
static void ev_cleanup(void *p)
{
	struct conn *cn = p;

	if (cn->watch)
		cn->vk->host->watch_remove(cn->watch);
	cn->watch = NULL;
	cn->events = 0;
}

static void attach(struct conn *cn, redisAsyncContext *ac)
{
	ac->ev.data = cn;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
}

/* ---- connection lifecycle ---- */

static unsigned backoff_ms(struct conn *cn)
{
	struct vk *vk = cn->vk;
	uint64_t cap = vk->reconnect_min_ms ? vk->reconnect_min_ms : 1;
	unsigned lo = vk->reconnect_min_ms;

	if (cn->penalty) {
		cap = vk->reconnect_max_ms;
		lo = vk->reconnect_max_ms / 2;
	} else {
		for (unsigned i = 0; i < cn->attempt && cap < vk->reconnect_max_ms; i++)
			cap *= 2;
	}
	if (cap > vk->reconnect_max_ms)
		cap = vk->reconnect_max_ms;
	if (lo > cap)
		lo = (unsigned)cap;
	/* Full jitter between the floor and the exponential cap. */
	return lo + (unsigned)(rand_r(&vk->seed) % (unsigned)(cap - lo + 1));
}

/* The connection is gone (ac already freed or being freed by hiredis). */
static void conn_lost(struct conn *cn, const char *why)
{
	struct vk *vk = cn->vk;
	bool was_ready = cn->phase == C_READY;

	/* cn->watch: hiredis runs our cleanup hook (before onDisconnect, or
	 * after a failed onConnect), which removes it. */
	cn->ac = NULL;
	cn->phase = C_IDLE;
	vk->host->timer_disarm(cn->t_connect);
	if (why != cn->why)
		snprintf(cn->why, sizeof(cn->why), "%s", why);
	if (cn->kind == SUB)
		subs_lost(vk);
	else if (cn->shard)
		cluster_cmd_lost(cn->shard);
	{
		char msg[640];
		snprintf(msg, sizeof(msg), "%s connection %s: %s", cn->label,
			 was_ready ? "lost" : "failed", why);
		if (!vk->stopping)
			vk_log_failure(vk, cn->last_logged, sizeof(cn->last_logged),
				       cn->penalty ? FANOUT_LOG_ERR : FANOUT_LOG_WARN, msg);
		if (was_ready)
			count(vk, cn->kind == SUB ? "sub_disconnects" : "cmd_disconnects", 1);
		vk_update_state(vk, msg);
	}
	if (vk->stopping)
		return;
	cn->attempt++;
	vk->host->timer_arm(cn->t_retry, backoff_ms(cn));
}

/* Free our context now (never called from inside one of its callbacks). */
void conn_drop_now(struct conn *cn, const char *why)
{
	redisAsyncContext *ac = cn->ac;

	if (cn->kind == SUB) {
		/* rconn may be closed from inside its own callbacks. */
		if (cn->phase == C_IDLE || cn->phase == C_RESOLVING)
			return;
		rconn_close(&cn->rc);
		conn_lost(cn, why);
		return;
	}
	if (!ac) {
		if (cn->phase != C_IDLE && cn->phase != C_RESOLVING)
			conn_lost(cn, why);
		return;
	}
	cn->freeing = true;
	redisAsyncFree(ac); /* runs pending callbacks with NULL replies, then cleanup */
	cn->freeing = false;
	conn_lost(cn, why);
}

static void on_drop_timer(struct fanout_timer *t, void *arg)
{
	struct conn *cn = arg;

	(void)t;
	conn_drop_now(cn, cn->why);
}

/* Drop the connection from inside a hiredis callback: defer the free. */
void conn_drop_later(struct conn *cn, const char *why)
{
	snprintf(cn->why, sizeof(cn->why), "%s", why);
	cn->vk->host->timer_arm(cn->t_drop, 0);
}

static void on_connect_timeout(struct fanout_timer *t, void *arg)
{
	struct conn *cn = arg;

	(void)t;
	count(cn->vk, "connect_timeouts", 1);
	conn_drop_now(cn, cn->phase == C_HANDSHAKE ? "handshake timed out" : "connect timed out");
}

static void on_retry(struct fanout_timer *t, void *arg)
{
	(void)t;
	conn_start(arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct conn *cn = ac->ev.data;
	char why[256];

	if (!cn || cn->freeing)
		return; /* our own redisAsyncFree: conn_drop_now handles it */
	if (status != REDIS_OK && ac->errstr[0])
		snprintf(why, sizeof(why), "%s", ac->errstr);
	else
		snprintf(why, sizeof(why), "connection closed by the broker");
	cn->vk->host->timer_disarm(cn->t_drop);
	conn_lost(cn, why); /* hiredis frees ac after we return */
}

void conn_ready(struct conn *cn)
{
	struct vk *vk = cn->vk;

	cn->phase = C_READY;
	cn->penalty = false;
	cn->attempt = 0;
	cn->last_logged[0] = 0;
	vk_update_state(vk, "");
	if (cn->kind != CMD)
		return;
	if (vk->cluster && !cn->shard) {
		cluster_seed_ready(vk); /* the seed: discover the shards */
		return;
	}
	subs_cmd_ready(vk); /* tops that waited for this connection */
	if (cn->shard)
		cluster_park_release(vk); /* calls redirected to this new shard */
}

/* Reply of a handshake step: AUTH, SELECT, then on the command connection
 * PING and (history_size > 0) FUNCTION LOAD of the fanout library. */
static void handshake_step(struct conn *cn, int step);

static void on_handshake_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct conn *cn = ac->data;
	redisReply *reply = r;
	int step = (int)(intptr_t)priv;
	struct vk *vk;
	char msg[512];

	if (!cn || !reply || cn->ac != ac)
		return;
	vk = cn->vk;
	if (reply->type == REDIS_REPLY_ERROR && step == 3) {
		if (strncmp(reply->str, "NOPERM", 6) == 0) {
			/* Not allowed to load it: an administrator may have. Calls
			 * report it if the functions are missing. */
			vk->host->log(vk->b, FANOUT_LOG_WARN,
				      "FUNCTION LOAD refused (%s): using the fanout functions as "
				      "loaded by the broker's administrator",
				      reply->str);
			handshake_step(cn, step + 1);
			return;
		}
		if (cn->shard && strncmp(reply->str, "READONLY", 8) == 0) {
			/* A cluster shard that is a replica now: the slot map is
			 * stale. No penalty: cluster_cmd_lost() re-reads the map. */
			snprintf(msg, sizeof(msg),
				 "FUNCTION LOAD answered %s (a replica now: reading the slot "
				 "map again)",
				 reply->str);
			cn->readonly = true;
			count(vk, "readonly_replies", 1);
			conn_drop_later(cn, msg);
			return;
		}
		snprintf(msg, sizeof(msg),
			 "FUNCTION LOAD refused by the broker: %s (history_size > 0 needs "
			 "Redis/Valkey 7 functions; history_size = 0 runs plain pub/sub)",
			 reply->str);
		cn->penalty = true;
		count(vk, "error_replies", 1);
		conn_drop_later(cn, msg);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		const char *what = step == 0 ? "AUTH" : step == 1 ? "SELECT" : "PING";
		bool denied = step == 0 || strncmp(reply->str, "NOPERM", 6) == 0 ||
			      strncmp(reply->str, "WRONGPASS", 9) == 0 ||
			      strncmp(reply->str, "NOAUTH", 6) == 0;
		snprintf(msg, sizeof(msg), "%s refused by the broker%s: %s", what,
			 denied ? " (check username/password and ACL)" : "", reply->str);
		if (denied) {
			cn->penalty = true;
			count(vk, "auth_failures", 1);
		} else {
			count(vk, "error_replies", 1);
		}
		conn_drop_later(cn, msg); /* logged once by conn_lost */
		return;
	}
	handshake_step(cn, step + 1);
}

static void handshake_step(struct conn *cn, int step)
{
	struct vk *vk = cn->vk;
	char dbs[24];

	if (step == 0) {
		if (vk->password) {
			if (vk->username) {
				const char *argv[] = {"AUTH", vk->username, vk->password};
				redisAsyncCommandArgv(cn->ac, on_handshake_reply,
						      (void *)(intptr_t)0, 3, argv, NULL);
			} else {
				const char *argv[] = {"AUTH", vk->password};
				redisAsyncCommandArgv(cn->ac, on_handshake_reply,
						      (void *)(intptr_t)0, 2, argv, NULL);
			}
			return;
		}
		step = 1;
	}
	if (step == 1) {
		if (vk->db) {
			const char *argv[] = {"SELECT", dbs};
			snprintf(dbs, sizeof(dbs), "%lld", vk->db);
			redisAsyncCommandArgv(cn->ac, on_handshake_reply, (void *)(intptr_t)1, 2,
					      argv, NULL);
			return;
		}
		step = 2;
	}
	if (step == 2) {
		/* A PING proves the broker answers (a stopped broker accepts TCP). */
		const char *argv[] = {"PING"};
		redisAsyncCommandArgv(cn->ac, on_handshake_reply, (void *)(intptr_t)2, 1, argv,
				      NULL);
		return;
	}
	/* Not on a cluster's seed connection: it only discovers the shards (and
	 * may be a replica); each shard's own command connection loads it. */
	if (step == 3 && vk->positioned && (!vk->cluster || cn->shard)) {
		/* Every (re)connect: a broker restarted without persistence has
		 * lost the library; REPLACE also updates an older one. */
		const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", vk->lib};
		redisAsyncCommandArgv(cn->ac, on_handshake_reply, (void *)(intptr_t)3, 4, argv,
				      NULL);
		return;
	}
	cn->vk->host->timer_disarm(cn->t_connect);
	conn_ready(cn);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct conn *cn = ac->data;

	if (!cn)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees ac itself after this callback. */
		char why[256];
		snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
		count(cn->vk, "connect_failures", 1);
		cn->addr_rr++;
		conn_lost(cn, why);
		return;
	}
	cn->phase = C_HANDSHAKE;
	handshake_step(cn, 0);
}

/* ---- the subscriber connection (rconn.c) ---- */

/* AUTH and PING passed: subscribe. The subscriber is ready when its
 * SUBSCRIBE of the probe channel is confirmed (subs_reply()); the connect
 * timer runs until then. */
static void sub_rc_ready(struct rconn *rc, void *arg)
{
	struct conn *cn = arg;

	(void)rc;
	cn->phase = C_HANDSHAKE;
	subs_ready(cn->vk);
}

static void sub_rc_reply(struct rconn *rc, const redisReply *r, void *arg)
{
	struct conn *cn = arg;

	(void)rc;
	subs_reply(cn->vk, r);
}

static void sub_rc_lost(struct rconn *rc, const char *why, bool penalty, void *arg)
{
	struct conn *cn = arg;

	(void)rc;
	if (penalty)
		cn->penalty = true;
	if (cn->phase != C_READY && strncmp(why, "connect", 7) == 0)
		cn->addr_rr++; /* try the next resolved address */
	conn_lost(cn, why);
}

static const struct rconn_ops sub_rc_ops = {
    .ready = sub_rc_ready,
    .reply = sub_rc_reply,
    .lost = sub_rc_lost,
};

static void sub_connect_to(struct conn *cn, const char *ip)
{
	struct vk *vk = cn->vk;
	int rc;

	cn->phase = C_CONNECTING;
	vk->host->timer_arm(cn->t_connect, vk->connect_timeout_ms);
	/* Failures arrive through sub_rc_lost(), maybe before this returns. */
	rc = cn->unix_path ? rconn_connect_unix(&cn->rc, cn->unix_path)
			   : rconn_connect(&cn->rc, ip, cn->port);
	if (rc == FANOUT_EINVAL)
		conn_lost(cn, cn->unix_path ? "unix socket path too long" : "not an IP address");
}

static void conn_connect_to(struct conn *cn, const char *ip)
{
	struct vk *vk = cn->vk;
	redisAsyncContext *ac;
	char why[300];

	if (cn->kind == SUB) {
		sub_connect_to(cn, ip);
		return;
	}
	ac = cn->unix_path ? redisAsyncConnectUnix(cn->unix_path) : redisAsyncConnect(ip, cn->port);
	if (!ac) {
		cn->phase = C_CONNECTING;
		conn_lost(cn, "out of memory");
		return;
	}
	if (ac->err) {
		snprintf(why, sizeof(why), "connect failed: %s", ac->errstr);
		redisAsyncFree(ac);
		cn->phase = C_CONNECTING;
		count(vk, "connect_failures", 1);
		cn->addr_rr++;
		conn_lost(cn, why);
		return;
	}
	cn->ac = ac;
	ac->data = cn;
	attach(cn, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	cn->phase = C_CONNECTING;
	/* Non-blocking connect completes on writability. */
	ev_add_write(cn);
	ev_add_read(cn);
	vk->host->timer_arm(cn->t_connect, vk->connect_timeout_ms);
}

static void *resolver_main(void *arg)
{
	struct resolve_job *job = arg;
	struct addrinfo hints = {0}, *res = NULL;
	char port[16];

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", job->port);
	job->err = getaddrinfo(job->host, port, &hints, &res);
	if (!job->err) {
		/* IPv4 first: brokers commonly listen on 0.0.0.0 only. */
		for (int pass = 0; pass < 2; pass++) {
			for (struct addrinfo *ai = res; ai && job->naddr < MAX_ADDRS;
			     ai = ai->ai_next) {
				const void *a;
				if ((pass == 0) != (ai->ai_family == AF_INET))
					continue;
				if (ai->ai_family == AF_INET)
					a = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
				else if (ai->ai_family == AF_INET6)
					a = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
				else
					continue;
				if (inet_ntop(ai->ai_family, a, job->addrs[job->naddr],
					      sizeof(job->addrs[0])))
					job->naddr++;
			}
		}
		freeaddrinfo(res);
	}
	return NULL;
}

static void free_job(struct resolve_job *job)
{
	free(job->host);
	free(job);
}

/* On the loop: the resolver thread is done (it posted this as its last act). */
static void on_resolved(void *arg)
{
	struct resolve_job *job = arg;
	struct conn *cn = job->conn;
	char why[300];

	pthread_join(job->tid, NULL);
	cn->job = NULL;
	if (cn->vk->stopping) {
		free_job(job);
		return;
	}
	if (job->err || !job->naddr) {
		snprintf(why, sizeof(why), "cannot resolve %s: %s", job->host,
			 job->err ? gai_strerror(job->err) : "no address");
		count(cn->vk, "resolve_failures", 1);
		free_job(job);
		cn->phase = C_RESOLVING;
		conn_lost(cn, why);
		return;
	}
	{
		char ip[INET6_ADDRSTRLEN];
		snprintf(ip, sizeof(ip), "%s", job->addrs[cn->addr_rr % (unsigned)job->naddr]);
		free_job(job);
		conn_connect_to(cn, ip);
	}
}

static void *resolver_thread(void *arg)
{
	struct resolve_job *job = arg;

	resolver_main(job);
	/* post() is the one thread-safe host call. If the host drops it (after
	 * stop), stop() has joined us and frees the job itself. */
	if (job->vk->host->post(job->vk->b, on_resolved, job) < 0) {
		/* Cannot hand back: leave it for stop() (job stays in cn->job). */
	}
	return NULL;
}

static bool is_numeric_host(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

void conn_start(struct conn *cn)
{
	struct vk *vk = cn->vk;
	struct resolve_job *job;

	if (vk->stopping || cn->phase != C_IDLE)
		return;
	if (cn->unix_path || is_numeric_host(cn->host)) {
		conn_connect_to(cn, cn->host);
		return;
	}
	/* Resolve off the loop, again on every attempt (addresses change). */
	job = calloc(1, sizeof(*job));
	if (!job || !(job->host = strdup(cn->host))) {
		free(job);
		cn->phase = C_RESOLVING;
		conn_lost(cn, "out of memory");
		return;
	}
	job->vk = vk;
	job->conn = cn;
	job->port = cn->port;
	cn->phase = C_RESOLVING;
	cn->job = job;
	if (pthread_create(&job->tid, NULL, resolver_thread, job) != 0) {
		cn->job = NULL;
		free_job(job);
		conn_lost(cn, "cannot start the resolver thread");
	}
}

/* ---- set-up and tear-down (valkey.c: init, stop, destroy) ---- */

int conn_init(struct vk *vk, struct conn *cn, enum conn_kind kind, const char *host, int port,
	      const char *unix_path)
{
	cn->vk = vk;
	cn->kind = kind;
	cn->host = host;
	cn->port = port;
	cn->unix_path = unix_path;
	cn->label = kind == SUB ? "subscriber" : vk->cluster ? "seed" : "command";
	if (kind == SUB) {
		if (rconn_init(&cn->rc, vk, &sub_rc_ops, cn, cn->label) < 0)
			return FANOUT_ENOMEM;
		cn->rc.no_ping = true; /* probe.c proves the path end to end */
	}
	cn->t_connect = vk->host->timer_add(vk->b, on_connect_timeout, cn);
	cn->t_retry = vk->host->timer_add(vk->b, on_retry, cn);
	cn->t_drop = vk->host->timer_add(vk->b, on_drop_timer, cn);
	if (!cn->t_connect || !cn->t_retry || !cn->t_drop)
		return FANOUT_ENOMEM;
	return 0;
}

/* Close without reconnecting (stop): join a resolver, free the context. */
void conn_close(struct conn *cn)
{
	struct vk *vk = cn->vk;

	if (cn->job) {
		/* The host drops its post after stop(): join and free here. */
		pthread_join(cn->job->tid, NULL);
		free_job(cn->job);
		cn->job = NULL;
	}
	if (cn->kind == SUB)
		rconn_close(&cn->rc);
	if (cn->ac) {
		cn->freeing = true;
		redisAsyncFree(cn->ac);
		cn->freeing = false;
		cn->ac = NULL;
		cn->watch = NULL;
	}
	cn->phase = C_IDLE;
	vk->host->timer_disarm(cn->t_connect);
	vk->host->timer_disarm(cn->t_retry);
	vk->host->timer_disarm(cn->t_drop);
}

void conn_free(struct conn *cn)
{
	const struct fanout_host *h = cn->vk ? cn->vk->host : NULL;

	if (!h)
		return;
	if (cn->kind == SUB)
		rconn_free(&cn->rc);
	if (cn->t_connect)
		h->timer_remove(cn->t_connect);
	if (cn->t_retry)
		h->timer_remove(cn->t_retry);
	if (cn->t_drop)
		h->timer_remove(cn->t_drop);
}
