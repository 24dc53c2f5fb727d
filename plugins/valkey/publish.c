/*
 * publish.c — client publishes through the valkey backend. Positioned
 * (history_size > 0): FCALL fanout_publish on the command connection, which
 * assigns the position, appends to the history and publishes (history.c),
 * answered with host->published_at(token, ok, epoch, offset). Otherwise a
 * plain PUBLISH answered with host->published(token, ok). Either way: at
 * once with ok = 0 while the command connection is not ready; refused with
 * FANOUT_EUNAVAIL over max_pending in flight.
 *
 * Runs on the host's loop thread. Allocates one struct pub_req per
 * in-flight PUBLISH, or one struct fcall per FCALL (history.c), capped by
 * max_pending and freed after the reply, which hiredis also delivers as
 * NULL when the context goes away.
 */
#include "vk.h"

#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		if (vk->cluster && reply && reply->type == REDIS_REPLY_ERROR &&
		    (!strncmp(reply->str, "MOVED", 5) || !strncmp(reply->str, "ASK", 3)))
			cluster_refresh(vk); /* this one fails; the next goes right */
		if (vk->cluster && ac)
			cluster_readonly(ac->data, reply); /* a replica now: read the map */
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			char msg[300];
			snprintf(msg, sizeof(msg), "%sPUBLISH refused: %s", vk->cluster ? "S" : "",
				 reply->str);
			vk_log_failure(vk, vk->conn[CMD].last_logged,
				       sizeof(vk->conn[CMD].last_logged), FANOUT_LOG_WARN, msg);
		}
	}
	if (!vk->stopping)
		vk->host->published(vk->b, req->token, ok);
	free(req);
}

static void on_fcall_publish(struct vk *vk, struct fcall *f, redisReply *r)
{
	char epoch[VK_EPOCH_MAX + 1];
	uint64_t off = 0;
	const char *why;
	int st = hist_parse_pos(r, epoch, &off, &why);

	vk->pending--;
	if (st < 0 || off == 0) {
		count(vk, "publish_errors", 1);
		if (r && !vk->stopping) {
			char msg[300];
			snprintf(msg, sizeof(msg), "FCALL fanout_publish refused: %s",
				 st < 0 ? why : "offset 0");
			vk_log_failure(vk, vk->conn[CMD].last_logged,
				       sizeof(vk->conn[CMD].last_logged), FANOUT_LOG_WARN, msg);
		}
		if (!vk->stopping)
			vk->host->published_at(vk->b, f->token, 0, NULL, 0);
		return;
	}
	if (!vk->stopping)
		vk->host->published_at(vk->b, f->token, 1, epoch, off);
}

/* FCALL fanout_publish 1 fanout:{<prefix><channel>} <data> <size> <ttl> */
static int publish_positioned(struct vk *vk, const char *channel, const void *data, size_t len,
			      uint64_t token)
{
	struct fcall *f = fcall_new(vk, on_fcall_publish);
	const char *args[] = {data ? data : ""};
	int rc;

	if (!f)
		return FANOUT_ENOMEM;
	f->token = token;
	rc = fcall_channel(vk, f, "fanout_publish", channel, 1, args, &len);
	if (rc < 0) {
		fcall_abandon(f);
		count(vk, rc == FANOUT_EUNAVAIL ? "publish_unavailable" : "publish_errors", 1);
		vk->host->published_at(vk->b, token, 0, NULL, 0);
		return 0;
	}
	vk->pending++;
	return 0;
}

int pub_publish(void *state, const char *channel, const void *data, size_t len, uint64_t token)
{
	struct vk *vk = state;
	struct conn *cn = &vk->conn[CMD];
	struct pub_req *req;
	char *full;
	const char *argv[3];
	size_t argl[3];
	int rc, slot;

	if (vk->pending >= vk->max_pending) {
		count(vk, "publish_overflow", 1);
		return FANOUT_EUNAVAIL;
	}
	if (vk_reserved(channel)) {
		vk->host->published(vk->b, token, 0);
		return 0;
	}
	if (vk->positioned)
		return publish_positioned(vk, channel, data, len, token);
	full = vk_broker_name(vk, channel, &argl[1]);
	if (!full)
		return FANOUT_ENOMEM;
	/* A cluster: SPUBLISH on the shard that owns the channel's slot. */
	if (vk->cluster)
		cn = cluster_conn_for(vk, full, argl[1], &slot);
	if (!cn || cn->phase != C_READY) {
		free(full);
		count(vk, "publish_unavailable", 1);
		vk->host->published(vk->b, token, 0);
		return 0;
	}
	req = calloc(1, sizeof(*req));
	if (!req) {
		free(full);
		return FANOUT_ENOMEM;
	}
	req->vk = vk;
	req->token = token;
	argv[0] = vk->cluster ? "SPUBLISH" : "PUBLISH";
	argl[0] = strlen(argv[0]);
	argv[1] = full;
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
