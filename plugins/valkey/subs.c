/*
 * subs.c — the valkey backend's channels: the table of channels local
 * clients want (a chained hash of struct chan), demand-driven SUBSCRIBE /
 * UNSUBSCRIBE on the subscriber connection (a 0 ms "flush" timer batches one
 * loop turn's changes into one command of at most MAX_BATCH channels), the
 * broker's subscribe/unsubscribe replies and messages, the confirmation
 * deadline of a SUBSCRIBE, and the resubscription of every wanted channel
 * after a reconnect, ended by one host->gap(NULL, "backend reconnected").
 *
 * Refusals: the broker answers a SUBSCRIBE with one error for the whole
 * command when any of its channels is not allowed (ACL -NOPERM). The
 * channels of a refused batch are sent again one per SUBSCRIBE ("solo"), so
 * exactly the forbidden ones are refused (host->subscribed(channel, 0)) and
 * the others subscribe; nothing else on the connection is disturbed. A
 * channel that was live and is refused when subscribed again (its ACL
 * changed, the broker disconnected us) stays wanted: it gets the global gap
 * and is retried every reconnect_max_ms, with a gap of its own once it is
 * subscribed again.
 *
 * Runs on the host's loop thread. Allocates one struct chan (and its name)
 * per channel that is wanted or has a command in flight, freed once neither
 * holds; the table grows by doubling. subs_free() frees all of it and the
 * three timers.
 */
#include "vk.h"

#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- messages held while a channel waits for its top ---- */

static void held_drop(struct vk *vk, struct chan *c)
{
	struct held *h = c->held;

	while (h) {
		struct held *n = h->next;
		vk->held_bytes -= h->len;
		free(h);
		h = n;
	}
	c->held = NULL;
	c->held_tail = &c->held;
}

static void hold(struct vk *vk, struct chan *c, const struct vk_pos *pos, const char *data,
		 size_t len)
{
	struct held *h;

	if (vk->held_bytes + len > MAX_HELD_BYTES || !(h = malloc(sizeof(*h) + len))) {
		/* The hub sees the offset jump after the top and repairs it. */
		count(vk, "held_overflow", 1);
		return;
	}
	h->next = NULL;
	h->positioned = pos != NULL;
	h->offset = pos ? pos->offset : 0;
	snprintf(h->epoch, sizeof(h->epoch), "%s", pos ? pos->epoch : "");
	h->len = len;
	memcpy(h->data, data, len);
	*c->held_tail = h;
	c->held_tail = &h->next;
	vk->held_bytes += len;
}

/*
 * Hand one message to the host, positioned when it carries a position and
 * this backend keeps positions (else the envelope is just stripped). After
 * subscribed_at(top) a message at or below top is dropped: the top covers
 * it. Such messages arrive after the top's reply when they were published
 * between the SUBSCRIBE and the top read (two connections, read in any
 * order); once a newer one passed, the floor is cleared (one connection
 * delivers in publish order).
 */
static void emit(struct vk *vk, struct chan *c, const char *name, const struct vk_pos *pos,
		 const char *data, size_t len)
{
	if (pos && c && c->floor_set) {
		if (strcmp(pos->epoch, c->floor_epoch) == 0 && pos->offset <= c->floor)
			return;
		c->floor_set = false;
	}
	if (pos && vk->positioned)
		vk->host->deliver_at(vk->b, name, pos->epoch, pos->offset, data, len);
	else
		vk->host->deliver(vk->b, name, data, len);
}

/* ---- channel table ---- */

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
	c->held_tail = &c->held;
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
			held_drop(vk, dead);
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

/* ---- subscriber side ---- */

/* Every wanted channel is subscribed, or refused and retried (it gets a gap
 * of its own when it is subscribed again). */
static bool all_confirmed(struct vk *vk)
{
	FOR_EACH_CHAN(vk, c, n)
	{
		if (c->wanted && !c->confirmed && !c->refused)
			return false;
	}
	return true;
}

