/*
 * http.c — owns the HTTP side of the port: the mount chain (three callback
 * routes and, when web_root is set, static files under "/") and the
 * "fanout-http" protocol that answers /healthz (liveness), /readyz
 * (readiness: 503 with a JSON body naming each backend's state until all are
 * up with their subscriptions confirmed, and while draining) and /metrics
 * (Prometheus text). Loop thread only; one response buffer per request,
 * freed when it is written or the connection closes.
 */
#include <libwebsockets.h>
#include <string.h>

#define LOG_TAG "http"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "plugin_host.h"
#include "protocol.h"
#include "session.h"
#include "workers.h"

struct http_req {
	struct buf body;
	int have_body;
};

static struct lws_http_mount mounts[4];
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
	if (c->web_root && *c->web_root) {
		mounts[3].mountpoint = "/";
		mounts[3].mountpoint_len = 1;
		mounts[3].origin = c->web_root;
		mounts[3].def = "index.html";
		mounts[3].origin_protocol = LWSMPRO_FILE;
	} else {
		mounts[2].mount_next = NULL;
	}
	return mounts;
}

static int respond(struct lws *wsi, struct http_req *r, int status, const char *ctype)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;
	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, r->body.len, &p, end))
		return 1;
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)"no-store", 8, &p, end))
		return 1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	r->have_body = 1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int on_http(struct lws *wsi, struct http_req *r)
{
	char uri[128];
	int status = 200;
	const char *ctype = "application/json";

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL) || 1;
	buf_init(&r->body, LWS_PRE);
	if (!strcmp(uri, "/healthz")) {
		buf_puts(&r->body, "{\"status\":\"ok\"}\n");
	} else if (!strcmp(uri, "/readyz")) {
		struct buf why;
		buf_init(&why, 0);
		int draining = session_draining();
		int ready = plugin_host_ready(&why) && !draining;
		struct buf group;
		buf_init(&group, 0);
		if (workers_active())
			ready = workers_ready(&group) && !draining;
		status = ready ? 200 : 503;
		buf_printf(&r->body, "{\"status\":\"%s\",\"instance\":",
			   ready      ? "ready"
			   : draining ? "draining"
				      : "not ready");
		json_append_string(&r->body, cfg->instance, strlen(cfg->instance), NULL);
		buf_putc(&r->body, ',');
		if (group.len) {
			buf_append(&r->body, buf_data(&group), group.len);
			buf_putc(&r->body, ',');
		}
		buf_free(&group);
		buf_append(&r->body, buf_data(&why) + 1, why.len - 1); /* merge the object */
		buf_putc(&r->body, '\n');
		buf_free(&why);
	} else if (!strcmp(uri, "/metrics")) {
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (workers_active())
			workers_render_metrics(&r->body);
		else
			metrics_render(&r->body, session_draining());
	} else {
		buf_free(&r->body);
		return lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL) || 1;
	}
	if (r->body.oom) {
		buf_free(&r->body);
		return 1;
	}
	return respond(wsi, r, status, ctype);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_req *r = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		memset(r, 0, sizeof(*r));
		return on_http(wsi, r);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!r || !r->have_body)
			break;
		r->have_body = 0;
		if (lws_write(wsi, (unsigned char *)buf_data(&r->body), r->body.len,
			      LWS_WRITE_HTTP_FINAL) < 0) {
			buf_free(&r->body);
			return -1;
		}
		buf_free(&r->body);
		if (lws_http_transaction_completed(wsi))
			return -1;
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (r)
			buf_free(&r->body);
		break;
	default:
		break;
	}
	return 0;
}

const struct lws_protocols http_protocol = {
    .name = "fanout-http",
    .callback = http_callback,
    .per_session_data_size = sizeof(struct http_req),
    .rx_buffer_size = 0,
};
