/*
 * http.c — owns the HTTP side of fanoutd's listeners: one lws mount that
 * sends every plain HTTP request to the "fanout-http" protocol, whose
 * callback routes it (http_route.c decides where): /healthz (liveness),
 * /readyz (readiness: 503 with a JSON body naming each backend's state
 * until all are up with their subscriptions confirmed, and while draining),
 * /metrics (Prometheus text; only on admin_listen when that is set), POST
 * /api/publish (http_api.c) and static files from web_root — opened beneath
 * web_root only (symbolic links may not lead out of it), never a dotfile,
 * at most HTTP_STATIC_MAX bytes. HEAD is answered on every GET route.
 *
 * Every answer is written whole, headers and body in one lws_write, from
 * the HTTP callback itself (see finish()). Loop thread only; each response
 * is built in one buffer and freed before the callback returns; the
 * web_root directory stays open from http_init() to http_free().
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOG_TAG "http"
#include "buf.h"
#include "clients.h"
#include "config.h"
#include "conn.h"
#include "gate.h"
#include "http.h"
#include "http_reply.h"
#include "http_api.h"
#include "http_route.h"
#include "log.h"
#include "metrics.h"
#include "plugin_host.h"
#include "protocol.h"
#include "refuse.h"
#include "workers.h"

/* The largest static file served (bigger: 404 and a warning; web_root is
 * for the web client and a demo page, not for downloads). */
#define HTTP_STATIC_MAX (1024 * 1024)
/* The largest response written in one piece. */
#define HTTP_MAX_RESPONSE (HTTP_STATIC_MAX + 4096)

static struct lws_http_mount mounts[2];
static const struct config *cfg;
static int root_fd = -1;

const struct lws_http_mount *http_mounts(const struct config *c)
{
	cfg = c;
	memset(mounts, 0, sizeof(mounts));
	/* everything to fanout-http (http_route.c routes it) ... */
	mounts[0].mountpoint = "/";
	mounts[0].mountpoint_len = 1;
	mounts[0].origin = "fanout-http";
	mounts[0].origin_protocol = LWSMPRO_CALLBACK;
	/* ... but sse_path: Server-Sent Events (sse.c's lws protocol) */
	if (c->sse_path && *c->sse_path) {
		mounts[1].mountpoint = c->sse_path;
		mounts[1].mountpoint_len = (unsigned char)strlen(c->sse_path);
		mounts[1].origin = "fanout-sse";
		mounts[1].origin_protocol = LWSMPRO_CALLBACK;
		mounts[0].mount_next = &mounts[1];
	}
	return mounts;
}

int http_init(const struct config *c)
{
	cfg = c;
	http_free();
	if (!c->web_root || !*c->web_root)
		return 0;
	root_fd = open(c->web_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		log_warn("web_root %s: %s: no static files will be served", c->web_root,
			 strerror(errno));
	return 0;
}

void http_free(void)
{
	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
}

static int respond(struct lws *wsi, int status, const char *ctype, struct buf *body, unsigned flags)
{
	int rc =
	    body->oom ? -1 : http_send(wsi, status, ctype, buf_data(body), body->len, flags, NULL);
	buf_free(body);
	return http_finish(wsi, rc);
}

static void readyz(struct buf *body, int *status)
{
	struct buf why;
	buf_init(&why, 0);
	int draining = clients_draining();
	int ready = plugin_host_ready(&why) && !draining;
	struct buf group;
	buf_init(&group, 0);
	if (workers_active())
		ready = workers_ready(&group) && !draining;
	*status = ready ? 200 : 503;
	buf_printf(body, "{\"status\":\"%s\",\"instance\":",
		   ready      ? "ready"
		   : draining ? "draining"
			      : "not ready");
	json_append_string(body, cfg->instance, strlen(cfg->instance), NULL);
	buf_putc(body, ',');
	if (group.len) {
		buf_append(body, buf_data(&group), group.len);
		buf_putc(body, ',');
	}
	buf_free(&group);
	buf_append(body, buf_data(&why) + 1, why.len - 1); /* merge the object */
	buf_putc(body, '\n');
	buf_free(&why);
}

/* Open rel beneath web_root: symbolic links are followed only while they
 * stay inside it (openat2 RESOLVE_BENEATH; on kernels without openat2, not
 * at all). */
static int open_beneath(const char *rel)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	int fd = (int)syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/* no openat2: walk the segments without following any link */
	char path[1024];
	snprintf(path, sizeof(path), "%s", rel);
	int dir = dup(root_fd);
	for (char *seg = path, *slash; dir >= 0; seg = slash + 1) {
		slash = strchr(seg, '/');
		if (!slash) {
			fd = openat(dir, seg, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
			close(dir);
			return fd;
		}
		*slash = '\0';
		int next = openat(dir, seg, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		close(dir);
		dir = next;
	}
	return -1;
}

static int static_file(struct lws *wsi, const char *path, size_t len, unsigned flags)
{
	char rel[1024];
	struct stat st;

	if (root_fd < 0 || http_static_path(path, len, rel, sizeof(rel)))
		return http_finish(wsi, http_error(wsi, 404, "not found", flags));
	int fd = open_beneath(rel);
	if (fd < 0)
		return http_finish(wsi, http_error(wsi, 404, "not found", flags));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > HTTP_STATIC_MAX) {
		if (!fstat(fd, &st) && S_ISREG(st.st_mode))
			log_warn("web_root: %s is larger than %d bytes: not served", rel,
				 HTTP_STATIC_MAX);
		close(fd);
		return http_finish(wsi, http_error(wsi, 404, "not found", flags));
	}
	struct buf body;
	buf_init(&body, 0);
	size_t size = (size_t)st.st_size;
	if (!(flags & HTTP_HEAD) && buf_reserve(&body, size)) {
		close(fd);
		return -1;
	}
	while (!(flags & HTTP_HEAD) && body.len < size) {
		ssize_t r = read(fd, buf_data(&body) + body.len, size - body.len);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break; /* shrank under us: send what there is */
		}
		body.len += (size_t)r;
	}
	close(fd);
	int rc = http_send(wsi, 200, http_content_type(rel), buf_data(&body),
			   (flags & HTTP_HEAD) ? size : body.len, flags, NULL);
	buf_free(&body);
	return http_finish(wsi, rc);
}

