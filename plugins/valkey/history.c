/*
 * history.c — positions and history of the valkey backend (history_size >
 * 0): the "fanout" Redis Functions library that keeps them in the broker,
 * its loading, and the FCALLs that use it — the top read behind every
 * confirmed SUBSCRIBE (answered with host->subscribed_at()), and the
 * top() and history() operations (host->top_done(), history_item(),
 * history_done()). Positioned publishes (publish.c) go through the same
 * fcall_send().
 *
 * In the broker, channel C (the broker name, channel_prefix included) keeps
 * its position and history in one hash, fanout:{C} (library.lua): e = the
 * epoch, o = the top offset, and the last history_size payloads under their
 * offsets; it expires history_ttl_s after the channel was last used. The
 * hash tag {C} puts it in the slot of channel C itself, so each call runs
 * on one shard of a cluster, and as the call's one declared key it keeps
 * every call right while that slot migrates. One function call per publish
 * does, atomically: the epoch (created when missing), the next offset, the
 * capped append, the expiry and the pub/sub publish of
 * "\0fo1:EPOCH:OFFSET\n" + payload (envelope.h).
 *
 * Runs on the host's loop thread. Allocates the library text (library.c;
 * made by hist_init, freed by hist_free) and one struct fcall per call in flight, holding the
 * formatted command so that a call which finds no function (a broker
 * restarted without persistence) reloads the library and retries once;
 * freed after its reply, which hiredis also delivers as NULL when the
 * connection goes away.
 */
#include "vk.h"

#include "envelope.h"
#include "library.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int hist_init(struct vk *vk, const char *pub_cmd)
{
	snprintf(vk->hsize, sizeof(vk->hsize), "%lld", vk->history_size);
	snprintf(vk->httl, sizeof(vk->httl), "%lld", vk->history_ttl_s);
	vk->lib = vk_library_text(pub_cmd, vk->history_size, vk->history_ttl_s);
	return vk->lib ? 0 : FANOUT_ENOMEM;
}

void hist_free(struct vk *vk)
{
	free(vk->lib);
	vk->lib = NULL;
}

/* ---- calls with one retry after a reload ---- */

static bool no_function(const redisReply *r)
{
	/* Redis 7.0 / Valkey: "ERR Function not found". */
	return r && r->type == REDIS_REPLY_ERROR &&
	       strncasecmp(r->str, "ERR Function not", 16) == 0;
}

static void on_reload_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct vk *vk = priv;
	redisReply *reply = r;

	(void)ac;
	if (reply && reply->type == REDIS_REPLY_ERROR && !vk->stopping)
		vk->host->log(vk->b, FANOUT_LOG_WARN, "FUNCTION LOAD (reload) refused: %s",
			      reply->str);
}

static void fcall_finish(struct fcall *f, redisReply *reply)
{
	redisFreeCommand(f->cmd);
	f->cmd = NULL;
	f->done(f->vk, f, reply);
	free(f->channel);
	free(f);
}

static void on_fcall_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct fcall *f = priv;
	struct vk *vk = f->vk;
	redisReply *reply = r;

	/* Cluster: MOVED waits for the new slot map, ASK goes to the importing
	 * node; either way the call is sent again and answered later. */
	if (cluster_redirect(f, reply, ac ? ac->data : NULL))
		return;
	/* A replica now (failed over): this call fails, the map is read again. */
	if (vk->cluster && ac)
		cluster_readonly(ac->data, reply);

	if (no_function(reply) && !f->retried && ac && !vk->stopping) {
		/* The broker lost the library (restarted without persistence,
		 * FUNCTION FLUSH): load it again and send the call once more, in
		 * order behind the load on the same connection. */
		const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", vk->lib};
		f->retried = true;
		count(vk, "function_reloads", 1);
		vk->host->log(vk->b, FANOUT_LOG_INFO,
			      "the broker has no fanout functions: reloading");
		if (redisAsyncCommandArgv(ac, on_reload_reply, vk, 4, argv, NULL) == REDIS_OK &&
		    redisAsyncFormattedCommand(ac, on_fcall_reply, f, f->cmd, (size_t)f->cmdlen) ==
			REDIS_OK)
			return;
	}
	fcall_finish(f, reply);
}

struct fcall *fcall_new(struct vk *vk, fcall_done_fn done)
{
	struct fcall *f = calloc(1, sizeof(*f));

	if (f) {
		f->vk = vk;
		f->done = done;
	}
	return f;
}

int fcall_send(struct conn *cn, struct fcall *f, int argc, const char **argv, const size_t *argl)
{
	int n = redisFormatCommandArgv(&f->cmd, argc, argv, argl);

	if (n < 0 || !cn->ac) {
		if (f->cmd)
			redisFreeCommand(f->cmd);
		f->cmd = NULL;
		return FANOUT_ENOMEM;
	}
	f->cmdlen = n;
	if (redisAsyncFormattedCommand(cn->ac, on_fcall_reply, f, f->cmd, (size_t)n) != REDIS_OK) {
		redisFreeCommand(f->cmd);
		f->cmd = NULL;
		return FANOUT_EIO;
	}
	return 0;
}

