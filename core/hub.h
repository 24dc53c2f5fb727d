/*
 * hub.h — the channel hub: which subscribers want which channel, the
 * demand-driven subscribe/unsubscribe calls into backends, and the fan-out
 * of each backend message (framed once per transport, queued by reference).
 *
 * The hub knows no transport. A transport (the native WebSocket protocol in
 * session.c; tRPC and Server-Sent Events next to it) reaches the hub through
 * the two types below, and the hub reaches the transport's clients only
 * through the table of sink operations it fills.
 *
 * ---- Writing a transport: the sink table ----
 *
 * 1. Embed one struct hub_subscriber in each client connection, zeroed, and
 *    point its `ops` at the transport's const struct hub_sink_ops. Pass the
 *    handle's address to every hub call; get the connection back from it in
 *    the ops with container_of-style arithmetic (offsetof).
 * 2. Fill the table:
 *    - frame(ev): this transport's frame for one channel event (a backend
 *      message or a gap), returned with one reference of the caller's, or
 *      NULL when out of memory (then no subscriber of this transport gets
 *      the event). ev->frame is the native protocol's frame (protocol.h),
 *      which the hub builds once per event: the native transport returns
 *      msg_ref(ev->frame); another one rewraps it (proto_message_data()
 *      finds the payload's JSON and the offset inside a message frame, so
 *      rewrapping is a copy, not a re-encode). The hub calls frame() at
 *      most once per event per table on the live path, however many
 *      subscribers use the table: this is where per-message work happens.
 *    - deliver(s, tag, m): queue a reference to the shared frame m for one
 *      subscription (msg_ref; the hub drops its own reference after the
 *      fan-out). `tag` is the value the transport passed to hub_subscribe()
 *      for that subscription (the native protocol passes NULL; a transport
 *      whose frames carry a per-subscription request id keeps it there and
 *      adds a small per-subscriber prefix to the shared frame, never a
 *      re-encode). Per-subscriber work here must stay O(1).
 *    - ack(s, type, id, channel): a request succeeded; type is "subscribed"
 *      (the backend confirmed: nothing published after this is missed),
 *      "unsubscribed" or "published"; id is the request id given to the hub
 *      ("" when none).
 *    - error(s, id, code, message): a request failed (code: PROTO_E_* of
 *      protocol.h, message: human text). A failed subscribe is no longer a
 *      subscription when this is called.
 *    - subscribed(s, id, channel, epoch, offset, recovered) and
 *      published(s, id, channel, epoch, offset) (optional; NULL: ack() is
 *      called instead, without the position): the v1.1 answers, below.
 *
 * ---- Positions (protocol v1.1) ----
 *
 * A channel whose backend confirmed it with subscribed_at() is positioned:
 * the hub knows its epoch and the top offset it has fanned out, and each
 * message event carries ev->epoch and ev->offset (a gap event carries the
 * new position there; both NULL/0 on other channels). What a transport
 * sees, per subscription:
 *   - subscribed(..., epoch, offset, recovered): epoch/offset are the
 *     position the subscriber stands at (epoch NULL: not positioned).
 *     recovered is -1 when no `since` was given, 1 when every message after
 *     since up to offset follows right now (deliver() calls, in order),
 *     0 when recovery was impossible (no replay at all: the client must
 *     refetch; the next message is offset + 1).
 *   - deliver(): message frames in strictly increasing offset order, each
 *     offset once; on a contiguous channel by exactly one, except right
 *     after a gap event, whose position is where the stream continues.
 * To resume, call hub_subscribe_at() with the client's last position
 * (since); a transport that encodes positions in its own ids ("E:N") reads
 * them with proto_position_parse(). Recovery itself lives in recovery.c.
 *    None of the ops may call back into the hub (no hub_unsubscribe(), no
 *    hub_subscriber_gone()) from inside: the hub is walking its arrays. A
 *    transport that must close a client (queue over its cap) marks it and
 *    closes it later, from its own callbacks.
 * 3. When the connection closes, call hub_subscriber_gone() once.
 *
 * ---- Beyond the hub: the rest of a transport ----
 *
 * Besides the sink table a transport plugs into a few seams; none of them
 * names another transport, so a new one is a new file (trpc.c and sse.c
 * are the worked examples):
 *   - Where clients arrive. A protocol over WebSocket fills a struct
 *     session_proto (open, message, limited, drain, closed; session.h) and
 *     registers it at its path with session_add_proto(): the upgrade gate,
 *     framing, deflate, keepalive, request rate and tokens come with it.
 *     Anything else (an HTTP stream, like SSE) mounts its own lws protocol
 *     (http_mounts() in http.c) and calls gate_stream() (gate.h) before it
 *     answers: the same per-IP cap, Origin and token checks.
 *   - Admission and shutdown: embed a struct client (clients.h) per
 *     connection: max_clients, per-transport metrics, the drain op (how this
 *     transport leads a client away on SIGTERM), idle and token-expiry ops.
 *   - The send queue: struct outq (outq.h) holds (head, body) references:
 *     the body is the frame frame() built once for every subscriber, the
 *     head the small per-subscriber prefix (tRPC's {"id":N,; SSE's id:
 *     line). Check client_queue_bytes yourself (cut the client, 4001 or the
 *     transport's equivalent) and call budget_admit() (budget.h) before
 *     queueing, so max_queued_bytes counts this transport too.
 *   - Positions: hub_subscribe_at() resumes, proto_position_parse() reads
 *     "EPOCH:OFFSET", proto_message_data() finds a message's payload and
 *     offset in ev->frame without parsing it again.
 *   - Tests: a unit test of the pure parts, a fuzz harness for every
 *     parser (tests/fuzz), and an integration test with a real client of
 *     that protocol (tests/integration/trpc_basic.mjs, sse_basic.mjs).
 *
 * Loop thread only.
 */
