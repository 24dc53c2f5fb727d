/*
 * http.h — the HTTP routes of fanoutd's listeners (see http.c): /healthz,
 * /readyz, /metrics, POST /api/publish and static files from web_root, and
 * the helpers every HTTP answer is written with.
 */
#ifndef FANOUT_HTTP_H
#define FANOUT_HTTP_H

struct lws_protocols;
struct lws_http_mount;
struct config;

#include <stddef.h>

struct lws;

extern const struct lws_protocols http_protocol;

#define HTTP_HEAD  1u /* headers only (a HEAD request): Content-Length of the body */
#define HTTP_CLOSE 2u /* say Connection: close */

/*
 * Write a whole response — status line, Content-Type, Content-Length,
 * Cache-Control: no-store, X-Content-Type-Options: nosniff, the extra
 * headers (NULL or pairs "name:", "value", NULL-terminated), then
 * body[0..len) — in one lws_write; lws keeps what the socket does not take
 * and sends it on POLLOUT. Does not complete the transaction. 0 or -1.
 */
int http_send(struct lws *wsi, int status, const char *ctype, const void *body, size_t len,
	      unsigned flags, const char *const *extra);
/* http_send() of {"error":"message"} (application/json). */
int http_error(struct lws *wsi, int status, const char *message, unsigned flags);

/* Open web_root (a warning when it cannot be: no static files). 0. */
int http_init(const struct config *c);
struct lws_context_creation_info;
/* Set lws's request-head limits in info (header buffer, per-header and URL
 * limits) so an oversized header or URL can be answered 431 / 414. */
void http_limits(struct lws_context_creation_info *info);
/* 0, or 414 / 431 when the request's URL or a header reached its limit. */
int http_head_check(struct lws *wsi);
/* Answer that status (counted and logged as a refusal); http_send()'s
 * return value. */
int http_head_refuse(struct lws *wsi, int status);
void http_free(void);

/*
 * Complete the transaction of a response written whole (sent: what
 * http_send() returned). A response left waiting for a WRITEABLE callback
 * lets lws parse the next pipelined request into the same connection before
 * it is done, so every answer is written in one piece; one the socket did not
 * take whole is flushed and the connection closed. Returns what an
 * LWS_CALLBACK_HTTP handler returns: 0 to keep the connection, -1 to close.
 */
int http_finish(struct lws *wsi, int sent);

/* The mount that sends every plain HTTP request to http_protocol; also
 * keeps c for the routes' answers. */
const struct lws_http_mount *http_mounts(const struct config *c);

#endif
