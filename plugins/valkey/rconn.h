/*
 * rconn.h — a RESP connection the valkey backend reads itself: a socket of
 * its own on the host's fd watches, parsed with hiredis' redisReader. Used
 * for a cluster shard's subscriber connection, because hiredis 0.14's async
 * API cannot carry SSUBSCRIBE (it treats the extra replies and smessage
 * pushes as stray replies and disconnects). See rconn.c.
 */
#ifndef FANOUT_VALKEY_RCONN_H
#define FANOUT_VALKEY_RCONN_H

#include <fanout/plugin.h>

#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vk;
struct rconn;

/* What the owner hears. Called on the loop thread, never re-entered. */
struct rconn_ops {
	/* AUTH (if any) passed and PING answered: commands may flow. */
	void (*ready)(struct rconn *rc, void *arg);
	/* A reply or push after ready (borrowed for the call); PING answers are
	 * kept inside. rconn_close() may be called from here. */
	void (*reply)(struct rconn *rc, const redisReply *r, void *arg);
	/* Closed (connect failed, handshake refused, peer gone, PING not
	 * answered within probe_timeout_ms); the rconn is idle again and the
	 * owner decides when to connect again. penalty: refused by the broker
	 * (AUTH, ACL): retry slowly. */
	void (*lost)(struct rconn *rc, const char *why, bool penalty, void *arg);
};

enum rconn_phase { R_IDLE, R_CONNECTING, R_HANDSHAKE, R_READY };

struct rconn {
	struct vk *vk;
	const struct rconn_ops *ops;
	void *arg;
	const char *label; /* for logs, borrowed */
	enum rconn_phase phase;
	int fd;
	struct fanout_watch *watch;
	unsigned events;
	redisReader *reader;
	char *out; /* pending output: out[off..len) */
	size_t len, off, cap;
	unsigned handshake; /* handshake replies still expected */
	bool ping_out;	    /* a liveness PING awaits its answer */
	struct fanout_timer *t_connect, *t_ping, *t_ping_timeout;
	char ip[INET6_ADDRSTRLEN];
	int port;
};

/* Cap on output waiting to be written; past it the connection is dropped. */
#define RCONN_OUT_MAX (64u << 20)

/* Set up (timers); no I/O. 0 or FANOUT_ENOMEM. */
int rconn_init(struct rconn *rc, struct vk *vk, const struct rconn_ops *ops, void *arg,
	       const char *label);
/* Connect to a numeric IPv4/IPv6 address (from an idle rconn): 0, or
 * FANOUT_EINVAL for an address that is not numeric (ops->lost is not
 * called then). Failures later arrive through ops->lost. */
int rconn_connect(struct rconn *rc, const char *ip, int port);
/* Queue one command (ready or handshake phase). 0, or FANOUT_EIO when
 * closed or over RCONN_OUT_MAX (the connection is then closed, ops->lost
 * called). */
int rconn_send(struct rconn *rc, int argc, const char **argv, const size_t *argl);
/* Close now without calling ops->lost; idle afterwards. */
void rconn_close(struct rconn *rc);
/* Close and free the timers. */
void rconn_free(struct rconn *rc);

#endif /* FANOUT_VALKEY_RCONN_H */
