/*
 * nats.c — the nats backend: channels are NATS subjects (subject_prefix +
 * channel); with jetstream = yes, history and positions come from one
 * JetStream stream. This file owns the plugin table, the options, init /
 * start / stop / destroy, the loop side of the two queues (commands to the
 * worker thread, events from it and from libnats) and the channel table.
 *
 * Thread: everything here runs on fanoutd's loop thread except nt_ev_new(),
 * nt_ev_push() and nt_push_state(), which any thread calls (see nt.h for
 * the threading model). Allocates the struct nt and its option strings
 * (freed in destroy), one struct chan per subscribed channel (freed at
 * unsubscribe), commands (freed by the worker) and events (freed here after
 * they are handled).
 */
#include "nt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELD_MAX 10000 /* messages kept per channel while its subscribe is confirmed */

static pthread_mutex_t lib_mu = PTHREAD_MUTEX_INITIALIZER;
static int lib_users; /* nats backends alive in this process */

static const struct fanout_option options[] = {
    FANOUT_OPTION_STRING(
	"url", "nats://127.0.0.1:4222",
	"server(s): [nats://|tls://][user[:password]@]host[:port], comma-separated"),
    FANOUT_OPTION_STRING("subject_prefix", "", "client channel x is NATS subject <prefix>x"),
    {"token", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "authentication token", FANOUT_OPT_SECRET},
    FANOUT_OPTION_STRING("user", NULL, "user name (with password)"),
    {"password", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "password for user", FANOUT_OPT_SECRET},
    FANOUT_OPTION_STRING("creds_file", NULL, "NATS credentials file (user JWT + NKey seed)"),
    FANOUT_OPTION_BOOL("tls", "false", "require TLS (also implied by a tls:// url)"),
    FANOUT_OPTION_STRING("tls_ca_file", NULL, "PEM file of CAs trusted for the server"),
    FANOUT_OPTION_STRING("tls_cert_file", NULL, "client certificate chain (PEM)"),
    FANOUT_OPTION_STRING("tls_key_file", NULL, "client private key (PEM)"),
    FANOUT_OPTION_STRING("tls_hostname", NULL, "expected server name in its certificate"),
    FANOUT_OPTION_INT("connect_timeout_ms", "2000", 10, 600000, "limit of one connect attempt"),
    FANOUT_OPTION_INT("reconnect_min_ms", "100", 0, 3600000, "first reconnect delay"),
    FANOUT_OPTION_INT("reconnect_max_ms", "5000", 1, 3600000,
		      "reconnect delay cap (doubling from reconnect_min_ms, with jitter)"),
    FANOUT_OPTION_INT("ping_interval_ms", "2000", 100, 3600000,
		      "PING the server this often; 2 unanswered: reconnect"),
    FANOUT_OPTION_INT("request_timeout_ms", "2000", 10, 600000,
		      "limit for a subscribe confirmation, publish or JetStream request"),
    FANOUT_OPTION_INT("max_pending", "10000", 1, 100000000,
		      "client publishes in flight; more are refused"),
    FANOUT_OPTION_INT("inbound_queue_bytes", "64m", 65536, 1LL << 40,
		      "messages waiting for the loop; past it they are dropped (gap)"),
    FANOUT_OPTION_BOOL("jetstream", "false", "history and positions from a JetStream stream"),
    FANOUT_OPTION_STRING("stream", "FANOUT", "JetStream stream name (created when missing)"),
    FANOUT_OPTION_INT("history_size", "100000", 0, 1LL << 50,
		      "messages the stream keeps, all channels together (0: no limit)"),
    FANOUT_OPTION_INT("history_ttl_s", "86400", 0, 1LL << 31,
		      "seconds the stream keeps a message (0: no limit)"),
    FANOUT_OPTION_INT("history_bytes", "1g", 0, 1LL << 50, "bytes the stream keeps (0: no limit)"),
    FANOUT_OPTION_ENUM("stream_storage", "file", "file|memory", "where the stream keeps messages"),
    FANOUT_OPTION_INT("stream_replicas", "1", 1, 5, "stream replicas (NATS cluster)"),
    FANOUT_OPTION_STRING("republish_prefix", "_fanout.rp.",
			 "the stream republishes each stored message under <prefix><subject>"),
    FANOUT_OPTION_END,
};

enum {
	O_URL,
	O_PREFIX,
	O_TOKEN,
	O_USER,
	O_PASSWORD,
	O_CREDS,
	O_TLS,
	O_TLS_CA,
	O_TLS_CERT,
	O_TLS_KEY,
	O_TLS_HOST,
	O_CONNECT_TIMEOUT,
	O_RECONNECT_MIN,
	O_RECONNECT_MAX,
	O_PING,
	O_REQUEST_TIMEOUT,
	O_MAX_PENDING,
	O_INBOUND,
	O_JS,
	O_STREAM,
	O_HISTORY_SIZE,
	O_HISTORY_TTL,
	O_HISTORY_BYTES,
	O_STORAGE,
	O_REPLICAS,
	O_RP_PREFIX,
};

