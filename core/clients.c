/*
 * clients.c — owns the list of every client connection of the process (a
 * doubly linked list of the struct client each transport embeds), the
 * max_clients admission answer, the drain of all clients at shutdown, the
 * idle sweep (idle_timeout_s: one timer walks the list, so receiving a
 * frame costs one store, not a timer update) and the token sweep (once a
 * second while any client has an access token: those whose token expired
 * are handed to their transport, which closes them 4003). Loop thread
 * only; allocates nothing but the two sweep timers (the links live in the
 * transports' connections).
 */
#include <stddef.h>
#include <time.h>

#include "auth.h"
#include "clients.h"
#include "guard.h"
#include "loop.h"
#include "metrics.h"

static struct client *head;
static long long n_clients, n_kind[CLIENT__KINDS];
static long long max_clients;
static void (*on_drained)(void);
static int draining;
static struct fanout_timer *idle_timer;
static uint64_t idle_ms, sweep_ms;
static struct fanout_timer *token_timer;
static int token_timer_armed;

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

/* O(clients) once a second while any has a token (a comparison each). */
static void token_sweep(struct fanout_timer *t, void *arg)
{
	const struct auth_key *k = auth_process_key();
	long long now = (long long)time(NULL);
	int any = 0;
	token_timer_armed = 0;
	for (struct client *c = head, *next; c; c = next) {
		next = c->next; /* token_expired may close (remove) it */
		if (!c->guard)
			continue;
		if (guard_expired(c->guard, k, now)) {
			c->guard = NULL; /* once */
			c->token_expired(c);
		} else {
			any = 1;
		}
	}
	if (any) {
		loop_timer_arm(token_timer, 1000);
		token_timer_armed = 1;
	}
}

void clients_watch_tokens(void)
{
	if (!token_timer && !(token_timer = loop_timer_add(token_sweep, NULL)))
		return;
	if (!token_timer_armed) {
		loop_timer_arm(token_timer, 1000);
		token_timer_armed = 1;
	}
}

void clients_tokens_free(void)
{
	loop_timer_remove(token_timer);
	token_timer = NULL;
	token_timer_armed = 0;
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

struct client *clients_head(void)
{
	return head;
}

long long clients_count(void)
{
	return n_clients;
}

long long clients_count_kind(enum client_kind k)
{
	return n_kind[k];
}
