/*
 * vk.h — what the valkey backend's files share: the backend state (struct
 * vk), its two broker connections (struct conn), the channel table (struct
 * chan) and the functions one file calls in another. Internal to
 * plugins/valkey; nothing here crosses the plugin ABI.
 *
 * Files: valkey.c (options, init/start/stop/destroy, up/down state), conn.c
 * (the connections' life: resolve, connect, handshake, backoff; hiredis
 * async on the host loop for the command connection, rconn.c for the
 * subscriber's socket), subs.c
 * (channel table, SUBSCRIBE/UNSUBSCRIBE demand, incoming messages,
 * resubscribe after a reconnect), probe.c (the liveness probe), publish.c
 * (client publishes), redis_addr.c (the url option's parser, shared with
 * fanout-cli), history.c (positions and
 * history through the broker's "fanout" functions), envelope.c (the
 * position envelope of live messages).
 */
#ifndef FANOUT_VALKEY_VK_H
#define FANOUT_VALKEY_VK_H

#include <fanout/plugin.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "rconn.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_TAG "__fanout_probe:"
#define MAX_BATCH 512 /* channels per SUBSCRIBE / UNSUBSCRIBE command */
#define MAX_ADDRS 8
/* Cap on the payload bytes held back while channels wait for their top; past
 * it further messages are dropped (counted as held_overflow): the hub sees
 * the offset jump and repairs it from history. */
#define MAX_HELD_BYTES (8u << 20)

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

struct shard;

struct conn {
	struct vk *vk;
	enum conn_kind kind;
	const char *label;     /* "subscriber" / "command" / "seed" / "shard H:P command" */
	const char *host;      /* the target (borrowed): host name or address, or NULL */
	int port;	       /*   and port */
	const char *unix_path; /*   or a unix socket */
	struct shard *shard;   /* cluster mode: the shard this command connection serves */
	enum conn_phase phase;
	redisAsyncContext *ac; /* CMD: hiredis async */
	struct rconn rc;       /* SUB: a socket read by rconn.c (SUBSCRIBE errors reach us) */
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
	bool readonly;	       /* cluster shard: lost because its node answered READONLY */
	char why[512];	       /* last failure reason */
	char last_logged[640]; /* last failure logged: identical ones are not repeated */
};

struct chan {
	char *name; /* client-visible name */
	struct chan *next;
	bool wanted;	   /* a local client wants it */
	bool confirmed;	   /* subscribe confirmed on the current connection */
	bool sub_queued;   /* SUBSCRIBE to send on the next flush */
	bool unsub_queued; /* UNSUBSCRIBE to send on the next flush */
	bool top_pending;  /* confirmed; waiting for its top before subscribed_at() */
	bool top_wait;	   /* top_pending, to ask once the command connection is ready */
	uint64_t top_seq;  /* tells the answer to the current top read from stale ones */
	struct held *held; /* messages that arrived while top_pending, oldest first */
	struct held **held_tail;
	bool floor_set; /* drop positioned messages up to floor (see emit()) */
	char floor_epoch[65];
	uint64_t floor;
	struct shard *shard;	 /* cluster: the shard it is subscribed on or queued for */
	bool regap;		 /* cluster: gap() once subscribed again */
	bool has_slot;		 /* cluster: slot below is computed */
	uint16_t slot;		 /* cluster: the slot of its broker name */
	const char *regap_why;	 /* static text */
	bool sub_sent;		 /* SUBSCRIBE sent, reply not yet seen */
	bool solo;		 /* its batch was refused: SUBSCRIBE it alone to learn if it is */
	bool refused;		 /* was live; its SUBSCRIBE again was refused: retried */
	bool answered;		 /* host->subscribed() called for the current demand */
	unsigned unsub_inflight; /* UNSUBSCRIBEs sent, replies not yet seen */
	uint64_t sent_ms;
};

/* A message held back while its channel waits for its top (subs.c). */
struct held {
	struct held *next;
	bool positioned;
	uint64_t offset;
	char epoch[65];
	size_t len;
	char data[];
};

struct fcall;
typedef void (*fcall_done_fn)(struct vk *vk, struct fcall *f, redisReply *reply);