/* ---- queues ---- */

struct ev *nt_ev_new(enum ev_kind kind, const char *chan, const char *epoch, const void *data,
		     size_t len)
{
	size_t lc = chan ? strlen(chan) + 1 : 0, le = epoch ? strlen(epoch) + 1 : 0;
	struct ev *e = malloc(sizeof(*e) + lc + le + len + 1);
	char *p;

	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	p = e->buf;
	if (chan) {
		e->chan = p;
		memcpy(p, chan, lc);
		p += lc;
	}
	if (epoch) {
		e->epoch = p;
		memcpy(p, epoch, le);
		p += le;
	}
	e->data = p;
	if (len)
		memcpy(p, data, len);
	p[len] = 0;
	e->len = len;
	return e;
}

static void on_drain(void *arg);

void nt_ev_push(struct nt *nt, struct ev *e)
{
	bool post = false;

	if (!e)
		return;
	pthread_mutex_lock(&nt->ev_mu);
	if (e->kind == EV_MSG && nt->ev_bytes + e->len > nt->inbound_max) {
		nt->dropped++;
		free(e);
		e = NULL;
	} else {
		if (e->kind == EV_MSG)
			nt->ev_bytes += e->len;
		*nt->ev_tail = e;
		nt->ev_tail = &e->next;
	}
	if ((e || nt->dropped) && !nt->posted) {
		nt->posted = true;
		post = true;
	}
	pthread_mutex_unlock(&nt->ev_mu);
	/* post() is thread-safe. If it fails (out of memory) the next push
	 * tries again. */
	if (post && nt->host->post(nt->b, on_drain, nt) != 0) {
		pthread_mutex_lock(&nt->ev_mu);
		nt->posted = false;
		pthread_mutex_unlock(&nt->ev_mu);
	}
}

void nt_push_state(struct nt *nt, int up, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	struct ev *e;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	e = nt_ev_new(EV_STATE, NULL, NULL, why, strlen(why));
	if (e)
		e->status = up;
	nt_ev_push(nt, e);
}

static struct cmd *cmd_new(enum cmd_kind kind, const char *chan, const char *epoch,
			   const void *data, size_t len)
{
	size_t lc = strlen(chan) + 1, le = epoch ? strlen(epoch) + 1 : 0;
	struct cmd *c = malloc(sizeof(*c) + lc + le + len + 1);
	char *p;

	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	p = c->buf;
	c->chan = p;
	memcpy(p, chan, lc);
	p += lc;
	if (epoch) {
		c->epoch = p;
		memcpy(p, epoch, le);
		p += le;
	}
	c->data = p;
	if (len)
		memcpy(p, data, len);
	p[len] = 0;
	c->len = len;
	return c;
}

/* ---- channels ---- */

static void chan_free(void *v)
{
	struct chan *c = v;
	struct ev *e, *n;

	if (!c)
		return;
	for (e = c->held; e; e = n) {
		n = e->next;
		free(e);
	}
	free(c->name);
	free(c);
}

static void count(struct nt *nt, const char *event, uint64_t d)
{
	if (d && nt->host->struct_size > offsetof(struct fanout_host, count) && nt->host->count)
		nt->host->count(nt->b, event, d);
}

/* A message on a live channel: dedupe, hole check, deliver. Frees nothing. */
static void deliver(struct nt *nt, struct chan *c, struct ev *e)
{
	if (!nt->js) {
		nt->host->deliver(nt->b, c->name, e->data, e->len);
		return;
	}
	if (e->seq == 0) {
		/* Published straight to the republish subject: not from the
		 * stream, so it has no position. */
		count(nt, "unpositioned_dropped", 1);
		return;
	}
	if (e->seq <= c->last) {
		count(nt, "duplicates_dropped", 1);
		return;
	}
	/* Nats-Last-Sequence: the previous message on this subject (0: none
	 * kept). Newer than what we delivered (or than the top read when we
	 * subscribed): it never reached us. */
	if (e->last > c->last) {
		count(nt, "holes", 1);
		nt->host->gap(nt->b, c->name,
			      "a message on this channel was lost before this instance");
		/* The channel stands at e->last: the host repairs (what it
		 * delivered, e->last] from the stream before e goes out. Not
		 * left to its probe: e would advance the channel past the
		 * hole before the probe's answer came (offsets here skip, so
		 * the host cannot see the hole itself). */
		if (nt->has_pos)
			nt->host->subscribed_at(nt->b, c->name, 1, nt->epoch, e->last, 0);
	}
	c->last = e->seq;
	if (nt->has_pos)
		nt->host->deliver_at(nt->b, c->name, nt->epoch, e->seq, e->data, e->len);
	else
		nt->host->deliver(nt->b, c->name, e->data, e->len);
}

