/*
 * rconn.h — a RESP connection the valkey backend reads itself: a socket of
 * its own on the host's fd watches, parsed with hiredis' redisReader. Used
 * for every subscriber connection, because hiredis 0.14's async API cannot
 * carry SSUBSCRIBE (it treats the extra replies and smessage pushes as
 * stray replies and disconnects) and drops the connection on an error reply
 * to a SUBSCRIBE (an ACL -NOPERM) instead of handing it to anyone. See
 * rconn.c.
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

/*
 * A pub/sub command sent with rconn_send_chans(), awaiting its replies. The
 * broker answers commands in order, one reply per channel, or one error
 * reply for the whole command (e.g. -NOPERM when any of its channels is not
 * allowed); pushes ("message") come between replies but never inside one.
 * So the oldest entry is what the next subscribe/unsubscribe reply or error
 * refers to.
 */
struct rconn_pend {
	struct rconn_pend *next;
	bool sub;      /* a (S)SUBSCRIBE; else an (S)UNSUBSCRIBE */
	size_t left;   /* replies still expected */
	size_t n;      /* channels */
	char *names[]; /* the broker channel names (NUL-terminated, in this allocation) */
};

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
	unsigned handshake;		      /* handshake replies still expected */
	bool ping_out;			      /* a liveness PING awaits its answer */
	bool no_ping;			      /* no liveness PINGs (the owner probes otherwise) */
	struct rconn_pend *pend, **pend_tail; /* oldest first */
	struct fanout_timer *t_connect, *t_ping, *t_ping_timeout;
	char ip[INET6_ADDRSTRLEN];
	int port;
	const char *unix_path; /* or a unix socket (borrowed) */
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
/* The same for a unix socket path (borrowed: must outlive the rconn).
 * FANOUT_EINVAL for a path too long for sockaddr_un. */
int rconn_connect_unix(struct rconn *rc, const char *path);
/* Queue one command (ready or handshake phase). 0, or FANOUT_EIO when
 * closed or over RCONN_OUT_MAX (the connection is then closed, ops->lost
 * called). */
int rconn_send(struct rconn *rc, int argc, const char **argv, const size_t *argl);
/* Queue cmd (e.g. "SUBSCRIBE") with n channels and remember it (struct
 * rconn_pend) until rconn_pend_reply() has counted its n replies or
 * rconn_pend_pop() dropped it. 0, FANOUT_ENOMEM, or FANOUT_EIO as
 * rconn_send(). */
int rconn_send_chans(struct rconn *rc, const char *cmd, bool sub, const char *const *names,
		     const size_t *lens, size_t n);
/* The oldest command awaiting replies, or NULL. */
static inline const struct rconn_pend *rconn_pend_head(const struct rconn *rc)
{
	return rc->pend;
}
/* One reply of the oldest command arrived: forgotten after its last. */
void rconn_pend_reply(struct rconn *rc);
/* Forget the oldest command (answered by one error reply). */
void rconn_pend_pop(struct rconn *rc);
/* Close now without calling ops->lost; idle afterwards. */
void rconn_close(struct rconn *rc);
/* Close and free the timers. */
void rconn_free(struct rconn *rc);

#endif /* FANOUT_VALKEY_RCONN_H */
