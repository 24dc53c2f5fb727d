/*
 * valkey.c — the valkey backend: Valkey/Redis pub/sub over hiredis async.
 *
 * Owns two async connections to one broker: the subscriber (SUBSCRIBE /
 * UNSUBSCRIBE, incoming messages, the probe channel) and the command
 * connection (PUBLISH for client publishes and for the probe, PING). Both are
 * driven by the host's fd watches through a small hiredis adapter
 * (addRead/delRead/addWrite/delWrite/cleanup → watch_set/watch_remove) and by
 * host timers: connect timeout, reconnect backoff (exponential with full
 * jitter), the probe interval/timeout, a 0 ms "flush" timer that batches the
 * subscribes and unsubscribes of one loop turn into one command, and a 0 ms
 * "drop" timer per connection so an async context is never freed inside its
 * own callback.
 *
 * Threads: everything runs on the host's loop thread, except a short-lived
 * resolver thread per connect attempt when the broker is given by host name:
 * it runs getaddrinfo() and hands the result back with host->post(). stop()
 * joins a resolver still running (bounded by the resolver's own timeout).
 *
 * Memory: the state (struct vk), the channel table (a chained hash of
 * struct chan, one per channel a local client wants), one struct pub_req per
 * in-flight PUBLISH (capped by max_pending, freed in its reply callback,
 * which hiredis also runs with a NULL reply when the context goes away), and
 * one struct resolve_job per resolver thread (freed on the loop after join).
 * destroy() frees everything.
 */
#include <fanout/plugin.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define VK_VERSION "0.1.0"
#define PROBE_TAG  "__fanout_probe:"
#define MAX_BATCH  512 /* channels per SUBSCRIBE / UNSUBSCRIBE command */
#define MAX_ADDRS  8

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
    FANOUT_OPTION_INT("max_pending", "10000", 1, 100000000,
		      "cap on in-flight publishes; over it publish() fails at once"),
    FANOUT_OPTION_END,
};

/* ---- types ---- */

enum conn_kind { SUB = 0, CMD = 1 };

enum conn_phase {
	C_IDLE,	      /* nothing; a retry timer may be armed */
	C_RESOLVING,  /* resolver thread running */
	C_CONNECTING, /* TCP/unix connect in progress */
	C_HANDSHAKE,  /* AUTH / SELECT / first PING or SUBSCRIBE sent */
	C_READY,
};

struct vk;

struct resolve_job {
	struct vk *vk;
	struct conn *conn;
	pthread_t tid;
	char *host;
	int port;
	int err; /* getaddrinfo code, 0 ok */
	int naddr;
	char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
};

struct conn {
	struct vk *vk;
	enum conn_kind kind;
	const char *label; /* "subscriber" / "command" */
	enum conn_phase phase;
	redisAsyncContext *ac;
	struct fanout_watch *watch;
	unsigned events;
	struct fanout_timer *t_connect; /* connect + handshake deadline */
	struct fanout_timer *t_retry;	/* reconnect backoff */
	struct fanout_timer *t_drop;	/* deferred free of ac */
	struct resolve_job *job;
	unsigned attempt;      /* failed attempts since last READY */
	unsigned addr_rr;      /* which resolved address to try */
	bool freeing;	       /* inside our own redisAsyncFree */
	bool penalty;	       /* auth failure: next delay at the cap */
	char why[512];	       /* last failure reason */
	char last_logged[640]; /* last failure logged: identical ones are not repeated */
};

struct chan {
	char *name; /* client-visible name */
	struct chan *next;
	bool wanted;		 /* a local client wants it */
	bool confirmed;		 /* subscribe confirmed on the current connection */
	bool sub_queued;	 /* SUBSCRIBE to send on the next flush */
	bool unsub_queued;	 /* UNSUBSCRIBE to send on the next flush */
	bool sub_sent;		 /* SUBSCRIBE sent, reply not yet seen */
	bool answered;		 /* host->subscribed() called for the current demand */
	unsigned unsub_inflight; /* UNSUBSCRIBEs sent, replies not yet seen */
	uint64_t sent_ms;
};

struct pub_req {
	struct vk *vk;
	uint64_t token;
	bool probe;
};

struct vk {
	const struct fanout_host *host;
	struct fanout_backend *b;