static void answer_subscribe(struct nt *nt, const char *name, int ok, const char *epoch,
			     uint64_t top)
{
	if (nt->js && nt->has_pos && ok)
		nt->host->subscribed_at(nt->b, name, 1, epoch, top, 0);
	else
		nt->host->subscribed(nt->b, name, ok);
}

static void on_subscribed(struct nt *nt, struct ev *e)
{
	struct chan *c = ntab_get(&nt->chans, e->chan);
	struct ev *h, *n;

	if (!c || c->req != e->req)
		return; /* unsubscribed meanwhile, or an older request */
	if (c->state == CH_LIVE) {
		/* The worker subscribed again (a new connection): new sid. */
		c->sid = e->sid;
		return;
	}
	if (e->status) {
		ntab_del(&nt->chans, e->chan);
		answer_subscribe(nt, e->chan, 0, NULL, 0);
		chan_free(c);
		return;
	}
	if (nt->js && e->epoch && strcmp(e->epoch, nt->epoch) != 0)
		snprintf(nt->epoch, sizeof(nt->epoch), "%s", e->epoch);
	if (e->seq > nt->seen)
		nt->seen = e->seq;
	c->state = CH_LIVE;
	c->sid = e->sid;
	c->last = e->seq;
	answer_subscribe(nt, c->name, 1, nt->epoch, e->seq);
	/* Messages that came while we waited: the ones of this subscription,
	 * newer than the top, in order. */
	h = c->held;
	c->held = NULL;
	c->held_tail = &c->held;
	c->held_n = 0;
	for (; h; h = n) {
		n = h->next;
		/* the host may have dropped the channel inside a callback */
		if (ntab_get(&nt->chans, e->chan) == c && h->sid == c->sid)
			deliver(nt, c, h);
		free(h);
	}
}

static void on_msg(struct nt *nt, struct ev *e, bool *keep)
{
	struct chan *c = ntab_get(&nt->chans, e->chan);

	if (e->seq > nt->seen)
		nt->seen = e->seq;
	if (!c)
		return;
	/* Hold: before the subscribe is confirmed, and after the link came
	 * back until the gap went out (so clients see the gap before anything
	 * newer than the hole). */
	if (c->state == CH_SUBSCRIBING || nt->relinking) {
		if (c->held_n >= HELD_MAX) {
			count(nt, "dropped", 1); /* covered by the gap that follows */
			return;
		}
		e->next = NULL;
		*c->held_tail = e;
		c->held_tail = &e->next;
		c->held_n++;
		*keep = true;
		return;
	}
	if (e->sid != c->sid)
		return; /* from a subscription that is gone */
	deliver(nt, c, e);
}

/* ---- publish bookkeeping (tokens in flight, with deadlines) ---- */

struct pend {
	uint64_t token;
	uint64_t deadline;
};

static void pend_key(uint64_t token, char *k, size_t n)
{
	snprintf(k, n, "%llu", (unsigned long long)token);
}

struct sweep_arg {
	struct nt *nt;
	uint64_t now;
	uint64_t *expired;
	size_t n, cap;
};

static void collect_expired(const char *key, void *val, void *arg)
{
	struct sweep_arg *a = arg;
	struct pend *p = val;

	(void)key;
	if (p->deadline <= a->now && a->n < a->cap)
		a->expired[a->n++] = p->token;
}

static void sweep(struct fanout_timer *t, void *arg)
{
	struct nt *nt = arg;
	uint64_t buf[256];
	struct sweep_arg a = {nt, nt->host->now_ms(nt->b), buf, 0, 256};
	char k[32];

	(void)t;
	ntab_each(&nt->pends, collect_expired, &a);
	for (size_t i = 0; i < a.n; i++) {
		pend_key(buf[i], k, sizeof(k));
		free(ntab_del(&nt->pends, k));
		nt->pending_pubs--;
		count(nt, "publish_timeouts", 1);
		nt->host->published(nt->b, buf[i], 0);
	}
	if (nt->pends.n)
		nt->host->timer_arm(nt->t_sweep, a.n == a.cap ? 0 : 500);
}

