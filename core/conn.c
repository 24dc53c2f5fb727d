/*
 * conn.c — owns the accounting of accepted connections: one struct conn
 * per accepted socket (allocated by server.c's accept loop, handed to lws as
 * the wsi's opaque user data, released when lws destroys the wsi), the
 * parsed trusted_proxies list, and the per-IP connection count behind
 * max_connections_per_ip: a direct client is counted by its peer address
 * from accept() to close (over the cap: the socket is closed at once, before
 * lws allocates anything for it); a client behind a trusted proxy is
 * counted by its X-Forwarded-For address from its upgrade to its close
 * (over the cap: 429, see gate.c).
 *
 * Loop thread only. Allocates one conn per connection and one count entry
 * per distinct counted address (freed when its count drops to zero), so the
 * table never outgrows the open connections.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#define LOG_TAG "conn"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "refuse.h"

#define CONN_MAGIC 0x636f6e6eu /* "conn" */
#define BUCKETS	   4096u

struct ipcount {
	struct netaddr a;
	long long n;
	struct ipcount *next;
};

static struct ipcount *table[BUCKETS];
static struct cidr *trusted;
static size_t n_trusted;
static long long per_ip_max; /* 0 = off */
static uint64_t handshake_ms;

static unsigned hash(const struct netaddr *a)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(a->a); i++)
		h = (h ^ a->a[i]) * 16777619u;
	return h % BUCKETS;
}

static struct ipcount **slot(const struct netaddr *a)
{
	struct ipcount **p = &table[hash(a)];
	while (*p && !netaddr_equal(&(*p)->a, a))
		p = &(*p)->next;
	return p;
}

long long conn_count_of(const struct netaddr *a)
{
	struct ipcount *e = *slot(a);
	return e ? e->n : 0;
}

/* Count one more connection for a; -1 when a is at the cap (or OOM). */
static int count_add(const struct netaddr *a)
{
	struct ipcount **p = slot(a);
	if (!*p) {
		struct ipcount *e = calloc(1, sizeof(*e));
		if (!e)
			return -1;
		e->a = *a;
		*p = e;
	}
	if ((*p)->n >= per_ip_max)
		return -1;
	(*p)->n++;
	return 0;
}

static void count_del(const struct netaddr *a)
{
	struct ipcount **p = slot(a), *e = *p;
	if (!e)
		return;
	if (--e->n <= 0) {
		*p = e->next;
		free(e);
	}
}

int conn_init(const struct config *c)
{
	const char *why;

	conn_free_all();
	per_ip_max = c->max_connections_per_ip;
	handshake_ms = (uint64_t)c->handshake_timeout_s * 1000;
	if (c->n_trusted_proxies) {
		trusted = calloc(c->n_trusted_proxies, sizeof(*trusted));
		if (!trusted)
			return -1;
		for (size_t i = 0; i < c->n_trusted_proxies; i++)
			if (cidr_parse(c->trusted_proxies[i], &trusted[n_trusted++], &why)) {
				/* config.c checked every entry already */
				log_err("trusted_proxies: %s: %s", c->trusted_proxies[i], why);
				return -1;
			}
	}
	return 0;
}

int conn_reload(const struct config *c)
{
	struct cidr *t = NULL;
	size_t n = 0;
	const char *why;

	if (c->n_trusted_proxies && !(t = calloc(c->n_trusted_proxies, sizeof(*t))))
		return -1;
	for (size_t i = 0; i < c->n_trusted_proxies; i++)
		if (cidr_parse(c->trusted_proxies[i], &t[n++], &why)) {
			log_err("trusted_proxies: %s: %s", c->trusted_proxies[i], why);
			free(t);
			return -1;
		}
	free(trusted);
	trusted = t;
	n_trusted = n;
	/* Connections open now keep their counts (and are counted only if the
	 * cap was on when they came). */
	per_ip_max = c->max_connections_per_ip;
	return 0;
}

void conn_free_all(void)
{
	for (unsigned i = 0; i < BUCKETS; i++)
		while (table[i]) {
			struct ipcount *e = table[i];
			table[i] = e->next;
			free(e);
		}
	free(trusted);
	trusted = NULL;
	n_trusted = 0;
}

const struct cidr *conn_trusted(size_t *n)
{
	*n = n_trusted;
	return trusted;
}

struct conn *conn_accept(const struct sockaddr *sa, int admin)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->magic = CONN_MAGIC;
	c->admin = admin ? 1 : 0;
	c->accepted_ms = loop_now_ms();
	if (netaddr_from_sockaddr(sa, &c->peer))
		memset(&c->peer, 0, sizeof(c->peer)); /* not an IP socket */
	c->client = c->peer;
	netaddr_format(&c->peer, c->ip, sizeof(c->ip));
	c->proxied = cidr_list_match(trusted, n_trusted, &c->peer) ? 1 : 0;
	if (per_ip_max && !c->proxied && !admin) {
		if (count_add(&c->peer)) {
			refuse(REFUSE_PER_IP, c->ip,
			       "max_connections_per_ip (%lld) reached: closed", per_ip_max);
			free(c);
			return NULL;
		}
		c->counted = 1;
		c->counted_ip = c->peer;
	}
	return c;
}

int conn_set_client(struct conn *c, const struct netaddr *client)
{
	c->client = *client;
	netaddr_format(client, c->ip, sizeof(c->ip));
	if (!per_ip_max || c->counted || netaddr_equal(client, &c->peer))
		return 0;
	if (count_add(client))
		return -1;
	c->counted = 1;
	c->counted_ip = *client;
	return 0;
}

void conn_release(struct conn *c)
{
	if (!c || c->magic != CONN_MAGIC)
		return;
	if (c->counted)
		count_del(&c->counted_ip);
	/* Gone without one complete request after the handshake timeout: lws
	 * timed it out (a slow or silent client). */
	if (!c->requests && handshake_ms && loop_now_ms() - c->accepted_ms + 250 >= handshake_ms)
		refuse(REFUSE_TIMEOUT, c->ip, "no complete request within handshake_timeout_s");
	c->magic = 0;
	free(c);
}

struct conn *conn_of(struct lws *wsi)
{
	struct conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	return c && c->magic == CONN_MAGIC ? c : NULL;
}
