/*
 * clients.c — owns the list of every client connection of the process (a
 * doubly linked list of the struct client each transport embeds), the
 * max_clients admission answer, the drain of all clients at shutdown and
 * the idle sweep (idle_timeout_s: one timer walks the list, so receiving a
 * frame costs one store, not a timer update). Loop thread only; allocates
 * nothing but the sweep timer (the links live in the transports'
 * connections).
 */
#include <stddef.h>

#include "clients.h"
#include "loop.h"
#include "metrics.h"

static struct client *head;
static long long n_clients, n_kind[CLIENT__KINDS];
static long long max_clients;
static void (*on_drained)(void);
static int draining;
static struct fanout_timer *idle_timer;
static uint64_t idle_ms, sweep_ms;

void clients_init(long long max, void (*drained)(void))
{
	max_clients = max;
	on_drained = drained;
}

void clients_touch(struct client *c)
{
	c->last_rx_ms = loop_now_ms();
}

static void idle_sweep(struct fanout_timer *t, void *arg)
{
	uint64_t now = loop_now_ms();
	/* an idle op may close (remove) its client: take the next link first */
	for (struct client *c = head, *next; c; c = next) {
		next = c->next;
		if (c->idle && now - c->last_rx_ms >= idle_ms) {
			metrics.idle_timeouts++;
			c->last_rx_ms = now; /* once: the close is under way */
			c->idle(c);
		}
	}
	loop_timer_arm(idle_timer, sweep_ms);
}

int clients_idle_init(long long idle_s)
{
	clients_idle_free();
	if (idle_s <= 0)
		return 0;
	idle_ms = (uint64_t)idle_s * 1000;
	sweep_ms = idle_ms / 4 > 1000 ? idle_ms / 4 : 1000;
	if (sweep_ms > 15000)
		sweep_ms = 15000;
	idle_timer = loop_timer_add(idle_sweep, NULL);
	if (!idle_timer)
		return -1;
	loop_timer_arm(idle_timer, sweep_ms);
	return 0;
}

void clients_idle_free(void)
{
	if (idle_timer)
		loop_timer_remove(idle_timer);
	idle_timer = NULL;
}

enum clients_admit clients_add(struct client *c)
{
	c->last_rx_ms = loop_now_ms();
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
