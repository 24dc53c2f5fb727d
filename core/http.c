/*
 * http.c — owns the HTTP side of the port: the mount chain (three callback
 * routes and, when web_root is set, static files under "/") and the
 * "fanout-http" protocol that answers /healthz (liveness), /readyz
 * (readiness: 503 with a JSON body naming each backend's state until all are
 * up with their subscriptions confirmed, and while draining) and /metrics
 * (Prometheus text). Loop thread only; each response is built in one
 * buffer, handed to lws whole and freed before the callback returns.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#define LOG_TAG "http"
#include "buf.h"
#include "clients.h"
#include "config.h"
#include "gate.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "plugin_host.h"
#include "protocol.h"
#include "workers.h"

/* The largest response written in one piece (static files are capped below
 * it). */
#define HTTP_MAX_RESPONSE (1024 * 1024 + 4096)

static struct lws_http_mount mounts[5];
static const struct config *cfg;

const struct lws_http_mount *http_mounts(const struct config *c)
{
	static const char *const routes[] = {"/healthz", "/readyz", "/metrics"};
	cfg = c;
	memset(mounts, 0, sizeof(mounts));
	for (int i = 0; i < 3; i++) {
		mounts[i].mountpoint = routes[i];
		mounts[i].mountpoint_len = (unsigned char)strlen(routes[i]);
		mounts[i].origin = "fanout-http";
		mounts[i].origin_protocol = LWSMPRO_CALLBACK;
		mounts[i].mount_next = &mounts[i + 1];
	}
	size_t n = 3;
	if (c->sse_path && *c->sse_path) { /* Server-Sent Events (sse.c) */
		mounts[n].mountpoint = c->sse_path;
		mounts[n].mountpoint_len = (unsigned char)strlen(c->sse_path);
		mounts[n].origin = "fanout-sse"; /* sse.c's lws protocol */
		mounts[n].origin_protocol = LWSMPRO_CALLBACK;
		mounts[n - 1].mount_next = &mounts[n];
		n++;
	}
	if (c->web_root && *c->web_root) {
		mounts[n].mountpoint = "/";
		mounts[n].mountpoint_len = 1;
		mounts[n].origin = c->web_root;
		mounts[n].def = "index.html";
		mounts[n].origin_protocol = LWSMPRO_FILE;
		mounts[n - 1].mount_next = &mounts[n];
		n++;
	}
	mounts[n - 1].mount_next = NULL;
	return mounts;
}

int http_send(struct lws *wsi, int status, const char *ctype, const void *body, size_t len,
	      unsigned flags)
{
	unsigned char hdr[1024], *p = hdr, *end = hdr + sizeof(hdr) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if ((flags & HTTP_CLOSE) &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
					 5, &p, end))
		return -1;
	if (lws_finalize_http_header(wsi, &p, end))
		return -1;
	size_t hlen = (size_t)(p - hdr), n = hlen + ((flags & HTTP_HEAD) ? 0 : len);
	unsigned char *out = malloc(LWS_PRE + n);
	if (!out)
		return -1;
	memcpy(out + LWS_PRE, hdr, hlen);
	if (n > hlen)
		memcpy(out + LWS_PRE + hlen, body, len);
	int w = lws_write(wsi, out + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
	free(out);
	return w < 0 ? -1 : 0;
}

int http_error(struct lws *wsi, int status, const char *message, unsigned flags)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"error\":");
	json_append_string(&b, message, strlen(message), NULL);
	buf_puts(&b, "}\n");
	int rc =
	    b.oom ? -1 : http_send(wsi, status, "application/json", buf_data(&b), b.len, flags);
	buf_free(&b);
	return rc;
}

/*
 * Complete the transaction of a response written whole by http_send().
 * A response left waiting for a WRITEABLE callback lets lws parse the next
 * pipelined request into the same connection before this one is done (its
 * body was then overwritten — leaked — and the next response came out
 * without one), so every answer is written in one piece in the HTTP
 * callback. A response the socket did not take whole is flushed and the
 * connection closed: lws would parse pipelined input into the finished
 * request's headers while the rest waits. Returns what the LWS_CALLBACK_HTTP
 * handler returns: 0 to keep the connection, -1 to close it.
 */
static int finish(struct lws *wsi, int sent)
{
	if (sent < 0 || lws_partial_buffered(wsi))
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond(struct lws *wsi, int status, const char *ctype, struct buf *body)
{
	int rc = body->oom ? -1 : http_send(wsi, status, ctype, buf_data(body), body->len, 0);
	buf_free(body);
	return finish(wsi, rc);
}

static int on_http(struct lws *wsi)
{
	char uri[128];
	int status = 200;
	const char *ctype = "application/json";
	struct buf body;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return finish(wsi, http_error(wsi, 404, "not found", 0));
	buf_init(&body, 0);
	if (!strcmp(uri, "/healthz")) {
		buf_puts(&body, "{\"status\":\"ok\"}\n");
	} else if (!strcmp(uri, "/readyz")) {
		struct buf why;
		buf_init(&why, 0);
		int draining = clients_draining();
		int ready = plugin_host_ready(&why) && !draining;
		struct buf group;
		buf_init(&group, 0);
		if (workers_active())
			ready = workers_ready(&group) && !draining;
		status = ready ? 200 : 503;
		buf_printf(&body, "{\"status\":\"%s\",\"instance\":",
			   ready      ? "ready"
			   : draining ? "draining"
				      : "not ready");
		json_append_string(&body, cfg->instance, strlen(cfg->instance), NULL);
		buf_putc(&body, ',');
		if (group.len) {
			buf_append(&body, buf_data(&group), group.len);
			buf_putc(&body, ',');
		}
		buf_free(&group);
		buf_append(&body, buf_data(&why) + 1, why.len - 1); /* merge the object */
		buf_putc(&body, '\n');
		buf_free(&why);
	} else if (!strcmp(uri, "/metrics")) {
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (workers_active())
			workers_render_metrics(&body);
		else
			metrics_render(&body, clients_draining());
	} else {
		buf_free(&body);
		return finish(wsi, http_error(wsi, 404, "not found", 0));
	}
	return respond(wsi, status, ctype, &body);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return gate_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* never a WebSocket */
	default:
		return 0;
	}
}

const struct lws_protocols http_protocol = {
    .name = "fanout-http",
    .callback = http_callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 0,
    /* lws splits a write into pieces of this size (default 4 KiB) and
     * buffers the rest: let a whole response go to the kernel at once. */
    .tx_packet_size = HTTP_MAX_RESPONSE,
};