static void on_published(struct nt *nt, struct ev *e)
{
	char k[32];
	struct pend *p;

	pend_key(e->token, k, sizeof(k));
	p = ntab_del(&nt->pends, k);
	if (!p)
		return; /* timed out already */
	free(p);
	nt->pending_pubs--;
	if (!e->status && e->seq > nt->seen)
		nt->seen = e->seq;
	if (e->status) {
		if (e->len)
			nt->host->log(nt->b, FANOUT_LOG_DEBUG, "publish failed: %s", e->data);
		nt->host->published(nt->b, e->token, 0);
	} else if (nt->js && nt->has_pos && e->seq) {
		nt->host->published_at(nt->b, e->token, 1, nt->epoch, e->seq);
	} else {
		nt->host->published(nt->b, e->token, 1);
	}
}

/* ---- the drain: every event, on the loop ---- */

static void on_state(struct nt *nt, struct ev *e)
{
	bool up = e->status == FANOUT_UP;

	if (!up && nt->up) {
		nt->relinking = true;
		nt->seen_at_drop = nt->seen;
	}

	if (up != nt->up || !up)
		nt->host->log(nt->b, up ? FANOUT_LOG_INFO : FANOUT_LOG_WARN, "%s: %s",
			      up ? "up" : "down", e->data);
	nt->up = up;
	nt->host->backend_state(nt->b, up ? FANOUT_UP : FANOUT_DOWN, e->data);
}

static void reset_last(const char *key, void *val, void *arg)
{
	struct chan *c = val;

	(void)key;
	(void)arg;
	c->last = 0;
}

static void on_epoch(struct nt *nt, struct ev *e)
{
	bool had = nt->epoch[0] != 0;

	nt->link_first = e->seq;
	if (e->last > nt->seen)
		nt->seen = e->last;
	if (!strcmp(nt->epoch, e->epoch))
		return;
	/* Another stream: what we saw of the old one says nothing. */
	nt->seen = nt->seen_at_drop = e->last;
	snprintf(nt->epoch, sizeof(nt->epoch), "%s", e->epoch);
	ntab_each(&nt->chans, reset_last, NULL);
	if (had) {
		nt->host->log(nt->b, FANOUT_LOG_WARN,
			      "stream %s has a new epoch %s (deleted and created again): its "
			      "history is gone",
			      nt->stream, nt->epoch);
		nt->host->gap(nt->b, NULL, "the broker's history was reset");
	}
}

static void collect_held(const char *key, void *val, void *arg)
{
	struct chan *c = val;
	char ***names = arg;

	if (c->state == CH_LIVE && c->held)
		*(*names)++ = (char *)key;
}

struct trim_arg {
	uint64_t lost_to;
	char **names;
	size_t n;
};

static void collect_trimmed(const char *key, void *val, void *arg)
{
	struct chan *c = val;
	struct trim_arg *a = arg;

	if (c->state == CH_LIVE && c->last < a->lost_to)
		a->names[a->n++] = (char *)key;
}

/*
 * After a reconnect: messages stored while the link was down that the
 * stream's limits removed before we came back can neither be repaired nor
 * seen missing (no top names them, and the next message's
 * Nats-Last-Sequence is 0 once its predecessor is gone). When the stream
 * now starts past everything we knew was stored, each channel that may
 * have had such a message is moved past them: the host gaps it.
 */
static void announce_trimmed(struct nt *nt)
{
	struct trim_arg a = {0};

	if (!nt->js || !nt->has_pos || !nt->epoch[0] || nt->link_first <= nt->seen_at_drop + 1)
		return;
	a.lost_to = nt->link_first - 1;
	a.names = calloc(nt->chans.n + 1, sizeof(*a.names));
	if (!a.names)
		return;
	ntab_each(&nt->chans, collect_trimmed, &a);
	for (size_t i = 0; i < a.n; i++)
		a.names[i] = strdup(a.names[i]);
	if (a.n)
		nt->host->log(
		    nt->b, FANOUT_LOG_WARN,
		    "stream %s dropped messages %llu..%llu (its limits) while the link was "
		    "down: %zu channels may have lost some, they get a gap",
		    nt->stream, (unsigned long long)nt->seen_at_drop + 1,
		    (unsigned long long)a.lost_to, a.n);
	for (size_t i = 0; i < a.n; i++) {
		/* the host may unsubscribe (and free keys) inside the call */
		struct chan *c = a.names[i] ? ntab_get(&nt->chans, a.names[i]) : NULL;
		if (!c)
			continue;
		c->last = a.lost_to;
		nt->host->subscribed_at(nt->b, c->name, 1, nt->epoch, a.lost_to, 0);
	}
	for (size_t i = 0; i < a.n; i++)
		free(a.names[i]);
	free(a.names);
}

