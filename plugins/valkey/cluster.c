/*
 * cluster.c — the valkey backend on a Valkey/Redis Cluster (cluster = yes):
 * the slot map, one shard per primary, and the sharded pub/sub on them.
 *
 * The url names a seed node; its connection (vk->conn[CMD], conn.c) reads
 * CLUSTER SLOTS when it is ready, again every cluster_refresh_ms, and at
 * once after any sign that the map changed: a MOVED or ASK answer, a shard
 * connection lost (a failover), a server-side SUNSUBSCRIBE (a slot moved
 * away), a READONLY answer (a primary demoted to a replica; that map read
 * goes to another node, at most once per CLUSTER_READONLY_MS per shard).
 * Each primary becomes a struct shard with two connections of its own: a
 * command connection (conn.c, hiredis async: FCALL, SPUBLISH, the
 * functions library loaded on connect) and a subscriber connection
 * (rconn.c: SSUBSCRIBE/SUNSUBSCRIBE and smessage pushes, read with
 * redisReader, PINGed for liveness). A channel lives on the shard that owns
 * the slot of its broker name; its subscribes travel as one SSUBSCRIBE per
 * slot (a multi-channel SSUBSCRIBE must stay in one slot), answered in
 * order, so each SSUBSCRIBE/SUNSUBSCRIBE sent is remembered (struct
 * rconn_pend, rconn.c) to tell which channels an error reply (MOVED, an ACL
 * -NOPERM) refers to. A channel that moves to another shard, or whose
 * shard reconnected, is subscribed again there and then gets
 * host->gap(channel) (recovered by fanoutd from the history); channels of
 * the other shards never notice. A function call answered MOVED is parked
 * until the next map and sent again to the new owner; ASK sends ASKING +
 * the call to the importing node (at most 3 redirects per call).
 *
 * Runs on the host's loop thread. Allocates the slot table (16384
 * pointers), one struct shard per primary (freed by a 0 ms reap timer once
 * it left the map: a hiredis context is never freed inside its own
 * callback).
 */
#include "vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- slots: CRC16-CCITT (XMODEM) of the key or its {hash tag}, mod 16384 ---- */

static uint16_t crc16(const char *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)((unsigned char)buf[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned cluster_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len);

	if (open) {
		const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
		if (close && close > open + 1)
			return crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_SLOTS - 1);
	}
	return crc16(key, len) & (CLUSTER_SLOTS - 1);
}

/* ---- state ---- */

bool cluster_up(struct vk *vk, char *why, size_t whylen)
{
	if (!vk->map_ok) {
		snprintf(why, whylen, "%s", vk->map_why[0] ? vk->map_why : "no slot map yet");
		return false;
	}
	for (struct shard *sh = vk->shards; sh; sh = sh->next) {
		if (!sh->in_map || sh->dead)
			continue;
		if (sh->sub.phase != R_READY) {
			snprintf(why, whylen, "shard %s: subscriber connection %s", sh->addr,
				 sh->why[0] ? sh->why : "connecting");
			return false;
		}
		if (sh->cmd.phase != C_READY) {
			snprintf(why, whylen, "shard %s: command connection %s", sh->addr,
				 sh->cmd.why[0] ? sh->cmd.why : "connecting");
			return false;
		}
	}
	return true;
}

/* Send SSUBSCRIBE (sub) or SUNSUBSCRIBE for the n channels (all of one
 * slot); rconn remembers it until it is answered. */
static int send_slot_batch(struct shard *sh, bool sub, struct chan **chans, size_t n)
{
	struct vk *vk = sh->vk;
	char **names = calloc(n, sizeof(*names));
	size_t *lens = calloc(n, sizeof(*lens));
	size_t k = 0;
	int rc = FANOUT_ENOMEM;

	if (!names || !lens)
		goto out;
	for (; k < n; k++)
		if (!(names[k] = vk_broker_name(vk, chans[k]->name, &lens[k])))
			goto out;
	rc = rconn_send_chans(&sh->sub, sub ? "SSUBSCRIBE" : "SUNSUBSCRIBE", sub,
			      (const char *const *)names, lens, n);
out:
	for (size_t i = 0; names && i < k; i++)
		free(names[i]);
	free(names);
	free(lens);
	return rc;
}

