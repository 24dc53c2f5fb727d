/*
 * http_route.h — the pure half of fanoutd's HTTP routing: which handler a
 * request path goes to on the public or the admin listener, which methods
 * a route allows, and the mapping of a static-file path to a path relative
 * to web_root (no dot segments, no dotfiles, no empty segments, no NUL or
 * backslash). No I/O, no allocation; fuzzed by tests/fuzz/fuzz_http.c.
 */
#ifndef FANOUT_HTTP_ROUTE_H
#define FANOUT_HTTP_ROUTE_H

#include <stddef.h>

enum http_route {
	ROUTE_NOT_FOUND,
	ROUTE_HEALTHZ,
	ROUTE_READYZ,
	ROUTE_METRICS,
	ROUTE_PUBLISH, /* POST /api/publish */
	ROUTE_STATIC,  /* a file under web_root */
};

/* Where the listener stands. */
struct http_site {
	int admin;	  /* the request came in on admin_listen */
	int admin_split;  /* admin_listen is set: /metrics lives only there */
	int static_files; /* web_root is set */
	int publish_api;  /* publish_api_key is set */
};

/* The route of path (no query string) on site. */
enum http_route http_route_of(const struct http_site *site, const char *path, size_t len);

/* Methods (bit per method) a route allows; GET routes allow HEAD too. */
#define HTTP_M_GET  1u
#define HTTP_M_HEAD 2u
#define HTTP_M_POST 4u
unsigned http_route_methods(enum http_route r);
/* "GET, HEAD" / "POST" for an Allow header. */
const char *http_route_allow(enum http_route r);

/*
 * Map a static-file request path to a path relative to web_root, written
 * into out[0..n) NUL-terminated: "/" and any path ending in '/' get
 * "index.html" appended; the leading '/' is dropped. Returns 0, or -1 for a
 * path that must not be served: a segment that is empty ("//"), starts with
 * '.' (dotfiles, "." and ".."), or holds a NUL, a backslash or a control
 * byte; or one that does not fit.
 */
int http_static_path(const char *path, size_t len, char *out, size_t n);

/* The Content-Type for a file name by its extension
 * (application/octet-stream when unknown). */
const char *http_content_type(const char *name);

#endif
