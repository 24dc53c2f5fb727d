/*
 * http.h — the HTTP routes of fanoutd's listeners (see http.c): /healthz,
 * /readyz, /metrics, POST /api/publish and static files from web_root. The
 * helpers every HTTP answer is written with are in http_reply.h.
 */
#ifndef FANOUT_HTTP_H
#define FANOUT_HTTP_H

struct lws_protocols;
struct lws_http_mount;
struct config;

extern const struct lws_protocols http_protocol;

/* Open web_root (a warning when it cannot be: no static files). 0. */
int http_init(const struct config *c);
void http_free(void);

/* The mount that sends every plain HTTP request to http_protocol; also
 * keeps c for the routes' answers. */
const struct lws_http_mount *http_mounts(const struct config *c);

#endif