static int on_http(struct lws *wsi, void *user)
{
	char *uri = NULL;
	int uri_len = 0;
	struct conn *c = conn_of(wsi);
	struct http_site site = {
	    .admin = c && c->admin,
	    .admin_split = cfg->admin_listen && *cfg->admin_listen,
	    .static_files = root_fd >= 0,
	    .publish_api = http_api_enabled(),
	};

	if (c)
		c->requests++;
	int too_big = http_head_check(wsi);
	if (too_big)
		return http_finish(wsi, http_head_refuse(wsi, too_big));
	int meth = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
	if (meth < 0 || uri_len < 0)
		return http_finish(wsi, http_error(wsi, 400, "bad request", HTTP_CLOSE));
	enum http_route r = http_route_of(&site, uri, (size_t)uri_len);
	unsigned m = meth == LWSHUMETH_GET    ? HTTP_M_GET
		     : meth == LWSHUMETH_HEAD ? HTTP_M_HEAD
		     : meth == LWSHUMETH_POST ? HTTP_M_POST
					      : 0;
	unsigned flags = m == HTTP_M_HEAD ? HTTP_HEAD : 0;
	if (r == ROUTE_NOT_FOUND)
		return http_finish(wsi, http_error(wsi, 404, "not found", flags));
	if (!(m & http_route_methods(r))) {
		const char *allow[] = {"allow:", http_route_allow(r), NULL};
		refuse(REFUSE_METHOD, c ? c->ip : "-", "method not allowed");
		struct buf b;
		buf_init(&b, 0);
		buf_puts(&b, "{\"error\":\"method not allowed\"}\n");
		int rc = b.oom ? -1
			       : http_send(wsi, 405, "application/json", buf_data(&b), b.len,
					   flags | HTTP_CLOSE, allow);
		buf_free(&b);
		return http_finish(wsi, rc);
	}

	struct buf body;
	int status = 200;
	buf_init(&body, 0);
	switch (r) {
	case ROUTE_HEALTHZ:
		buf_puts(&body, "{\"status\":\"ok\"}\n");
		return respond(wsi, 200, "application/json", &body, flags);
	case ROUTE_READYZ:
		readyz(&body, &status);
		return respond(wsi, status, "application/json", &body, flags);
	case ROUTE_METRICS:
		if (workers_active())
			workers_render_metrics(&body);
		else
			metrics_render(&body, clients_draining());
		return respond(wsi, 200, "text/plain; version=0.0.4; charset=utf-8", &body, flags);
	case ROUTE_STATIC:
		buf_free(&body);
		return static_file(wsi, uri, (size_t)uri_len, flags);
	case ROUTE_PUBLISH:
		buf_free(&body);
		return http_api_begin(wsi, user);
	case ROUTE_NOT_FOUND:
		break;
	}
	buf_free(&body);
	return http_finish(wsi, http_error(wsi, 404, "not found", flags));
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, user);
	case LWS_CALLBACK_HTTP_BODY:
		return http_api_body(wsi, user, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return http_api_complete(wsi, user);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		http_api_gone(user);
		return 0;
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
    .per_session_data_size = HTTP_API_STATE_SIZE,
    .rx_buffer_size = 0,
    /* lws splits a write into pieces of this size (default 4 KiB) and
     * buffers the rest: let a whole response go to the kernel at once. */
    .tx_packet_size = HTTP_MAX_RESPONSE,
};