/* A gap for every channel went out: release what was held meanwhile. */
static void release_held(struct nt *nt)
{
	size_t n = nt->chans.n, k;
	char **names = calloc(n + 1, sizeof(*names)), **p = names;

	nt->relinking = false;
	if (!names)
		return;
	ntab_each(&nt->chans, collect_held, &p);
	k = (size_t)(p - names);
	/* Copies: the host may unsubscribe (and so free keys) while we deliver. */
	for (size_t i = 0; i < k; i++)
		names[i] = strdup(names[i]);
	for (size_t i = 0; i < k; i++) {
		struct chan *c = names[i] ? ntab_get(&nt->chans, names[i]) : NULL;
		struct ev *h, *nx;
		if (!c)
			continue;
		h = c->held;
		c->held = NULL;
		c->held_tail = &c->held;
		c->held_n = 0;
		for (; h; h = nx) {
			nx = h->next;
			if (ntab_get(&nt->chans, names[i]) == c && h->sid == c->sid)
				deliver(nt, c, h);
			free(h);
		}
	}
	for (size_t i = 0; i < k; i++)
		free(names[i]);
	free(names);
}

static void on_refused(struct nt *nt, struct ev *e)
{
	struct chan *c = ntab_get(&nt->chans, e->chan);

	count(nt, "subscribe_refused", 1);
	if (!c)
		return;
	if (c->state == CH_SUBSCRIBING) {
		ntab_del(&nt->chans, e->chan);
		answer_subscribe(nt, e->chan, 0, NULL, 0);
		chan_free(c);
		return;
	}
	nt->host->log(nt->b, FANOUT_LOG_WARN,
		      "the server refused the subscription to %s%s after confirming it", nt->prefix,
		      e->chan);
	nt->host->gap(nt->b, e->chan, "the broker refused this channel's subscription");
}

static void on_drain(void *arg)
{
	struct nt *nt = arg;
	struct ev *list, *e, *n;
	uint64_t dropped;

	pthread_mutex_lock(&nt->ev_mu);
	list = nt->ev_head;
	nt->ev_head = NULL;
	nt->ev_tail = &nt->ev_head;
	nt->ev_bytes = 0;
	nt->posted = false;
	dropped = nt->dropped;
	nt->dropped = 0;
	pthread_mutex_unlock(&nt->ev_mu);

	for (e = list; e; e = n) {
		bool keep = false;
		n = e->next;
		if (nt->stopped) {
			free(e);
			continue;
		}
		switch (e->kind) {
		case EV_MSG:
			on_msg(nt, e, &keep);
			break;
		case EV_SUBSCRIBED:
			on_subscribed(nt, e);
			break;
		case EV_PUBLISHED:
			on_published(nt, e);
			break;
		case EV_TOP:
			nt->host->top_done(nt->b, e->token, e->status, e->epoch, e->seq);
			break;
		case EV_ITEM:
			nt->host->history_item(nt->b, e->token, e->seq, e->data, e->len);
			break;
		case EV_HISTORY:
			nt->host->history_done(nt->b, e->token, e->status, e->epoch, e->seq);
			break;
		case EV_STATE:
			on_state(nt, e);
			break;
		case EV_GAP:
			nt->host->gap(nt->b, NULL, e->data);
			if (nt->relinking) {
				announce_trimmed(nt);
				release_held(nt);
			}
			break;
		case EV_REFUSED:
			on_refused(nt, e);
			break;
		case EV_EPOCH:
			on_epoch(nt, e);
			break;
		case EV_LOG:
			nt->host->log(nt->b, (enum fanout_log_level)e->status, "%s", e->data);
			break;
		}
		if (!keep)
			free(e);
	}
	if (dropped && !nt->stopped) {
		count(nt, "dropped", dropped);
		nt->host->log(nt->b, FANOUT_LOG_WARN,
			      "inbound queue full (inbound_queue_bytes): %llu messages dropped",
			      (unsigned long long)dropped);
		nt->host->gap(nt->b, NULL, "messages were dropped: this instance fell behind");
	}
}

/* ---- ops ---- */

static char *dup_opt(const struct fanout_value *v)
{
	return v->str && *v->str ? strdup(v->str) : NULL;
}

static void nt_free(struct nt *nt)
{
	free(nt->url);
	free(nt->prefix);
	free(nt->token);
	free(nt->user);
	free(nt->password);
	free(nt->creds_file);
	free(nt->tls_ca_file);
	free(nt->tls_cert_file);
	free(nt->tls_key_file);
	free(nt->tls_hostname);
	free(nt->stream);
	free(nt->rp_prefix);
	nn_free_list(nt->stream_subjects, nt->n_stream_subjects);
	pthread_mutex_destroy(&nt->cmd_mu);
	pthread_cond_destroy(&nt->cmd_cv);
	pthread_mutex_destroy(&nt->ev_mu);
	pthread_mutex_destroy(&nt->life_mu);
	pthread_cond_destroy(&nt->life_cv);
	free(nt);
}