static void maybe_finish_resubscribe(struct vk *vk)
{
	if (!vk->gap_pending || !vk->probe_confirmed || !all_confirmed(vk))
		return;
	vk->gap_pending = false;
	count(vk, "reconnects", 1);
	vk->host->gap(vk->b, NULL, "backend reconnected");
}

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
	if (vk->cluster || vk->conn[SUB].phase != C_READY)
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

/* ---- answering a subscribe ---- */

/* Forget a top read in flight for c (its answer will be stale) and what
 * was held for it. */
static void top_cancel(struct vk *vk, struct chan *c)
{
	if (!c->top_pending)
		return;
	c->top_pending = false;
	c->top_wait = false;
	c->top_seq++;
	held_drop(vk, c);
}

/* A positioned channel could not read its top: the subscribe fails. May free c. */
static void answer_fail(struct vk *vk, struct chan *c)
{
	c->top_pending = false;
	c->top_wait = false;
	held_drop(vk, c);
	count(vk, "subscribe_errors", 1);
	if (c->wanted && !c->answered) {
		c->answered = true;
		c->wanted = false;
		if (c->confirmed) {
			c->confirmed = false;
			c->unsub_queued = true;
			vk->host->timer_arm(vk->t_flush, 0);
		}
		vk->host->subscribed(vk->b, c->name, 0);
	}
	chan_maybe_free(vk, c);
}

static void ask_top(struct vk *vk, struct chan *c)
{
	int rc = hist_sub_top(vk, c->name, ++c->top_seq);

	if (rc == FANOUT_EUNAVAIL)
		c->top_wait = true; /* asked again by subs_cmd_ready() */
	else if (rc < 0)
		answer_fail(vk, c);
}

/*
 * The broker confirmed the subscription of a wanted channel: tell the host.
 * A positioned channel first reads its top (after the confirmation, so
 * every newer message reaches deliver_at()); messages arriving meanwhile
 * are held and released behind subscribed_at(). May free c.
 */
static void answer_ok(struct vk *vk, struct chan *c)
{
	if (!vk->positioned) {
		c->answered = true;
		vk->host->subscribed(vk->b, c->name, 1);
		return;
	}
	if (c->top_pending)
		return;
	c->top_pending = true;
	c->top_wait = false;
	ask_top(vk, c);
}

void subs_top_done(struct vk *vk, const char *channel, uint64_t seq, int status, const char *epoch,
		   uint64_t top)
{
	struct chan *c = chan_find(vk, channel);
	struct held *h;

	if (!c || !c->top_pending || c->top_seq != seq)
		return; /* stale: unsubscribed, reconnected or asked again since */
	if (status == FANOUT_EUNAVAIL) {
		c->top_wait = true; /* the command connection went away */
		return;
	}
	if (status < 0) {
		answer_fail(vk, c);
		return;
	}
	c->top_pending = false;
	h = c->held;
	c->held = NULL;
	c->held_tail = &c->held;
	c->floor_set = true;
	snprintf(c->floor_epoch, sizeof(c->floor_epoch), "%s", epoch);
	c->floor = top;
	if (c->wanted && !c->answered) {
		c->answered = true;
		vk->host->subscribed_at(vk->b, channel, 1, epoch, top, FANOUT_POS_CONTIGUOUS);
	}
	/* Release what arrived meanwhile, minus what the top already covers.
	 * (The host may have called unsubscribe() from subscribed_at(): then
	 * c is still there, its UNSUBSCRIBE queued, and these go to nobody.) */
	while (h) {
		struct held *n = h->next;
		struct vk_pos pos;
		vk->held_bytes -= h->len;
		snprintf(pos.epoch, sizeof(pos.epoch), "%s", h->epoch);
		pos.offset = h->offset;
		emit(vk, c, channel, h->positioned ? &pos : NULL, h->data, h->len);
		free(h);
		h = n;
	}
}

