/*
 * gate.c — owns the upgrade gate (see gate.h for the order of its checks):
 * the parsed allowed_origins patterns and the one function every WebSocket
 * upgrade goes through, whichever lws protocol the client's
 * Sec-WebSocket-Protocol would have selected. Before it, an upgrade naming
 * "http" (or any internal protocol) on any path was accepted with no path or
 * Origin check and never counted as a client; the Origin was copied into a
 * fixed buffer (a long legal one failed open), matched with fnmatch and two
 * Origin headers were joined into one string.
 *
 * The last step is the access token (auth.h) when [auth] is on: found in
 * the query (?token=) or an Authorization: Bearer header, never both,
 * verified, refused with 401 and WWW-Authenticate: Bearer. A connection
 * that passed is marked in its conn, so that the session, once the
 * connection is a WebSocket, reads the token's claims again without paying
 * for a second signature check (gate_claims()); one that somehow reached
 * the WebSocket state without the mark is verified in full. The token is
 * never logged (refusals give the reason only; log.c also masks token=
 * and Bearer values in every line).
 *
 * Loop thread only. Allocates the pattern array at init and one copy of an
 * Origin header per check (freed before returning).
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_TAG "gate"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "conn.h"
#include "gate.h"
#include "http_reply.h"
#include "log.h"
#include "netaddr.h"
#include "origin.h"
#include "protocol.h"
#include "refuse.h"

/* Longer Origin headers are refused unparsed (a valid one is far shorter:
 * scheme + "://" + 255-byte host + ":65535"). */
#define ORIGIN_HEADER_MAX 512
/* X-Forwarded-For read at most this long (the rightmost hops matter). */
#define XFF_MAX 2048

static const struct config *cfg;
static struct origin *patterns;
static size_t n_patterns;
static int any_origin;

int gate_init(const struct config *c)
{
	const char *why;

	gate_free();
	cfg = c;
	patterns = calloc(c->n_allowed_origins ? c->n_allowed_origins : 1, sizeof(*patterns));
	if (!patterns)
		return -1;
	for (size_t i = 0; i < c->n_allowed_origins; i++) {
		if (!strcmp(c->allowed_origins[i], "*")) {
			any_origin = 1;
			continue;
		}
		if (origin_pattern_parse(c->allowed_origins[i], &patterns[n_patterns], &why)) {
			log_err("allowed_origins: %s: %s", c->allowed_origins[i], why);
			return -1;
		}
		n_patterns++;
	}
	return 0;
}

void gate_free(void)
{
	free(patterns);
	patterns = NULL;
	n_patterns = 0;
	any_origin = 0;
}

/* The transports' endpoints, as the session layer registers them
 * (gate_set_endpoints()); none until it has. */
static int (*endpoint_has)(const char *path);
static int (*endpoint_in_band)(const char *path, struct lws *wsi);

void gate_set_endpoints(int (*has_path)(const char *path),
			int (*token_in_band)(const char *path, struct lws *wsi))
{
	endpoint_has = has_path;
	endpoint_in_band = token_in_band;
}

int gate_is_endpoint(const char *path)
{
	return endpoint_has && endpoint_has(path);
}

/* Whether fragment idx of header h exists (lws joins repeated headers as
 * fragments; an empty one has length 0 but still exists). */
static int hdr_frag(struct lws *wsi, enum lws_token_indexes h, int idx)
{
	char b[2];
	return lws_hdr_fragment_length(wsi, h, idx) > 0 ||
	       lws_hdr_copy_fragment(wsi, b, sizeof(b), h, idx) == 0;
}

/* The request line says HTTP/1.1 or later. */
static int http11_or_later(struct lws *wsi)
{
	char v[16];
	int n = lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP);
	return n >= 8 && !strncmp(v, "HTTP/", 5) &&
	       (v[5] > '1' || (v[5] == '1' && v[6] == '.' && v[7] >= '1'));
}

static int refused(struct lws *wsi, const struct conn *c, enum refuse_reason r, int status,
		   const char *message, const char *detail)
{
	refuse(r, c ? c->ip : "-", "upgrade: %s%s%s", message, detail ? ": " : "",
	       detail ? detail : "");
	return http_error(wsi, status, message, HTTP_CLOSE) ? -1 : 1;
}

