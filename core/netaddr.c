/*
 * netaddr.c — owns the parsing of client addresses and networks: IPv4 and
 * IPv6 text (inet_pton on a bounded copy), CIDR prefixes for
 * trusted_proxies, and the walk over X-Forwarded-For that finds the client
 * behind trusted proxies. Every IPv4 address is stored IPv4-mapped
 * (::ffff:a.b.c.d), so an IPv4 prefix /n is the mapped prefix /(96 + n).
 *
 * Pure: no allocation, no global state, any thread. Fuzzed through
 * tests/fuzz/fuzz_http.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_v4(const struct netaddr *a)
{
	return !memcmp(a->a, v4mapped, sizeof(v4mapped));
}

int netaddr_parse(const char *s, size_t n, struct netaddr *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
		if (memchr(s, '.', n) && !memchr(s, ':', n))
			return -1; /* brackets are for IPv6 */
	}
	if (n == 0 || n >= sizeof(tmp) || memchr(s, '\0', n))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, out->a + 12) == 1) {
		memcpy(out->a, v4mapped, sizeof(v4mapped));
		return 0;
	}
	if (strchr(tmp, '%')) /* no zone ids */
		return -1;
	return inet_pton(AF_INET6, tmp, out->a) == 1 ? 0 : -1;
}

int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
	if (sa->sa_family == AF_INET) {
		memcpy(out->a, v4mapped, sizeof(v4mapped));
		memcpy(out->a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out->a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	return -1;
}

char *netaddr_format(const struct netaddr *a, char *buf, size_t len)
{
	if (!inet_ntop(is_v4(a) ? AF_INET : AF_INET6, is_v4(a) ? a->a + 12 : a->a, buf,
		       (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int netaddr_equal(const struct netaddr *x, const struct netaddr *y)
{
	return !memcmp(x->a, y->a, sizeof(x->a));
}

/* ---- networks ---------------------------------------------------------- */

static int prefix_equal(const uint8_t *x, const uint8_t *y, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(x, y, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (x[full] & mask) == (y[full] & mask);
}

int cidr_parse(const char *s, struct cidr *out, const char **why)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (netaddr_parse(s, alen, &out->net)) {
		*why = "not an IP address or network (a.b.c.d[/n] or IPv6[/n])";
		return -1;
	}
	int v4 = is_v4(&out->net), max = v4 ? 32 : 128;
	int bits = max;
	if (slash) {
		const char *p = slash + 1;
		char *end;
		if (*p < '0' || *p > '9' || strlen(p) > 3) {
			*why = "bad prefix length after '/'";
			return -1;
		}
		long v = strtol(p, &end, 10);
		if (*end || v > max) {
			*why = v4 ? "prefix length must be 0..32" : "prefix length must be 0..128";
			return -1;
		}
		bits = (int)v;
	}
	out->bits = v4 ? bits + 96 : bits;
	/* Host bits set below the prefix ("10.0.0.1/8"): almost always a
	 * typo for a different network; refuse rather than guess. */
	struct netaddr masked = {{0}};
	memcpy(masked.a, out->net.a, (size_t)out->bits / 8);
	if (out->bits % 8)
		masked.a[out->bits / 8] =
		    (uint8_t)(out->net.a[out->bits / 8] & (0xff << (8 - out->bits % 8)));
	if (!netaddr_equal(&masked, &out->net)) {
		*why = "address has bits set beyond the prefix length";
		return -1;
	}
	return 0;
}

int cidr_match(const struct cidr *c, const struct netaddr *a)
{
	return prefix_equal(c->net.a, a->a, c->bits);
}

int cidr_list_match(const struct cidr *list, size_t n, const struct netaddr *a)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_match(&list[i], a))
			return 1;
	return 0;
}

/* ---- X-Forwarded-For ---------------------------------------------------- */

int netaddr_client(const struct netaddr *peer, const struct cidr *trusted, size_t n_trusted,
		   const char *xff, size_t n, struct netaddr *client)
{
	*client = *peer;
	if (!n_trusted || !xff || !n || !cidr_list_match(trusted, n_trusted, peer))
		return 0;
	int from_header = 0;
	size_t end = n;
	while (end > 0) {
		/* the entry that ends at end (exclusive) */
		while (end > 0 &&
		       (xff[end - 1] == ',' || xff[end - 1] == ' ' || xff[end - 1] == '\t'))
			end--;
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',' && xff[start - 1] != ' ' &&
		       xff[start - 1] != '\t')
			start--;
		if (start == end)
			break;
		struct netaddr hop;
		if (netaddr_parse(xff + start, end - start, &hop))
			break; /* garbage: trust nothing further left */
		*client = hop;
		from_header = 1;
		if (!cidr_list_match(trusted, n_trusted, &hop))
			break;
		end = start;
	}
	return from_header;
}
