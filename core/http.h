/*
 * http.h — the HTTP routes on the WebSocket port: /healthz, /readyz,
 * /metrics (lws callback mounts) and static files from web_root.
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
 * Cache-Control: no-store, then body[0..len) — in one lws_write; lws keeps
 * what the socket does not take and sends it on POLLOUT. Does not complete
 * the transaction. 0 or -1.
 */
int http_send(struct lws *wsi, int status, const char *ctype, const void *body, size_t len,
	      unsigned flags);
/* http_send() of {"error":"message"} (application/json). */
int http_error(struct lws *wsi, int status, const char *message, unsigned flags);

/* The mount chain for c (static "/" only when web_root is set); also
 * keeps c for the routes' answers. */
const struct lws_http_mount *http_mounts(const struct config *c);

#endif