/* 0: no Origin, or an allowed one; -1: refuse (why says which). */
static int check_origin(struct lws *wsi, const char **why)
{
	if (!hdr_frag(wsi, WSI_TOKEN_ORIGIN, 0))
		return 0; /* not a browser */
	if (any_origin)
		return 0;
	/* lws keeps each repeated header as one more fragment */
	if (hdr_frag(wsi, WSI_TOKEN_ORIGIN, 1)) {
		*why = "more than one Origin header";
		return -1;
	}
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (n <= 0 || n > ORIGIN_HEADER_MAX) {
		*why = n <= 0 ? "empty Origin" : "Origin too long";
		return -1;
	}
	char *v = malloc((size_t)n + 1);
	if (!v) {
		*why = "out of memory";
		return -1;
	}
	struct origin o;
	int ok =
	    lws_hdr_copy(wsi, v, n + 1, WSI_TOKEN_ORIGIN) == n && !origin_parse(v, (size_t)n, &o);
	free(v);
	if (!ok) {
		*why = "Origin is not scheme://host[:port]";
		return -1;
	}
	for (size_t i = 0; i < n_patterns; i++)
		if (origin_match(&patterns[i], &o))
			return 0;
	*why = "Origin not in allowed_origins";
	return -1;
}

static int check_token(struct lws *wsi, const char **why);

/* 401 {"error": why} with WWW-Authenticate: Bearer (RFC 6750). */
static int refuse_token(struct lws *wsi, const char *why)
{
	static const char *const hdrs[] = {"WWW-Authenticate:", "Bearer realm=\"fanout\"", NULL};
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"error\":");
	json_append_string(&b, why, strlen(why), NULL);
	buf_puts(&b, "}\n");
	int rc =
	    b.oom ? -1
		  : http_send(wsi, 401, "application/json", buf_data(&b), b.len, HTTP_CLOSE, hdrs);
	buf_free(&b);
	return rc ? -1 : 1;
}

/* The client behind trusted proxies, counted against the per-IP cap. */
static int check_client(struct lws *wsi, struct conn *c)
{
	size_t n_trusted;
	const struct cidr *trusted = conn_trusted(&n_trusted);
	if (!c || !c->proxied)
		return 0;
	char xff[XFF_MAX + 1];
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR);
	if (n <= 0)
		return 0;
	/* keep the rightmost XFF_MAX bytes: the hops our proxies added */
	char *all = malloc((size_t)n + 1);
	if (!all)
		return -1;
	int got = lws_hdr_copy(wsi, all, n + 1, WSI_TOKEN_X_FORWARDED_FOR);
	size_t len = got > 0 ? (size_t)got : 0, skip = len > XFF_MAX ? len - XFF_MAX : 0;
	memcpy(xff, all + skip, len - skip);
	free(all);
	struct netaddr client;
	netaddr_client(&c->peer, trusted, n_trusted, xff, len - skip, &client);
	return conn_set_client(c, &client);
}

#define GO_ON 2

/* Steps 0 and 1, shared by upgrades and streams: a complete request came
 * (it counts against no timeout now), no URL or header cut at its limit,
 * not the admin listener. GO_ON, or what the gate returns. */
static int first_steps(struct lws *wsi, struct conn *c, const char *admin_refusal)
{
	if (c)
		c->requests++;
	int too_big = http_head_check(wsi);
	if (too_big)
		return http_head_refuse(wsi, too_big) ? -1 : 1;
	if (c && c->admin)
		return refused(wsi, c, REFUSE_PATH, 404, admin_refusal, NULL);
	return GO_ON;
}

int gate_upgrade(struct lws *wsi)
{
	struct conn *c = conn_of(wsi);
	char *uri = NULL;
	int uri_len = 0;
	const char *why = NULL;

	int early = first_steps(wsi, c, "no WebSocket endpoint on the admin port");
	if (early != GO_ON)
		return early;
	char up[16];
	if (lws_hdr_copy(wsi, up, sizeof(up), WSI_TOKEN_UPGRADE) <= 0 ||
	    strcasecmp(up, "websocket"))
		return refused(wsi, c, REFUSE_BAD_REQUEST, 400,
			       "only WebSocket upgrades are served", NULL);
	int meth = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
	if (meth != LWSHUMETH_GET)
		return refused(wsi, c, REFUSE_METHOD, 405, "an upgrade must be a GET", NULL);
	if (!http11_or_later(wsi)) /* RFC 6455 4.1 (lws 4.1.6 would upgrade it) */
		return refused(wsi, c, REFUSE_HTTP_VERSION, 400,
			       "a WebSocket upgrade needs HTTP/1.1", NULL);
	/* the path without the query (lws keeps the arguments apart) */
	char path[256];
	if (uri_len <= 0 || (size_t)uri_len >= sizeof(path))
		return refused(wsi, c, REFUSE_PATH, 404, "not a WebSocket endpoint", NULL);
	memcpy(path, uri, (size_t)uri_len);
	path[uri_len] = '\0';
	if (!gate_is_endpoint(path))
		return refused(wsi, c, REFUSE_PATH, 404, "not a WebSocket endpoint", path);
	if (hdr_frag(wsi, WSI_TOKEN_PROTOCOL, 0))
		return refused(wsi, c, REFUSE_SUBPROTOCOL, 400,
			       "Sec-WebSocket-Protocol is not supported on this endpoint", NULL);
	if (check_client(wsi, c))
		return refused(wsi, c, REFUSE_PER_IP, 429, "too many connections from this address",
			       NULL);
	if (check_origin(wsi, &why))
		return refused(wsi, c, REFUSE_ORIGIN, 403, "origin not allowed", why);
	/* tRPC with ?connectionParams=1 may bring its token in its first
	 * message instead (session_token_set()); one in the URL or a header
	 * is checked here all the same. */
	char tk[8];
	int in_band = endpoint_in_band && endpoint_in_band(path, wsi) &&
		      gate_request_token(wsi, tk, sizeof(tk)) == 0;
	if (!in_band && check_token(wsi, &why)) {
		refuse(REFUSE_TOKEN, c ? c->ip : "-", "upgrade: token refused: %s", why);
		return refuse_token(wsi, why);
	}
	if (c && !in_band)
		c->token_ok = 1;
	return 0;
}