/* A file option must name a readable file: say so at start-up. */
static int check_file(struct nt *nt, const char *key, const char *path)
{
	FILE *f;

	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		nt->host->log(nt->b, FANOUT_LOG_ERR, "%s %s: %s", key, path, strerror(errno));
		return FANOUT_EINVAL;
	}
	fclose(f);
	return 0;
}

static int stream_name_ok(const char *s)
{
	if (!*s || strlen(s) > 200)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == '.' || *s == '*' || *s == '>' || *s == '/' ||
		    *s == '\\')
			return 0;
	return 1;
}

static int channels_of(struct nt *nt, const char *const **globs, size_t *n)
{
	static const char *const all[] = {"*"};

	/* ABI 1.2 gives the backend its channels globs. */
	if (nt->host->struct_size > offsetof(struct fanout_host, channels) && nt->host->channels) {
		*globs = nt->host->channels(nt->b, n);
		if (*globs && *n)
			return 0;
	}
	*globs = all;
	*n = 1;
	return 0;
}

static int nt_init(const struct fanout_host *host, struct fanout_backend *b,
		   const struct fanout_value *v, void **state)
{
	struct nt *nt = calloc(1, sizeof(*nt));
	char err[512];
	int tls = 0, r = FANOUT_EINVAL;

	if (!nt)
		return FANOUT_ENOMEM;
	nt->host = host;
	nt->b = b;
	nt->has_pos = host->struct_size > offsetof(struct fanout_host, history_done) &&
		      host->subscribed_at && host->deliver_at && host->published_at;
	pthread_mutex_init(&nt->cmd_mu, NULL);
	pthread_cond_init(&nt->cmd_cv, NULL);
	pthread_mutex_init(&nt->ev_mu, NULL);
	pthread_mutex_init(&nt->life_mu, NULL);
	pthread_cond_init(&nt->life_cv, NULL);
	nt->cmd_tail = &nt->cmd_head;
	nt->ev_tail = &nt->ev_head;

	nt->url = strdup(v[O_URL].str ? v[O_URL].str : "");
	nt->prefix = strdup(v[O_PREFIX].str ? v[O_PREFIX].str : "");
	nt->token = dup_opt(&v[O_TOKEN]);
	nt->user = dup_opt(&v[O_USER]);
	nt->password = dup_opt(&v[O_PASSWORD]);
	nt->creds_file = dup_opt(&v[O_CREDS]);
	nt->tls = v[O_TLS].num != 0;
	nt->tls_ca_file = dup_opt(&v[O_TLS_CA]);
	nt->tls_cert_file = dup_opt(&v[O_TLS_CERT]);
	nt->tls_key_file = dup_opt(&v[O_TLS_KEY]);
	nt->tls_hostname = dup_opt(&v[O_TLS_HOST]);
	nt->connect_timeout_ms = (unsigned)v[O_CONNECT_TIMEOUT].num;
	nt->reconnect_min_ms = (unsigned)v[O_RECONNECT_MIN].num;
	nt->reconnect_max_ms = (unsigned)v[O_RECONNECT_MAX].num;
	nt->ping_interval_ms = (unsigned)v[O_PING].num;
	nt->request_timeout_ms = (unsigned)v[O_REQUEST_TIMEOUT].num;
	nt->max_pending = (size_t)v[O_MAX_PENDING].num;
	nt->inbound_max = (size_t)v[O_INBOUND].num;
	nt->js = v[O_JS].num != 0;
	nt->stream = strdup(v[O_STREAM].str ? v[O_STREAM].str : "");
	nt->history_size = v[O_HISTORY_SIZE].num;
	nt->history_ttl_s = v[O_HISTORY_TTL].num;
	nt->history_bytes = v[O_HISTORY_BYTES].num;
	nt->memory_storage = v[O_STORAGE].num == 1;
	nt->replicas = (int)v[O_REPLICAS].num;
	nt->rp_prefix = strdup(v[O_RP_PREFIX].str ? v[O_RP_PREFIX].str : "");
	if (!nt->url || !nt->prefix || !nt->stream || !nt->rp_prefix) {
		r = FANOUT_ENOMEM;
		goto fail;
	}
	nt->prefix_len = strlen(nt->prefix);
	nt->rp_prefix_len = strlen(nt->rp_prefix);
	snprintf(nt->name, sizeof(nt->name), "fanout %s [backend %s]", host->instance(b),
		 host->name(b));

	if (nn_check_url(nt->url, &tls, err, sizeof(err)) ||
	    nn_check_prefix(nt->prefix, err, sizeof(err))) {
		host->log(b, FANOUT_LOG_ERR, "%s", err);
		goto fail;
	}
	if (tls)
		nt->tls = true;
	if (nt->reconnect_min_ms > nt->reconnect_max_ms) {
		host->log(b, FANOUT_LOG_ERR, "reconnect_min_ms (%u) is above reconnect_max_ms (%u)",
			  nt->reconnect_min_ms, nt->reconnect_max_ms);
		goto fail;
	}
	if ((nt->user != NULL) != (nt->password != NULL)) {
		host->log(b, FANOUT_LOG_ERR, "user and password go together");
		goto fail;
	}
	if ((nt->tls_cert_file != NULL) != (nt->tls_key_file != NULL)) {
		host->log(b, FANOUT_LOG_ERR, "tls_cert_file and tls_key_file go together");
		goto fail;
	}
	if (check_file(nt, "creds_file", nt->creds_file) ||
	    check_file(nt, "tls_ca_file", nt->tls_ca_file) ||
	    check_file(nt, "tls_cert_file", nt->tls_cert_file) ||
	    check_file(nt, "tls_key_file", nt->tls_key_file))
		goto fail;
	if (nt->js) {
		const char *const *globs;
		size_t n;
		if (!nt->has_pos) {
			host->log(
			    b, FANOUT_LOG_ERR,
			    "jetstream = yes needs a fanoutd with plugin ABI 1.1 (positions)");
			goto fail;
		}
		if (!stream_name_ok(nt->stream)) {
			host->log(b, FANOUT_LOG_ERR,
				  "stream \"%s\": 1-200 printable characters without spaces, '.', "
				  "'*', '>', '/' or '\\'",
				  nt->stream);
			goto fail;
		}
		if (nt->rp_prefix_len < 2 || nt->rp_prefix[nt->rp_prefix_len - 1] != '.' ||
		    !nn_subject_valid(nt->rp_prefix, nt->rp_prefix_len - 1)) {
			host->log(b, FANOUT_LOG_ERR,
				  "republish_prefix \"%s\": a subject prefix ending with '.'",
				  nt->rp_prefix);
			goto fail;
		}
		channels_of(nt, &globs, &n);
		r = nn_stream_subjects(nt->prefix, globs, n, &nt->stream_subjects,
				       &nt->n_stream_subjects, err, sizeof(err));
		if (r) {
			if (r == FANOUT_EINVAL)
				host->log(b, FANOUT_LOG_ERR, "jetstream: %s", err);
			goto fail;
		}
		/* The republished copies must not be captured by the stream. */
		for (size_t i = 0; i < nt->n_stream_subjects; i++) {
			const char *s = nt->stream_subjects[i];
			size_t ls = strlen(s);
			bool wide = ls && s[ls - 1] == '>';
			if (wide ? !strncmp(nt->rp_prefix, s, ls - 1)
				 : !strncmp(s, nt->rp_prefix, nt->rp_prefix_len)) {
				host->log(
				    b, FANOUT_LOG_ERR,
				    "republish_prefix \"%s\" overlaps the stream subject \"%s\"",
				    nt->rp_prefix, s);
				r = FANOUT_EINVAL;
				goto fail;
			}
		}
	}
	*state = nt;
	pthread_mutex_lock(&lib_mu);
	lib_users++;
	pthread_mutex_unlock(&lib_mu);
	return 0;
fail:
	nt_free(nt);
	return r;
}