#ifndef FANOUT_HUB_H
#define FANOUT_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "netaddr.h"

struct channel;
struct fanout_backend;
struct pending_pub;
struct msg;
struct hub_subscriber;
struct auth_claims;

/* One event on a channel, handed to each transport's frame(). Borrowed
 * for the duration of the call. */
enum hub_event_kind {
	HUB_EV_MESSAGE, /* a backend message */
	HUB_EV_GAP,	/* messages may have been missed */
};

struct hub_event {
	enum hub_event_kind kind;
	const char *channel;
	struct msg *frame;  /* the native frame ("message" or "gap"), one per event */
	const char *reason; /* HUB_EV_GAP: why */
	/* v1.1, positioned channels only (else NULL / 0): a message's epoch
	 * and offset (the offset is in the native frame too); a gap's new
	 * position (the next message is offset + 1). */
	const char *epoch;
	uint64_t offset;
};

struct hub_sink_ops {
	const char *name; /* "ws", …: for logs */
	struct msg *(*frame)(const struct hub_event *ev);
	void (*deliver)(struct hub_subscriber *s, void *tag, struct msg *m);
	void (*ack)(struct hub_subscriber *s, const char *type, const char *id,
		    const char *channel);
	void (*error)(struct hub_subscriber *s, const char *id, const char *code,
		      const char *message);
	/* Optional (v1.1): "subscribed" with the position (see Positions). */
	void (*subscribed)(struct hub_subscriber *s, const char *id, const char *channel,
			   const char *epoch, uint64_t offset, int recovered);
	/* Optional (v1.1): "published" with the position the broker gave. */
	void (*published)(struct hub_subscriber *s, const char *id, const char *channel,
			  const char *epoch, uint64_t offset);
};