int fcall_resend(struct conn *cn, struct fcall *f)
{
	if (!cn->ac || redisAsyncFormattedCommand(cn->ac, on_fcall_reply, f, f->cmd,
						  (size_t)f->cmdlen) != REDIS_OK)
		return FANOUT_EIO;
	return 0;
}

void fcall_fail(struct fcall *f)
{
	fcall_finish(f, NULL);
}

void fcall_abandon(struct fcall *f)
{
	free(f->channel);
	free(f);
}

int fcall_channel(struct vk *vk, struct fcall *f, const char *fn, const char *channel, int nargs,
		  const char *const *args, const size_t *argl)
{
	const char *argv[10];
	size_t len[10], cl = strlen(channel);
	int n = 0, rc;
	char *key = malloc(sizeof("fanout:{}") + vk->prefix_len + cl);

	if (!key || nargs > 4) {
		free(key);
		return FANOUT_ENOMEM;
	}
	/* KEYS[1] = fanout:{<prefix><channel>} */
	len[3] = (size_t)sprintf(key, "fanout:{%s%s}", vk->prefix, channel);
	argv[n] = "FCALL";
	len[n++] = 5;
	argv[n] = fn;
	len[n] = strlen(fn);
	n++;
	argv[n] = "1";
	len[n++] = 1;
	argv[n++] = key;
	for (int i = 0; i < nargs; i++) {
		argv[n] = args[i];
		len[n++] = argl[i];
	}
	argv[n] = vk->hsize;
	len[n++] = strlen(vk->hsize);
	argv[n] = vk->httl;
	len[n++] = strlen(vk->httl);
	if (vk->cluster) {
		/* The shard that owns the key's slot (= the channel's). */
		struct conn *cn = cluster_conn_for(vk, key, len[3], &f->slot);
		rc = cn ? fcall_send(cn, f, n, argv, len) : FANOUT_EUNAVAIL;
	} else {
		rc = vk->conn[CMD].phase == C_READY ? fcall_send(&vk->conn[CMD], f, n, argv, len)
						    : FANOUT_EUNAVAIL;
	}
	free(key);
	return rc;
}

/* Room for one more top() or history() call? */
static int op_admit(struct vk *vk)
{
	if (!vk->positioned)
		return FANOUT_ENOTSUP;
	if (vk->pending >= vk->max_pending) {
		count(vk, "publish_overflow", 1);
		return FANOUT_EUNAVAIL;
	}
	return 0;
}

/* ---- reply parsing ---- */

/* {epoch, top, ...}: 0 and the position, or FANOUT_EIO (errstr says why). */
int hist_parse_pos(const redisReply *r, char *epoch, uint64_t *top, const char **errstr)
{
	*errstr = "no reply (connection lost)";
	if (!r)
		return FANOUT_EIO;
	if (r->type == REDIS_REPLY_ERROR) {
		*errstr = r->str;
		return strncmp(r->str, "NOPERM", 6) == 0 ? FANOUT_EDENIED : FANOUT_EIO;
	}
	*errstr = "unexpected reply";
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    !vk_epoch_valid(r->element[0]->str, r->element[0]->len) ||
	    r->element[1]->type != REDIS_REPLY_INTEGER || r->element[1]->integer < 0)
		return FANOUT_EIO;
	memcpy(epoch, r->element[0]->str, r->element[0]->len);
	epoch[r->element[0]->len] = '\0';
	*top = (uint64_t)r->element[1]->integer;
	return 0;
}

static void log_call_error(struct vk *vk, const char *what, int status, const char *errstr)
{
	char msg[300];

	if (vk->stopping)
		return;
	snprintf(msg, sizeof(msg), "%s failed: %s", what, errstr);
	vk_log_failure(vk, vk->conn[CMD].last_logged, sizeof(vk->conn[CMD].last_logged),
		       status == FANOUT_EDENIED ? FANOUT_LOG_ERR : FANOUT_LOG_WARN, msg);
}

/* ---- the top behind a confirmed SUBSCRIBE (subs.c) ---- */

static void on_sub_top(struct vk *vk, struct fcall *f, redisReply *r)
{
	char epoch[VK_EPOCH_MAX + 1];
	uint64_t top = 0;
	const char *why;
	int st = hist_parse_pos(r, epoch, &top, &why);

	if (vk->stopping)
		return;
	if (st < 0 && r)
		log_call_error(vk, "fanout_top", st, why);
	subs_top_done(vk, f->channel, f->seq, r ? st : FANOUT_EUNAVAIL, st ? NULL : epoch, top);
}

