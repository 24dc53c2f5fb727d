/*
 * conn.h — one accepted TCP connection as fanoutd accounts for it, from
 * accept() to the moment lws destroys its wsi: which listener took it, the
 * peer address, the client address after trusted proxies (for per-IP caps
 * and log lines) and its place in the per-IP connection count
 * (max_connections_per_ip).
 */
#ifndef FANOUT_CONN_H
#define FANOUT_CONN_H

#include <stdint.h>

#include "netaddr.h"

struct lws;
struct sockaddr;
struct config;

struct conn {
	uint32_t magic;
	struct netaddr peer;	 /* the TCP peer */
	struct netaddr client;	 /* after trusted proxies (the peer until an upgrade) */
	char ip[NETADDR_STRLEN]; /* client as text, for log lines */
	unsigned admin : 1;	 /* accepted on admin_listen */
	unsigned proxied : 1;	 /* the peer is a trusted proxy */
	unsigned counted : 1;	 /* holds one count of `counted_ip` */
	unsigned token_ok : 1;	 /* the gate verified its token (gate_claims) */
	struct netaddr counted_ip;
	uint64_t accepted_ms;
	unsigned requests; /* complete request heads seen (HTTP or upgrade) */
};

/* Set up from the config (trusted proxies, cap, handshake timeout); 0 or
 * -1. */
int conn_init(const struct config *c);
/* A reload changed c: trusted_proxies and max_connections_per_ip apply to
 * connections accepted from now on; the counts of open ones stay. 0 or -1
 * (the old values stay). */
int conn_reload(const struct config *c);
void conn_free_all(void);

/*
 * A connection was accepted from sa on the public (admin = 0) or admin
 * listener. Returns its conn, or NULL when it must be closed at once: its
 * address is at max_connections_per_ip (counted and logged as a refusal;
 * a trusted proxy is never counted by its own address) or out of memory.
 */
struct conn *conn_accept(const struct sockaddr *sa, int admin);
/* The connection is gone (lws destroyed its wsi, or adoption failed). */
void conn_release(struct conn *c);
/* The conn lws carries for wsi (its opaque user data), or NULL. */
struct conn *conn_of(struct lws *wsi);

/*
 * At an upgrade from behind a trusted proxy: the client is now known
 * (X-Forwarded-For). Count it against max_connections_per_ip; 0, or -1
 * when the client is at the cap (the caller answers 429).
 */
int conn_set_client(struct conn *c, const struct netaddr *client);

/* The trusted_proxies list, parsed (for netaddr_client()). */
const struct cidr *conn_trusted(size_t *n);

/* Connections currently counted for a (tests and metrics). */
long long conn_count_of(const struct netaddr *a);

#endif