/* The command connection is ready (again): read the tops that waited for it. */
void subs_cmd_ready(struct vk *vk)
{
	FOR_EACH_CHAN(vk, c, n)
	{
		if (c->top_pending && c->top_wait) {
			c->top_wait = false;
			ask_top(vk, c);
		}
	}
}

/* The channel entry of broker channel full[0..len), or NULL. */
struct chan *subs_chan_of(struct vk *vk, const char *full, size_t len)
{
	if (len < vk->prefix_len || memcmp(full, vk->prefix, vk->prefix_len) != 0)
		return NULL;
	if (strlen(full + vk->prefix_len) != len - vk->prefix_len)
		return NULL; /* a NUL inside the channel name: not one of ours */
	return chan_find(vk, full + vk->prefix_len);
}

/* A message on broker channel ch[0..chlen) (NUL-terminated). */
void subs_message(struct vk *vk, const char *ch, size_t chlen, const char *payload, size_t plen)
{
	const char *name, *data;
	size_t len;
	struct vk_pos pos;
	struct chan *c;
	enum vk_env_result r;

	if (chlen == vk->probe_chan_len && memcmp(ch, vk->probe_chan, chlen) == 0) {
		probe_receive(vk, payload, plen);
		return;
	}
	c = subs_chan_of(vk, ch, chlen);
	if (!c || !c->wanted)
		return; /* late message for a channel we are leaving */
	name = c->name;
	count(vk, "messages", 1);
	r = vk_envelope_parse(payload, plen, &pos, &data, &len);
	if (r == VK_ENV_BAD) {
		/* Delivered whole and unpositioned: nothing is lost. */
		count(vk, "bad_envelopes", 1);
		vk_log_failure(vk, vk->conn[SUB].last_logged, sizeof(vk->conn[SUB].last_logged),
			       FANOUT_LOG_WARN,
			       "a message starts like a position envelope but is malformed: "
			       "delivered unpositioned");
	}
	if (c->top_pending) {
		hold(vk, c, r == VK_ENV_POSITIONED ? &pos : NULL, data, len);
		return;
	}
	emit(vk, c, name, r == VK_ENV_POSITIONED ? &pos : NULL, data, len);
}

/*
 * The broker confirmed the subscription of c (on its current connection or
 * shard). May free c.
 */
void subs_confirmed(struct vk *vk, struct chan *c)
{
	c->sub_sent = false;
	if (!c->wanted) {
		/* Demand left while the SUBSCRIBE was in flight. */
		c->unsub_queued = true;
		vk->host->timer_arm(vk->t_flush, 0);
		return;
	}
	c->confirmed = true;
	c->solo = false;
	c->refused = false;
	if (c->regap) {
		/* Cluster: subscribed again after its shard reconnected or its slot
		 * moved; what was published meanwhile may be missing. */
		c->regap = false;
		if (c->answered) {
			count(vk, "reconnects", 1);
			vk->host->gap(vk->b, c->name, c->regap_why);
		}
	}
	if (!c->answered)
		answer_ok(vk, c); /* may free c */
}

/* The broker refused to subscribe c (ACL, ...). May free c. */
void subs_fail(struct vk *vk, struct chan *c)
{
	count(vk, "subscribe_errors", 1);
	c->sub_sent = false;
	c->solo = false;
	if (c->wanted && !c->answered) {
		c->answered = true;
		c->wanted = false;
		vk->host->subscribed(vk->b, c->name, 0);
	} else if (c->wanted) {
		/* Was live: try again (cluster: with the next slot map; else
		 * after reconnect_max_ms), then a gap. */
		c->regap = true;
		c->regap_why = "backend could not subscribe again";
		c->shard = NULL;
		if (!vk->cluster) {
			c->refused = true;
			vk->host->timer_arm(vk->t_resub, vk->reconnect_max_ms);
			maybe_finish_resubscribe(vk);
		}
	}
	chan_maybe_free(vk, c);
}