/* ---- flushing subscribes ---- */

/* The shard owning c's slot in the current map (its slot computed once). */
static struct shard *owner_of(struct vk *vk, struct chan *c, unsigned *slot)
{
	if (!c->has_slot) {
		size_t l;
		char *full = vk_broker_name(vk, c->name, &l);
		if (!full) {
			*slot = 0;
			return NULL;
		}
		c->slot = (uint16_t)cluster_slot(full, l);
		c->has_slot = true;
		free(full);
	}
	*slot = c->slot;
	return vk->slots[*slot];
}

static int cmp_slot(const void *a, const void *b)
{
	const unsigned *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Send every queued SSUBSCRIBE / SUNSUBSCRIBE of one shard, one command per slot. */
static void flush_shard(struct vk *vk, struct shard *sh)
{
	size_t cap = 0, n = 0;
	unsigned(*order)[2] = NULL; /* {slot, index} */
	struct chan **chans = NULL;

	for (int pass = 0; pass < 2; pass++) {
		bool sub = pass == 0;
		n = 0;
		FOR_EACH_CHAN(vk, c, nx)
		{
			unsigned slot;
			if (sub ? !c->sub_queued : !c->unsub_queued)
				continue;
			if (sub && c->unsub_inflight)
				continue; /* subscribed again when the unsubscribe is answered */
			if (sub && !c->shard)
				c->shard = owner_of(vk, c, &slot);
			if (c->shard != sh)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				void *o = realloc(order, nc * sizeof(*order));
				void *cs = o ? realloc(chans, nc * sizeof(*chans)) : NULL;
				if (o)
					order = o;
				if (!cs)
					goto out;
				chans = cs;
				cap = nc;
			}
			owner_of(vk, c, &slot);
			order[n][0] = slot;
			order[n][1] = (unsigned)n;
			chans[n++] = c;
		}
		if (!n)
			continue;
		{
			/* Sort by slot; one command per run of equal slots. */
			struct chan **batch = malloc(n * sizeof(*batch));
			if (!batch)
				goto out;
			qsort(order, n, sizeof(*order), cmp_slot);
			for (size_t i = 0; i < n;) {
				size_t j = i, k = 0;
				/* A solo channel (its batch was refused) goes alone. */
				while (j < n && order[j][0] == order[i][0] && k < MAX_BATCH &&
				       (k == 0 || (!batch[0]->solo && !chans[order[j][1]]->solo)))
					batch[k++] = chans[order[j++][1]];
				if (send_slot_batch(sh, sub, batch, k) < 0) {
					free(batch);
					goto out;
				}
				for (size_t m = 0; m < k; m++) {
					if (sub) {
						batch[m]->sub_queued = false;
						batch[m]->sub_sent = true;
					} else {
						batch[m]->unsub_queued = false;
						batch[m]->unsub_inflight++;
					}
				}
				i = j;
			}
			free(batch);
		}
	}
out:
	free(order);
	free(chans);
}

void cluster_flush(struct vk *vk)
{
	if (!vk->map_ok && !vk->shards)
		return;
	for (struct shard *sh = vk->shards; sh; sh = sh->next)
		if (!sh->dead && sh->sub.phase == R_READY)
			flush_shard(vk, sh);
}

/* ---- the slot map ---- */

static void shard_reap(struct fanout_timer *t, void *arg);
static struct shard *shard_new(struct vk *vk, const char *ip, int port);

static struct shard *shard_find(struct vk *vk, const char *ip, int port)
{
	for (struct shard *sh = vk->shards; sh; sh = sh->next)
		if (!sh->dead && sh->port == port && strcmp(sh->ip, ip) == 0)
			return sh;
	return NULL;
}

