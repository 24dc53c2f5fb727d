/*
 * worker.c — the nats backend's worker thread and libnats callbacks.
 *
 * The worker is the only thread that calls libnats (see nt.h). It connects
 * (libnats then reconnects by itself, with our backoff), takes the loop's
 * commands in batches — SUB/UNSUB, publishes, JetStream reads — and ends
 * each batch with one flush: a PING/PONG round trip after which the server
 * has processed every SUB and PUB sent before it. Only then are subscribes
 * confirmed (and, with JetStream, the channel's top read), and plain
 * publishes answered; so a client told "subscribed" misses nothing
 * published afterwards. JetStream publishes carry a reply subject
 * <inbox>.<token> and are answered by the stream's acknowledgement.
 *
 * libnats' threads call back here: messages and acknowledgements (its
 * delivery thread) and connection events (its callback thread). They only
 * append events for the loop, or wake the worker (connected / reconnected
 * / closed). After a reconnect the worker flushes (libnats has sent every
 * SUB again first), re-checks the stream, and reports the backend up with
 * a gap: messages may have been published while the link was down.
 *
 * Allocates the natsOptions, the natsConnection and one natsSubscription
 * (+ struct wsub) per subscribed channel; all freed when the worker ends,
 * after libnats has confirmed (completion callbacks, closed callback) that
 * none of its threads will call back again.
 */
#include "nt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wsub {
	natsSubscription *sub;	      /* NULL: not subscribed on the current connection */
	uint64_t req;		      /* the loop's request number */
	bool pending;		      /* subscribe not answered yet */
	bool dead;		      /* refused: kept only until the channel is asked for again */
	char subject[NN_SUBJECT_MAX]; /* what we SUB to (the republished copy with JetStream) */
	char base[NN_SUBJECT_MAX];    /* <prefix><channel>: the stream's subject */
};

struct wpub {
	uint64_t token;
	char subject[NN_SUBJECT_MAX];
};

