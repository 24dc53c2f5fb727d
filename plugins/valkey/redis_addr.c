/*
 * redis_addr.c — parses Redis/Valkey URLs (the syntax is in redis_addr.h)
 * into fixed buffers. Pure: no allocation, no state, any thread; compiled
 * into the valkey backend and into fanout-cli, fuzzed by
 * tests/fuzz/fuzz_redis_addr.c.
 */
#include "redis_addr.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (size cap). 0, or -1 with err set. */
static int decode(const char *s, size_t n, char *out, size_t cap, const char *what, char *err,
		  size_t errlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return fail(err, errlen, "bad %%-escape in the %s (%%XX)", what);
			c = (char)(hi * 16 + lo);
			if (c == '\0')
				return fail(err, errlen, "%%00 in the %s", what);
			i += 2;
		}
		if (o + 1 >= cap)
			return fail(err, errlen, "%s longer than %zu bytes", what, cap - 1);
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* Digits only, value within [lo, hi]. */
static int number(const char *s, size_t n, long lo, long hi, long *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* A host name or IPv4 address: [A-Za-z0-9._-]. */
static int name_ok(const char *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* An IPv6 address (inside the brackets): hex digits, ':' and '.', at least
 * one ':', then optionally a zone "%name" (fe80::1%eth0). */
static int v6_ok(const char *h, size_t n)
{
	const char *zone = memchr(h, '%', n);
	size_t an = zone ? (size_t)(zone - h) : n;

	if (!memchr(h, ':', an))
		return 0;
	for (size_t i = 0; i < an; i++)
		if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.')
			return 0;
	return !zone || (n - an > 1 && name_ok(zone + 1, n - an - 1));
}

static int parse_tcp(const char *p, struct redis_addr *a, char *err, size_t errlen)
{
	const char *end = p + strlen(p), *slash, *at, *h, *hend, *port = NULL;
	int v6 = 0;
	long v;

	if (strpbrk(p, "?#"))
		return fail(err, errlen,
			    "a query (?...) or fragment (#...) is not supported; "
			    "use the options for the rest");
	slash = memchr(p, '/', (size_t)(end - p));
	if (!slash)
		slash = end;
	at = NULL;
	for (const char *q = p; q < slash; q++)
		if (*q == '@')
			at = q;
	h = p;
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		if (colon) {
			if (decode(p, (size_t)(colon - p), a->user, sizeof(a->user), "user", err,
				   errlen) < 0 ||
			    decode(colon + 1, (size_t)(at - colon - 1), a->password,
				   sizeof(a->password), "password", err, errlen) < 0)
				return -1;
		} else if (decode(p, (size_t)(at - p), a->password, sizeof(a->password), "password",
				  err, errlen) < 0) {
			return -1;
		}
		if (a->user[0] && !a->password[0])
			return fail(err, errlen, "a user without a password (user:password@)");
		h = at + 1;
	}
	if (h < slash && *h == '[') {
		const char *rb = memchr(h, ']', (size_t)(slash - h));
		if (!rb)
			return fail(err, errlen, "unclosed [ in the host");
		if (rb + 1 < slash && rb[1] != ':')
			return fail(err, errlen, "expected :port after the ] of an IPv6 host");
		port = rb + 1 < slash ? rb + 2 : NULL;
		v6 = 1;
		hend = rb;
		h++;
	} else {
		const char *colon = memchr(h, ':', (size_t)(slash - h));
		if (colon && memchr(colon + 1, ':', (size_t)(slash - colon - 1)))
			return fail(err, errlen, "an IPv6 host goes in brackets: [::1]:6379");
		port = colon ? colon + 1 : NULL;
		hend = colon ? colon : slash;
	}
	if (hend == h)
		return fail(err, errlen, "no host");
	if ((size_t)(hend - h) >= sizeof(a->host))
		return fail(err, errlen, "host longer than %zu bytes", sizeof(a->host) - 1);
	if (v6 ? !v6_ok(h, (size_t)(hend - h)) : !name_ok(h, (size_t)(hend - h)))
		return fail(err, errlen,
			    v6 ? "not an IPv6 address in the brackets"
			       : "the host may hold only A-Z a-z 0-9 . - _ (IPv6 in brackets)");
	memcpy(a->host, h, (size_t)(hend - h));
	a->host[hend - h] = '\0';
	if (port) {
		if (number(port, (size_t)(slash - port), 1, 65535, &v) < 0)
			return fail(err, errlen, "the port must be a number 1-65535");
		a->port = (int)v;
	}
	if (slash < end && slash + 1 < end) {
		if (number(slash + 1, (size_t)(end - slash - 1), 0, REDIS_ADDR_DB_MAX, &v) < 0)
			return fail(err, errlen, "the database (/N) must be a number 0-%d",
				    REDIS_ADDR_DB_MAX);
		a->db = (int)v;
	}
	return 0;
}

int redis_addr_parse(const char *url, struct redis_addr *a, char *err, size_t errlen)
{
	const char *sep;
	size_t sl;

	memset(a, 0, sizeof(*a));
	a->port = 6379;
	if (!url)
		return fail(err, errlen, "no URL");
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return fail(err, errlen, "a space or control character in the URL");
	sep = strstr(url, "://");
	sl = sep ? (size_t)(sep - url) : 0;
	if (sep && sl == 4 && strncasecmp(url, "unix", 4) == 0) {
		const char *path = sep + 3;
		if (path[0] != '/')
			return fail(err, errlen,
				    "unix:// needs an absolute path: unix:///run/valkey.sock");
		if (strpbrk(path, "?#"))
			return fail(err, errlen,
				    "a query (?...) or fragment (#...) is not supported");
		if (strlen(path) >= sizeof(a->unix_path))
			return fail(err, errlen, "unix socket path longer than %zu bytes",
				    sizeof(a->unix_path) - 1);
		strcpy(a->unix_path, path);
		return 0;
	}
	if (sep && ((sl == 5 && strncasecmp(url, "redis", 5) == 0) ||
		    (sl == 6 && strncasecmp(url, "valkey", 6) == 0)))
		return parse_tcp(sep + 3, a, err, errlen);
	if (sep && ((sl == 6 && strncasecmp(url, "rediss", 6) == 0) ||
		    (sl == 7 && strncasecmp(url, "valkeys", 7) == 0)))
		return fail(err, errlen,
			    "TLS (rediss://) is not supported: hiredis 0.14 has no TLS; use a "
			    "unix socket or a TLS tunnel");
	return fail(err, errlen,
		    "expected redis://[[user]:password@]host[:port][/db], valkey://... or "
		    "unix:///path");
}
