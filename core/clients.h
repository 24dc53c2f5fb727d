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

struct config;

/* Transports, for per-transport metrics (metrics.transport_clients[]). */
enum client_kind { CLIENT_WS, CLIENT_TRPC, CLIENT_SSE, CLIENT__KINDS };

struct client {
	struct client *prev, *next;
	enum client_kind kind;
	/* Start a graceful close (called once, when draining starts). */
	void (*drain)(struct client *c);
};

/* Before the first client: max_clients after clamping to the fd limit;
 * on_drained is called when draining and the last client has gone. */
void clients_init(long long max_clients, void (*on_drained)(void));

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
/* Clients open now, all transports / one transport. */
long long clients_count(void);
long long clients_count_kind(enum client_kind k);

#endif