/* One FCALL in flight (history.c): its formatted command, kept for one retry. */
struct fcall {
	struct vk *vk;
	fcall_done_fn done; /* reply NULL: the connection went away */
	char *cmd;
	int cmdlen;
	bool retried;
	uint64_t token;	    /* publish / top / history token */
	uint64_t after;	    /* history: the offset asked after */
	char *channel;	    /* subscribe top: the client channel */
	uint64_t seq;	    /* subscribe top: chan->top_seq when asked */
	int slot;	    /* cluster: the slot of its key */
	unsigned redirects; /* cluster: MOVED / ASK followed so far */
	struct fcall *next; /* cluster: parked until the slot map is fresh */
	uint64_t parked_ms; /* cluster: when it was parked */
};

/* Cluster: one shard primary, its two connections and what is in flight. */
struct shard {
	struct vk *vk;
	struct shard *next;
	char ip[INET6_ADDRSTRLEN];
	int port;
	char addr[INET6_ADDRSTRLEN + 8]; /* "ip:port" */
	char cmd_label[96], sub_label[96];
	struct conn cmd;	      /* FCALL / SPUBLISH (conn.c, hiredis async) */
	struct rconn sub;	      /* SSUBSCRIBE (rconn.c) */
	struct fanout_timer *t_retry; /* reconnect backoff of sub */
	unsigned attempt;
	bool penalty;
	uint64_t ro_ms;	       /* when a READONLY answer last made us re-read the map */
	bool in_map;	       /* a primary in the last slot map */
	bool dead;	       /* left the map: freed by the next reap */
	char why[400];	       /* last failure of sub */
	char last_logged[640]; /* identical failures are logged once */
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
	bool cluster;		     /* cluster = yes: conn[CMD] is the seed */
	unsigned cluster_refresh_ms; /* re-read the slot map this often */
	long long history_size, history_ttl_s;
	char hsize[24], httl[24]; /* the same as FCALL arguments */
	bool positioned;	  /* history_size > 0 and the host knows ABI 1.1 */
	char *lib;		  /* the fanout functions library (history.c) */

	struct conn conn[2];

	/* channels */
	struct chan **tab;
	size_t tab_size, nchan;
	struct fanout_timer *t_flush;
	struct fanout_timer *t_confirm; /* subscribe replies overdue */
	struct fanout_timer *t_resub;	/* retry live channels whose resubscribe was refused */

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

	/* cluster (cluster.c) */
	struct shard *shards;
	struct shard **slots; /* CLUSTER_SLOTS owners (NULL: not covered) */
	bool map_ok;	      /* every slot has an owner */
	bool refreshing, refresh_again;
	struct shard *refresh_prefer; /* ask this one next (it knows of a change) */
	const struct conn *map_from;  /* the connection the last map read went to */
	char map_why[400];	      /* why there is no usable map, for /readyz */
	struct fcall *parked;
	struct fanout_timer *t_refresh, *t_reap, *t_park;

	/* state */
	bool started, stopping;
	bool up;
	bool was_up;	    /* the subscriber was ready once: later readiness is a reconnect */
	char down_why[512]; /* cluster: the reason last reported while down */
	bool gap_pending;   /* send gap when the resubscribe completes */
	char refused_logged[400]; /* last SUBSCRIBE refusal logged (not repeated) */
	size_t pending;		  /* in-flight client publishes, top() and history() calls */
	size_t held_bytes;	  /* payload bytes held while channels wait for their top */
	unsigned seed;
};

#define FOR_EACH_CHAN(vk, c, n)                                                                    \
	for (size_t _i = 0; _i < (vk)->tab_size; _i++)                                             \
		for (struct chan *c = (vk)->tab[_i], *n = c ? c->next : NULL; c;                   \
		     c = n, n = c ? c->next : NULL)

/* ---- small helpers ---- */

static inline uint64_t now_ms(struct vk *vk)
{
	return vk->host->now_ms(vk->b);
}

static inline void count(struct vk *vk, const char *ev, uint64_t d)
{
	if (vk->has_count && vk->host->count)
		vk->host->count(vk->b, ev, d);
}

/* A name in the backends' reserved namespace ("__", where the probe lives). */
static inline bool vk_reserved(const char *channel)
{
	return channel[0] == '_' && channel[1] == '_';
}

/* valkey.c */
void vk_log_failure(struct vk *vk, char *last, size_t lastsz, enum fanout_log_level lvl,
		    const char *what);