struct w {
	struct nt *nt;
	natsOptions *opts;
	natsConnection *nc;
	struct ntab subs; /* channel -> struct wsub */
	size_t n_pending;
	struct wpub *pubs; /* plain publishes waiting for the flush */
	size_t npubs, cappubs;
	natsSubscription *ack_sub;
	natsInbox *inbox;
	bool ready;	     /* flushed and (JetStream) stream checked on this link */
	bool link_check;     /* a link-up check is due */
	bool gap_due;	     /* reconnected: the gap goes once subscriptions are confirmed */
	uint64_t retry_at;   /* when to retry a failed check / connect (0: none) */
	uint64_t confirm_at; /* when to retry pending confirmations (0: none) */
	unsigned attempt;    /* failed checks in a row */
	char last_why[640];  /* last down reason reported */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool stopping(struct nt *nt)
{
	return __atomic_load_n(&nt->stopping, __ATOMIC_ACQUIRE);
}

static bool link_up(struct nt *nt)
{
	return __atomic_load_n(&nt->link_up, __ATOMIC_ACQUIRE);
}

static void set_link(struct nt *nt, bool up)
{
	__atomic_store_n(&nt->link_up, up, __ATOMIC_RELEASE);
}

static void wake(struct nt *nt, int event)
{
	pthread_mutex_lock(&nt->cmd_mu);
	if (event > nt->link_event)
		nt->link_event = event;
	pthread_cond_signal(&nt->cmd_cv);
	pthread_mutex_unlock(&nt->cmd_mu);
}

/* ---- libnats callbacks (libnats threads) ---- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct nt *nt = closure;
	const char *subj = natsMsg_GetSubject(msg), *chan, *v;
	struct ev *e;
	uint64_t seq = 0, last = 0;

	(void)nc;
	if (nt->js) {
		if (strncmp(subj, nt->rp_prefix, nt->rp_prefix_len) != 0)
			goto out;
		subj += nt->rp_prefix_len;
		if (natsMsgHeader_Get(msg, "Nats-Sequence", &v) == NATS_OK && v)
			nn_u64(v, strlen(v), &seq);
		if (natsMsgHeader_Get(msg, "Nats-Last-Sequence", &v) == NATS_OK && v)
			nn_u64(v, strlen(v), &last);
	}
	chan = nn_channel(nt->prefix, nt->prefix_len, subj);
	if (!chan)
		goto out;
	e = nt_ev_new(EV_MSG, chan, NULL, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
	if (e) {
		e->sid = natsSubscription_GetID(sub);
		e->seq = seq;
		e->last = last;
	}
	nt_ev_push(nt, e);
out:
	natsMsg_Destroy(msg);
}

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct nt *nt = closure;
	const char *subj = natsMsg_GetSubject(msg), *dot = strrchr(subj, '.');
	uint64_t token, seq = 0;
	char why[256] = "";
	int r;
	struct ev *e;

	(void)nc;
	(void)sub;
	if (!dot || nn_u64(dot + 1, strlen(dot + 1), &token))
		goto out;
	if (natsMsg_IsNoResponders(msg)) {
		snprintf(why, sizeof(why), "no JetStream stream takes this subject");
		r = FANOUT_EUNAVAIL;
	} else {
		r = nn_parse_puback(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &seq,
				    why, sizeof(why));
	}
	e = nt_ev_new(EV_PUBLISHED, NULL, NULL, why, strlen(why));
	if (e) {
		e->token = token;
		e->status = r;
		e->seq = seq;
	}
	nt_ev_push(nt, e);
out:
	natsMsg_Destroy(msg);
}

static void on_sub_done(void *closure)
{
	struct nt *nt = closure;

	pthread_mutex_lock(&nt->life_mu);
	nt->live_subs--;
	pthread_cond_broadcast(&nt->life_cv);
	pthread_mutex_unlock(&nt->life_mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
	struct nt *nt = closure;

	(void)nc;
	set_link(nt, true);
	wake(nt, 1);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct nt *nt = closure;

	(void)nc;
	set_link(nt, false);
	if (!stopping(nt))
		nt_push_state(nt, FANOUT_DOWN, "lost the connection to the NATS server");
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct nt *nt = closure;
	const char *txt = NULL;

	natsConnection_GetLastError(nc, &txt);
	set_link(nt, false);
	if (!stopping(nt)) {
		nt_push_state(nt, FANOUT_DOWN, "connection closed%s%s", txt && *txt ? ": " : "",
			      txt ? txt : "");
		wake(nt, 2);
	}
	/* Last: once closed_cb is set the worker may free nt. */
	pthread_mutex_lock(&nt->life_mu);
	nt->closed_cb = true;
	pthread_cond_broadcast(&nt->life_cv);
	pthread_mutex_unlock(&nt->life_mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	struct nt *nt = closure;
	char subj[NN_SUBJECT_MAX];
	const char *txt, *chan;
	struct ev *e;

	(void)nc;
	(void)sub;
	if (err == NATS_SLOW_CONSUMER) {
		/* libnats dropped messages of a subscription at its pending limit. */
		e = nt_ev_new(EV_GAP, NULL, NULL, "slow consumer: the NATS client dropped messages",
			      47);
		nt_ev_push(nt, e);
		return;
	}
	/* The error text of this callback is the thread's last error. */
	txt = nats_GetLastError(NULL);
	if (err == NATS_NOT_PERMITTED && nn_sub_violation(txt, subj, sizeof(subj))) {
		const char *s = subj;
		if (nt->js && !strncmp(s, nt->rp_prefix, nt->rp_prefix_len))
			s += nt->rp_prefix_len;
		chan = nn_channel(nt->prefix, nt->prefix_len, s);
		if (chan) {
			nt_ev_push(nt, nt_ev_new(EV_REFUSED, chan, NULL, NULL, 0));
			return;
		}
	}
	{
		char line[400];
		snprintf(line, sizeof(line), "NATS error: %s%s%s", natsStatus_GetText(err),
			 txt && *txt ? ": " : "", txt ? txt : "");
		e = nt_ev_new(EV_LOG, NULL, NULL, line, strlen(line));
		if (e)
			e->status = FANOUT_LOG_WARN;
		nt_ev_push(nt, e);
	}
}

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	struct nt *nt = closure;
	uint64_t d = nt->reconnect_min_ms;
	static __thread unsigned seed;

	(void)nc;
	for (int i = 1; i < attempts && d < nt->reconnect_max_ms; i++)
		d = d ? d * 2 : 1;
	if (d > nt->reconnect_max_ms)
		d = nt->reconnect_max_ms;
	if (!seed)
		seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)&seed;
	/* ±20 % jitter so instances do not reconnect in step. */
	if (d >= 5)
		d = d - d / 5 + (uint64_t)rand_r(&seed) % (2 * (d / 5) + 1);
	return (int64_t)d;
}