/*
 * The broker answered a SUBSCRIBE of nbatch channels, c among them, with
 * one error (err). With several, which one is refused is unknown: c is sent
 * again alone. Alone, c is refused. May free c.
 */
void subs_refused(struct vk *vk, struct chan *c, size_t nbatch, const char *err)
{
	c->sub_sent = false;
	if (nbatch > 1) {
		c->solo = true;
		c->sub_queued = c->wanted;
		vk->host->timer_arm(vk->t_flush, 0);
		chan_maybe_free(vk, c);
		return;
	}
	{
		char msg[400];
		snprintf(msg, sizeof(msg), "%s %s%s refused by the broker: %s",
			 vk->cluster ? "SSUBSCRIBE" : "SUBSCRIBE", vk->prefix, c->name, err);
		vk_log_failure(vk, vk->refused_logged, sizeof(vk->refused_logged), FANOUT_LOG_WARN,
			       msg);
	}
	subs_fail(vk, c);
}

/* Retry the live channels whose SUBSCRIBE was refused after a reconnect. */
static void on_resub(struct fanout_timer *t, void *arg)
{
	struct vk *vk = arg;

	(void)t;
	FOR_EACH_CHAN(vk, c, n)
	{
		if (c->refused && c->wanted && !c->confirmed && !c->sub_sent &&
		    !c->unsub_inflight) {
			c->solo = true;
			c->sub_queued = true;
		}
	}
	vk->host->timer_arm(vk->t_flush, 0);
}

