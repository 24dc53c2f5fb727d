/*
 * rconn.c — a RESP connection the valkey backend reads itself (rconn.h):
 * a non-blocking TCP socket to a numeric address (or a unix socket) on one
 * host fd watch, its output buffered here, its input parsed with hiredis'
 * redisReader. After connecting it sends AUTH (when a password is
 * configured) and PING, and is ready when PING is answered; then, unless
 * the owner probes otherwise (no_ping), it PINGs every probe_interval_ms
 * and drops the connection when an answer takes longer than
 * probe_timeout_ms (a SIGSTOPped or half-open broker). PING works on a
 * subscribed RESP2 connection, which hiredis 0.14 could not do. It also
 * remembers each (S)SUBSCRIBE / (S)UNSUBSCRIBE sent (struct rconn_pend),
 * so the owner can tie an error reply to the channels it refused. Used for
 * every subscriber connection: cluster shards (cluster.c, SSUBSCRIBE) and
 * the single broker's (conn.c + subs.c, SUBSCRIBE), because hiredis 0.14's
 * async API carries neither SSUBSCRIBE nor an error reply to SUBSCRIBE.
 *
 * Runs on the host's loop thread. Allocates the output buffer (at most
 * RCONN_OUT_MAX), one redisReader per connection, one struct rconn_pend
 * per pub/sub command awaiting replies (freed with its last reply or when
 * the connection closes) and three timers; a closed rconn keeps its buffer
 * and timers for the next connect, rconn_free() frees them.
 */
#include "vk.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void rc_set_events(struct rconn *rc, unsigned events);

void rconn_pend_pop(struct rconn *rc)
{
	struct rconn_pend *p = rc->pend;

	if (!p)
		return;
	rc->pend = p->next;
	if (!rc->pend)
		rc->pend_tail = &rc->pend;
	free(p);
}

void rconn_pend_reply(struct rconn *rc)
{
	if (rc->pend && --rc->pend->left == 0)
		rconn_pend_pop(rc);
}

/* Close the socket and forget the connection; the owner is told by fail(). */
static void rc_shut(struct rconn *rc)
{
	struct vk *vk = rc->vk;

	if (rc->watch)
		vk->host->watch_remove(rc->watch);
	rc->watch = NULL;
	rc->events = 0;
	if (rc->fd >= 0)
		close(rc->fd);
	rc->fd = -1;
	rc->len = rc->off = 0;
	rc->phase = R_IDLE;
	rc->ping_out = false;
	rc->handshake = 0;
	while (rc->pend)
		rconn_pend_pop(rc); /* their replies will never come */
	vk->host->timer_disarm(rc->t_connect);
	vk->host->timer_disarm(rc->t_ping);
	vk->host->timer_disarm(rc->t_ping_timeout);
	/* The reader may hold half a reply of this connection: a new one per
	 * connect (freed here only outside its own parsing, see on_fd()). */
}

static void fail(struct rconn *rc, const char *why, bool penalty)
{
	rc_shut(rc);
	rc->ops->lost(rc, why, penalty, rc->arg);
}

static void rc_set_events(struct rconn *rc, unsigned events)
{
	if (events == rc->events || !rc->watch)
		return;
	rc->events = events;
	rc->vk->host->watch_set(rc->watch, events);
}

static void flush_out(struct rconn *rc)
{
	while (rc->off < rc->len) {
		ssize_t n = send(rc->fd, rc->out + rc->off, rc->len - rc->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			char why[160];
			snprintf(why, sizeof(why), "write: %s", strerror(errno));
			fail(rc, why, false);
			return;
		}
		rc->off += (size_t)n;
	}
	if (rc->off == rc->len)
		rc->off = rc->len = 0;
	rc_set_events(rc, FANOUT_FD_READ | (rc->len ? FANOUT_FD_WRITE : 0));
}

