/*
 * probe.c — the valkey backend's liveness probe. hiredis 0.14 cannot PING a
 * subscribed connection and TCP keepalive does not notice a stopped broker,
 * so every probe_interval_ms the backend PUBLISHes a sequence number to its
 * own probe channel on the command connection and expects it back on the
 * subscriber connection within probe_timeout_ms; a probe not back in time
 * drops the subscriber (and the command connection, if its PUBLISH got no
 * reply either) so both reconnect.
 *
 * Runs on the host's loop thread. Allocates one struct pub_req per probe
 * PUBLISH (freed in its reply callback, which hiredis also runs with a NULL
 * reply when the context goes away) and two timers (probe_init /
 * probe_free).
 */
#include "vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A message arrived on the probe channel: is it the probe in flight? */
void probe_receive(struct vk *vk, const char *payload, size_t len)
{
	char want[32];

	snprintf(want, sizeof(want), "%llu", (unsigned long long)vk->probe_seq);
	if (vk->probe_inflight && len == strlen(want) && memcmp(payload, want, len) == 0) {
		vk->probe_inflight = false;
		vk->host->timer_disarm(vk->t_probe_timeout);
		if (vk->probe_interval_ms)
			vk->host->timer_arm(vk->t_probe, vk->probe_interval_ms);
	}
}

int probe_init(struct vk *vk)
{
	vk->t_probe = vk->host->timer_add(vk->b, on_probe, vk);
	vk->t_probe_timeout = vk->host->timer_add(vk->b, on_probe_timeout, vk);
	return vk->t_probe && vk->t_probe_timeout ? 0 : FANOUT_ENOMEM;
}

void probe_free(struct vk *vk)
{
	if (vk->t_probe)
		vk->host->timer_remove(vk->t_probe);
	if (vk->t_probe_timeout)
		vk->host->timer_remove(vk->t_probe_timeout);
}