/* ---- connection ---- */

/* libnats' error text without its "(file.c:123): " prefix, or the status. */
static const char *error_text(const char *txt, natsStatus s)
{
	const char *p;

	if (!txt || !*txt)
		return natsStatus_GetText(s);
	if (txt[0] == '(' && (p = strstr(txt, "): ")) != NULL)
		return p + 3;
	return txt;
}

static void report_down(struct w *w, const char *why)
{
	if (strcmp(w->last_why, why) != 0) {
		snprintf(w->last_why, sizeof(w->last_why), "%s", why);
		nt_push_state(w->nt, FANOUT_DOWN, "%s", why);
	}
}

static uint64_t backoff(struct w *w)
{
	uint64_t d = w->nt->reconnect_min_ms ? w->nt->reconnect_min_ms : 1;

	for (unsigned i = 0; i < w->attempt && d < w->nt->reconnect_max_ms; i++)
		d *= 2;
	if (d > w->nt->reconnect_max_ms)
		d = w->nt->reconnect_max_ms;
	w->attempt++;
	return d;
}

static natsStatus build_options(struct w *w)
{
	struct nt *nt = w->nt;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);

	if (s == NATS_OK)
		s = natsOptions_SetURL(o, nt->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, nt->name);
	if (s == NATS_OK && nt->token)
		s = natsOptions_SetToken(o, nt->token);
	if (s == NATS_OK && nt->user)
		s = natsOptions_SetUserInfo(o, nt->user, nt->password);
	if (s == NATS_OK && nt->creds_file)
		s = natsOptions_SetUserCredentialsFromFiles(o, nt->creds_file, NULL);
	if (s == NATS_OK && nt->tls)
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && nt->tls_ca_file)
		s = natsOptions_LoadCATrustedCertificates(o, nt->tls_ca_file);
	if (s == NATS_OK && nt->tls_cert_file)
		s = natsOptions_LoadCertificatesChain(o, nt->tls_cert_file, nt->tls_key_file);
	if (s == NATS_OK && nt->tls_hostname)
		s = natsOptions_SetExpectedHostname(o, nt->tls_hostname);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, nt->connect_timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, nt->ping_interval_ms);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, 2);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, nt);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_connected, nt);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, nt);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, nt);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_error, nt);
	/* One delivery thread for every subscription, not one each. */
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetFailRequestsOnDisconnect(o, true);
	if (s != NATS_OK) {
		natsOptions_Destroy(o);
		return s;
	}
	w->opts = o;
	return NATS_OK;
}

/* Subscribe ws on the current connection. 0 or a natsStatus. */
static natsStatus sub_now(struct w *w, struct wsub *ws)
{
	struct nt *nt = w->nt;
	natsStatus s = natsConnection_Subscribe(&ws->sub, w->nc, ws->subject, on_msg, nt);

	if (s != NATS_OK) {
		ws->sub = NULL;
		return s;
	}
	pthread_mutex_lock(&nt->life_mu);
	nt->live_subs++;
	pthread_mutex_unlock(&nt->life_mu);
	natsSubscription_SetOnCompleteCB(ws->sub, on_sub_done, nt);
	return NATS_OK;
}

static void unsub_now(struct wsub *ws)
{
	if (!ws->sub)
		return;
	natsSubscription_Unsubscribe(ws->sub);
	natsSubscription_Destroy(ws->sub);
	ws->sub = NULL;
}

struct resub {
	struct w *w;
};

static void resub_one(const char *key, void *val, void *arg)
{
	struct w *w = arg;
	struct wsub *ws = val;

	(void)key;
	if (ws->sub || ws->dead)
		return;
	if (sub_now(w, ws) == NATS_OK) {
		if (!ws->pending) {
			ws->pending = true;
			w->n_pending++;
		}
	}
}