/* One subscription of a subscriber (the hub's; kept in the handle). */
struct proto_since;
struct pos_sub;
struct hub_sub {
	struct channel *ch;
	size_t slot;		   /* index of this subscriber in ch's subscriber array */
	int confirmed;		   /* "subscribed" sent */
	char *id;		   /* request id JSON to echo once confirmed (malloc'd), or NULL */
	void *tag;		   /* the transport's, passed back to deliver() */
	struct proto_since *since; /* resume position until confirmed (malloc'd), or NULL */
	struct pos_sub *rec;	   /* recovering: frames go to recovery, not deliver() */
};

/* The transport-neutral subscriber handle, embedded in each client. Only
 * `ops` is the transport's; the rest is the hub's (zero it at connect). */
struct hub_subscriber {
	const struct hub_sink_ops *ops;
	struct hub_sub *subs;
	size_t n_subs, cap_subs;
	struct pending_pub *pubs; /* publishes awaiting published() */
	/* set by the transport: may publish whatever allow_publish says (the
	 * HTTP publish API, authorised by publish_api_key) */
	int publisher;
	/* The transport's: what the client's access token allows (auth.h), or
	 * NULL when tokens are off. The hub checks it on every subscribe and
	 * publish; after changing it call hub_claims_changed(). */
	const struct auth_claims *claims;
	/* The transport's: the client's address (after trusted proxies), for
	 * max_channels_per_ip; has_addr 0: not counted. */
	struct netaddr addr;
	int has_addr;
};

/* Register the hub's entry points with the plugin host (hub → backends
 * calls go through plugin_host.h; backend → hub callbacks come back through
 * what hub_init registers). 0 or -1 (out of memory). */
int hub_init(const struct config *c);
/* Before the loop goes: drop the hub's timer (recovery timeouts, probes). */
void hub_stop(void);
void hub_free(void);

/* Client requests; each replies through s->ops (now or once the backend
 * answers). id is the request id as JSON text ("" or NULL: none). tag is
 * kept with the subscription and passed back to deliver(); a second
 * subscribe of the same channel keeps the first tag. */
void hub_subscribe(struct hub_subscriber *s, const char *channel, const char *id, void *tag);
/* The same, resuming from since (NULL: a fresh subscribe): see Positions.
 * since is copied. */
void hub_subscribe_at(struct hub_subscriber *s, const char *channel, const char *id, void *tag,
		      const struct proto_since *since);
void hub_unsubscribe(struct hub_subscriber *s, const char *channel, const char *id);
void hub_publish(struct hub_subscriber *s, const char *channel, const char *data, size_t len,
		 const char *id);
/* s->claims changed (a refreshed token): every subscription they no longer
 * allow is dropped, each answered with an error forbidden naming it. */
void hub_claims_changed(struct hub_subscriber *s);
/* The subscriber is closing: drop its subscriptions and pending publishes. */
void hub_subscriber_gone(struct hub_subscriber *s);

/* From the plugin host (registered by hub_init). */
void hub_deliver(struct fanout_backend *b, const char *channel, const void *data, size_t len);
void hub_subscribed(struct fanout_backend *b, const char *channel, int ok);
void hub_published(struct fanout_backend *b, uint64_t token, int ok);
void hub_gap(struct fanout_backend *b, const char *channel, const char *reason);
/* ABI 1.1 (epochs already checked by the plugin host). */
void hub_subscribed_at(struct fanout_backend *b, const char *channel, int ok, const char *epoch,
		       uint64_t top, unsigned flags);
void hub_deliver_at(struct fanout_backend *b, const char *channel, const char *epoch,
		    uint64_t offset, const void *data, size_t len);
void hub_published_at(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
		      uint64_t offset);
void hub_top_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
		  uint64_t top);
void hub_history_item(struct fanout_backend *b, uint64_t token, uint64_t offset, const void *data,
		      size_t len);
void hub_history_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
		      uint64_t top);

/* b's plugin was restarted behind the same handle (reload.c): fail the
 * publishes it had not answered, subscribe every channel it serves again,
 * and send their subscribers a gap with reason. */
void hub_resubscribe(struct fanout_backend *b, const char *reason);

#endif