/* A node entry of CLUSTER SLOTS: [ip, port, id, ...]. */
static bool node_addr(struct vk *vk, const redisReply *n, const char **ip, int *port)
{
	if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
	    n->element[0]->type != REDIS_REPLY_STRING || n->element[1]->type != REDIS_REPLY_INTEGER)
		return false;
	*ip = n->element[0]->str;
	/* A node that does not know its own address answers "": the seed's. */
	if (!**ip)
		*ip = vk->host_name;
	*port = (int)n->element[1]->integer;
	return *port > 0 && *port < 65536;
}

/* Every channel on a shard that is gone or no longer owns its slot moves. */
static void reassign(struct vk *vk)
{
	FOR_EACH_CHAN(vk, c, n)
	{
		unsigned slot;
		struct shard *owner;
		if (!c->shard) {
			/* Refused before (subs_fail): try again on this map. */
			if (c->wanted && !c->confirmed && !c->sub_sent && !c->sub_queued &&
			    !c->unsub_inflight)
				c->sub_queued = true;
			continue;
		}
		owner = owner_of(vk, c, &slot);
		if (owner == c->shard && !c->shard->dead)
			continue;
		count(vk, "slot_moves", 1);
		if (c->confirmed && c->answered) {
			c->regap = true;
			c->regap_why = "slot moved";
		}
		c->shard = NULL;
		subs_chan_void(vk, c); /* may free c */
	}
}

static void on_slots(redisAsyncContext *ac, void *r, void *priv)
{
	struct vk *vk = priv;
	redisReply *reply = r;
	struct shard **slots;
	bool covered = true;
	const char *bad = NULL;

	(void)ac;
	vk->refreshing = false;
	if (vk->stopping)
		return;
	count(vk, "cluster_refreshes", 1);
	if (!reply) {
		bad = "connection lost";
	} else if (reply->type == REDIS_REPLY_ERROR) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 strstr(reply->str, "cluster support disabled")
			     ? "cluster = yes, but %s is not in cluster mode (CLUSTER SLOTS: %s)"
			     : "CLUSTER SLOTS on %s refused: %s",
			 vk->target, reply->str);
		if (strcmp(msg, vk->map_why) != 0)
			vk->host->log(vk->b, FANOUT_LOG_ERR, "%s", msg);
		snprintf(vk->map_why, sizeof(vk->map_why), "%s", msg);
		vk->map_ok = false;
		vk_update_state(vk, vk->map_why);
		vk->host->timer_arm(vk->t_refresh, vk->reconnect_max_ms);
		cluster_park_release(vk);
		return;
	} else if (reply->type != REDIS_REPLY_ARRAY) {
		bad = "unexpected reply";
	}
	slots = bad ? NULL : calloc(CLUSTER_SLOTS, sizeof(*slots));
	if (!bad && !slots)
		bad = "out of memory";
	for (size_t i = 0; !bad && i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		const char *ip;
		int port;
		long long a, z;
		struct shard *sh;
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER ||
		    !node_addr(vk, e->element[2], &ip, &port)) {
			bad = "unexpected CLUSTER SLOTS entry";
			break;
		}
		a = e->element[0]->integer;
		z = e->element[1]->integer;
		if (a < 0 || z >= CLUSTER_SLOTS || a > z) {
			bad = "slot range out of bounds";
			break;
		}
		sh = shard_find(vk, ip, port);
		if (!sh && !(sh = shard_new(vk, ip, port))) {
			bad = "cannot add a shard";
			break;
		}
		sh->in_map = true;
		for (long long s = a; s <= z; s++)
			slots[s] = sh;
	}
	if (bad) {
		char msg[300];
		free(slots);
		snprintf(msg, sizeof(msg), "slot map not read: %s", bad);
		vk->host->log(vk->b, FANOUT_LOG_WARN, "%s", msg);
		vk->host->timer_arm(vk->t_refresh, vk->reconnect_min_ms + 100);
		return;
	}
	for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
		covered &= slots[s] != NULL;
	}
	memcpy(vk->slots, slots, CLUSTER_SLOTS * sizeof(*slots));
	free(slots);
	/* Shards no longer primaries of any slot leave (freed by the reap). */
	for (struct shard *sh = vk->shards; sh; sh = sh->next) {
		bool used = false;
		for (unsigned s = 0; s < CLUSTER_SLOTS && !used; s++)
			used = vk->slots[s] == sh;
		if (!used && !sh->dead) {
			sh->dead = true;
			sh->in_map = false;
			vk->host->log(vk->b, FANOUT_LOG_INFO, "shard %s left the slot map",
				      sh->addr);
			vk->host->timer_arm(vk->t_reap, 0);
		}
	}
	vk->map_ok = covered;
	snprintf(vk->map_why, sizeof(vk->map_why), "%s",
		 covered ? "" : "the cluster does not cover every slot");
	reassign(vk);
	vk_update_state(vk, vk->map_why);
	cluster_park_release(vk);
	if (vk->refresh_again) {
		vk->refresh_again = false;
		cluster_refresh(vk);
	} else if (vk->cluster_refresh_ms) {
		vk->host->timer_arm(vk->t_refresh,
				    vk->map_ok ? vk->cluster_refresh_ms : vk->reconnect_max_ms);
	}
	vk->host->timer_arm(vk->t_flush, 0);
}

