/*
 * http_api.c — owns the HTTP publish API (POST /api/publish): the key
 * check (constant-time, "Authorization: apikey KEY"), the body read and its
 * cap (max_message_bytes: a declared length over it is 413 before anything
 * is read), the body's parse (protocol.c, the checks of a client publish
 * frame; "data" keeps the sender's bytes), the hand-over to the hub as a
 * publisher that allow_publish does not restrict, and the answer once the
 * broker accepted the message (200) or refused it.
 *
 * A backend that confirms inline is answered from the BODY_COMPLETION
 * callback; otherwise the connection reads nothing more until the broker
 * answers (rx flow control, so a pipelined request cannot be parsed into
 * this one) and the answer is written when the hub reports it.
 *
 * Loop thread only. Allocates the body and answer buffers of the request
 * (per-session data of fanout-http), freed when it is answered or gone.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOG_TAG "api"
#include "config.h"
#include "conn.h"
#include "http_reply.h"
#include "http_api.h"
#include "log.h"
#include "protocol.h"
#include "refuse.h"

/* The longest Authorization header read (a longer one is a wrong key). */
#define AUTH_HEADER_MAX 1024

static const struct config *cfg;

void http_api_init(const struct config *c)
{
	cfg = c;
}

int http_api_enabled(void)
{
	return cfg && cfg->publish_api_key && *cfg->publish_api_key;
}

static struct http_api_req *of_hub(struct hub_subscriber *s)
{
	return (struct http_api_req *)((char *)s - offsetof(struct http_api_req, hub));
}

/* Compare without an early exit, so the time does not tell how much of a
 * guess was right (the length is not secret). */
static int key_equal(const char *a, size_t an, const char *b, size_t bn)
{
	unsigned char d = an != bn;
	for (size_t i = 0; i < an && i < bn; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static int key_ok(struct lws *wsi)
{
	char h[AUTH_HEADER_MAX + 1];
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n <= 7 || n > AUTH_HEADER_MAX ||
	    lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION) != n)
		return 0;
	if (strncasecmp(h, "apikey ", 7))
		return 0;
	const char *k = h + 7;
	while (*k == ' ')
		k++;
	return key_equal(k, strlen(k), cfg->publish_api_key, strlen(cfg->publish_api_key));
}

/* Answer now, from an HTTP callback (a refusal before the publish). */
static int answer_now(struct lws *wsi, int status, const char *message)
{
	return http_finish(wsi, http_error(wsi, status, message, HTTP_CLOSE));
}

