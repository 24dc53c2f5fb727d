/*
 * http_api.h — the HTTP publish API: POST /api/publish with
 * "Authorization: apikey KEY" (publish_api_key) and a body
 * {"channel":"c","data":<any JSON>}, answered once the broker accepted the
 * message. Called from http.c's fanout-http protocol callback; the state of
 * one request lives in that protocol's per-session data.
 */
#ifndef FANOUT_HTTP_API_H
#define FANOUT_HTTP_API_H

#include <stddef.h>

#include "buf.h"
#include "hub.h"

struct lws;
struct config;

/* One request in progress (lws's per-session data of fanout-http, zeroed
 * by lws when the protocol is bound). */
struct http_api_req {
	struct hub_subscriber hub; /* the hub answers the publish through it */
	struct lws *wsi;
	struct buf body; /* capped at max_message_bytes */
	int active;	 /* a publish request is being read or answered */
	int in_complete; /* inside BODY_COMPLETION: answer from there */
	int status;	 /* the answer, once known (0: not yet) */
	struct buf answer;
};
#define HTTP_API_STATE_SIZE sizeof(struct http_api_req)

/* Configure from c (publish_api_key, max_message_bytes). */
void http_api_init(const struct config *c);
/* 1 when publish_api_key is set. */
int http_api_enabled(void);

/* The LWS_CALLBACK_HTTP of a POST /api/publish: checks the key and the
 * declared length; 0 to read the body, -1 to close (answer written). */
int http_api_begin(struct lws *wsi, void *user);
/* LWS_CALLBACK_HTTP_BODY / _BODY_COMPLETION; callback's return values. */
int http_api_body(struct lws *wsi, void *user, const void *in, size_t len);
int http_api_complete(struct lws *wsi, void *user);
/* The connection closed or the protocol was dropped: forget the request
 * (the hub drops a publish still in flight). */
void http_api_gone(void *user);

#endif