/*
 * Read the slot map again: from the node that just told us it changed
 * (prefer: it knows, while the others may still be learning it by gossip),
 * else the seed, else any ready shard.
 */
void cluster_refresh_via(struct vk *vk, struct conn *prefer)
{
	struct conn *cn = prefer && prefer->phase == C_READY ? prefer : NULL;

	if (vk->stopping)
		return;
	if (vk->refreshing) {
		vk->refresh_again = true;
		if (cn)
			vk->refresh_prefer = cn->shard;
		return;
	}
	if (!cn && vk->refresh_prefer && !vk->refresh_prefer->dead &&
	    vk->refresh_prefer->cmd.phase == C_READY)
		cn = &vk->refresh_prefer->cmd;
	vk->refresh_prefer = NULL;
	if (!cn && vk->conn[CMD].phase == C_READY)
		cn = &vk->conn[CMD];
	for (struct shard *sh = vk->shards; !cn && sh; sh = sh->next)
		if (!sh->dead && sh->cmd.phase == C_READY)
			cn = &sh->cmd;
	if (!cn) {
		/* Nothing to ask: the seed reconnecting asks when it is ready. */
		vk->host->timer_arm(vk->t_refresh, vk->reconnect_max_ms);
		return;
	}
	if (redisAsyncCommand(cn->ac, on_slots, vk, "CLUSTER SLOTS") == REDIS_OK) {
		vk->refreshing = true;
		vk->map_from = cn;
	}
}

/*
 * A node the map names a primary answered READONLY: it is a replica now (a
 * failover that the node we read the map from had not learned by gossip
 * yet). Like MOVED, it means the map is stale: read it again at once, from
 * a node other than that replica and than the one that gave the stale map
 * (the seed last), at most once per CLUSTER_READONLY_MS per shard; the
 * shard's connection retries with the ordinary backoff meanwhile, and
 * leaves when the map names the new primary.
 */
static void readonly_refresh(struct shard *sh)
{
	struct vk *vk = sh->vk;
	struct conn *cn = NULL;
	uint64_t now = now_ms(vk);

	if (vk->stopping || sh->dead || (sh->ro_ms && now - sh->ro_ms < CLUSTER_READONLY_MS))
		return;
	sh->ro_ms = now;
	for (struct shard *o = vk->shards; !cn && o; o = o->next)
		if (o != sh && !o->dead && o->cmd.phase == C_READY && &o->cmd != vk->map_from)
			cn = &o->cmd;
	if (!cn && vk->conn[CMD].phase == C_READY && &vk->conn[CMD] != vk->map_from)
		cn = &vk->conn[CMD];
	cluster_refresh_via(vk, cn);
}

