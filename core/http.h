/*
 * http.h — the HTTP routes on the WebSocket port: /healthz, /readyz,
 * /metrics (lws callback mounts) and static files from web_root.
 */
#ifndef FANOUT_HTTP_H
#define FANOUT_HTTP_H

struct lws_protocols;
struct lws_http_mount;
struct config;

extern const struct lws_protocols http_protocol;

/* The mount chain for c (static "/" only when web_root is set); also
 * keeps c for the routes' answers. */
const struct lws_http_mount *http_mounts(const struct config *c);

#endif