	/* config */
	char *host_name; /* NULL with unix_path */
	int port;
	char *unix_path;
	char *username, *password;
	long long db;
	char *prefix;
	size_t prefix_len;
	char target[300]; /* "host:port" or "unix:/path", for logs */
	bool has_count;	  /* the host's table is new enough to have count() */
	unsigned connect_timeout_ms, reconnect_min_ms, reconnect_max_ms;
	unsigned probe_interval_ms, probe_timeout_ms;
	size_t max_pending;

	struct conn conn[2];

	/* channels */
	struct chan **tab;
	size_t tab_size, nchan;
	struct fanout_timer *t_flush;
	struct fanout_timer *t_confirm; /* subscribe replies overdue */

	/* probe */
	char *probe_chan; /* full broker channel name */
	size_t probe_chan_len;
	bool probe_confirmed;
	bool probe_inflight;
	bool probe_answered; /* the PUBLISH of the current probe got its reply */
	uint64_t probe_seq;
	uint64_t probe_sent_ms;
	struct fanout_timer *t_probe;	      /* next probe */
	struct fanout_timer *t_probe_timeout; /* current probe overdue */

	/* state */
	bool started, stopping;
	bool up;
	bool was_up;	  /* the subscriber was ready once: later readiness is a reconnect */
	bool gap_pending; /* send gap when the resubscribe completes */
	size_t pending;	  /* in-flight client publishes */
	unsigned seed;
};

/* ---- small helpers ---- */

static uint64_t now_ms(struct vk *vk)
{
	return vk->host->now_ms(vk->b);
}

static void count(struct vk *vk, const char *ev, uint64_t d)
{
	if (vk->has_count && vk->host->count)
		vk->host->count(vk->b, ev, d);
}

/*
 * Log a failure of one connection once: the same reason again (every retry
 * of a broker that stays down) goes to debug only. Reset when it is ready.
 */