int rconn_send(struct rconn *rc, int argc, const char **argv, const size_t *argl)
{
	char *cmd;
	int n;

	if (rc->phase == R_IDLE || rc->phase == R_CONNECTING)
		return FANOUT_EIO;
	n = redisFormatCommandArgv(&cmd, argc, argv, argl);
	if (n < 0)
		return FANOUT_ENOMEM;
	if (rc->len + (size_t)n > RCONN_OUT_MAX) {
		redisFreeCommand(cmd);
		fail(rc, "output over its cap (the broker does not read)", false);
		return FANOUT_EIO;
	}
	if (rc->len + (size_t)n > rc->cap) {
		size_t cap = rc->cap ? rc->cap : 4096;
		char *o;
		while (cap < rc->len + (size_t)n)
			cap *= 2;
		if (!(o = realloc(rc->out, cap))) {
			redisFreeCommand(cmd);
			return FANOUT_ENOMEM;
		}
		rc->out = o;
		rc->cap = cap;
	}
	memcpy(rc->out + rc->len, cmd, (size_t)n);
	rc->len += (size_t)n;
	redisFreeCommand(cmd);
	rc_set_events(rc, FANOUT_FD_READ | FANOUT_FD_WRITE);
	return 0;
}

int rconn_send_chans(struct rconn *rc, const char *cmd, bool sub, const char *const *names,
		     const size_t *lens, size_t n)
{
	const char **argv = calloc(n + 1, sizeof(*argv));
	size_t *argl = calloc(n + 1, sizeof(*argl));
	size_t bytes = 0;
	struct rconn_pend *p = NULL;
	char *at;
	int rc_ = FANOUT_ENOMEM;

	if (!argv || !argl)
		goto out;
	for (size_t i = 0; i < n; i++)
		bytes += lens[i] + 1;
	p = malloc(sizeof(*p) + n * sizeof(char *) + bytes);
	if (!p)
		goto out;
	p->next = NULL;
	p->sub = sub;
	p->left = p->n = n;
	at = (char *)&p->names[n];
	argv[0] = cmd;
	argl[0] = strlen(cmd);
	for (size_t i = 0; i < n; i++) {
		memcpy(at, names[i], lens[i]);
		at[lens[i]] = '\0';
		p->names[i] = at;
		argv[i + 1] = names[i];
		argl[i + 1] = lens[i];
		at += lens[i] + 1;
	}
	rc_ = rconn_send(rc, (int)n + 1, argv, argl);
	if (rc_ == 0) {
		*rc->pend_tail = p;
		rc->pend_tail = &p->next;
		p = NULL;
	}
out:
	free(p);
	free(argv);
	free(argl);
	return rc_;
}

static bool is_pong(const redisReply *r)
{
	if (r->type == REDIS_REPLY_STATUS)
		return strcasecmp(r->str, "PONG") == 0;
	return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	       r->element[0]->type == REDIS_REPLY_STRING &&
	       strcasecmp(r->element[0]->str, "pong") == 0;
}

/* One reply. Returns false when the connection went away meanwhile. */
static bool dispatch(struct rconn *rc, const redisReply *r)
{
	struct vk *vk = rc->vk;

	if (rc->phase == R_HANDSHAKE) {
		if (r->type == REDIS_REPLY_ERROR) {
			char why[400];
			/* AUTH (when sent) goes first, PING last. */
			const char *what = rc->handshake > 1 ? "AUTH" : "PING";
			bool denied = strncmp(r->str, "WRONGPASS", 9) == 0 ||
				      strncmp(r->str, "NOAUTH", 6) == 0 ||
				      strncmp(r->str, "NOPERM", 6) == 0;
			snprintf(why, sizeof(why), "%s refused by the broker%s: %s", what,
				 denied ? " (check username/password and ACL)" : "", r->str);
			if (denied)
				count(vk, "auth_failures", 1);
			fail(rc, why, denied);
			return false;
		}
		if (--rc->handshake == 0) {
			rc->phase = R_READY;
			vk->host->timer_disarm(rc->t_connect);
			if (vk->probe_interval_ms && !rc->no_ping)
				vk->host->timer_arm(rc->t_ping, vk->probe_interval_ms);
			rc->ops->ready(rc, rc->arg);
		}
		return rc->phase != R_IDLE;
	}
	if (rc->ping_out && is_pong(r)) {
		rc->ping_out = false;
		vk->host->timer_disarm(rc->t_ping_timeout);
		if (vk->probe_interval_ms && !rc->no_ping)
			vk->host->timer_arm(rc->t_ping, vk->probe_interval_ms);
		return true;
	}
	rc->ops->reply(rc, r, rc->arg);
	return rc->phase != R_IDLE;
}