bool cluster_readonly(struct conn *from, const redisReply *r)
{
	if (!from || !from->shard || !r || r->type != REDIS_REPLY_ERROR ||
	    strncmp(r->str, "READONLY", 8) != 0)
		return false;
	count(from->vk, "readonly_replies", 1);
	readonly_refresh(from->shard);
	return true;
}

void cluster_refresh(struct vk *vk)
{
	cluster_refresh_via(vk, NULL);
}

static void on_refresh(struct fanout_timer *t, void *arg)
{
	(void)t;
	cluster_refresh(arg);
}

void cluster_seed_ready(struct vk *vk)
{
	cluster_refresh(vk);
}

/* ---- function calls: routing and redirects ---- */

struct conn *cluster_conn_for(struct vk *vk, const char *key, size_t len, int *slot)
{
	struct shard *sh;

	*slot = (int)cluster_slot(key, len);
	sh = vk->slots[*slot];
	return sh && !sh->dead && sh->cmd.phase == C_READY ? &sh->cmd : NULL;
}

static void on_asking(redisAsyncContext *ac, void *r, void *priv)
{
	(void)ac;
	(void)r;
	(void)priv;
}

/*
 * Parked calls go out again to their slot's owner in the new map. One whose
 * owner is not ready yet (a shard that just joined) stays parked, at most
 * probe_timeout_ms; then it fails like a call on a lost connection.
 */
void cluster_park_release(struct vk *vk)
{
	struct fcall *f = vk->parked, **keep = &vk->parked;
	uint64_t now = now_ms(vk);

	vk->parked = NULL;
	while (f) {
		struct fcall *next = f->next;
		struct shard *sh = vk->slots[f->slot];
		f->next = NULL;
		if (sh && !sh->dead && sh->cmd.phase == C_READY && fcall_resend(&sh->cmd, f) == 0) {
			/* sent */
		} else if (sh && !sh->dead && now - f->parked_ms < vk->probe_timeout_ms) {
			*keep = f;
			keep = &f->next;
		} else {
			fcall_fail(f);
		}
		f = next;
	}
	if (vk->parked)
		vk->host->timer_arm(vk->t_park, 100);
}

static void on_park(struct fanout_timer *t, void *arg)
{
	(void)t;
	cluster_park_release(arg);
}

bool cluster_redirect(struct fcall *f, const redisReply *r, struct conn *from)
{
	struct vk *vk = f->vk;
	bool ask;
	unsigned long slot;
	int port;
	char ip[INET6_ADDRSTRLEN];
	const char *p;
	char *end;

	if (!vk->cluster || !r || r->type != REDIS_REPLY_ERROR || vk->stopping)
		return false;
	ask = strncmp(r->str, "ASK ", 4) == 0;
	if (!ask && strncmp(r->str, "MOVED ", 6) != 0)
		return false;
	if (++f->redirects > 3)
		return false;
	count(vk, "redirects", 1);
	/* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" */
	p = r->str + (ask ? 4 : 6);
	slot = strtoul(p, &end, 10);
	p = end + 1;
	end = strrchr(p, ':');
	if (!end || (size_t)(end - p) >= sizeof(ip) || slot >= CLUSTER_SLOTS)
		return false;
	memcpy(ip, p, (size_t)(end - p));
	ip[end - p] = '\0';
	port = atoi(end + 1);
	if (ask) {
		/* One call to the importing node, announced by ASKING. */
		struct shard *sh = shard_find(vk, ip, port);
		if (!sh || sh->cmd.phase != C_READY)
			return false;
		return redisAsyncCommand(sh->cmd.ac, on_asking, NULL, "ASKING") == REDIS_OK &&
		       fcall_resend(&sh->cmd, f) == 0;
	}
	/* The slot moved for good: take the answer's word for this slot at
	 * once (a node we did not know yet becomes a shard), park the call
	 * until that shard is ready, and read the whole map again from the
	 * node that answered. */
	{
		struct shard *sh = shard_find(vk, ip, port);
		if (!sh && (sh = shard_new(vk, ip, port)))
			sh->in_map = true;
		if (sh)
			vk->slots[slot] = sh;
	}
	f->slot = (int)slot;
	f->parked_ms = now_ms(vk);
	f->next = vk->parked;
	vk->parked = f;
	cluster_refresh_via(vk, from);
	vk->host->timer_arm(vk->t_park, 0);
	return true;
}

