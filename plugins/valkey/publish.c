/*
 * publish.c — client publishes through the valkey backend: PUBLISH on the
 * command connection, answered with host->published(token, ok) when the
 * broker replies; at once with ok = 0 while the command connection is not
 * ready; refused with FANOUT_EUNAVAIL over max_pending in flight.
 *
 * Runs on the host's loop thread. Allocates one struct pub_req per
 * in-flight PUBLISH (capped by max_pending), freed in its reply callback,
 * which hiredis also runs with a NULL reply when the context goes away.
 */
#include "vk.h"

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
		if (reply && reply->type == REDIS_REPLY_ERROR) {
			char msg[300];
			snprintf(msg, sizeof(msg), "PUBLISH refused: %s", reply->str);
			vk_log_failure(vk, vk->conn[CMD].last_logged,
				       sizeof(vk->conn[CMD].last_logged), FANOUT_LOG_WARN, msg);
		}
	}
	if (!vk->stopping)
		vk->host->published(vk->b, req->token, ok);
	free(req);
}

int pub_publish(void *state, const char *channel, const void *data, size_t len, uint64_t token)
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
