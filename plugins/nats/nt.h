/*
 * nt.h — what the nats backend's files share. Internal to plugins/nats;
 * nothing here crosses the plugin ABI.
 *
 * THREADS. libnats runs threads of its own (socket reader, flusher, timers,
 * message delivery, connection callbacks), and its useful calls block (a
 * flush is a PING/PONG round trip, a JetStream request waits for its
 * reply). So the backend never calls libnats on fanoutd's loop thread:
 *
 *   loop thread (nats.c)    the plugin ops; the channel table; every host
 *                           call. Hands work to the worker as commands.
 *   worker thread (worker.c, js.c)
 *                           the one thread that calls libnats: connect,
 *                           SUB/UNSUB + flush (the confirmation), publish,
 *                           JetStream requests. Owns the natsConnection and
 *                           its subscriptions.
 *   libnats threads         only append events (messages, acknowledgements,
 *                           connection state) to the inbound queue.
 *
 * Results reach the loop only through the inbound queue: whoever appends to
 * an empty queue calls host->post() once; the loop drains the whole queue
 * in one callback (nt_drain). Both queues are a mutex-protected list; the
 * inbound one is capped in bytes (inbound_queue_bytes: past it messages are
 * dropped, counted, and every channel gets a gap).
 */
#ifndef FANOUT_NATS_NT_H
#define FANOUT_NATS_NT_H

#include <fanout/plugin.h>

#include <nats/nats.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

#define NT_EPOCH_MAX 65

/* ---- a small string-keyed hash table (one per thread that uses it) ---- */

struct ntab_ent {
	struct ntab_ent *next;
	char *key;
	void *val;
};

struct ntab {
	struct ntab_ent **slot;
	size_t size, n;
};

void *ntab_get(struct ntab *t, const char *key);
/* Insert or replace; 0 or FANOUT_ENOMEM. */
int ntab_put(struct ntab *t, const char *key, void *val);
/* Remove and return the value (NULL when absent). */
void *ntab_del(struct ntab *t, const char *key);
/* Call fn for every entry (fn must not change the table). */
void ntab_each(struct ntab *t, void (*fn)(const char *key, void *val, void *arg), void *arg);
void ntab_free(struct ntab *t, void (*free_val)(void *val));

/* ---- loop → worker commands ---- */

enum cmd_kind {
	CMD_SUB,     /* subscribe chan (req) and confirm */
	CMD_UNSUB,   /* unsubscribe chan */
	CMD_PUB,     /* publish data on chan, answer token */
	CMD_TOP,     /* JetStream: top of chan, answer token */
	CMD_HISTORY, /* JetStream: history of chan after `after` of epoch, at most max */
};

struct cmd {
	struct cmd *next;
	enum cmd_kind kind;
	uint64_t req; /* CMD_SUB: the loop's request number for chan */
	uint64_t token;
	uint64_t after, max;
	char *chan;  /* points into buf */
	char *epoch; /* CMD_HISTORY; points into buf */
	char *data;  /* CMD_PUB; points into buf */
	size_t len;
	char buf[];
};

/* ---- libnats/worker → loop events ---- */

enum ev_kind {
	EV_MSG,	       /* a message on chan (seq 0: unpositioned) */
	EV_SUBSCRIBED, /* answer to CMD_SUB (status, sid, epoch/top in JetStream mode) */
	EV_PUBLISHED,  /* answer to CMD_PUB (status, seq in JetStream mode) */
	EV_TOP,	       /* answer to CMD_TOP */
	EV_ITEM,       /* one history message (token, seq, data) */
	EV_HISTORY,    /* end of a history answer (token, status, epoch, top) */
	EV_STATE,      /* up/down (status: FANOUT_UP/DOWN), text: reason */
	EV_GAP,	       /* every channel may have lost messages (text: reason) */
	EV_REFUSED,    /* the server refused chan's subscription (permissions) */
	EV_EPOCH,      /* the stream's epoch is now `epoch`; seq/last: its first/last sequence */
	EV_LOG,	       /* a line for the host's log (status: level, data: text) */
};

struct ev {
	struct ev *next;
	enum ev_kind kind;
	int status;
	uint64_t req, token;
	int64_t sid;	    /* EV_MSG / EV_SUBSCRIBED: the libnats subscription id */
	uint64_t seq, last; /* EV_MSG: stream sequence and Nats-Last-Sequence */
	size_t len;	    /* of data */
	char *chan;	    /* into buf; NULL when none */
	char *epoch;	    /* into buf; NULL when none */
	char *data;	    /* into buf (EV_MSG, EV_ITEM payload; EV_STATE/EV_GAP text) */
	char buf[];
};

/* ---- the loop's channel table ---- */

enum chan_state {
	CH_SUBSCRIBING, /* CMD_SUB sent, no answer yet */
	CH_LIVE,	/* confirmed */
};

