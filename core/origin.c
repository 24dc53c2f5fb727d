/*
 * origin.c — owns the parsing and matching of WebSocket Origin values and
 * of allowed_origins patterns. The old check copied the header into a
 * 256-byte buffer (a longer, legal origin failed open), matched with
 * fnmatch (a '*' crossed '/' and ':') and saw two Origin headers joined as
 * one string. Here an origin is parsed into scheme, host and port, every
 * malformed value is an error the caller turns into HTTP 403, and a pattern
 * compares each part exactly; the only wildcard is a leading "*." label.
 *
 * Pure: no allocation, no global state, any thread.
 */
#include <string.h>

#include "origin.h"

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A DNS-style host: labels of [A-Za-z0-9_-], 1..63 bytes, separated by
 * single dots, no leading or trailing dot. */
static int host_name_ok(const char *h, size_t n)
{
	size_t label = 0;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int c = h[i];
		if (c == '.') {
			if (!label)
				return 0;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

/* "[v6]" with hex digits, ':' and '.' inside (inet_pton-grade checking is
 * not needed: the value is only compared, never used as an address). */
static int host_v6_ok(const char *h, size_t n)
{
	if (n < 4 || h[0] != '[' || h[n - 1] != ']')
		return 0;
	for (size_t i = 1; i + 1 < n; i++) {
		int c = lower(h[i]);
		if (!is_digit(c) && !(c >= 'a' && c <= 'f') && c != ':' && c != '.')
			return 0;
	}
	return memchr(h, ':', n) != NULL;
}

static int default_port(const char *scheme)
{
	if (!strcmp(scheme, "http") || !strcmp(scheme, "ws"))
		return 80;
	if (!strcmp(scheme, "https") || !strcmp(scheme, "wss"))
		return 443;
	return 0;
}

/* Shared by both parsers: pattern = 1 allows a leading "*." label. */
static int parse(const char *s, size_t n, struct origin *o, int pattern, const char **why)
{
	size_t i = 0;

	memset(o, 0, sizeof(*o));
	/* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	while (i < n && (is_alpha(s[i]) ||
			 (i && (is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))))
		i++;
	if (!i || i > ORIGIN_SCHEME_MAX || n - i < 3 || memcmp(s + i, "://", 3)) {
		*why = "expected scheme://host[:port]";
		return -1;
	}
	for (size_t k = 0; k < i; k++)
		o->scheme[k] = (char)lower(s[k]);
	const char *h = s + i + 3, *end = s + n;
	/* host ends at the port's ':' (after a bracketed IPv6 literal) */
	const char *hend;
	if (h < end && *h == '[') {
		hend = memchr(h, ']', (size_t)(end - h));
		if (!hend) {
			*why = "unterminated [IPv6] host";
			return -1;
		}
		hend++;
	} else {
		hend = h;
		while (hend < end && *hend != ':')
			hend++;
	}
	size_t hn = (size_t)(hend - h);
	if (pattern && hn >= 2 && h[0] == '*' && h[1] == '.') {
		o->wildcard = 1;
		h++; /* keep ".rest" */
		hn--;
		if (!host_name_ok(h + 1, hn - 1) || !memchr(h + 1, '.', hn - 1)) {
			*why = "a wildcard needs a domain of at least two labels after \"*.\"";
			return -1;
		}
	} else if (!(h < end && *h == '[' ? host_v6_ok(h, hn) : host_name_ok(h, hn))) {
		*why = "bad host (letters, digits, '-', '_' and dots, or [IPv6])";
		return -1;
	}
	if (hn > ORIGIN_HOST_MAX) {
		*why = "host longer than 255 bytes";
		return -1;
	}
	for (size_t k = 0; k < hn; k++)
		o->host[k] = (char)lower(h[k]);
	o->port = default_port(o->scheme);
	if (hend < end) {
		/* ":" 1*5DIGIT, 1..65535, no leading zero, nothing after */
		if (*hend != ':') {
			*why = "bad port (or a path, which an origin never has)";
			return -1;
		}
		const char *p = hend + 1;
		size_t pn = (size_t)(end - p);
		if (!pn || pn > 5 || p[0] == '0') {
			*why = "bad port";
			return -1;
		}
		long v = 0;
		for (size_t k = 0; k < pn; k++) {
			if (!is_digit(p[k])) {
				*why = "bad port (or a path, which an origin never has)";
				return -1;
			}
			v = v * 10 + (p[k] - '0');
		}
		if (v > 65535) {
			*why = "bad port";
			return -1;
		}
		o->port = (int)v;
	}
	return 0;
}

int origin_parse(const char *s, size_t n, struct origin *o)
{
	const char *why;
	return parse(s, n, o, 0, &why);
}

int origin_pattern_parse(const char *s, struct origin *p, const char **why)
{
	return parse(s, strlen(s), p, 1, why);
}

int origin_match(const struct origin *p, const struct origin *o)
{
	if (strcmp(p->scheme, o->scheme) || p->port != o->port)
		return 0;
	if (!p->wildcard)
		return !strcmp(p->host, o->host);
	/* p->host is ".example.com": o->host must end with it and have at
	 * least one more label in front ("a.example.com", "b.a.example.com") */
	size_t pl = strlen(p->host), ol = strlen(o->host);
	return ol > pl && !strcmp(o->host + ol - pl, p->host);
}