/* Create the connection; libnats keeps (re)connecting by itself. */
static void connect_now(struct w *w)
{
	struct nt *nt = w->nt;
	natsStatus s;
	char why[600];

	if (!w->opts && build_options(w) != NATS_OK) {
		snprintf(why, sizeof(why), "NATS client options: %s", nats_GetLastError(NULL));
		report_down(w, why);
		w->retry_at = now_ms() + nt->reconnect_max_ms;
		return;
	}
	pthread_mutex_lock(&nt->life_mu);
	nt->closed_cb = false;
	pthread_mutex_unlock(&nt->life_mu);
	/* The first connect is ours (retried here with the backoff), so a
	 * failure keeps its own reason (refused, authorization, TLS ...);
	 * once connected, libnats reconnects by itself. */
	s = natsConnection_Connect(&w->nc, w->opts);
	if (s != NATS_OK) {
		snprintf(why, sizeof(why), "cannot connect to %s: %s", nt->url,
			 error_text(nats_GetLastError(NULL), s));
		report_down(w, why);
		w->nc = NULL;
		w->retry_at = now_ms() + backoff(w);
		return;
	}
	set_link(nt, true);
	w->link_check = true;
	w->retry_at = 0;
	/* Channels wanted before (or across a closed connection). */
	ntab_each(&w->subs, resub_one, w);
}

/* Drop every subscription object of a connection that is gone. */
static void forget_sub(const char *key, void *val, void *arg)
{
	struct wsub *ws = val;

	(void)key;
	(void)arg;
	if (ws->sub) {
		natsSubscription_Destroy(ws->sub);
		ws->sub = NULL;
	}
}

static void wait_callbacks(struct nt *nt, bool need_closed)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&nt->life_mu);
	while (nt->live_subs > 0 || (need_closed && !nt->closed_cb))
		if (pthread_cond_timedwait(&nt->life_cv, &nt->life_mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&nt->life_mu);
}

static void drop_connection(struct w *w)
{
	struct nt *nt = w->nt;

	if (!w->nc)
		return;
	ntab_each(&w->subs, forget_sub, NULL);
	if (w->ack_sub) {
		natsSubscription_Destroy(w->ack_sub);
		w->ack_sub = NULL;
	}
	natsConnection_Close(w->nc);
	wait_callbacks(nt, true);
	natsConnection_Destroy(w->nc);
	w->nc = NULL;
	w->ready = false;
	set_link(nt, false);
}

/* The link came up (first time or again): flush, check the stream, report. */
static void link_check(struct w *w)
{
	struct nt *nt = w->nt;
	char why[600], epoch[NT_EPOCH_MAX];
	uint64_t first = 0, last = 0;
	natsStatus s;

	w->link_check = false;
	w->retry_at = 0;
	if (!w->nc || !link_up(nt))
		return;
	s = natsConnection_FlushTimeout(w->nc, nt->request_timeout_ms);
	if (s != NATS_OK) {
		w->link_check = true;
		w->retry_at = now_ms() + backoff(w);
		return;
	}
	if (nt->js) {
		int r =
		    nt_js_ensure(nt, w->nc, epoch, sizeof(epoch), &first, &last, why, sizeof(why));
		struct ev *e;
		if (r) {
			report_down(w, why);
			w->ready = false;
			w->link_check = true;
			w->retry_at = now_ms() + backoff(w);
			return;
		}
		e = nt_ev_new(EV_EPOCH, NULL, epoch, NULL, 0);
		if (e) {
			e->seq = first;
			e->last = last;
		}
		nt_ev_push(nt, e);
		if (!w->ack_sub) {
			char subj[200];
			if (!w->inbox && natsInbox_Create(&w->inbox) != NATS_OK)
				w->inbox = NULL;
			snprintf(subj, sizeof(subj), "%s.*", w->inbox ? w->inbox : "_INBOX.fanout");
			if (natsConnection_Subscribe(&w->ack_sub, w->nc, subj, on_ack, nt) ==
			    NATS_OK) {
				pthread_mutex_lock(&nt->life_mu);
				nt->live_subs++;
				pthread_mutex_unlock(&nt->life_mu);
				natsSubscription_SetOnCompleteCB(w->ack_sub, on_sub_done, nt);
				natsConnection_FlushTimeout(w->nc, nt->request_timeout_ms);
			} else {
				w->ack_sub = NULL;
			}
		}
	}
	w->attempt = 0;
	w->ready = true;
	w->last_why[0] = 0;
	if (nt->was_up)
		w->gap_due = true;
	nt->was_up = true;
	{
		char url[256] = "";
		natsConnection_GetConnectedUrl(w->nc, url, sizeof(url));
		nt_push_state(nt, FANOUT_UP, "connected to %s%s", url,
			      nt->js ? " (JetStream)" : "");
	}
	if (w->n_pending)
		w->confirm_at = now_ms();
}

/* ---- commands ---- */