struct chan {
	char *name;
	enum chan_state state;
	uint64_t req;	 /* number of the current CMD_SUB */
	int64_t sid;	 /* libnats subscription id once confirmed */
	uint64_t last;	 /* JetStream: the newest offset delivered (or the top) */
	struct ev *held; /* messages that arrived before the confirmation */
	struct ev **held_tail;
	size_t held_n;
};

/* ---- the backend ---- */

struct nt {
	const struct fanout_host *host;
	struct fanout_backend *b;
	bool has_pos; /* the host knows ABI 1.1 (subscribed_at ...) */

	/* config (read-only after init; the worker reads it too) */
	char *url;
	char *prefix;
	size_t prefix_len;
	char *token, *user, *password, *creds_file;
	bool tls;
	char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_hostname;
	unsigned connect_timeout_ms, reconnect_min_ms, reconnect_max_ms;
	unsigned ping_interval_ms, request_timeout_ms;
	size_t max_pending;
	size_t inbound_max;
	bool js;
	char *stream;
	long long history_size, history_ttl_s, history_bytes;
	bool memory_storage;
	int replicas;
	char *rp_prefix; /* republish prefix (ends with '.') */
	size_t rp_prefix_len;
	char **stream_subjects;
	size_t n_stream_subjects;
	char name[128]; /* connection name shown by the server */

	/* loop thread only */
	struct ntab chans;
	uint64_t next_req;
	size_t pending_pubs;
	struct ntab pends;	      /* publishes in flight: token (decimal) -> struct pend */
	struct fanout_timer *t_sweep; /* fails publishes past their deadline */
	char epoch[NT_EPOCH_MAX];     /* the stream's current epoch ("" before known) */
	uint64_t seen;		      /* the newest stream sequence known to be stored */
	uint64_t seen_at_drop;	      /* seen when the link last went down */
	uint64_t link_first;	      /* the stream's first sequence when the link came up */
	bool up;
	bool relinking; /* the link went down after being up: hold messages until the gap */
	bool stopped;

	/* worker thread */
	pthread_t worker;
	bool worker_started;

	/* loop → worker queue */
	pthread_mutex_t cmd_mu;
	pthread_cond_t cmd_cv;
	struct cmd *cmd_head, **cmd_tail;
	bool stopping;	/* stop() asked the worker to finish */
	int link_event; /* libnats said connected/reconnected: the worker re-checks */

	/* any thread → loop queue */
	pthread_mutex_t ev_mu;
	struct ev *ev_head, **ev_tail;
	size_t ev_bytes;     /* of queued EV_MSG */
	bool posted;	     /* a drain is posted and has not started */
	uint64_t dropped;    /* messages dropped at inbound_max since the last drain */
	uint64_t slow_drops; /* libnats' own slow-consumer drops seen */

	/* worker ↔ libnats callbacks */
	pthread_mutex_t life_mu;
	pthread_cond_t life_cv;
	int live_subs;	/* subscriptions whose completion callback has not run */
	bool closed_cb; /* the connection's closed callback ran */
	bool link_up;	/* libnats is connected (read by the worker) */
	bool was_up;	/* the link has been up before (a later up is a reconnect) */
};

/* nats.c: queues */
struct ev *nt_ev_new(enum ev_kind kind, const char *chan, const char *epoch, const void *data,
		     size_t len);
/* Append to the inbound queue (any thread); post a drain when needed.
 * EV_MSG beyond inbound_max is dropped (freed) and counted. */
void nt_ev_push(struct nt *nt, struct ev *e);
/* Shorthands (any thread). */
void nt_push_state(struct nt *nt, int up, const char *fmt, ...) FANOUT_PRINTF(3, 4);

/* worker.c */
int nt_worker_start(struct nt *nt);
/* Ask the worker to close everything and join it (loop thread, in stop()). */
void nt_worker_stop(struct nt *nt);
/* Queue a command (loop thread). */
void nt_cmd_push(struct nt *nt, struct cmd *c);

/* js.c (worker thread) */
/* Create or check the stream; fills epoch and the stream's first and last
 * sequence. 0, or FANOUT_E* with reason. */
int nt_js_ensure(struct nt *nt, natsConnection *nc, char *epoch, size_t epoch_cap, uint64_t *first,
		 uint64_t *last, char *why, size_t whylen);
/* Top of subject: epoch, top. 0 or FANOUT_E* (why). */
int nt_js_top(struct nt *nt, natsConnection *nc, const char *subject, char *epoch, size_t epoch_cap,
	      uint64_t *top, char *why, size_t whylen);
/* Answer a CMD_HISTORY: pushes EV_ITEMs and one EV_HISTORY. */
void nt_js_history(struct nt *nt, natsConnection *nc, const struct cmd *c, const char *subject);

#endif /* FANOUT_NATS_NT_H */