/* The broker's answer to an UNSUBSCRIBE of c. May free c. */
void subs_unsub_reply(struct vk *vk, struct chan *c)
{
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

/* An error reply on the subscriber connection: the answer to the oldest
 * (UN)SUBSCRIBE awaiting replies. */
static void sub_error(struct vk *vk, const redisReply *reply)
{
	struct conn *cn = &vk->conn[SUB];
	const struct rconn_pend *p = rconn_pend_head(&cn->rc);

	count(vk, "error_replies", 1);
	if (!p) {
		vk->host->log(vk->b, FANOUT_LOG_WARN, "subscriber: error reply: %s", reply->str);
		return;
	}
	if (p->sub && p->n == 1 && strcmp(p->names[0], vk->probe_chan) == 0) {
		char msg[512];
		snprintf(msg, sizeof(msg),
			 "SUBSCRIBE of the probe channel refused by the broker: %s (the ACL user "
			 "needs the channels &%s__fanout_probe:*)",
			 reply->str, vk->prefix);
		count(vk, "auth_failures", 1);
		cn->penalty = true;
		conn_drop_now(cn, msg); /* forgets p */
		return;
	}
	if (!p->sub)
		vk->host->log(vk->b, FANOUT_LOG_WARN, "subscriber: UNSUBSCRIBE refused: %s",
			      reply->str);
	for (size_t i = 0; i < p->n; i++) {
		struct chan *c = subs_chan_of(vk, p->names[i], strlen(p->names[i]));
		if (!c)
			continue;
		if (!p->sub)
			subs_unsub_reply(vk, c); /* may free c */
		else if (c->sub_sent)
			subs_refused(vk, c, p->n, reply->str); /* may free c */
	}
	rconn_pend_pop(&cn->rc);
	maybe_finish_resubscribe(vk);
}

/* A reply or push on the single broker's subscriber connection (rconn.c). */
void subs_reply(struct vk *vk, const redisReply *reply)
{
	struct conn *cn = &vk->conn[SUB];
	const char *kind;

	if (reply->type == REDIS_REPLY_ERROR) {
		sub_error(vk, reply);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_STRING)
		return;
	kind = reply->element[0]->str;
	if (strcasecmp(kind, "message") == 0) {
		if (reply->element[2]->type == REDIS_REPLY_STRING)
			subs_message(vk, reply->element[1]->str, reply->element[1]->len,
				     reply->element[2]->str, reply->element[2]->len);
		return;
	}
	if (strcasecmp(kind, "subscribe") == 0) {
		const char *full = reply->element[1]->str;
		struct chan *c;

		if (rconn_pend_head(&cn->rc) && rconn_pend_head(&cn->rc)->sub)
			rconn_pend_reply(&cn->rc);
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
		c = subs_chan_of(vk, full, reply->element[1]->len);
		if (!c)
			return;
		subs_confirmed(vk, c); /* may free c */
		maybe_finish_resubscribe(vk);
		return;
	}
	if (strcasecmp(kind, "unsubscribe") == 0) {
		const char *full = reply->element[1]->str;
		struct chan *c;

		if (rconn_pend_head(&cn->rc) && !rconn_pend_head(&cn->rc)->sub)
			rconn_pend_reply(&cn->rc);
		c = subs_chan_of(vk, full, reply->element[1]->len);
		if (c)
			subs_unsub_reply(vk, c);
	}
}

/* Send SUBSCRIBE/UNSUBSCRIBE for n broker channels in one command. */
static int send_batch(struct vk *vk, bool sub, struct chan **chans, size_t n)
{
	char **full = calloc(n, sizeof(*full));
	size_t *lens = calloc(n, sizeof(*lens));
	size_t k = 0;
	int rc = FANOUT_ENOMEM;

	if (!full || !lens)
		goto out;
	for (; k < n; k++)
		if (!(full[k] = vk_broker_name(vk, chans[k]->name, &lens[k])))
			goto out;
	rc = rconn_send_chans(&vk->conn[SUB].rc, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", sub,
			      (const char *const *)full, lens, n);
out:
	for (size_t i = 0; full && i < k; i++)
		free(full[i]);
	free(full);
	free(lens);
	return rc;
}

/* The batch was sent: mark its channels. */
static void batch_sent(struct chan **chans, size_t n, bool sub, uint64_t now)
{
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

/* Send every queued SUBSCRIBE / UNSUBSCRIBE, batched. Only once the
 * subscriber is ready (probe channel confirmed): before that they wait. */
static void flush_channels(struct vk *vk)
{
	struct chan *chans[MAX_BATCH];
	size_t n;
	struct conn *cn = &vk->conn[SUB];
	uint64_t now;

	if (vk->cluster) {
		cluster_flush(vk);
		return;
	}
	if (cn->rc.phase != R_READY || !vk->probe_confirmed)
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
			if (sub && c->solo) {
				/* Its batch was refused: alone, to learn whether it is. */
				if (send_batch(vk, true, &c, 1) < 0)
					goto fail;
				batch_sent(&c, 1, true, now);
				continue;
			}
			chans[n++] = c;
			if (n == MAX_BATCH) {
				if (send_batch(vk, sub, chans, n) < 0)
					goto fail;
				batch_sent(chans, n, sub, now);
				n = 0;
			}
		}
		if (n) {
			if (send_batch(vk, sub, chans, n) < 0)
				goto fail;
			batch_sent(chans, n, sub, now);
		}
	}
	vk->host->timer_arm(vk->t_confirm, vk->probe_timeout_ms);
	return;
fail:
	/* rconn closed the connection itself when over its output cap. */
	vk->host->log(vk->b, FANOUT_LOG_ERR, "cannot queue a (UN)SUBSCRIBE command");
	conn_drop_later(cn, "cannot queue a command");
}

static void on_flush(struct fanout_timer *t, void *arg)
{
	(void)t;
	flush_channels(arg);
}

/* The subscriber passed AUTH/SELECT: subscribe the probe channel, then the rest. */
void subs_ready(struct vk *vk)
{
	struct conn *cn = &vk->conn[SUB];
	const char *names[] = {vk->probe_chan};

	if (rconn_send_chans(&cn->rc, "SUBSCRIBE", true, names, &vk->probe_chan_len, 1) < 0) {
		conn_drop_later(cn, "cannot queue SUBSCRIBE");
		return;
	}
	/* The wanted channels go out in the same write, right behind it. */
	vk->probe_confirmed = true; /* let flush_channels queue them */
	flush_channels(vk);
	vk->probe_confirmed = false;
}