static void push_sub_answer(struct nt *nt, const char *chan, uint64_t req, int status, int64_t sid,
			    const char *epoch, uint64_t top)
{
	struct ev *e = nt_ev_new(EV_SUBSCRIBED, chan, epoch, NULL, 0);

	if (!e)
		return;
	e->req = req;
	e->status = status;
	e->sid = sid;
	e->seq = top;
	nt_ev_push(nt, e);
}

static void push_pub_answer(struct nt *nt, uint64_t token, int status, const char *why)
{
	struct ev *e = nt_ev_new(EV_PUBLISHED, NULL, NULL, why, why ? strlen(why) : 0);

	if (!e)
		return;
	e->token = token;
	e->status = status;
	nt_ev_push(nt, e);
}

static void do_sub(struct w *w, struct cmd *c)
{
	struct nt *nt = w->nt;
	struct wsub *ws = ntab_del(&w->subs, c->chan);

	if (ws) { /* an older subscription of the channel: replace it */
		unsub_now(ws);
		if (ws->pending)
			w->n_pending--;
		free(ws);
	}
	ws = calloc(1, sizeof(*ws));
	if (!ws || nn_subject(nt->prefix, c->chan, ws->base, sizeof(ws->base)) ||
	    snprintf(ws->subject, sizeof(ws->subject), "%s%s", nt->js ? nt->rp_prefix : "",
		     ws->base) >= (int)sizeof(ws->subject) ||
	    ntab_put(&w->subs, c->chan, ws)) {
		free(ws);
		push_sub_answer(nt, c->chan, c->req, FANOUT_EINVAL, 0, NULL, 0);
		return;
	}
	ws->req = c->req;
	ws->pending = true;
	w->n_pending++;
	if (w->nc && sub_now(w, ws) != NATS_OK) {
		char line[1100];
		snprintf(line, sizeof(line), "SUB %s: %s", ws->subject, nats_GetLastError(NULL));
		nt_ev_push(nt, nt_ev_new(EV_LOG, NULL, NULL, line, strlen(line)));
		free(ntab_del(&w->subs, c->chan));
		w->n_pending--;
		push_sub_answer(nt, c->chan, c->req, FANOUT_EIO, 0, NULL, 0);
	}
}

static void do_unsub(struct w *w, struct cmd *c)
{
	struct wsub *ws = ntab_del(&w->subs, c->chan);

	if (!ws)
		return;
	unsub_now(ws);
	if (ws->pending)
		w->n_pending--;
	free(ws);
}

static void do_pub(struct w *w, struct cmd *c)
{
	struct nt *nt = w->nt;
	char subj[NN_SUBJECT_MAX], reply[300];
	natsStatus s;

	if (!w->nc || !w->ready || !link_up(nt)) {
		push_pub_answer(nt, c->token, FANOUT_EUNAVAIL, "not connected");
		return;
	}
	if (nn_subject(nt->prefix, c->chan, subj, sizeof(subj))) {
		push_pub_answer(nt, c->token, FANOUT_EINVAL, "not a NATS subject");
		return;
	}
	if (nt->js) {
		snprintf(reply, sizeof(reply), "%s.%llu", w->inbox ? w->inbox : "_INBOX.fanout",
			 (unsigned long long)c->token);
		s = natsConnection_PublishRequest(w->nc, subj, reply, c->data, (int)c->len);
		if (s != NATS_OK)
			push_pub_answer(nt, c->token, FANOUT_EIO, natsStatus_GetText(s));
		return;
	}
	s = natsConnection_Publish(w->nc, subj, c->data, (int)c->len);
	if (s != NATS_OK) {
		push_pub_answer(nt, c->token, FANOUT_EIO, natsStatus_GetText(s));
		return;
	}
	if (w->npubs == w->cappubs) {
		size_t cap = w->cappubs ? w->cappubs * 2 : 64;
		struct wpub *p = realloc(w->pubs, cap * sizeof(*p));
		if (!p) {
			push_pub_answer(nt, c->token, FANOUT_ENOMEM, "out of memory");
			return;
		}
		w->pubs = p;
		w->cappubs = cap;
	}
	w->pubs[w->npubs].token = c->token;
	snprintf(w->pubs[w->npubs].subject, sizeof(w->pubs[0].subject), "%s", subj);
	w->npubs++;
}

