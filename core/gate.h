/*
 * gate.h — the one check every WebSocket upgrade passes before lws answers
 * 101, whatever protocol name or path the client asked for (called from
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE of every lws protocol fanoutd
 * registers). In order:
 *
 *   0. the head:        no URL or header cut at its limit (414 / 431)
 *   1. the connection:  not the admin listener (404)
 *   2. the request:     Upgrade: websocket (400; no h2c), GET (405), HTTP/1.1 or later (400, RFC
 * 6455 4.1), a path that is a WebSocket endpoint — ws_path or another transport's path
 * (session_add_proto()) (404), no Sec-WebSocket-Protocol (the endpoints speak none; a name could
 * select one of lws's internal protocols) (400)
 *   3. the client:      its address behind trusted proxies, counted against
 *                       max_connections_per_ip (429)
 *   4. the Origin:      absent, or parsed and listed in allowed_origins (403)
 *   5. the token:       when [auth] is on: ?token= or Authorization: Bearer
 *                       (not both), verified (auth.h) (401, with
 *                       WWW-Authenticate: Bearer)
 *
 * A refusal is an HTTP answer with a JSON body {"error": "..."}, counted in
 * fanout_refused_total{reason} and logged with the client's address.
 */
#ifndef FANOUT_GATE_H
#define FANOUT_GATE_H

#include <stddef.h>

struct lws;
struct config;
struct auth_claims;
struct conn;

/* Parse allowed_origins (config.c has checked every entry); 0 or -1. */
int gate_init(const struct config *c);
void gate_free(void);

/*
 * Check the upgrade request on wsi. Returns 0 to let it upgrade, or 1 when
 * it was refused and the answer is written (what CONFIRM_UPGRADE returns so
 * lws completes the transaction), or -1 to hang up.
 */
int gate_upgrade(struct lws *wsi);

/*
 * The same checks for a long-lived HTTP stream (Server-Sent Events, sse.c):
 * steps 1 (admin listener: 404), 3 (client behind trusted proxies, per-IP
 * cap: 429), 4 (Origin: 403) and 5 (token). Returns as gate_upgrade(), for
 * the LWS_CALLBACK_HTTP handler.
 */
int gate_stream(struct lws *wsi);

/*
 * Which paths are WebSocket endpoints, and whether the upgrade on wsi to
 * path may bring its token in its first message instead (tRPC's
 * ?connectionParams=1): the session layer, which keeps the endpoints
 * (session_add_proto()), registers its lookups here at start-up, so the
 * gate calls no module above it.
 */
void gate_set_endpoints(int (*has_path)(const char *path),
			int (*token_in_band)(const char *path, struct lws *wsi));

/* 1 when path (no query) is a WebSocket endpoint of this server. */
int gate_is_endpoint(const char *path);

/*
 * The token of an accepted connection (c: its accounting, which the gate
 * marked; may be NULL) — a WebSocket connection, an event stream: 0 with
 * *claims filled
 * (free with auth_claims_free()), 1 when tokens are off (*claims empty),
 * -1 when it has none or it is no longer valid (*why set). A connection
 * the gate passed is not verified twice (its claims are read again); any
 * other is verified in full.
 */
int gate_claims(struct lws *wsi, struct conn *c, struct auth_claims *claims, const char **why);

/* Copy the request's token (?token= or Authorization: Bearer) into out
 * (cap bytes, NUL-terminated), for any transport (SSE too). Returns its
 * length, 0 when the request has none, -1 when it is ambiguous (given
 * twice, or both in the URL and the header) or longer than cap - 1. */
long gate_request_token(struct lws *wsi, char *out, size_t cap);

#endif