int subs_subscribe(void *state, const char *channel)
{
	struct vk *vk = state;
	struct chan *c;

	if (vk_reserved(channel)) {
		/* fanoutd refuses "__" names; this guards the probe against any host. */
		vk->host->subscribed(vk->b, channel, 0);
		return 0;
	}
	c = chan_find(vk, channel);
	if (!c && !(c = chan_add(vk, channel)))
		return FANOUT_ENOMEM;
	if (c->wanted && c->confirmed) {
		c->answered = false;
		answer_ok(vk, c);
		return 0;
	}
	c->wanted = true;
	c->answered = false;
	if (c->unsub_queued) {
		/* Left and came back within one loop turn: still subscribed. */
		c->unsub_queued = false;
		if (c->confirmed) {
			answer_ok(vk, c);
			return 0;
		}
	}
	if (!c->sub_sent && !c->confirmed)
		c->sub_queued = true;
	vk->host->timer_arm(vk->t_flush, 0);
	return 0;
}

int subs_unsubscribe(void *state, const char *channel)
{
	struct vk *vk = state;
	struct chan *c = chan_find(vk, channel);

	if (!c || !c->wanted)
		return 0;
	c->wanted = false;
	c->sub_queued = false;
	top_cancel(vk, c);
	if (c->confirmed) {
		c->confirmed = false;
		c->unsub_queued = true;
		vk->host->timer_arm(vk->t_flush, 0);
	}
	/* A SUBSCRIBE in flight is undone when its reply arrives. */
	chan_maybe_free(vk, c);
	return 0;
}

/* What was subscribed or in flight for c is void (its connection is gone, or
 * in a cluster its slot moved): subscribe again if wanted, else forget it.
 * Returns true when c was freed. */
bool subs_chan_void(struct vk *vk, struct chan *c)
{
	c->confirmed = false;
	top_cancel(vk, c); /* read again after the next confirmation */
	c->sub_sent = false;
	c->solo = false;
	c->unsub_inflight = 0;
	c->unsub_queued = false;
	c->sub_queued = c->wanted;
	if (!c->wanted) {
		chan_del(vk, c);
		return true;
	}
	return false;
}

/* The subscriber connection is gone: what was subscribed or in flight is void. */
void subs_lost(struct vk *vk)
{
	vk->probe_confirmed = false;
	vk->probe_inflight = false;
	vk->host->timer_disarm(vk->t_probe_timeout);
	vk->host->timer_disarm(vk->t_confirm);
	FOR_EACH_CHAN(vk, c, n)
	{
		subs_chan_void(vk, c);
	}
	if (vk->was_up)
		vk->gap_pending = true;
}

int subs_init(struct vk *vk)
{
	vk->tab_size = 64;
	vk->tab = calloc(vk->tab_size, sizeof(*vk->tab));
	vk->t_flush = vk->host->timer_add(vk->b, on_flush, vk);
	vk->t_confirm = vk->host->timer_add(vk->b, on_confirm_timeout, vk);
	vk->t_resub = vk->host->timer_add(vk->b, on_resub, vk);
	if (!vk->tab || !vk->t_flush || !vk->t_confirm || !vk->t_resub)
		return FANOUT_ENOMEM;
	return 0;
}

void subs_free(struct vk *vk)
{
	if (vk->t_flush)
		vk->host->timer_remove(vk->t_flush);
	if (vk->t_confirm)
		vk->host->timer_remove(vk->t_confirm);
	if (vk->t_resub)
		vk->host->timer_remove(vk->t_resub);
	if (vk->tab) {
		FOR_EACH_CHAN(vk, c, n)
		{
			free(c->name);
			free(c);
		}
	}
	free(vk->tab);
	vk->tab = NULL;
}