static void log_failure(struct vk *vk, char *last, size_t lastsz, enum fanout_log_level lvl,
			const char *what)
{
	if (strcmp(last, what) == 0) {
		vk->host->log(vk->b, FANOUT_LOG_DEBUG, "%s (again)", what);
		return;
	}
	snprintf(last, lastsz, "%s", what);
	vk->host->log(vk->b, lvl, "%s", what);
}

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct chan *chan_find(struct vk *vk, const char *name)
{
	for (struct chan *c = vk->tab[hash(name) & (vk->tab_size - 1)]; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static int chan_grow(struct vk *vk)
{
	size_t ns = vk->tab_size * 2;
	struct chan **nt = calloc(ns, sizeof(*nt));

	if (!nt)
		return FANOUT_ENOMEM;
	for (size_t i = 0; i < vk->tab_size; i++) {
		struct chan *c = vk->tab[i];
		while (c) {
			struct chan *n = c->next;
			size_t h = hash(c->name) & (ns - 1);
			c->next = nt[h];
			nt[h] = c;
			c = n;
		}
	}
	free(vk->tab);
	vk->tab = nt;
	vk->tab_size = ns;
	return 0;
}

static struct chan *chan_add(struct vk *vk, const char *name)
{
	struct chan *c;
	size_t h;

	if (vk->nchan + 1 > vk->tab_size && chan_grow(vk) < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->name = strdup(name);
	if (!c->name) {
		free(c);
		return NULL;
	}
	h = hash(name) & (vk->tab_size - 1);
	c->next = vk->tab[h];
	vk->tab[h] = c;
	vk->nchan++;
	return c;
}

static void chan_del(struct vk *vk, struct chan *dead)
{
	for (struct chan **pc = &vk->tab[hash(dead->name) & (vk->tab_size - 1)]; *pc;
	     pc = &(*pc)->next) {
		if (*pc == dead) {
			*pc = dead->next;
			free(dead->name);
			free(dead);
			vk->nchan--;
			return;
		}
	}
}

/* A channel entry with no demand and nothing in flight can go. */
static void chan_maybe_free(struct vk *vk, struct chan *c)
{
	if (!c->wanted && !c->sub_sent && !c->unsub_inflight && !c->sub_queued && !c->unsub_queued)
		chan_del(vk, c);
}

#define FOR_EACH_CHAN(vk, c, n)                                                                    \
	for (size_t _i = 0; _i < (vk)->tab_size; _i++)                                             \
		for (struct chan *c = (vk)->tab[_i], *n = c ? c->next : NULL; c;                   \
		     c = n, n = c ? c->next : NULL)

/* ---- state ---- */

static bool all_confirmed(struct vk *vk)
{
	FOR_EACH_CHAN(vk, c, n)
	{
		if (c->wanted && !c->confirmed)
			return false;
	}
	return true;
}

/*
 * Recompute UP/DOWN. UP: both connections ready and the probe channel
 * subscribed. Each change is reported and logged once.
 */
static void update_state(struct vk *vk, const char *reason)
{
	bool up =
	    vk->conn[SUB].phase == C_READY && vk->conn[CMD].phase == C_READY && vk->probe_confirmed;

	if (up == vk->up)
		return;
	vk->up = up;
	if (up) {
		vk->host->log(vk->b, FANOUT_LOG_INFO, "up: connected to %s", vk->target);
		vk->host->backend_state(vk->b, FANOUT_UP, "connected");
	} else {
		vk->host->log(vk->b, FANOUT_LOG_WARN, "down: %s", reason);
		vk->host->backend_state(vk->b, FANOUT_DOWN, reason);
	}
}

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

static void conn_start(struct conn *cn);
static void sub_ready(struct vk *vk);
static void flush_channels(struct vk *vk);

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
	if (cn->kind == SUB) {
		vk->probe_confirmed = false;
		vk->probe_inflight = false;
		vk->host->timer_disarm(vk->t_probe_timeout);
		vk->host->timer_disarm(vk->t_confirm);
		FOR_EACH_CHAN(vk, c, n)
		{
			/* What was subscribed or in flight is void on a new connection. */
			c->confirmed = false;
			c->sub_sent = false;
			c->unsub_inflight = 0;
			c->unsub_queued = false;
			c->sub_queued = c->wanted;
			if (!c->wanted)
				chan_del(vk, c);
		}
		if (vk->was_up)
			vk->gap_pending = true;
	}
	{
		char msg[640];
		snprintf(msg, sizeof(msg), "%s connection %s: %s", cn->label,
			 was_ready ? "lost" : "failed", why);
		if (!vk->stopping)
			log_failure(vk, cn->last_logged, sizeof(cn->last_logged),
				    cn->penalty ? FANOUT_LOG_ERR : FANOUT_LOG_WARN, msg);
		if (was_ready)
			count(vk, cn->kind == SUB ? "sub_disconnects" : "cmd_disconnects", 1);
		update_state(vk, msg);
	}
	if (vk->stopping)
		return;
	cn->attempt++;
	vk->host->timer_arm(cn->t_retry, backoff_ms(cn));
}

/* Free our context now (never called from inside one of its callbacks). */
static void conn_drop_now(struct conn *cn, const char *why)
{
	redisAsyncContext *ac = cn->ac;

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
static void conn_drop_later(struct conn *cn, const char *why)
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

static void conn_ready(struct conn *cn)
{
	struct vk *vk = cn->vk;

	cn->phase = C_READY;
	cn->penalty = false;
	cn->attempt = 0;
	cn->last_logged[0] = 0;
	update_state(vk, "");
}

/* Reply of a handshake step: AUTH, SELECT, PING (command connection). */
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
	if (step == 2 && cn->kind == CMD) {
		/* A PING proves the broker answers (a stopped broker accepts TCP). */
		const char *argv[] = {"PING"};
		redisAsyncCommandArgv(cn->ac, on_handshake_reply, (void *)(intptr_t)2, 1, argv,
				      NULL);
		return;
	}
	if (cn->kind == CMD) {
		cn->vk->host->timer_disarm(cn->t_connect);
		conn_ready(cn);
	} else {
		/* The subscriber is ready when its SUBSCRIBE of the probe channel is
		 * confirmed (see on_sub_reply); the connect timer runs until then. */
		sub_ready(vk);
	}
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

static void conn_connect_to(struct conn *cn, const char *ip)
{
	struct vk *vk = cn->vk;
	redisAsyncContext *ac;
	char why[300];

	ac = vk->unix_path ? redisAsyncConnectUnix(vk->unix_path) : redisAsyncConnect(ip, vk->port);
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

static void conn_start(struct conn *cn)
{
	struct vk *vk = cn->vk;
	struct resolve_job *job;

	if (vk->stopping || cn->phase != C_IDLE)
		return;
	if (vk->unix_path || is_numeric_host(vk->host_name)) {
		conn_connect_to(cn, vk->host_name);
		return;
	}
	/* Resolve off the loop, again on every attempt (addresses change). */
	job = calloc(1, sizeof(*job));
	if (!job || !(job->host = strdup(vk->host_name))) {
		free(job);
		cn->phase = C_RESOLVING;
		conn_lost(cn, "out of memory");
		return;
	}
	job->vk = vk;
	job->conn = cn;
	job->port = vk->port;
	cn->phase = C_RESOLVING;
	cn->job = job;
	if (pthread_create(&job->tid, NULL, resolver_thread, job) != 0) {
		cn->job = NULL;
		free_job(job);
		conn_lost(cn, "cannot start the resolver thread");
	}
}

/* ---- subscriber side ---- */

static void send_probe(struct vk *vk);

static void on_confirm_timeout(struct fanout_timer *t, void *arg)
{
	struct vk *vk = arg;
	uint64_t now = now_ms(vk);
	bool more = false;

	(void)t;
	/*
	 * hiredis 0.14 passes an error reply to a SUBSCRIBE (e.g. an ACL
	 * -NOPERM on that channel) to no callback, so a subscribe that stays
	 * unanswered while the connection is alive counts as refused.
	 */
	if (vk->conn[SUB].phase != C_READY)
		return;
	FOR_EACH_CHAN(vk, c, n)
	{
		if (!c->sub_sent)
			continue;
		if (now - c->sent_ms < vk->probe_timeout_ms) {
			more = true;
			continue;
		}
		vk->host->log(vk->b, FANOUT_LOG_WARN,
			      "SUBSCRIBE %s%s not confirmed within %u ms (refused?)", vk->prefix,
			      c->name, vk->probe_timeout_ms);
		count(vk, "subscribe_errors", 1);
		c->sub_sent = false;
		if (c->wanted && !c->answered) {
			c->answered = true;
			c->wanted = false;
			vk->host->subscribed(vk->b, c->name, 0);
		}
		/* In case it does arrive later. */
		c->unsub_queued = !c->wanted;
		vk->host->timer_arm(vk->t_flush, 0);
	}
	if (more)
		vk->host->timer_arm(vk->t_confirm, vk->probe_timeout_ms / 2 + 1);
}

static void on_message(struct vk *vk, redisReply *ch, redisReply *payload)
{
	const char *name;

	if (ch->len < vk->prefix_len || memcmp(ch->str, vk->prefix, vk->prefix_len) != 0)
		return;
	if (ch->len == vk->probe_chan_len && memcmp(ch->str, vk->probe_chan, ch->len) == 0) {
		char want[32];
		snprintf(want, sizeof(want), "%llu", (unsigned long long)vk->probe_seq);
		if (vk->probe_inflight && payload->len == strlen(want) &&
		    memcmp(payload->str, want, payload->len) == 0) {
			vk->probe_inflight = false;
			vk->host->timer_disarm(vk->t_probe_timeout);
			if (vk->probe_interval_ms)
				vk->host->timer_arm(vk->t_probe, vk->probe_interval_ms);
		}
		return;
	}
	name = ch->str + vk->prefix_len;
	if (strlen(name) != ch->len - vk->prefix_len)
		return; /* a NUL inside the channel name: not one of ours */
	{
		struct chan *c = chan_find(vk, name);
		if (!c || !c->wanted)
			return; /* late message for a channel we are leaving */
	}
	count(vk, "messages", 1);
	vk->host->deliver(vk->b, name, payload->str, payload->len);
}

static void maybe_finish_resubscribe(struct vk *vk)
{
	if (!vk->gap_pending || !vk->probe_confirmed || !all_confirmed(vk))
		return;
	vk->gap_pending = false;
	count(vk, "reconnects", 1);
	vk->host->gap(vk->b, NULL, "backend reconnected");
}

static void on_sub_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct conn *cn = ac->data;
	redisReply *reply = r;
	struct vk *vk;
	const char *kind;

	(void)priv;
	if (!cn || !reply || cn->ac != ac)
		return;
	vk = cn->vk;
	if (reply->type == REDIS_REPLY_ERROR) {
		vk->host->log(vk->b, FANOUT_LOG_WARN, "subscriber: error reply: %s", reply->str);
		count(vk, "error_replies", 1);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	kind = reply->element[0]->str;
	if (strcasecmp(kind, "message") == 0) {
		if (reply->element[2]->type == REDIS_REPLY_STRING)
			on_message(vk, reply->element[1], reply->element[2]);
		return;
	}
	if (strcasecmp(kind, "subscribe") == 0) {
		const char *full = reply->element[1]->str;
		struct chan *c;

		if (strcmp(full, vk->probe_chan) == 0) {
			if (!vk->probe_confirmed) {
				vk->probe_confirmed = true;
				vk->host->timer_disarm(cn->t_connect);
				conn_ready(cn);
				vk->was_up = true;
				if (vk->probe_interval_ms && !vk->probe_inflight)
					vk->host->timer_arm(vk->t_probe, vk->probe_interval_ms);
				maybe_finish_resubscribe(vk);
			}
			return;
		}
		if (strncmp(full, vk->prefix, vk->prefix_len) != 0)
			return;
		c = chan_find(vk, full + vk->prefix_len);
		if (!c)
			return;
		c->sub_sent = false;
		if (c->wanted) {
			c->confirmed = true;
			if (!c->answered) {
				c->answered = true;
				vk->host->subscribed(vk->b, c->name, 1);
			}
		} else {
			/* Demand left while the SUBSCRIBE was in flight. */
			c->unsub_queued = true;
			vk->host->timer_arm(vk->t_flush, 0);
		}
		maybe_finish_resubscribe(vk);
		return;
	}
	if (strcasecmp(kind, "unsubscribe") == 0) {
		const char *full = reply->element[1]->str;
		struct chan *c;

		if (strncmp(full, vk->prefix, vk->prefix_len) != 0)
			return;
		c = chan_find(vk, full + vk->prefix_len);
		if (!c)
			return;
		if (c->unsub_inflight)
			c->unsub_inflight--;
		if (c->wanted && !c->unsub_inflight) {
			/*
			 * Demand came back while the UNSUBSCRIBE was in flight;
			 * hiredis just dropped the channel's callback, so subscribe
			 * again only now (see subscribe()).
			 */
			c->confirmed = false;
			c->sub_queued = true;
			vk->host->timer_arm(vk->t_flush, 0);
		}
		chan_maybe_free(vk, c);
	}
}

/* Send SUBSCRIBE/UNSUBSCRIBE for n broker channels in one command. */
static int send_batch(struct vk *vk, const char *cmd, const char **names, size_t n)
{
	const char **argv = calloc(n + 1, sizeof(*argv));
	char **full = calloc(n, sizeof(*full));
	int rc = FANOUT_ENOMEM;

	if (!argv || !full)
		goto out;
	argv[0] = cmd;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		full[i] = malloc(vk->prefix_len + l + 1);
		if (!full[i])
			goto out;
		memcpy(full[i], vk->prefix, vk->prefix_len);
		memcpy(full[i] + vk->prefix_len, names[i], l + 1);
		argv[i + 1] = full[i];
	}
	rc = redisAsyncCommandArgv(vk->conn[SUB].ac, on_sub_reply, NULL, (int)n + 1, argv, NULL) ==
		     REDIS_OK
		 ? 0
		 : FANOUT_EIO;
out:
	if (full)
		for (size_t i = 0; i < n; i++)
			free(full[i]);
	free(full);
	free(argv);
	return rc;
}

/* Send every queued SUBSCRIBE / UNSUBSCRIBE, batched. Only once the
 * subscriber is ready (probe channel confirmed): before that they wait. */
static void flush_channels(struct vk *vk)
{
	const char *names[MAX_BATCH];
	struct chan *chans[MAX_BATCH];
	size_t n;
	struct conn *cn = &vk->conn[SUB];
	uint64_t now;

	if (!cn->ac || !vk->probe_confirmed)
		return;
	now = now_ms(vk);
	for (int pass = 0; pass < 2; pass++) {
		bool sub = pass == 0;
		n = 0;
		FOR_EACH_CHAN(vk, c, nx)
		{
			if (sub ? !c->sub_queued : !c->unsub_queued)
				continue;
			if (sub && c->unsub_inflight)
				continue; /* resubscribed when the unsubscribe reply arrives */
			names[n] = c->name;
			chans[n++] = c;
			if (n == MAX_BATCH) {
				if (send_batch(vk, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", names, n) < 0)
					goto fail;
				for (size_t i = 0; i < n; i++) {
					if (sub) {
						chans[i]->sub_queued = false;
						chans[i]->sub_sent = true;
						chans[i]->sent_ms = now;
					} else {
						chans[i]->unsub_queued = false;
						chans[i]->unsub_inflight++;
					}
				}
				n = 0;
			}
		}
		if (n) {
			if (send_batch(vk, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", names, n) < 0)
				goto fail;
			for (size_t i = 0; i < n; i++) {
				if (sub) {
					chans[i]->sub_queued = false;
					chans[i]->sub_sent = true;
					chans[i]->sent_ms = now;
				} else {
					chans[i]->unsub_queued = false;
					chans[i]->unsub_inflight++;
				}
			}
		}
	}
	vk->host->timer_arm(vk->t_confirm, vk->probe_timeout_ms);
	return;
fail:
	vk->host->log(vk->b, FANOUT_LOG_ERR, "cannot queue a (UN)SUBSCRIBE command");
	conn_drop_later(cn, "cannot queue a command");
}

static void on_flush(struct fanout_timer *t, void *arg)
{
	(void)t;
	flush_channels(arg);
}

/* The subscriber passed AUTH/SELECT: subscribe the probe channel, then the rest. */
static void sub_ready(struct vk *vk)
{
	struct conn *cn = &vk->conn[SUB];
	const char *argv[] = {"SUBSCRIBE", vk->probe_chan};

	if (redisAsyncCommandArgv(cn->ac, on_sub_reply, NULL, 2, argv, NULL) != REDIS_OK)
		conn_drop_later(cn, "cannot queue SUBSCRIBE");
	/* The wanted channels go out in the same write, right behind it. */
	vk->probe_confirmed = true; /* let flush_channels queue them */
	flush_channels(vk);
	vk->probe_confirmed = false;
}

/* ---- probe ---- */

static void on_probe_publish_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct pub_req *req = priv;
	struct vk *vk = req->vk;
	redisReply *reply = r;

	(void)ac;
	if (reply && reply->type != REDIS_REPLY_ERROR)
		vk->probe_answered = true;
	free(req);
}

static void send_probe(struct vk *vk)
{
	struct conn *cmd = &vk->conn[CMD];
	struct pub_req *req;
	char payload[32];
	const char *argv[3];

	if (vk->conn[SUB].phase != C_READY || !vk->probe_confirmed)
		return;
	if (cmd->phase != C_READY) {
		/* Cannot probe without the command connection; try again later. */
		vk->host->timer_arm(vk->t_probe, vk->probe_interval_ms);
		return;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		return;
	req->vk = vk;
	req->probe = true;
	vk->probe_seq++;
	snprintf(payload, sizeof(payload), "%llu", (unsigned long long)vk->probe_seq);
	argv[0] = "PUBLISH";
	argv[1] = vk->probe_chan;
	argv[2] = payload;
	if (redisAsyncCommandArgv(cmd->ac, on_probe_publish_reply, req, 3, argv, NULL) !=
	    REDIS_OK) {
		free(req);
		return;
	}
	vk->probe_inflight = true;
	vk->probe_answered = false;
	vk->probe_sent_ms = now_ms(vk);
	vk->host->timer_arm(vk->t_probe_timeout, vk->probe_timeout_ms);
}

static void on_probe(struct fanout_timer *t, void *arg)
{
	(void)t;
	send_probe(arg);
}

static void on_probe_timeout(struct fanout_timer *t, void *arg)
{
	struct vk *vk = arg;
	char why[128];

	(void)t;
	if (!vk->probe_inflight)
		return;
	vk->probe_inflight = false;
	count(vk, "probe_timeouts", 1);
	snprintf(why, sizeof(why), "probe not back within %u ms", vk->probe_timeout_ms);
	/* The command connection answered the PUBLISH? Then only the subscriber is dead. */
	if (!vk->probe_answered && vk->conn[CMD].ac)
		conn_drop_now(&vk->conn[CMD], why);
	conn_drop_now(&vk->conn[SUB], why);
}

/* ---- publish ---- */

static void on_publish_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct pub_req *req = priv;
	struct vk *vk = req->vk;
	redisReply *reply = r;
	int ok = reply && reply->type == REDIS_REPLY_INTEGER;

	(void)ac;
	vk->pending--;
	if (!ok) {
		count(vk, "publish_errors", 1);
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			char msg[300];
			snprintf(msg, sizeof(msg), "PUBLISH refused: %s", reply->str);
			log_failure(vk, vk->conn[CMD].last_logged,
				    sizeof(vk->conn[CMD].last_logged), FANOUT_LOG_WARN, msg);
		}
	}
	if (!vk->stopping)
		vk->host->published(vk->b, req->token, ok);
	free(req);
}

static int vk_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct vk *vk = state;
	struct conn *cn = &vk->conn[CMD];
	struct pub_req *req;
	char *full;
	const char *argv[3];
	size_t argl[3];
	size_t cl = strlen(channel);
	int rc;

	if (vk->pending >= vk->max_pending) {
		count(vk, "publish_overflow", 1);
		return FANOUT_EUNAVAIL;
	}
	if (cn->phase != C_READY) {
		count(vk, "publish_unavailable", 1);
		vk->host->published(vk->b, token, 0);
		return 0;
	}
	req = calloc(1, sizeof(*req));
	full = malloc(vk->prefix_len + cl + 1);
	if (!req || !full) {
		free(req);
		free(full);
		return FANOUT_ENOMEM;
	}
	memcpy(full, vk->prefix, vk->prefix_len);
	memcpy(full + vk->prefix_len, channel, cl + 1);
	req->vk = vk;
	req->token = token;
	argv[0] = "PUBLISH";
	argl[0] = 7;
	argv[1] = full;
	argl[1] = vk->prefix_len + cl;
	argv[2] = data ? data : "";
	argl[2] = len;
	rc = redisAsyncCommandArgv(cn->ac, on_publish_reply, req, 3, argv, argl);
	free(full);
	if (rc != REDIS_OK) {
		free(req);
		count(vk, "publish_errors", 1);
		vk->host->published(vk->b, token, 0);
		return 0;
	}
	vk->pending++;
	return 0;
}

/* ---- demand ---- */

static int vk_subscribe(void *state, const char *channel)
{
	struct vk *vk = state;
	struct chan *c = chan_find(vk, channel);

	if (!c && !(c = chan_add(vk, channel)))
		return FANOUT_ENOMEM;
	if (c->wanted && c->confirmed) {
		vk->host->subscribed(vk->b, channel, 1);
		return 0;
	}
	c->wanted = true;
	c->answered = false;
	if (c->unsub_queued) {
		/* Left and came back within one loop turn: still subscribed. */
		c->unsub_queued = false;
		if (c->confirmed) {
			c->answered = true;
			vk->host->subscribed(vk->b, channel, 1);
			return 0;
		}
	}
	if (!c->sub_sent && !c->confirmed)
		c->sub_queued = true;
	vk->host->timer_arm(vk->t_flush, 0);
	return 0;
}

static int vk_unsubscribe(void *state, const char *channel)
{
	struct vk *vk = state;
	struct chan *c = chan_find(vk, channel);

	if (!c || !c->wanted)
		return 0;
	c->wanted = false;
	c->sub_queued = false;
	if (c->confirmed) {
		c->confirmed = false;
		c->unsub_queued = true;
		vk->host->timer_arm(vk->t_flush, 0);
	}
	/* A SUBSCRIBE in flight is undone when its reply arrives. */
	chan_maybe_free(vk, c);
	return 0;
}

/* ---- url and options ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Copy [s, s+n) percent-decoded into a new string. */
static char *pct_dup(const char *s, size_t n)
{
	char *d = malloc(n + 1), *o = d;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return d;
}

static int parse_url(struct vk *vk, const char *url, char *err, size_t errlen)
{
	const char *p, *at, *slash, *hostend, *colon;

	if (strncmp(url, "unix://", 7) == 0) {
		if (url[7] != '/') {
			snprintf(err, errlen, "url %s: unix:// needs an absolute path", url);
			return FANOUT_EINVAL;
		}
		vk->unix_path = strdup(url + 7);
		return vk->unix_path ? 0 : FANOUT_ENOMEM;
	}
	if (strncmp(url, "redis://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "valkey://", 9) == 0)
		p = url + 9;
	else {
		snprintf(err, errlen, "url %s: expected redis://... or unix:///path", url);
		return FANOUT_EINVAL;
	}
	slash = strchr(p, '/');
	at = memrchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
	if (at) {
		const char *c = memchr(p, ':', (size_t)(at - p));
		if (c) {
			if (c > p)
				vk->username = pct_dup(p, (size_t)(c - p));
			vk->password = pct_dup(c + 1, (size_t)(at - c - 1));
		} else if (at > p) {
			/* redis://secret@host: a lone token is the password */
			vk->password = pct_dup(p, (size_t)(at - p));
		}
		p = at + 1;
	}
	hostend = slash ? slash : p + strlen(p);
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hostend - p));
		if (!rb) {
			snprintf(err, errlen, "url %s: unclosed [", url);
			return FANOUT_EINVAL;
		}
		vk->host_name = strndup(p + 1, (size_t)(rb - p - 1));
		colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hostend - p));
		vk->host_name = strndup(p, (size_t)((colon ? colon : hostend) - p));
	}
	if (!vk->host_name)
		return FANOUT_ENOMEM;
	if (colon) {
		char *end;
		long v = strtol(colon + 1, &end, 10);
		if (end != hostend || v < 1 || v > 65535) {
			snprintf(err, errlen, "url %s: bad port", url);
			return FANOUT_EINVAL;
		}
		vk->port = (int)v;
	}
	if (slash && slash[1]) {
		char *end;
		long long v = strtoll(slash + 1, &end, 10);
		if (*end || v < 0) {
			snprintf(err, errlen, "url %s: bad database number", url);
			return FANOUT_EINVAL;
		}
		vk->db = v;
	}
	return 0;
}

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
	vk->tab_size = 64;
	vk->tab = calloc(vk->tab_size, sizeof(*vk->tab));
	if (!vk->tab)
		goto fail;
	vk->has_count =
	    host->struct_size >= offsetof(struct fanout_host, count) + sizeof(host->count);
	rc = parse_url(vk, v[O_URL].str ? v[O_URL].str : "redis://127.0.0.1:6379/0", err,
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

	for (int k = 0; k < 2; k++) {
		struct conn *cn = &vk->conn[k];
		cn->vk = vk;
		cn->kind = (enum conn_kind)k;
		cn->label = k == SUB ? "subscriber" : "command";
		cn->t_connect = host->timer_add(b, on_connect_timeout, cn);
		cn->t_retry = host->timer_add(b, on_retry, cn);
		cn->t_drop = host->timer_add(b, on_drop_timer, cn);
		if (!cn->t_connect || !cn->t_retry || !cn->t_drop)
			goto fail;
	}
	vk->t_flush = host->timer_add(b, on_flush, vk);
	vk->t_confirm = host->timer_add(b, on_confirm_timeout, vk);
	vk->t_probe = host->timer_add(b, on_probe, vk);
	vk->t_probe_timeout = host->timer_add(b, on_probe_timeout, vk);
	if (!vk->t_flush || !vk->t_confirm || !vk->t_probe || !vk->t_probe_timeout)
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
	for (int k = 0; k < 2; k++) {
		struct conn *cn = &vk->conn[k];
		if (cn->job) {
			/* The host drops its post after stop(): join and free here. */
			pthread_join(cn->job->tid, NULL);
			free_job(cn->job);
			cn->job = NULL;
		}
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
	vk->host->timer_disarm(vk->t_flush);
	vk->host->timer_disarm(vk->t_confirm);
	vk->host->timer_disarm(vk->t_probe);
	vk->host->timer_disarm(vk->t_probe_timeout);
}

static void vk_destroy(void *state)
{
	struct vk *vk = state;
	const struct fanout_host *h;

	if (!vk)
		return;
	vk_stop(vk);
	h = vk->host;
	for (int k = 0; k < 2; k++) {
		struct conn *cn = &vk->conn[k];
		if (cn->t_connect)
			h->timer_remove(cn->t_connect);
		if (cn->t_retry)
			h->timer_remove(cn->t_retry);
		if (cn->t_drop)
			h->timer_remove(cn->t_drop);
	}
	if (vk->t_flush)
		h->timer_remove(vk->t_flush);
	if (vk->t_confirm)
		h->timer_remove(vk->t_confirm);
	if (vk->t_probe)
		h->timer_remove(vk->t_probe);
	if (vk->t_probe_timeout)
		h->timer_remove(vk->t_probe_timeout);
	if (vk->tab) {
		FOR_EACH_CHAN(vk, c, n)
		{
			free(c->name);
			free(c);
		}
	}
	free(vk->tab);
	free(vk->host_name);
	free(vk->unix_path);
	free(vk->username);
	if (vk->password) {
		memset(vk->password, 0, strlen(vk->password));
		free(vk->password);
	}
	free(vk->prefix);
	free(vk->probe_chan);
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
    .subscribe = vk_subscribe,
    .unsubscribe = vk_unsubscribe,
    .publish = vk_publish,
    .stop = vk_stop,
    .destroy = vk_destroy,
};