/* ---- shard connections ---- */

static unsigned backoff(struct shard *sh)
{
	struct vk *vk = sh->vk;
	uint64_t cap = vk->reconnect_min_ms ? vk->reconnect_min_ms : 1;

	if (sh->penalty)
		return vk->reconnect_max_ms;
	for (unsigned i = 0; i < sh->attempt && cap < vk->reconnect_max_ms; i++)
		cap *= 2;
	if (cap > vk->reconnect_max_ms)
		cap = vk->reconnect_max_ms;
	return vk->reconnect_min_ms +
	       (unsigned)(rand_r(&vk->seed) % (unsigned)(cap - vk->reconnect_min_ms + 1));
}

static void sub_connect(struct shard *sh)
{
	if (sh->dead || sh->vk->stopping || sh->sub.phase != R_IDLE)
		return;
	if (rconn_connect(&sh->sub, sh->ip, sh->port) == FANOUT_EINVAL) {
		snprintf(sh->why, sizeof(sh->why),
			 "%s is not an IP address (set cluster-preferred-endpoint-type ip)",
			 sh->ip);
		sh->vk->host->log(sh->vk->b, FANOUT_LOG_ERR, "shard %s", sh->why);
		sh->vk->host->timer_arm(sh->t_retry, sh->vk->reconnect_max_ms);
	}
}

static void on_sub_retry(struct fanout_timer *t, void *arg)
{
	(void)t;
	sub_connect(arg);
}

static void sub_ready(struct rconn *rc, void *arg)
{
	struct shard *sh = arg;
	struct vk *vk = sh->vk;

	(void)rc;
	sh->attempt = 0;
	sh->penalty = false;
	sh->why[0] = sh->last_logged[0] = '\0';
	vk_update_state(vk, "");
	vk->host->timer_arm(vk->t_flush, 0);
}

static void sub_lost(struct rconn *rc, const char *why, bool penalty, void *arg)
{
	struct shard *sh = arg;
	struct vk *vk = sh->vk;
	char msg[600];

	(void)rc;
	snprintf(sh->why, sizeof(sh->why), "%s", why);
	snprintf(msg, sizeof(msg), "%s: %s", sh->sub_label, why);
	if (!vk->stopping)
		vk_log_failure(vk, sh->last_logged, sizeof(sh->last_logged),
			       penalty ? FANOUT_LOG_ERR : FANOUT_LOG_WARN, msg);
	count(vk, "sub_disconnects", 1);
	/* Its channels are subscribed again (here or on the slot's new owner)
	 * and then get a gap. */
	FOR_EACH_CHAN(vk, c, n)
	{
		if (c->shard != sh)
			continue;
		if (c->confirmed && c->answered) {
			c->regap = true;
			c->regap_why = "backend reconnected";
		}
		subs_chan_void(vk, c);
	}
	vk_update_state(vk, msg);
	if (vk->stopping || sh->dead)
		return;
	sh->penalty = penalty;
	sh->attempt++;
	vk->host->timer_arm(sh->t_retry, backoff(sh));
	cluster_refresh(vk); /* a failover moves its slots */
}

/* A server-side SUNSUBSCRIBE, or an error for a SSUBSCRIBE: the map changed
 * (sh, the shard that said so, knows how). */