static int nt_start(void *state)
{
	struct nt *nt = state;

	nt->t_sweep = nt->host->timer_add(nt->b, sweep, nt);
	if (!nt->t_sweep)
		return FANOUT_ENOMEM;
	nt->host->backend_state(nt->b, FANOUT_DOWN, "connecting");
	return nt_worker_start(nt);
}

static int nt_subscribe(void *state, const char *channel)
{
	struct nt *nt = state;
	char subj[NN_SUBJECT_MAX];
	struct chan *c;
	struct cmd *cmd;

	if (nn_subject(nt->prefix, channel, subj, sizeof(subj))) {
		nt->host->log(nt->b, FANOUT_LOG_WARN,
			      "channel %s: %s%s is not a NATS subject (empty token?)", channel,
			      nt->prefix, channel);
		answer_subscribe(nt, channel, 0, NULL, 0);
		return 0;
	}
	c = ntab_get(&nt->chans, channel);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || !(c->name = strdup(channel)) || ntab_put(&nt->chans, channel, c)) {
			chan_free(c);
			return FANOUT_ENOMEM;
		}
	}
	/* A fresh request: an older answer for this channel is ignored. */
	c->state = CH_SUBSCRIBING;
	c->req = ++nt->next_req;
	c->held_tail = &c->held;
	cmd = cmd_new(CMD_SUB, channel, NULL, NULL, 0);
	if (!cmd) {
		chan_free(ntab_del(&nt->chans, channel));
		return FANOUT_ENOMEM;
	}
	cmd->req = c->req;
	nt_cmd_push(nt, cmd);
	return 0;
}

