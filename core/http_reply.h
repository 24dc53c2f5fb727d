/*
 * http_reply.h — writing HTTP answers (see http_reply.c): for the routes,
 * the publish API, the upgrade gate and event streams alike.
 */
#ifndef FANOUT_HTTP_REPLY_H
#define FANOUT_HTTP_REPLY_H

#include <stddef.h>

struct lws;
struct lws_context_creation_info;

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

/* Set lws's request-head limits in info (header buffer, per-header and URL
 * limits) so an oversized header or URL can be answered 431 / 414. */
void http_limits(struct lws_context_creation_info *info);
/* 0, or 414 / 431 when the request's URL or a header reached its limit. */
int http_head_check(struct lws *wsi);
/* Answer that status (counted and logged as a refusal); http_send()'s
 * return value. */
int http_head_refuse(struct lws *wsi, int status);

/*
 * Complete the transaction of a response written whole (sent: what
 * http_send() returned). A response left waiting for a WRITEABLE callback
 * lets lws parse the next pipelined request into the same connection before
 * it is done, so every answer is written in one piece; one the socket did not
 * take whole is flushed and the connection closed. Returns what an
 * LWS_CALLBACK_HTTP handler returns: 0 to keep the connection, -1 to close.
 */
int http_finish(struct lws *wsi, int sent);

#endif