static void channel_displaced(struct vk *vk, struct shard *sh, struct chan *c, const char *why)
{
	if (c->confirmed && c->answered) {
		c->regap = true;
		c->regap_why = why;
	}
	c->shard = NULL;
	subs_chan_void(vk, c);
	cluster_refresh_via(vk, &sh->cmd);
}

static void sub_error(struct shard *sh, const redisReply *r)
{
	struct vk *vk = sh->vk;
	const struct rconn_pend *p = rconn_pend_head(&sh->sub);
	bool moved = !strncmp(r->str, "MOVED", 5) || !strncmp(r->str, "ASK", 3) ||
		     !strncmp(r->str, "CLUSTERDOWN", 11) || !strncmp(r->str, "TRYAGAIN", 8);

	count(vk, "error_replies", 1);
	if (!p) {
		vk->host->log(vk->b, FANOUT_LOG_WARN, "%s: error reply: %s", sh->sub_label, r->str);
		return;
	}
	if (!moved && !p->sub)
		vk->host->log(vk->b, FANOUT_LOG_WARN, "%s: SUNSUBSCRIBE refused: %s", sh->sub_label,
			      r->str);
	for (size_t i = 0; i < p->n; i++) {
		struct chan *c = subs_chan_of(vk, p->names[i], strlen(p->names[i]));
		if (!c || c->shard != sh)
			continue;
		if (!p->sub) {
			subs_unsub_reply(vk, c);
		} else if (c->sub_sent) {
			c->sub_sent = false;
			if (moved)
				channel_displaced(vk, sh, c, "slot moved");
			else
				subs_refused(vk, c, p->n, r->str);
		}
	}
	rconn_pend_pop(&sh->sub);
}