void vk_update_state(struct vk *vk, const char *reason);

char *vk_broker_name(struct vk *vk, const char *channel, size_t *len);

/* conn.c */
int conn_init(struct vk *vk, struct conn *cn, enum conn_kind kind, const char *host, int port,
	      const char *unix_path);
void conn_start(struct conn *cn);
void conn_ready(struct conn *cn);
void conn_drop_now(struct conn *cn, const char *why);
void conn_drop_later(struct conn *cn, const char *why);
void conn_close(struct conn *cn);
void conn_free(struct conn *cn);

/* subs.c */
int subs_init(struct vk *vk);
void subs_free(struct vk *vk);
void subs_ready(struct vk *vk);
void subs_lost(struct vk *vk);
void subs_reply(struct vk *vk, const redisReply *reply);
int subs_subscribe(void *state, const char *channel);
int subs_unsubscribe(void *state, const char *channel);
void subs_top_done(struct vk *vk, const char *channel, uint64_t seq, int status, const char *epoch,
		   uint64_t top);
void subs_cmd_ready(struct vk *vk);

/* history.c */
int hist_init(struct vk *vk, const char *pub_cmd);
void hist_free(struct vk *vk);
struct fcall *fcall_new(struct vk *vk, fcall_done_fn done);
int fcall_send(struct conn *cn, struct fcall *f, int argc, const char **argv, const size_t *argl);
void fcall_abandon(struct fcall *f);
/* Send f's formatted command again on cn (cluster redirects). 0 or FANOUT_EIO. */
int fcall_resend(struct conn *cn, struct fcall *f);
/* Answer f as if its connection went away (reply NULL) and free it. */
void fcall_fail(struct fcall *f);
/* FCALL fn 1 fanout:{<prefix><channel>} args... <history_size> <ttl> on the
 * command connection (at most 4 args). 0, or a FANOUT_E* (f not sent). */
int fcall_channel(struct vk *vk, struct fcall *f, const char *fn, const char *channel, int nargs,
		  const char *const *args, const size_t *argl);
int hist_parse_pos(const redisReply *r, char *epoch, uint64_t *top, const char **errstr);
int hist_sub_top(struct vk *vk, const char *channel, uint64_t seq);
int hist_top(void *state, const char *channel, uint64_t token);
int hist_history(void *state, const char *channel, const char *epoch, uint64_t after, uint64_t max,
		 uint64_t token);

/* subs.c, for cluster.c */
struct chan *subs_chan_of(struct vk *vk, const char *full, size_t len);
void subs_message(struct vk *vk, const char *ch, size_t chlen, const char *payload, size_t plen);
void subs_confirmed(struct vk *vk, struct chan *c);
void subs_unsub_reply(struct vk *vk, struct chan *c);
bool subs_chan_void(struct vk *vk, struct chan *c);
void subs_fail(struct vk *vk, struct chan *c);
void subs_refused(struct vk *vk, struct chan *c, size_t nbatch, const char *err);

/* cluster.c */
#define CLUSTER_SLOTS 16384
/* A READONLY answer re-reads the slot map at most once per shard this often. */
#define CLUSTER_READONLY_MS 200
unsigned cluster_slot(const char *key, size_t len);
int cluster_init(struct vk *vk);
void cluster_start(struct vk *vk);
void cluster_stop(struct vk *vk);
void cluster_free(struct vk *vk);
void cluster_seed_ready(struct vk *vk);
void cluster_refresh(struct vk *vk);
void cluster_refresh_via(struct vk *vk, struct conn *prefer);
void cluster_cmd_lost(struct shard *sh);
bool cluster_readonly(struct conn *from, const redisReply *r);
void cluster_flush(struct vk *vk);
bool cluster_up(struct vk *vk, char *why, size_t whylen);
struct conn *cluster_conn_for(struct vk *vk, const char *key, size_t len, int *slot);
bool cluster_redirect(struct fcall *f, const redisReply *r, struct conn *from);
void cluster_park_release(struct vk *vk);

/* probe.c */
int probe_init(struct vk *vk);
void probe_free(struct vk *vk);
void probe_receive(struct vk *vk, const char *payload, size_t len);

/* publish.c */
int pub_publish(void *state, const char *channel, const void *data, size_t len, uint64_t token);

#endif /* FANOUT_VALKEY_VK_H */