static void do_top(struct w *w, struct cmd *c)
{
	struct nt *nt = w->nt;
	char subj[NN_SUBJECT_MAX], epoch[NT_EPOCH_MAX] = "", why[512];
	uint64_t top = 0;
	int r;
	struct ev *e;

	if (!w->nc || !w->ready || !link_up(nt))
		r = FANOUT_EUNAVAIL;
	else if (nn_subject(nt->prefix, c->chan, subj, sizeof(subj)))
		r = FANOUT_EINVAL;
	else
		r = nt_js_top(nt, w->nc, subj, epoch, sizeof(epoch), &top, why, sizeof(why));
	e = nt_ev_new(EV_TOP, NULL, r ? NULL : epoch, NULL, 0);
	if (!e)
		return;
	e->token = c->token;
	e->status = r;
	e->seq = top;
	nt_ev_push(nt, e);
}

static void do_history(struct w *w, struct cmd *c)
{
	struct nt *nt = w->nt;
	char subj[NN_SUBJECT_MAX];
	struct ev *e;
	int r = 0;

	if (!w->nc || !w->ready || !link_up(nt))
		r = FANOUT_EUNAVAIL;
	else if (nn_subject(nt->prefix, c->chan, subj, sizeof(subj)))
		r = FANOUT_EINVAL;
	if (!r) {
		nt_js_history(nt, w->nc, c, subj);
		return;
	}
	e = nt_ev_new(EV_HISTORY, NULL, NULL, NULL, 0);
	if (!e)
		return;
	e->token = c->token;
	e->status = r;
	nt_ev_push(nt, e);
}

/* ---- the end of a batch: one flush confirms subscribes and publishes ---- */

struct confirm_arg {
	struct w *w;
	const char *last_err;
};

static void confirm_one(const char *chan, void *val, void *arg)
{
	struct confirm_arg *a = arg;
	struct w *w = a->w;
	struct nt *nt = w->nt;
	struct wsub *ws = val;
	char refused[NN_SUBJECT_MAX], epoch[NT_EPOCH_MAX] = "", why[512];
	uint64_t top = 0;
	int r = 0;

	if (!ws->pending || !ws->sub)
		return;
	/* The server answers a refused SUB with -ERR before our PONG; libnats
	 * keeps the text as the connection's last error. */
	if (a->last_err && nn_sub_violation(a->last_err, refused, sizeof(refused)) &&
	    !strcmp(refused, ws->subject)) {
		r = FANOUT_EDENIED;
	} else if (nt->js) {
		r = nt_js_top(nt, w->nc, ws->base, epoch, sizeof(epoch), &top, why, sizeof(why));
		if (r) {
			char line[800];
			snprintf(line, sizeof(line), "subscribe %s: %s", chan, why);
			nt_ev_push(nt, nt_ev_new(EV_LOG, NULL, NULL, line, strlen(line)));
		}
	}
	ws->pending = false;
	w->n_pending--;
	push_sub_answer(nt, chan, ws->req, r, r ? 0 : natsSubscription_GetID(ws->sub),
			r ? NULL : epoch, top);
	if (r) {
		/* The loop forgets the channel; ws stays (dead) until the
		 * channel is subscribed again or the worker ends. */
		unsub_now(ws);
		ws->dead = true;
	}
}

static void finish_batch(struct w *w)
{
	struct nt *nt = w->nt;
	bool want = w->npubs || (w->n_pending && w->ready);
	const char *last_err = NULL;
	natsStatus s = NATS_OK;

	if (!want)
		return;
	if (!w->nc || !link_up(nt))
		s = NATS_CONNECTION_DISCONNECTED;
	else
		s = natsConnection_FlushTimeout(w->nc, nt->request_timeout_ms);
	if (s == NATS_OK && w->nc)
		natsConnection_GetLastError(w->nc, &last_err);
	for (size_t i = 0; i < w->npubs; i++) {
		int r = s == NATS_OK ? 0 : FANOUT_EIO;
		/* A publish the server refused: "Permissions Violation for Publish to X". */
		if (!r && last_err && strcasestr(last_err, "violation for publish") &&
		    strstr(last_err, w->pubs[i].subject))
			r = FANOUT_EDENIED;
		push_pub_answer(nt, w->pubs[i].token, r, r ? "not confirmed by the server" : NULL);
	}
	w->npubs = 0;
	if (w->n_pending && w->ready) {
		if (s == NATS_OK) {
			struct confirm_arg a = {w, last_err};
			ntab_each(&w->subs, confirm_one, &a);
			w->confirm_at = 0;
		} else {
			/* Stopped or unreachable server: try again soon (or when
			 * the link comes back). */
			w->confirm_at = now_ms() + 500;
		}
	}
}