static void sub_reply(struct rconn *rc, const redisReply *r, void *arg)
{
	struct shard *sh = arg;
	struct vk *vk = sh->vk;
	const char *kind;
	const redisReply *ch;
	struct chan *c;

	(void)rc;
	if (r->type == REDIS_REPLY_ERROR) {
		sub_error(sh, r);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
		return;
	kind = r->element[0]->str;
	ch = r->element[1];
	if (strcasecmp(kind, "smessage") == 0) {
		if (r->element[2]->type == REDIS_REPLY_STRING)
			subs_message(vk, ch->str, ch->len, r->element[2]->str, r->element[2]->len);
		return;
	}
	if (strcasecmp(kind, "ssubscribe") == 0) {
		if (rconn_pend_head(&sh->sub) && rconn_pend_head(&sh->sub)->sub)
			rconn_pend_reply(&sh->sub);
		c = subs_chan_of(vk, ch->str, ch->len);
		if (c && c->shard == sh && c->sub_sent)
			subs_confirmed(vk, c);
		return;
	}
	if (strcasecmp(kind, "sunsubscribe") == 0) {
		c = subs_chan_of(vk, ch->str, ch->len);
		if (rconn_pend_head(&sh->sub) && !rconn_pend_head(&sh->sub)->sub) {
			/* The answer to ours. */
			rconn_pend_reply(&sh->sub);
			if (c && c->shard == sh)
				subs_unsub_reply(vk, c);
			return;
		}
		/* Not asked for: the slot left this node (migration, failover). */
		count(vk, "server_unsubscribes", 1);
		if (c && c->shard == sh && c->wanted)
			channel_displaced(vk, sh, c, "slot moved");
	}
}

static const struct rconn_ops sub_ops = {
    .ready = sub_ready,
    .reply = sub_reply,
    .lost = sub_lost,
};

void cluster_cmd_lost(struct shard *sh)
{
	bool readonly = sh->cmd.readonly;

	sh->cmd.readonly = false;
	if (sh->vk->stopping || sh->dead)
		return;
	if (readonly)
		readonly_refresh(sh); /* FUNCTION LOAD answered READONLY */
	else
		cluster_refresh(sh->vk); /* a failover moves its slots */
}

static void shard_free(struct shard *sh)
{
	conn_close(&sh->cmd);
	conn_free(&sh->cmd);
	rconn_free(&sh->sub);
	if (sh->t_retry)
		sh->vk->host->timer_remove(sh->t_retry);
	free(sh);
}

static struct shard *shard_new(struct vk *vk, const char *ip, int port)
{
	struct shard *sh = calloc(1, sizeof(*sh));

	if (!sh)
		return NULL;
	sh->vk = vk;
	snprintf(sh->ip, sizeof(sh->ip), "%s", ip);
	sh->port = port;
	snprintf(sh->addr, sizeof(sh->addr), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
	snprintf(sh->cmd_label, sizeof(sh->cmd_label), "shard %s command", sh->addr);
	snprintf(sh->sub_label, sizeof(sh->sub_label), "shard %s subscriber connection", sh->addr);
	sh->t_retry = vk->host->timer_add(vk->b, on_sub_retry, sh);
	if (!sh->t_retry || conn_init(vk, &sh->cmd, CMD, sh->ip, sh->port, NULL) < 0 ||
	    rconn_init(&sh->sub, vk, &sub_ops, sh, sh->sub_label) < 0) {
		shard_free(sh);
		return NULL;
	}
	sh->cmd.shard = sh;
	sh->cmd.label = sh->cmd_label;
	sh->next = vk->shards;
	vk->shards = sh;
	vk->host->log(vk->b, FANOUT_LOG_INFO, "shard %s joined the slot map", sh->addr);
	conn_start(&sh->cmd);
	sub_connect(sh);
	return sh;
}

static void shard_reap(struct fanout_timer *t, void *arg)
{
	struct vk *vk = arg;

	(void)t;
	for (struct shard **p = &vk->shards; *p;) {
		struct shard *sh = *p;
		if (!sh->dead) {
			p = &sh->next;
			continue;
		}
		*p = sh->next;
		if (vk->refresh_prefer == sh)
			vk->refresh_prefer = NULL;
		if (vk->map_from == &sh->cmd)
			vk->map_from = NULL;
		shard_free(sh);
	}
	vk_update_state(vk, "");
}

/* ---- life ---- */

int cluster_init(struct vk *vk)
{
	vk->slots = calloc(CLUSTER_SLOTS, sizeof(*vk->slots));
	vk->t_refresh = vk->host->timer_add(vk->b, on_refresh, vk);
	vk->t_reap = vk->host->timer_add(vk->b, shard_reap, vk);
	vk->t_park = vk->host->timer_add(vk->b, on_park, vk);
	snprintf(vk->map_why, sizeof(vk->map_why), "reading the slot map from %s", vk->target);
	return vk->slots && vk->t_refresh && vk->t_reap && vk->t_park ? 0 : FANOUT_ENOMEM;
}

void cluster_start(struct vk *vk)
{
	conn_start(&vk->conn[CMD]);
}

void cluster_stop(struct vk *vk)
{
	for (struct shard *sh = vk->shards; sh; sh = sh->next) {
		conn_close(&sh->cmd);
		rconn_close(&sh->sub);
		vk->host->timer_disarm(sh->t_retry);
	}
	while (vk->parked) {
		struct fcall *f = vk->parked;
		vk->parked = f->next;
		fcall_fail(f);
	}
	if (vk->t_refresh)
		vk->host->timer_disarm(vk->t_refresh);
	if (vk->t_reap)
		vk->host->timer_disarm(vk->t_reap);
	if (vk->t_park)
		vk->host->timer_disarm(vk->t_park);
}

void cluster_free(struct vk *vk)
{
	while (vk->shards) {
		struct shard *sh = vk->shards;
		vk->shards = sh->next;
		shard_free(sh);
	}
	if (vk->t_refresh)
		vk->host->timer_remove(vk->t_refresh);
	if (vk->t_reap)
		vk->host->timer_remove(vk->t_reap);
	if (vk->t_park)
		vk->host->timer_remove(vk->t_park);
	free(vk->slots);
	vk->slots = NULL;
}
