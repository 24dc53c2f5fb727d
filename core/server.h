/*
 * server.h — process-wide state of one fanoutd (worker) process: the
 * config, the lws context and vhost, the listener and the shutdown state
 * machine (the clients themselves are the session layer's: session.h).
 */
#ifndef FANOUT_SERVER_H
#define FANOUT_SERVER_H

#include "config.h"

struct lws_context;
struct lws_vhost;

struct server {
	const struct config *cfg;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int listen_fd;
	int worker_id; /* 0 in a single-process server */
	unsigned long long started_ms;
};

extern struct server srv;

/* Create lws context + vhost for c; adopt connections from listen_fd (see
 * listen.h); max_clients after clamping to the fd limit. */
int server_init(const struct config *c, int listen_fd, long long max_clients);
/* Run the loop until shutdown completes; returns the exit code. */
int server_run(void);
void server_free(void);
/* Begin graceful shutdown (SIGTERM/SIGINT). */
void server_drain(const char *why);

#endif