int hist_sub_top(struct vk *vk, const char *channel, uint64_t seq)
{
	struct fcall *f;
	int rc;

	f = fcall_new(vk, on_sub_top);
	if (!f || !(f->channel = strdup(channel))) {
		free(f);
		return FANOUT_ENOMEM;
	}
	f->seq = seq;
	rc = fcall_channel(vk, f, "fanout_top", channel, 0, NULL, NULL);
	if (rc < 0)
		fcall_abandon(f);
	return rc;
}

/* ---- top() ---- */

static void on_top(struct vk *vk, struct fcall *f, redisReply *r)
{
	char epoch[VK_EPOCH_MAX + 1];
	uint64_t top = 0;
	const char *why;
	int st = hist_parse_pos(r, epoch, &top, &why);

	vk->pending--;
	if (vk->stopping)
		return;
	if (st < 0) {
		count(vk, "top_errors", 1);
		if (r)
			log_call_error(vk, "fanout_top", st, why);
		else
			st = FANOUT_EUNAVAIL;
	}
	vk->host->top_done(vk->b, f->token, st, st ? NULL : epoch, top);
}

int hist_top(void *state, const char *channel, uint64_t token)
{
	struct vk *vk = state;
	struct fcall *f;
	int rc = op_admit(vk);

	if (rc < 0)
		return rc;
	if (!(f = fcall_new(vk, on_top)))
		return FANOUT_ENOMEM;
	f->token = token;
	rc = fcall_channel(vk, f, "fanout_top", channel, 0, NULL, NULL);
	if (rc < 0) {
		fcall_abandon(f);
		return rc;
	}
	vk->pending++;
	return 0;
}

/* ---- history() ---- */

static void on_history(struct vk *vk, struct fcall *f, redisReply *r)
{
	char epoch[VK_EPOCH_MAX + 1];
	uint64_t top = 0;
	const char *why;
	int st = hist_parse_pos(r, epoch, &top, &why);

	vk->pending--;
	if (vk->stopping)
		return;
	if (st == 0 && (r->elements < 3 || r->element[2]->type != REDIS_REPLY_STRING ||
			(r->elements - 3) % 2 != 0)) {
		st = FANOUT_EIO;
		why = "unexpected reply";
	}
	if (st < 0) {
		count(vk, "history_errors", 1);
		if (r)
			log_call_error(vk, "fanout_history", st, why);
		else
			st = FANOUT_EUNAVAIL;
		vk->host->history_done(vk->b, f->token, st, NULL, 0);
		return;
	}
	if (strcmp(r->element[2]->str, "epoch") == 0) {
		vk->host->history_done(vk->b, f->token, FANOUT_EEPOCH, epoch, top);
		return;
	}
	if (strcmp(r->element[2]->str, "truncated") == 0) {
		vk->host->history_done(vk->b, f->token, FANOUT_ETRUNCATED, epoch, top);
		return;
	}
	/* Validate every item before handing out the first: all or nothing. */
	for (size_t i = 3; i < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_INTEGER ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING ||
		    r->element[i]->integer != (long long)(f->after + (i - 1) / 2)) {
			count(vk, "history_errors", 1);
			log_call_error(vk, "fanout_history", FANOUT_EIO, "items out of order");
			vk->host->history_done(vk->b, f->token, FANOUT_EIO, NULL, 0);
			return;
		}
	}
	for (size_t i = 3; i < r->elements; i += 2)
		vk->host->history_item(vk->b, f->token, (uint64_t)r->element[i]->integer,
				       r->element[i + 1]->str, r->element[i + 1]->len);
	count(vk, "history_items", (r->elements - 3) / 2);
	vk->host->history_done(vk->b, f->token, FANOUT_OK, epoch, top);
}

int hist_history(void *state, const char *channel, const char *epoch, uint64_t after, uint64_t max,
		 uint64_t token)
{
	struct vk *vk = state;
	struct fcall *f;
	char s_after[24], s_max[24];
	int rc = op_admit(vk);

	if (rc < 0)
		return rc;
	/* Offsets are exact up to 2^53 in the broker's Lua. */
	if (after > (1ull << 53))
		after = 1ull << 53;
	/* No more than history_size messages can be kept. */
	if (max > (uint64_t)vk->history_size)
		max = (uint64_t)vk->history_size;
	/* An epoch that cannot be valid matches none: the answer is FANOUT_EEPOCH. */
	if (!epoch || !vk_epoch_valid(epoch, strlen(epoch)))
		epoch = "";
	if (!(f = fcall_new(vk, on_history)))
		return FANOUT_ENOMEM;
	f->token = token;
	f->after = after;
	snprintf(s_after, sizeof(s_after), "%llu", (unsigned long long)after);
	snprintf(s_max, sizeof(s_max), "%llu", (unsigned long long)max);
	{
		const char *args[] = {epoch, s_after, s_max};
		size_t argl[] = {strlen(epoch), strlen(s_after), strlen(s_max)};
		rc = fcall_channel(vk, f, "fanout_history", channel, 3, args, argl);
	}
	if (rc < 0) {
		fcall_abandon(f);
		return rc;
	}
	vk->pending++;
	return 0;
}