int http_api_begin(struct lws *wsi, void *user)
{
	struct http_api_req *r = user;
	struct conn *c = conn_of(wsi);
	char cl[32];

	if (!r)
		return -1;
	if (!key_ok(wsi)) {
		refuse(REFUSE_API_KEY, c ? c->ip : "-", "POST /api/publish with a wrong or no key");
		static const char body[] = "{\"error\":\"wrong or missing API key\"}\n";
		const char *extra[] = {"www-authenticate:", "apikey", NULL};
		return http_finish(wsi, http_send(wsi, 401, "application/json", body,
						  sizeof(body) - 1, HTTP_CLOSE, extra));
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
	    lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return answer_now(wsi, 411, "a Content-Length is required");
	char *end;
	unsigned long long n = strtoull(cl, &end, 10);
	if (*end || cl[0] < '0' || cl[0] > '9')
		return answer_now(wsi, 400, "bad Content-Length");
	if (n > (unsigned long long)cfg->max_message_bytes)
		return answer_now(wsi, 413, "body larger than max_message_bytes");
	memset(r, 0, sizeof(*r));
	r->wsi = wsi;
	r->active = 1;
	buf_init(&r->body, 0);
	buf_init(&r->answer, 0);
	return 0; /* lws reads the body: HTTP_BODY, then HTTP_BODY_COMPLETION */
}

int http_api_body(struct lws *wsi, void *user, const void *in, size_t len)
{
	struct http_api_req *r = user;
	if (!r || !r->active)
		return 0; /* a body on another route: ignored */
	if ((long long)(r->body.len + len) > cfg->max_message_bytes) {
		/* more than the Content-Length promised: lws should not let
		 * that through, but never buffer past the cap */
		answer_now(wsi, 413, "body larger than max_message_bytes");
		return -1;
	}
	return buf_append(&r->body, in, len) ? -1 : 0;
}

/* Write the answer and complete the transaction from outside an lws
 * callback (the broker answered later): reading resumes first, so lws can
 * flush what the socket does not take; a connection lws wants closed is
 * closed asynchronously. r is gone (lws frees it) when this returns. */
static void answer_async(struct http_api_req *r)
{
	struct lws *wsi = r->wsi;
	int rc = r->answer.oom ? -1
			       : http_send(wsi, r->status, "application/json", buf_data(&r->answer),
					   r->answer.len, 0, NULL);
	r->hub.ops = NULL; /* inside a hub op: the hub has let go of it */
	http_api_gone(r);
	lws_rx_flow_control(wsi, 1);
	if (http_finish(wsi, rc))
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void reply(struct http_api_req *r, int status, const char *json_body)
{
	r->status = status;
	buf_reset(&r->answer);
	buf_puts(&r->answer, json_body);
	if (!r->in_complete)
		answer_async(r);
}

static void reply_error(struct http_api_req *r, int status, const char *message)
{
	r->status = status;
	buf_reset(&r->answer);
	buf_puts(&r->answer, "{\"error\":");
	json_append_string(&r->answer, message, strlen(message), NULL);
	buf_puts(&r->answer, "}\n");
	if (!r->in_complete)
		answer_async(r);
}

/* Write the answer from the BODY_COMPLETION callback. */
static int answer_now_r(struct lws *wsi, struct http_api_req *r)
{
	int rc = r->answer.oom ? -1
			       : http_send(wsi, r->status, "application/json", buf_data(&r->answer),
					   r->answer.len, 0, NULL);
	http_api_gone(r);
	return http_finish(wsi, rc);
}

/* ---- the hub's side ---- */

static struct msg *no_frame(const struct hub_event *ev)
{
	return NULL; /* never subscribed */
}

static void no_deliver(struct hub_subscriber *s, void *tag, struct msg *m)
{
}

static void api_ack(struct hub_subscriber *s, const char *type, const char *id, const char *channel)
{
	struct http_api_req *r = of_hub(s);
	reply(r, 200, "{}\n");
}

/* A positioned channel's publish: {"epoch":"E","offset":N} (DESIGN.md). */
static void api_published(struct hub_subscriber *s, const char *id, const char *channel,
			  const char *epoch, uint64_t offset)
{
	struct http_api_req *r = of_hub(s);
	char body[PROTO_EPOCH_MAX + 64];
	if (!epoch) {
		reply(r, 200, "{}\n");
		return;
	}
	/* epochs are [A-Za-z0-9_-]: no escaping needed */
	snprintf(body, sizeof(body), "{\"epoch\":\"%s\",\"offset\":%llu}\n", epoch,
		 (unsigned long long)offset);
	reply(r, 200, body);
}

static void api_error(struct hub_subscriber *s, const char *id, const char *code,
		      const char *message)
{
	struct http_api_req *r = of_hub(s);
	int status = !strcmp(code, PROTO_E_FORBIDDEN)	      ? 403
		     : !strcmp(code, PROTO_E_NO_BACKEND)      ? 404
		     : !strcmp(code, PROTO_E_BACKEND_UNAVAIL) ? 503
							      : 400;
	reply_error(r, status, message);
}

static const struct hub_sink_ops api_ops = {
    .name = "http-api",
    .frame = no_frame,
    .deliver = no_deliver,
    .ack = api_ack,
    .error = api_error,
    .published = api_published,
};

int http_api_complete(struct lws *wsi, void *user)
{
	struct http_api_req *r = user;
	struct proto_request req;
	struct proto_error err;

	if (!r || !r->active)
		return http_finish(wsi, http_error(wsi, 404, "not found", HTTP_CLOSE));
	if (r->body.oom)
		return -1;
	r->in_complete = 1;
	if (proto_parse_publish_body(buf_data(&r->body) ? buf_data(&r->body) : "", r->body.len,
				     &req, &err)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s: %s", err.code, err.message);
		reply_error(r, 400, msg);
	} else {
		r->hub.ops = &api_ops;
		r->hub.publisher = 1;
		hub_publish(&r->hub, req.channel, req.data, req.data_len, "");
		proto_request_clear(&req);
	}
	r->in_complete = 0;
	if (r->status) /* answered at once (refused, or a backend that confirms inline) */
		return answer_now_r(wsi, r);
	/* The broker answers later. Read nothing more until then, so a
	 * pipelined request cannot be parsed into this one (lws would). */
	lws_rx_flow_control(wsi, 0);
	return 0;
}

void http_api_gone(void *user)
{
	struct http_api_req *r = user;
	if (!r || !r->active)
		return;
	if (r->hub.ops)
		hub_subscriber_gone(&r->hub); /* drops a publish still in flight */
	r->active = 0;
	buf_free(&r->body);
	buf_free(&r->answer);
}