/* ---- the token ---- */

long gate_request_token(struct lws *wsi, char *out, size_t cap)
{
	char frag[AUTH_TOKEN_MAX + 16];
	long found = 0;

	out[0] = 0;
	for (int n = 0; n < 256; n++) {
		int len =
		    lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, n);
		if (len < 0)
			break;
		if (strncmp(frag, "token=", 6))
			continue;
		if (found || (size_t)len - 6 >= cap)
			return -1; /* twice, or too long */
		memcpy(out, frag + 6, (size_t)len - 6);
		out[len - 6] = 0;
		found = len - 6;
	}
	int hl = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (hl <= 0)
		return found;
	if ((size_t)hl >= sizeof(frag) ||
	    lws_hdr_copy(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		return -1;
	if (strncasecmp(frag, "Bearer ", 7))
		return found; /* another scheme: not ours */
	if (found)
		return -1; /* in the URL and in the header */
	const char *t = frag + 7;
	while (*t == ' ')
		t++;
	size_t tl = strlen(t);
	while (tl && t[tl - 1] == ' ')
		tl--;
	if (tl >= cap)
		return -1;
	memcpy(out, t, tl);
	out[tl] = 0;
	return (long)tl;
}

/* 0: tokens off, or a valid token; -1: refuse (why says which). */
static int check_token(struct lws *wsi, const char **why)
{
	const struct auth_key *k = auth_process_key();
	char tok[AUTH_TOKEN_MAX + 1];
	struct auth_claims claims;

	if (!k)
		return 0;
	long n = gate_request_token(wsi, tok, sizeof(tok));
	if (n < 0) {
		*why = "token given twice, or too long";
		return -1;
	}
	if (n == 0) {
		*why = "a token is required (?token= or Authorization: Bearer)";
		return -1;
	}
	if (auth_verify(k, tok, (size_t)n, (long long)time(NULL), &claims, why))
		return -1;
	auth_claims_free(&claims);
	return 0;
}

int gate_claims(struct lws *wsi, struct conn *c, struct auth_claims *claims, const char **why)
{
	const struct auth_key *k = auth_process_key();
	char tok[AUTH_TOKEN_MAX + 1];

	memset(claims, 0, sizeof(*claims));
	if (!k)
		return 1;
	int passed = c && c->token_ok;
	if (c)
		c->token_ok = 0;
	long n = gate_request_token(wsi, tok, sizeof(tok));
	if (n <= 0) {
		*why = "no token";
		return -1;
	}
	long long now = (long long)time(NULL);
	if (!passed)
		return auth_verify(k, tok, (size_t)n, now, claims, why);
	/* Verified by the gate a moment ago, on these very bytes. */
	if (auth_parse_token(tok, (size_t)n, auth_key_alg(k), auth_key_audience(k), claims, why))
		return -1;
	if (auth_check_time(claims, now, auth_key_leeway(k), why)) {
		auth_claims_free(claims);
		return -1;
	}
	return 0;
}

int gate_stream(struct lws *wsi)
{
	struct conn *c = conn_of(wsi);
	const char *why = NULL;

	int early = first_steps(wsi, c, "no event stream on the admin port");
	if (early != GO_ON)
		return early;
	if (check_client(wsi, c))
		return refused(wsi, c, REFUSE_PER_IP, 429, "too many connections from this address",
			       NULL);
	if (check_origin(wsi, &why))
		return refused(wsi, c, REFUSE_ORIGIN, 403, "origin not allowed", why);
	if (check_token(wsi, &why)) {
		refuse(REFUSE_TOKEN, c ? c->ip : "-", "event stream: token refused: %s", why);
		return refuse_token(wsi, why);
	}
	if (c)
		c->token_ok = 1;
	return 0;
}
