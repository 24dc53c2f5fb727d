/*
 * server.h — process-wide state of one fanoutd (worker) process: the
 * config, the lws context and vhost, the session list, the listener and
 * the shutdown state machine.
 */
#ifndef FANOUT_SERVER_H
#define FANOUT_SERVER_H

#include "config.h"

struct lws_context;
struct lws_vhost;
struct session;

struct server {
	const struct config *cfg;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct session *sessions; /* list head */
	long long n_sessions;
	long long max_clients; /* after clamping to the fd limit */
	int listen_fd;
	int draining;       /* SIGTERM seen: no new clients, closing the rest */
	int stopping;       /* backends being stopped */
	int worker_id;      /* 0 in a single-process server */
	unsigned long long started_ms;
};

extern struct server srv;

/* Open the listen socket (SO_REUSEADDR, SO_REUSEPORT when reuseport). */
int server_listen_socket(const struct config *c, int reuseport);
/* Create lws context + vhost for c; adopt connections from listen_fd. */
int server_init(const struct config *c, int listen_fd);
/* Run the loop until shutdown completes; returns the exit code. */
int server_run(void);
void server_free(void);
/* Begin graceful shutdown (SIGTERM/SIGINT). */
void server_drain(const char *why);
/* A session closed (called from session.c). */
void server_session_closed(void);

#endif