/* ---- the thread ---- */

static void free_wsub(void *v)
{
	free(v);
}

static void *worker_main(void *arg)
{
	struct w w;
	struct nt *nt = arg;

	memset(&w, 0, sizeof(w));
	w.nt = nt;
	connect_now(&w);
	for (;;) {
		struct cmd *list, *c, *n;
		int event;
		bool stop;
		uint64_t now;

		pthread_mutex_lock(&nt->cmd_mu);
		for (;;) {
			uint64_t due = 0;
			if (nt->stopping || nt->cmd_head || nt->link_event)
				break;
			if (w.retry_at)
				due = w.retry_at;
			else if (w.link_check)
				break;
			if (w.confirm_at && (!due || w.confirm_at < due))
				due = w.confirm_at;
			if (!due) {
				pthread_cond_wait(&nt->cmd_cv, &nt->cmd_mu);
				continue;
			}
			now = now_ms();
			if (now >= due)
				break;
			{
				struct timespec ts;
				uint64_t ms = due - now;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += (time_t)(ms / 1000);
				ts.tv_nsec += (long)(ms % 1000) * 1000000L;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&nt->cmd_cv, &nt->cmd_mu, &ts);
			}
		}
		list = nt->cmd_head;
		nt->cmd_head = NULL;
		nt->cmd_tail = &nt->cmd_head;
		event = nt->link_event;
		nt->link_event = 0;
		stop = nt->stopping;
		pthread_mutex_unlock(&nt->cmd_mu);

		if (stop) {
			for (c = list; c; c = n) {
				n = c->next;
				free(c);
			}
			break;
		}
		now = now_ms();
		if (event == 2) { /* closed for good: start over */
			drop_connection(&w);
			w.retry_at = now + backoff(&w);
		} else if (event == 1) {
			w.link_check = true;
		}
		if (!w.nc && w.retry_at && now >= w.retry_at)
			connect_now(&w);
		else if (w.link_check && (!w.retry_at || now >= w.retry_at))
			link_check(&w);
		for (c = list; c; c = n) {
			n = c->next;
			switch (c->kind) {
			case CMD_SUB:
				do_sub(&w, c);
				break;
			case CMD_UNSUB:
				do_unsub(&w, c);
				break;
			case CMD_PUB:
				do_pub(&w, c);
				break;
			case CMD_TOP:
				do_top(&w, c);
				break;
			case CMD_HISTORY:
				do_history(&w, c);
				break;
			}
			free(c);
		}
		if (w.confirm_at && now_ms() >= w.confirm_at)
			w.confirm_at = 0;
		finish_batch(&w);
		/* After a reconnect: the gap once every subscription is
		 * confirmed again, so messages after it are really live. */
		if (w.gap_due && w.ready && !w.n_pending) {
			w.gap_due = false;
			nt_ev_push(nt,
				   nt_ev_new(EV_GAP, NULL, NULL, "reconnected to the broker", 25));
		}
	}
	drop_connection(&w);
	ntab_free(&w.subs, free_wsub);
	free(w.pubs);
	if (w.inbox)
		natsInbox_Destroy(w.inbox);
	natsOptions_Destroy(w.opts);
	return NULL;
}

int nt_worker_start(struct nt *nt)
{
	int r = pthread_create(&nt->worker, NULL, worker_main, nt);

	if (r) {
		nt->host->log(nt->b, FANOUT_LOG_ERR, "cannot start the worker thread: %s",
			      strerror(r));
		return FANOUT_ENOMEM;
	}
	nt->worker_started = true;
	return 0;
}

void nt_worker_stop(struct nt *nt)
{
	if (!nt->worker_started)
		return;
	pthread_mutex_lock(&nt->cmd_mu);
	__atomic_store_n(&nt->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&nt->cmd_cv);
	pthread_mutex_unlock(&nt->cmd_mu);
	pthread_join(nt->worker, NULL);
	nt->worker_started = false;
}

void nt_cmd_push(struct nt *nt, struct cmd *c)
{
	pthread_mutex_lock(&nt->cmd_mu);
	c->next = NULL;
	*nt->cmd_tail = c;
	nt->cmd_tail = &c->next;
	pthread_cond_signal(&nt->cmd_cv);
	pthread_mutex_unlock(&nt->cmd_mu);
}
