/*
 * netaddr.h — client addresses: IPv4/IPv6 parsing and formatting, CIDR
 * lists (trusted_proxies) and the client address behind trusted proxies
 * (X-Forwarded-For). Pure functions, no allocation, no I/O; fuzzed by
 * tests/fuzz/fuzz_http.c.
 */
#ifndef FANOUT_NETADDR_H
#define FANOUT_NETADDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* An IP address; IPv4 is kept as the IPv4-mapped IPv6 address
 * ::ffff:a.b.c.d so one comparison serves both families. */
struct netaddr {
	uint8_t a[16];
};

/* "a.b.c.d" or an IPv6 address (optionally in brackets), s[0..n): 0 or -1. */
int netaddr_parse(const char *s, size_t n, struct netaddr *out);
/* From an accepted socket's address (AF_INET or AF_INET6): 0 or -1. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);
/* Text form (IPv4-mapped addresses as a.b.c.d) into buf; returns buf. */
#define NETADDR_STRLEN 46
char *netaddr_format(const struct netaddr *a, char *buf, size_t len);
int netaddr_equal(const struct netaddr *x, const struct netaddr *y);

/* A network: address + prefix length (0..128 on the mapped form). */
struct cidr {
	struct netaddr net;
	int bits;
};

/* "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128): 0, or -1
 * with *why. Host bits set under the prefix are an error (a typo guard). */
int cidr_parse(const char *s, struct cidr *out, const char **why);
int cidr_match(const struct cidr *c, const struct netaddr *a);
int cidr_list_match(const struct cidr *list, size_t n, const struct netaddr *a);

/*
 * The client of a request that arrived from `peer`: when peer is one of
 * the trusted proxies, walk X-Forwarded-For (xff[0..n), comma or space
 * separated, several headers joined) from the right, skipping trusted
 * proxies; the first address that is not trusted is the client. An entry
 * that does not parse ends the walk (the last good hop is the client), so
 * a forged or garbled header can never name an address the trusted proxy
 * did not add. Without trusted proxies, or from an untrusted peer, the
 * client is the peer. Returns 1 when the client came from the header.
 */
int netaddr_client(const struct netaddr *peer, const struct cidr *trusted, size_t n_trusted,
		   const char *xff, size_t n, struct netaddr *client);

#endif
