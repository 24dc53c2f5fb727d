/*
 * hub.h — the channel hub: which local sessions want which channel, the
 * demand-driven subscribe/unsubscribe calls into backends, and the fan-out
 * of each backend message (framed once, queued by reference).
 */
#ifndef FANOUT_HUB_H
#define FANOUT_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct session;
struct channel;
struct fanout_backend;
struct pending_pub;

/* One subscription of a session (kept in the session, see session.h). */
struct hub_sub {
	struct channel *ch;
	size_t slot;   /* index of this session in ch's subscriber array */
	int confirmed; /* "subscribed" sent */
	char *id;      /* request id JSON to echo once confirmed (malloc'd), or NULL */
};

/* The hub's per-session state, embedded in struct session. */
struct hub_client {
	struct hub_sub *subs;
	size_t n_subs, cap_subs;
	struct pending_pub *pubs; /* publishes awaiting published() */
};

int hub_init(const struct config *c);
void hub_free(void);

/* Client requests; each replies (now or once the backend answers). */
void hub_subscribe(struct session *s, const char *channel, const char *id);
void hub_unsubscribe(struct session *s, const char *channel, const char *id);
void hub_publish(struct session *s, const char *channel, const char *data, size_t len,
		 const char *id);
/* The session is closing: drop its subscriptions and pending publishes. */
void hub_session_gone(struct session *s);

/* 1 when every backend is up and none has a subscription pending; else 0
 * and a JSON object describing each backend in *why_json (buf). */
struct buf;
int hub_ready(struct buf *why_json);

/* From the plugin host (host services). */
void hub_deliver(struct fanout_backend *b, const char *channel, const void *data, size_t len);
void hub_subscribed(struct fanout_backend *b, const char *channel, int ok);
void hub_published(struct fanout_backend *b, uint64_t token, int ok);
void hub_gap(struct fanout_backend *b, const char *channel, const char *reason);

#endif
