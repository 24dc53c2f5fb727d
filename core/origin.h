/*
 * origin.h — the Origin check of a WebSocket upgrade: exact comparison of
 * scheme://host[:port] against allowed_origins, where a pattern's host may
 * start with one wildcard label "*." (any subdomain, never the domain
 * itself and never across a '/', ':' or '.' boundary it does not own).
 * Pure functions over bounded input; no allocation; fuzzed by
 * tests/fuzz/fuzz_http.c.
 */
#ifndef FANOUT_ORIGIN_H
#define FANOUT_ORIGIN_H

#include <stddef.h>

/* Longest scheme and host kept (a DNS name is at most 253 bytes; an IPv6
 * literal with brackets fits too). */
#define ORIGIN_SCHEME_MAX 32
#define ORIGIN_HOST_MAX	  255

/* A parsed origin or pattern: lower-case scheme and host, the port made
 * explicit (80 for http, 443 for https; 0 = none given on another
 * scheme). */
struct origin {
	char scheme[ORIGIN_SCHEME_MAX + 1];
	char host[ORIGIN_HOST_MAX + 1];
	int port;
	int wildcard; /* pattern only: host was "*.rest", host holds ".rest" */
};

/*
 * Parse an Origin header value s[0..n) ("https://app.example.com",
 * "http://127.0.0.1:8080", "http://[::1]:3000"). Anything else — a path,
 * userinfo, a query, an empty or over-long host, a bad port, a space, a
 * second origin, "null" — is an error: -1 (the caller refuses).
 */
int origin_parse(const char *s, size_t n, struct origin *o);

/* Parse one allowed_origins entry (not "*", which the caller handles): as
 * origin_parse, and the host may start with "*." followed by at least two
 * labels ("*.example.com"). 0, or -1 with *why for the config error. */
int origin_pattern_parse(const char *s, struct origin *p, const char **why);

/* 1 when origin o is allowed by pattern p. */
int origin_match(const struct origin *p, const struct origin *o);

#endif
