/*
 * clients.h — every client connection of this process, whatever its
 * transport (native WebSocket, tRPC, Server-Sent Events): the count that
 * max_clients caps, and draining at shutdown. A transport embeds one
 * struct client per connection, registers it when the connection is
 * accepted and removes it when it closes; it gives a drain op that starts
 * its graceful close (WebSocket: close 1001 once the queue is flushed;
 * tRPC: the reconnect notification; SSE: end the stream once flushed).
 * Loop thread only.
 */
#ifndef FANOUT_CLIENTS_H
#define FANOUT_CLIENTS_H

#include <stdint.h>

struct config;
struct guard;
struct outq;

/* Transports, for per-transport metrics (metrics.transport_clients[]). */
enum client_kind { CLIENT_WS, CLIENT_TRPC, CLIENT_SSE, CLIENT__KINDS };

struct client {
	struct client *prev, *next;
	enum client_kind kind;
	/* Start a graceful close (called once, when draining starts). */
	void (*drain)(struct client *c);
	/* Close a client that sent nothing for idle_timeout_s (NULL: the
	 * transport cannot hear from its clients, e.g. SSE; never idle). */
	void (*idle)(struct client *c);
	uint64_t last_rx_ms; /* clients_touch(): something arrived from it */
	/* With an access token (guard.h; NULL: none): token_expired is called
	 * once the token runs out without a refresh (WebSocket: close 4003). */
	struct guard *guard;
	void (*token_expired)(struct client *c);
	/* Its send queue (NULL: none) and how to close it as a slow consumer
	 * (4001), dropping the queue at once: budget.c cuts the clients
	 * furthest behind at max_queued_bytes. */
	struct outq *q;
	int (*slow)(struct client *c); /* 0: closing already, nothing cut */
};

/* Before the first client: max_clients after clamping to the fd limit;
 * on_drained is called when draining and the last client has gone. */
void clients_init(long long max_clients, void (*on_drained)(void));
/* Close clients that send nothing (not a frame, not a pong) for idle_s
 * seconds (0: never): a timer sweeps the list a few times per period and
 * calls their idle op. Call after the loop is set up. 0 or -1. */
int clients_idle_init(long long idle_s);
void clients_idle_free(void);
/* Something arrived from c (any frame, a pong). */
void clients_touch(struct client *c);

/* A client with a token was added: make sure the once-a-second sweep for
 * expired tokens runs (it stops by itself when no client has a token). */
void clients_watch_tokens(void);
/* Stop that sweep's timer (before the loop goes). */
void clients_tokens_free(void);

/* What a new connection must do. */
enum clients_admit {
	CLIENTS_OK,
	CLIENTS_FULL,	  /* over max_clients: refuse (counted) */
	CLIENTS_DRAINING, /* shutting down: refuse with "going away" */
};
/* Register c (always; remove it when it closes, whatever the answer). */
enum clients_admit clients_add(struct client *c);
void clients_remove(struct client *c);

/* Begin draining: every registered client's drain op is called, new ones
 * are told CLIENTS_DRAINING. Returns the clients open. */
long long clients_drain_all(void);
/* 1 once clients_drain_all() was called. */
int clients_draining(void);
/* The first client of the list (then c->next), for budget.c. */
struct client *clients_head(void);
/* Clients open now, all transports / one transport. */
long long clients_count(void);
long long clients_count_kind(enum client_kind k);

#endif
