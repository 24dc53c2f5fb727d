/*
 * clients.c — owns the list of every client connection of the process (a
 * doubly linked list of the struct client each transport embeds), the
 * max_clients admission answer and the drain of all clients at shutdown.
 * Loop thread only; allocates nothing (the links live in the transports'
 * connections).
 */
#include <stddef.h>

#include "clients.h"
#include "metrics.h"

static struct client *head;
static long long n_clients, n_kind[CLIENT__KINDS];
static long long max_clients;
static void (*on_drained)(void);
static int draining;

void clients_init(long long max, void (*drained)(void))
{
	max_clients = max;
	on_drained = drained;
}

enum clients_admit clients_add(struct client *c)
{
	c->prev = NULL;
	c->next = head;
	if (head)
		head->prev = c;
	head = c;
	n_clients++;
	n_kind[c->kind]++;
	metrics.transport_clients[c->kind]++;
	metrics.clients++;
	metrics.clients_accepted_total++;
	if (draining)
		return CLIENTS_DRAINING;
	if (n_clients > max_clients) {
		metrics.refused[REFUSE_MAX_CLIENTS]++; /* the transport logs it */
		return CLIENTS_FULL;
	}
	return CLIENTS_OK;
}

void clients_remove(struct client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	n_clients--;
	n_kind[c->kind]--;
	metrics.transport_clients[c->kind]--;
	metrics.clients--;
	if (draining && n_clients == 0 && on_drained)
		on_drained();
}

long long clients_drain_all(void)
{
	draining = 1;
	/* A drain op may close its client at once (removing it): take the
	 * next link first. */
	for (struct client *c = head, *next; c; c = next) {
		next = c->next;
		c->drain(c);
	}
	return n_clients;
}

int clients_draining(void)
{
	return draining;
}

long long clients_count(void)
{
	return n_clients;
}

long long clients_count_kind(enum client_kind k)
{
	return n_kind[k];
}