static void on_readable(struct rconn *rc)
{
	char buf[65536];
	redisReader *reader = rc->reader;

	/* At most 1 MiB per wakeup: other sockets get their turn. */
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(rc->fd, buf, sizeof(buf), 0);
		if (n == 0) {
			fail(rc, "connection closed by the broker", false);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			char why[160];
			snprintf(why, sizeof(why), "read: %s", strerror(errno));
			fail(rc, why, false);
			return;
		}
		if (redisReaderFeed(reader, buf, (size_t)n) != REDIS_OK) {
			fail(rc, "out of memory", false);
			return;
		}
		for (;;) {
			void *r = NULL;
			bool alive;
			if (redisReaderGetReply(reader, &r) != REDIS_OK) {
				char why[200];
				snprintf(why, sizeof(why), "protocol error: %s", reader->errstr);
				fail(rc, why, false);
				return;
			}
			if (!r)
				break;
			alive = dispatch(rc, r);
			freeReplyObject(r);
			if (!alive || rc->reader != reader)
				return; /* closed (maybe reconnected) from a callback */
		}
		if ((size_t)n < sizeof(buf))
			return;
	}
}

static void on_connected(struct rconn *rc)
{
	struct vk *vk = rc->vk;
	int err = 0;
	socklen_t l = sizeof(err);

	if (getsockopt(rc->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
		err = errno;
	if (err) {
		char why[200];
		snprintf(why, sizeof(why), "connect failed: %s", strerror(err));
		count(vk, "connect_failures", 1);
		fail(rc, why, false);
		return;
	}
	rc->phase = R_HANDSHAKE;
	rc->handshake = 0;
	if (vk->password) {
		const char *argv[] = {"AUTH", vk->username, vk->password};
		if (vk->username)
			rconn_send(rc, 3, argv, NULL);
		else
			rconn_send(rc, 2, (const char *[]){"AUTH", vk->password}, NULL);
		rc->handshake++;
	}
	/* A stopped broker accepts TCP: the PING's answer proves it serves. */
	rconn_send(rc, 1, (const char *[]){"PING"}, NULL);
	rc->handshake++;
}

static void on_fd(struct fanout_watch *w, int fd, unsigned revents, void *arg)
{
	struct rconn *rc = arg;

	(void)w;
	(void)fd;
	if (rc->phase == R_CONNECTING) {
		if (revents & (FANOUT_FD_WRITE | FANOUT_FD_READ))
			on_connected(rc);
		if (rc->phase == R_IDLE)
			return;
	}
	if (revents & FANOUT_FD_READ) {
		on_readable(rc);
		if (rc->phase == R_IDLE)
			return;
	}
	if ((revents & FANOUT_FD_WRITE) || rc->len)
		flush_out(rc);
}

static void on_connect_timeout(struct fanout_timer *t, void *arg)
{
	struct rconn *rc = arg;

	(void)t;
	count(rc->vk, "connect_timeouts", 1);
	fail(rc, rc->phase == R_HANDSHAKE ? "handshake timed out" : "connect timed out", false);
}

static void on_ping(struct fanout_timer *t, void *arg)
{
	struct rconn *rc = arg;

	(void)t;
	if (rc->phase != R_READY || rc->ping_out)
		return;
	if (rconn_send(rc, 1, (const char *[]){"PING"}, NULL) < 0)
		return;
	rc->ping_out = true;
	rc->vk->host->timer_arm(rc->t_ping_timeout, rc->vk->probe_timeout_ms);
}

static void on_ping_timeout(struct fanout_timer *t, void *arg)
{
	struct rconn *rc = arg;
	char why[96];

	(void)t;
	if (!rc->ping_out)
		return;
	count(rc->vk, "probe_timeouts", 1);
	snprintf(why, sizeof(why), "PING not answered within %u ms", rc->vk->probe_timeout_ms);
	fail(rc, why, false);
}

/* Open a socket to ss and start connecting (the address is checked). */
static int rc_open(struct rconn *rc, const struct sockaddr_storage *ss, socklen_t sl)
{
	struct vk *vk = rc->vk;
	int one = 1, fd;

	if (rc->reader)
		redisReaderFree(rc->reader);
	rc->reader = redisReaderCreate();
	if (!rc->reader) {
		rc->ops->lost(rc, "out of memory", false, rc->arg);
		return 0;
	}
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		char why[160];
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		rc->ops->lost(rc, why, false, rc->arg);
		return 0;
	}
	if (ss->ss_family != AF_UNIX) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
	rc->fd = fd;
	rc->phase = R_CONNECTING;
	rc->watch = vk->host->watch_add(vk->b, fd, FANOUT_FD_WRITE, on_fd, rc);
	rc->events = FANOUT_FD_WRITE;
	if (!rc->watch) {
		fail(rc, "cannot watch the socket", false);
		return 0;
	}
	vk->host->timer_arm(rc->t_connect, vk->connect_timeout_ms);
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		char why[160];
		snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
		count(vk, "connect_failures", 1);
		fail(rc, why, false);
	}
	return 0;
}