static int nt_unsubscribe(void *state, const char *channel)
{
	struct nt *nt = state;
	struct chan *c = ntab_del(&nt->chans, channel);
	struct cmd *cmd;

	if (!c)
		return 0;
	chan_free(c);
	cmd = cmd_new(CMD_UNSUB, channel, NULL, NULL, 0);
	if (!cmd)
		return FANOUT_ENOMEM;
	nt_cmd_push(nt, cmd);
	return 0;
}

static int nt_publish(void *state, const char *channel, const void *data, size_t len,
		      uint64_t token)
{
	struct nt *nt = state;
	char subj[NN_SUBJECT_MAX], k[32];
	struct pend *p;
	struct cmd *cmd;

	if (nn_subject(nt->prefix, channel, subj, sizeof(subj)))
		return FANOUT_EINVAL;
	if (!nt->up)
		return FANOUT_EUNAVAIL;
	if (nt->pending_pubs >= nt->max_pending) {
		count(nt, "publish_refused_max_pending", 1);
		return FANOUT_EUNAVAIL;
	}
	p = malloc(sizeof(*p));
	cmd = cmd_new(CMD_PUB, channel, NULL, data, len);
	pend_key(token, k, sizeof(k));
	if (!p || !cmd || ntab_put(&nt->pends, k, p)) {
		free(p);
		free(cmd);
		return FANOUT_ENOMEM;
	}
	p->token = token;
	/* The worker's own limit is request_timeout_ms; leave it room. */
	p->deadline = nt->host->now_ms(nt->b) + 2ull * nt->request_timeout_ms + 1000;
	nt->pending_pubs++;
	if (nt->pending_pubs == 1)
		nt->host->timer_arm(nt->t_sweep, 500);
	cmd->token = token;
	nt_cmd_push(nt, cmd);
	return 0;
}

static int nt_top(void *state, const char *channel, uint64_t token)
{
	struct nt *nt = state;
	struct cmd *cmd;

	if (!nt->js)
		return FANOUT_ENOTSUP;
	cmd = cmd_new(CMD_TOP, channel, NULL, NULL, 0);
	if (!cmd)
		return FANOUT_ENOMEM;
	cmd->token = token;
	nt_cmd_push(nt, cmd);
	return 0;
}

static int nt_history(void *state, const char *channel, const char *epoch, uint64_t after,
		      uint64_t max, uint64_t token)
{
	struct nt *nt = state;
	struct cmd *cmd;

	if (!nt->js)
		return FANOUT_ENOTSUP;
	cmd = cmd_new(CMD_HISTORY, channel, epoch ? epoch : "", NULL, 0);
	if (!cmd)
		return FANOUT_ENOMEM;
	cmd->token = token;
	cmd->after = after;
	cmd->max = max;
	nt_cmd_push(nt, cmd);
	return 0;
}

static void free_pend(void *v)
{
	free(v);
}

static void nt_stop(void *state)
{
	struct nt *nt = state;

	nt_worker_stop(nt);
	nt->stopped = true;
	/* Events still queued are dropped: nothing is called back after stop. */
	on_drain(nt);
	if (nt->t_sweep) {
		nt->host->timer_remove(nt->t_sweep);
		nt->t_sweep = NULL;
	}
}

static void nt_destroy(void *state)
{
	struct nt *nt = state;
	bool last;

	if (!nt->stopped)
		nt_stop(nt);
	ntab_free(&nt->chans, chan_free);
	ntab_free(&nt->pends, free_pend);
	nt_free(nt);
	pthread_mutex_lock(&lib_mu);
	last = --lib_users == 0;
	/* Release libnats' own threads and memory with the last user, so
	 * nothing of it runs once fanoutd unloads the plugin. */
	if (last)
		nats_CloseAndWait(5000);
	pthread_mutex_unlock(&lib_mu);
}

FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "nats",
    .version = "1.0",
    .description = "NATS subjects (libnats), with history and positions from JetStream",
    .options = options,
    .init = nt_init,
    .start = nt_start,
    .subscribe = nt_subscribe,
    .unsubscribe = nt_unsubscribe,
    .publish = nt_publish,
    .stop = nt_stop,
    .destroy = nt_destroy,
    .top = nt_top,
    .history = nt_history,
};