int rconn_connect(struct rconn *rc, const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		return FANOUT_EINVAL;
	}
	snprintf(rc->ip, sizeof(rc->ip), "%s", ip);
	rc->port = port;
	rc->unix_path = NULL;
	return rc_open(rc, &ss, sl);
}

int rconn_connect_unix(struct rconn *rc, const char *path)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *su = (struct sockaddr_un *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strlen(path) >= sizeof(su->sun_path))
		return FANOUT_EINVAL;
	su->sun_family = AF_UNIX;
	memcpy(su->sun_path, path, strlen(path) + 1);
	rc->ip[0] = '\0';
	rc->port = 0;
	rc->unix_path = path;
	return rc_open(rc, &ss, sizeof(*su));
}

int rconn_init(struct rconn *rc, struct vk *vk, const struct rconn_ops *ops, void *arg,
	       const char *label)
{
	memset(rc, 0, sizeof(*rc));
	rc->vk = vk;
	rc->ops = ops;
	rc->arg = arg;
	rc->label = label;
	rc->fd = -1;
	rc->pend_tail = &rc->pend;
	rc->t_connect = vk->host->timer_add(vk->b, on_connect_timeout, rc);
	rc->t_ping = vk->host->timer_add(vk->b, on_ping, rc);
	rc->t_ping_timeout = vk->host->timer_add(vk->b, on_ping_timeout, rc);
	return rc->t_connect && rc->t_ping && rc->t_ping_timeout ? 0 : FANOUT_ENOMEM;
}

void rconn_close(struct rconn *rc)
{
	if (rc->vk)
		rc_shut(rc);
}

void rconn_free(struct rconn *rc)
{
	const struct fanout_host *h;

	if (!rc->vk)
		return;
	rc_shut(rc);
	h = rc->vk->host;
	if (rc->t_connect)
		h->timer_remove(rc->t_connect);
	if (rc->t_ping)
		h->timer_remove(rc->t_ping);
	if (rc->t_ping_timeout)
		h->timer_remove(rc->t_ping_timeout);
	if (rc->reader)
		redisReaderFree(rc->reader);
	free(rc->out);
	memset(rc, 0, sizeof(*rc));
	rc->fd = -1;
	rc->pend_tail = &rc->pend;
}
