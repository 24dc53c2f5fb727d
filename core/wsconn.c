/*
 * wsconn.c — owns every WebSocket connection once its opening handshake is
 * done (see wsconn.h for why fanoutd, not lws, drives it from there).
 *
 * Takeover: in the upgrade's ESTABLISHED callback the socket is dup()ed and
 * lws's descriptor number is pointed at /dev/null (dup3), then lws is told
 * to drop its wsi on its next turn: whatever lws does while closing (a
 * shutdown(), a close(), a final read) lands on /dev/null, never on the
 * client's socket. On TLS the SSL object is shared (SSL_up_ref, quiet
 * shutdown so lws's SSL_shutdown sends nothing); once lws has freed the wsi
 * (LWS_CALLBACK_WSI_DESTROY) it is pointed at our descriptor and used here.
 *
 * I/O: the socket joins the loop's epoll set. Reads go through the frame
 * parser (ws_frame.c) into whole messages for the owner; frames to send are
 * queued by reference and written at the end of the loop pass, every frame
 * of the pass in one writev() (TLS: one copy, one SSL_write()), so a pass
 * that brought one message costs one write per client and a pass that
 * brought fifty costs one write too. Close handshake: our close frame, the
 * client's reply (or theirs, echoed), FIN, read to EOF, close — each step
 * with a deadline checked by a 1 s tick, which also sends keepalive pings.
 *
 * Loop thread only. Allocates each connection's send ring and reassembly
 * buffer (grown on demand, freed when it dies) and the shared read, write
 * and inflate buffers; the owner allocates and frees struct wsconn itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <limits.h>
#include <linux/sockios.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define LOG_TAG "wsconn"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "ws_deflate.h"
#include "wsconn.h"

#ifndef SSL_OP_IGNORE_UNEXPECTED_EOF /* OpenSSL < 3: EOF is not fatal there */
#define SSL_OP_IGNORE_UNEXPECTED_EOF 0
#endif

#define READS_PER_PASS 16	    /* reads per connection per pass (fairness) */
#define IOV_BATCH      256	    /* frames per writev */
#define WRITE_MAX      (256 * 1024) /* bytes per writev */
#define STORED_PREFIX  5	    /* a deflate stored block's header: stored_block() */

static struct wsconn_config cfg = {.max_message_bytes = 65536, .flush_early_bytes = 65536};
static struct wsconn *all;
static long long n_conns;
static struct wsconn *dirty_head, *dead_head, *adopting;
static int devnull = -1;
static struct fanout_timer *tick;
static unsigned char rbuf[65536];
static unsigned char tls_wbuf[65536];
static struct buf scratch; /* inflated messages */

void wsconn_config(const struct wsconn_config *c)
{
	cfg = *c;
}

long long wsconn_count(void)
{
	return n_conns;
}

static void mark_dirty(struct wsconn *c)
{
	if (c->dirty || c->state == WSC_DEAD)
		return;
	c->dirty = 1;
	c->dirty_next = dirty_head;
	dirty_head = c;
}

/* ---- the send queue ---- */

/* Entries at the front whose bytes have begun to go out: a half-written
 * frame, or (TLS) every frame a pending SSL_write was offered, which its
 * retry must offer again byte for byte. Nothing goes before or into them
 * and a cut keeps them whole. */
static size_t q_started(const struct wsconn *c)
{
	if (c->tls_pend)
		return c->tls_pend_ents;
	return c->q_off ? 1 : 0;
}

/* Insert (NULL, m) before every frame not yet started: control frames jump
 * the queue, never into a started frame. */
static int q_push_front(struct wsconn *c, struct msg *m)
{
	size_t at = q_started(c);
	if (outq_push_front(&c->q, NULL, m))
		return -1;
	for (size_t i = 0; i < at; i++) { /* move it behind the started ones */
		struct outq_ent *a = outq_at(&c->q, i), *b = outq_at(&c->q, i + 1);
		struct outq_ent t = *a;
		*a = *b;
		*b = t;
	}
	return 0;
}

static void q_pop(struct wsconn *c)
{
	struct outq_ent e;
	outq_pop(&c->q, &e);
	outq_ent_release(&e);
}

/* Drop every frame not yet started (keep = 1: the started ones stay; on
 * TLS those include every frame a pending SSL_write was given: OpenSSL
 * fails a retry with fewer bytes, and a slow consumer cut 4001 saw 1006). */
static void q_clear(struct wsconn *c, int keep)
{
	outq_truncate(&c->q, keep ? q_started(c) : 0);
	if (!c->q.len) {
		c->q_off = 0;
		c->tls_pend = 0;
		c->tls_pend_ents = 0;
	}
}

static struct msg *q_first(struct wsconn *c)
{
	return outq_at(&c->q, 0)->body;
}

/* ---- lifecycle ---- */

static void list_del(struct wsconn **head, struct wsconn *c)
{
	for (struct wsconn **p = head; *p; p = &(*p)->dead_next)
		if (*p == c) {
			*p = c->dead_next;
			return;
		}
}

/* The end: close the socket, report at the end of the pass. */
static void finish(struct wsconn *c)
{
	if (c->state == WSC_DEAD)
		return;
	if (c->state == WSC_ADOPTING && c->taken && c->ssl)
		list_del(&adopting, c);
	int fd = c->io.fd;
	loop_io_del(&c->io);
	if (c->taken && fd >= 0)
		close(fd);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	outq_free(&c->q);
	c->q_off = 0;
	c->tls_pend = 0;
	c->tls_pend_ents = 0;
	buf_free(&c->in);
	c->state = WSC_DEAD;
	if (c->slot) /* lws may still call back for its wsi: not for us */
		*c->slot = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	n_conns--;
	c->dead_next = dead_head;
	dead_head = c;
}

/* Both close frames are done (or we failed the connection): FIN, then
 * read and discard until the client closes too. */
static void linger(struct wsconn *c)
{
	if (c->state != WSC_OPEN)
		return;
	q_clear(c, 0);
	if (c->ssl)
		SSL_shutdown(c->ssl); /* close_notify; best effort */
	shutdown(c->io.fd, SHUT_WR);
	c->state = WSC_LINGER;
	c->deadline_ms = loop_now_ms() + WSCONN_LINGER_S * 1000;
	loop_io_set(&c->io, LOOP_IN);
}

/* Bytes the kernel holds for the client, not yet taken (UINT32_MAX when
 * unknown). */
static uint32_t kernel_unsent(struct wsconn *c)
{
	int v = 0;
	if (c->io.fd < 0 || ioctl(c->io.fd, SIOCOUTQ, &v) < 0 || v < 0)
		return UINT32_MAX;
	return (uint32_t)v;
}

static void queue_close(struct wsconn *c, int code, const char *why, int flush)
{
	uint8_t payload[WS_CONTROL_MAX];
	size_t n = ws_close_payload(payload, (unsigned)code, why);
	if (!flush)
		q_clear(c, 1);
	c->closing = 1;
	c->close_code = (uint16_t)code;
	c->deadline_ms =
	    loop_now_ms() + (flush ? WSCONN_FLUSH_TIMEOUT_S : WSCONN_CLOSE_TIMEOUT_S) * 1000;
	c->close_cap_ms = loop_now_ms() + WSCONN_FLUSH_TIMEOUT_S * 1000;
	c->close_unsent = kernel_unsent(c);
	c->close_moved = 0;
	struct msg *m = msg_control(WS_OP_CLOSE, payload, n);
	if (!m || outq_push(&c->q, NULL, m)) {
		msg_unref(m);
		finish(c); /* out of memory: no close frame possible */
		return;
	}
	msg_unref(m);
	mark_dirty(c);
}

void wsconn_close(struct wsconn *c, int code, const char *why, int flush)
{
	if (c->closing || c->state >= WSC_LINGER)
		return;
	queue_close(c, code, why, flush);
}

/* Fail the connection (RFC 6455 7.1.7): close frame with code, no more
 * parsing, no waiting for a reply. */
static void fail(struct wsconn *c, int code, const char *why)
{
	if (c->state >= WSC_LINGER)
		return;
	switch (code) {
	case WS_CLOSE_PROTOCOL:
		metrics.ws_protocol_errors++;
		break;
	case WS_CLOSE_BAD_DATA:
		metrics.ws_bad_data_closes++;
		break;
	case WS_CLOSE_TOO_BIG:
		metrics.clients_closed_too_big++;
		break;
	}
	log_debug("failing a connection: %d %s", code, why);
	c->failed = 1;
	if (c->close_sent) {
		linger(c);
		return;
	}
	if (c->q_off && q_first(c)->op == WS_OP_CLOSE)
		return; /* our close frame is half out: FIN follows it */
	if (c->closing) {
		/* our close frame is queued: it is the last thing sent; then
		 * FIN, without waiting for a reply */
		return;
	}
	/* What was queued before the failure (answers to the client's good
	 * requests) still goes out; this close frame is the last thing sent. */
	queue_close(c, code, why, 1);
	c->deadline_ms = loop_now_ms() + WSCONN_CLOSE_TIMEOUT_S * 1000;
}

/* ---- writing ---- */

/* The bytes this client gets for m: m itself, or its compressed variant
 * (built once per message and window size, for every deflate client). */
static struct msg *wire_frame(struct wsconn *c, struct msg *m)
{
	if (!c->zbits || m->op || m->len < WS_DEFLATE_MIN_BYTES)
		return m;
	struct msg *v = msg_variant(m, c->zbits);
	if (v)
		return v;
	struct buf b;
	buf_init(&b, MSG_PRE);
	struct msg *z = NULL;
	if (!ws_deflate_compress(msg_payload(m), m->len, c->zbits, &b) && b.len < m->len)
		z = msg_from_buf(&b);
	buf_free(&b);
	if (z) {
		metrics.deflate_messages++;
		metrics.deflate_bytes_in += (long long)m->len;
		metrics.deflate_bytes_out += (long long)z->len;
	}
	v = msg_add_variant(m, c->zbits, z);
	if (!v) {
		msg_unref(z);
		return m;
	}
	return v;
}

/* SSL_write the first max bytes of iov (max <= sizeof(tls_wbuf)). */
static ssize_t tls_write(struct wsconn *c, const struct iovec *iov, int n, size_t max)
{
	size_t len = 0;
	for (int i = 0; i < n && len < max; i++) {
		size_t k = iov[i].iov_len;
		if (k > max - len)
			k = max - len;
		memcpy(tls_wbuf + len, iov[i].iov_base, k);
		len += k;
	}
	ERR_clear_error();
	int k = SSL_write(c->ssl, tls_wbuf, (int)len);
	if (k > 0)
		return k;
	int e = SSL_get_error(c->ssl, k);
	errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
	return -1;
}

/* The prefix of a deflate stream that carries n bytes as they are: one
 * stored block, not final (RFC 1951 3.2.4: a zero byte for the block
 * header, byte-aligned, then LEN and NLEN), 5 bytes. */
static size_t stored_block(uint8_t *p, size_t n)
{
	p[0] = 0;
	p[1] = (uint8_t)n;
	p[2] = (uint8_t)(n >> 8);
	p[3] = (uint8_t)~n;
	p[4] = (uint8_t)(~n >> 8);
	return STORED_PREFIX;
}

/* One frame's bytes as up to three pieces: the header and payload of a
 * shared frame (one contiguous run), or a header built here, the
 * subscriber's head and the shared body. On a deflate connection a
 * (head, body) frame whose body has a compressed variant goes out
 * compressed without compressing anything per subscriber: a stored block
 * holding the head, then the body's shared compressed bytes (a deflate
 * stream may continue with blocks that never refer back). Returns the
 * pieces; *wire is the msg whose bytes a half-written frame continues
 * with. hdr has room for WS_HEADER_MAX + STORED_PREFIX bytes. */
static int frame_pieces(struct wsconn *c, size_t i, uint8_t *hdr, struct iovec *seg,
			struct msg **wire)
{
	struct outq_ent *e = outq_at(&c->q, i);
	*wire = NULL;
	if (e->head && !e->body->op) {
		struct msg *body = e->body;
		size_t h;
		if (c->zbits && e->head->len <= 0xffff &&
		    (body = wire_frame(c, e->body)) != e->body) {
			size_t len = STORED_PREFIX + e->head->len + body->len;
			h = ws_frame_header(hdr, WS_OP_TEXT, 1, len);
			h += stored_block(hdr + h, e->head->len);
		} else {
			body = e->body;
			h = ws_frame_header(hdr, WS_OP_TEXT, 0, e->head->len + body->len);
		}
		seg[0].iov_base = hdr;
		seg[0].iov_len = h;
		seg[1].iov_base = msg_payload(e->head);
		seg[1].iov_len = e->head->len;
		seg[2].iov_base = msg_payload(body);
		seg[2].iov_len = body->len;
		return 3;
	}
	struct msg *w = i == 0 && c->q_off ? c->q_wire : wire_frame(c, e->body);
	size_t len;
	seg[0].iov_base = (void *)msg_wire(w, &len);
	seg[0].iov_len = len;
	*wire = w;
	return 1;
}

/* An SSL_write of the first offered bytes wants a retry: remember how
 * many bytes and which entries they cover (flen: the bytes each of the
 * frames to go has left), so those stay as they are until it is done. */
static void tls_pending(struct wsconn *c, size_t offered, const size_t *flen, int frames)
{
	size_t ents = 0;
	for (size_t at = 0; ents < (size_t)frames && at < offered; ents++)
		at += flen[ents];
	c->tls_pend = offered;
	c->tls_pend_ents = ents;
}

static void flush(struct wsconn *c)
{
	if (c->state != WSC_OPEN)
		return;
	while (c->q.len) {
		struct iovec iov[IOV_BATCH];
		size_t flen[IOV_BATCH];
		struct msg *fwire[IOV_BATCH];
		uint8_t hdr[IOV_BATCH / 3][WS_HEADER_MAX + STORED_PREFIX];
		size_t total = 0;
		int n = 0, frames = 0, heads = 0;
		for (size_t i = 0; i < c->q.len && n + 3 <= IOV_BATCH && total < WRITE_MAX; i++) {
			struct iovec seg[3];
			int ns = frame_pieces(c, i, hdr[heads], seg, &fwire[frames]);
			if (ns == 3)
				heads++;
			size_t skip = i == 0 ? c->q_off : 0;
			flen[frames] = 0;
			for (int k = 0; k < ns; k++) {
				flen[frames] += seg[k].iov_len;
				if (skip >= seg[k].iov_len) {
					skip -= seg[k].iov_len;
					continue;
				}
				iov[n].iov_base = (char *)seg[k].iov_base + skip;
				iov[n].iov_len = seg[k].iov_len - skip;
				skip = 0;
				total += iov[n++].iov_len;
			}
			if (i == 0)
				flen[frames] -= c->q_off;
			frames++;
			if (outq_at(&c->q, i)->body->op == WS_OP_CLOSE)
				break; /* nothing after a close frame */
		}
		size_t offered = c->ssl && total > sizeof(tls_wbuf) ? sizeof(tls_wbuf) : total;
		if (c->tls_pend) /* a retry: the same bytes, no more, no fewer */
			offered = c->tls_pend <= total ? c->tls_pend : total;
		ssize_t k = c->ssl   ? tls_write(c, iov, n, offered)
			    : n == 1 ? write(c->io.fd, iov[0].iov_base, iov[0].iov_len)
				     : writev(c->io.fd, iov, n); /* write: no iovec import */
		if (k < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				if (c->ssl && !c->tls_pend)
					tls_pending(c, offered, flen, frames);
				loop_io_set(&c->io, LOOP_IN | LOOP_OUT);
				return;
			}
			finish(c); /* the client is gone */
			return;
		}
		c->tls_pend = 0; /* the SSL_write completed */
		c->tls_pend_ents = 0;
		metrics.writes++;
		metrics.wire_bytes_out += k;
		if (k > 0)
			c->close_moved = 1; /* the client made room: see on_tick */
		if (frames > 1)
			metrics.coalesced_writes++;
		size_t left = (size_t)k;
		for (int f = 0; f < frames && left; f++) {
			if (left < flen[f]) { /* this frame stays half written */
				c->q_off += left;
				c->q_wire = fwire[f];
				break;
			}
			left -= flen[f];
			struct outq_ent *e = outq_at(&c->q, 0);
			int was_close = e->body->op == WS_OP_CLOSE;
			if (!e->body->op) { /* a message frame (not ping/pong/close) */
				metrics.frames_out++;
				metrics.bytes_out += (long long)outq_ent_len(e);
			}
			c->q_off = 0;
			q_pop(c);
			if (was_close) {
				c->close_sent = 1;
				if (c->close_rcvd || c->failed) {
					linger(c);
					return;
				}
				/* now the reply has its own, shorter deadline */
				c->deadline_ms = loop_now_ms() + WSCONN_CLOSE_TIMEOUT_S * 1000;
			}
		}
		if ((size_t)k < offered) { /* the socket is full: wait for room */
			loop_io_set(&c->io, LOOP_IN | LOOP_OUT);
			return;
		}
	}
	loop_io_set(&c->io, LOOP_IN);
}

int wsconn_send(struct wsconn *c, struct msg *head, struct msg *m)
{
	if (c->closing || c->state >= WSC_LINGER)
		return 0;
	if (outq_push(&c->q, head, m)) {
		fail(c, WS_CLOSE_INTERNAL, "out of memory");
		return -1;
	}
	mark_dirty(c);
	/* A pass that brings a lot for one client (a burst of big messages)
	 * writes as the queue fills, not only at its end: the queue cap is
	 * for clients that do not read, not for a long pass. */
	if (c->q.bytes - c->q_off >= cfg.flush_early_bytes)
		flush(c);
	return 0;
}

/* ---- reading ---- */

static const char *cb_why; /* reason of a failure a callback returned */

static int deliver(struct wsconn *c, int op, int compressed, const char *p, size_t len)
{
	if (compressed) {
		buf_reset(&scratch);
		int rc = ws_deflate_inflate(p, len, cfg.max_message_bytes, &scratch);
		if (rc == 1) {
			cb_why = "message larger than max_message_bytes";
			return WS_CLOSE_TOO_BIG;
		}
		if (rc < 0) {
			cb_why = "invalid compressed data";
			return WS_CLOSE_BAD_DATA;
		}
		metrics.inflated_messages++;
		p = buf_data(&scratch);
		len = scratch.len;
		if (!p)
			p = "";
		if (op == WS_OP_TEXT && !utf8_valid(p, len)) {
			cb_why = "invalid UTF-8 in a text message";
			return WS_CLOSE_BAD_DATA;
		}
	}
	c->ops->message(c, op, p, len);
	if (scratch.cap > (1u << 20))
		buf_free(&scratch);
	return 0;
}

static int rx_data(void *arg, int op, int compressed, const uint8_t *p, size_t len, int last)
{
	struct wsconn *c = arg;
	if (c->closing || c->state != WSC_OPEN)
		return 0;	/* closing: only the close reply matters now */
	if (last && !c->in.len) /* whole in one read: no copy */
		return deliver(c, op, compressed, (const char *)p, len);
	if (len && buf_append(&c->in, p, len)) {
		cb_why = "out of memory";
		return WS_CLOSE_INTERNAL;
	}
	if (!last)
		return 0;
	int rc = deliver(c, op, compressed, buf_data(&c->in), c->in.len);
	if (c->in.cap > 4096)
		buf_free(&c->in); /* don't keep a big buffer after one big message */
	else
		buf_reset(&c->in);
	return rc;
}

static void queue_pong(struct wsconn *c, const uint8_t *p, size_t len)
{
	/* Only the latest ping is answered (RFC 6455 5.5.3): a pong not yet
	 * started is replaced, so a ping flood costs one queued frame. */
	size_t at = q_started(c);
	struct msg *m = msg_control(WS_OP_PONG, p, len);
	if (!m) {
		fail(c, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	struct outq_ent *e = c->q.len > at ? outq_at(&c->q, at) : NULL;
	if (e && !e->head && e->body->op == WS_OP_PONG) { /* replace it in place */
		outq_set_body(&c->q, e, m);
	} else if (q_push_front(c, m)) {
		msg_unref(m);
		fail(c, WS_CLOSE_INTERNAL, "out of memory");
		return;
	}
	msg_unref(m);
	mark_dirty(c);
}

static int rx_control(void *arg, int op, const uint8_t *p, size_t len)
{
	struct wsconn *c = arg;
	if (op == WS_OP_PING) {
		if (!c->closing && c->state == WSC_OPEN)
			queue_pong(c, p, len);
		return 0;
	}
	if (op == WS_OP_PONG)
		return 0;
	/* close */
	c->close_rcvd = 1;
	c->peer_code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
	if (c->closing) { /* the reply to ours */
		if (c->close_sent)
			linger(c);
		return 0;
	}
	/* theirs: echo the code (an empty close gets an empty one) */
	queue_close(c, c->peer_code, "", 0);
	return 0;
}

static const struct ws_rx_cb rx_cbs = {rx_data, rx_control};

static ssize_t tls_read(struct wsconn *c)
{
	ERR_clear_error();
	int k = SSL_read(c->ssl, rbuf, sizeof(rbuf));
	if (k > 0)
		return k;
	int e = SSL_get_error(c->ssl, k);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !errno))
		return 0;
	errno = EPIPE;
	return -1;
}

static void read_some(struct wsconn *c)
{
	for (int i = 0;
	     i < READS_PER_PASS || (c->ssl && c->state == WSC_OPEN && SSL_pending(c->ssl) > 0);
	     i++) {
		if (c->state != WSC_OPEN && c->state != WSC_LINGER)
			return;
		ssize_t n;
		if (c->ssl && c->state == WSC_OPEN)
			n = tls_read(c);
		else
			n = read(c->io.fd, rbuf, sizeof(rbuf));
		if (n > 0) {
			c->last_rx_ms = loop_now_ms();
			c->ping_out = 0;
			if (c->ops->activity)
				c->ops->activity(c);
			if (c->state == WSC_LINGER || c->failed)
				continue; /* discarded: the conversation is over, or
					     failed (RFC 6455 7.1.7: no more parsing) */
			cb_why = NULL;
			int rc = ws_rx_feed(&c->rx, rbuf, (size_t)n, &rx_cbs, c);
			if (rc)
				fail(c, rc, cb_why ? cb_why : c->rx.why);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		/* EOF or an error: the client is gone */
		if (c->state != WSC_LINGER && !(c->close_rcvd && c->close_sent))
			metrics.ws_abnormal_closes++;
		finish(c);
		return;
	}
}

static void on_io(struct loop_io *io, unsigned ev)
{
	struct wsconn *c = (struct wsconn *)((char *)io - offsetof(struct wsconn, io));
	if (ev & LOOP_OUT)
		mark_dirty(c);
	if (ev & (LOOP_IN | LOOP_ERR))
		read_some(c);
}

/* ---- takeover ---- */

static void open_io(struct wsconn *c)
{
	if (loop_io_add(&c->io, c->io.fd, LOOP_IN, on_io)) {
		log_warn("epoll: %s", strerror(errno));
		finish(c);
		return;
	}
	c->state = WSC_OPEN;
	mark_dirty(c);
}

static int take(struct wsconn *c)
{
	struct lws *wsi = c->wsi;
	int lfd = lws_get_socket_fd(wsi);
	int fd = fcntl(lfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		log_warn("cannot take a connection over: %s", strerror(errno));
		return -1;
	}
	SSL *ssl = lws_get_ssl(wsi);
	if (ssl) {
		SSL_up_ref(ssl);
		SSL_set_quiet_shutdown(ssl, 1); /* lws's SSL_shutdown: not on the wire */
		/* A read lws still makes before it lets go gets EOF from
		 * /dev/null: without this OpenSSL 3 takes that for a truncation
		 * attack and fails the SSL object for good (seen: the client's
		 * connection dropped before its hello, wsconn_tls.mjs under
		 * load). With it that EOF counts as a close_notify, which
		 * wsconn_lws_destroyed() undoes. */
		SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	}
	if (dup3(devnull, lfd, O_CLOEXEC) < 0) {
		log_warn("dup3: %s", strerror(errno));
		if (ssl)
			SSL_free(ssl);
		close(fd);
		return -1;
	}
	c->taken = 1;
	c->ssl = ssl;
	c->io.fd = fd;
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	if (ssl) {
		c->dead_next = adopting; /* until lws has freed its wsi */
		adopting = c;
		if (!c->deadline_ms)
			c->deadline_ms = loop_now_ms() + WSCONN_FLUSH_TIMEOUT_S * 1000;
		return 0;
	}
	open_io(c);
	return 0;
}

int wsconn_adopt(struct wsconn *c, struct lws *wsi, const struct wsconn_ops *ops, int zbits)
{
	if (devnull < 0) {
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull < 0) {
			log_err("/dev/null: %s", strerror(errno));
			return -1;
		}
	}
	c->ops = ops;
	c->wsi = wsi;
	c->zbits = (uint8_t)zbits;
	c->io.fd = -1;
	c->state = WSC_ADOPTING;
	c->last_rx_ms = loop_now_ms();
	ws_rx_init(&c->rx, cfg.max_message_bytes, zbits != 0);
	buf_init(&c->in, 0);
	c->prev = NULL;
	c->next = all;
	if (all)
		all->prev = c;
	all = c;
	n_conns++;
	if (lws_partial_buffered(wsi)) { /* part of the 101 is still in lws */
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (take(c)) {
		all = c->next;
		if (all)
			all->prev = NULL;
		n_conns--;
		return -1;
	}
	return 0;
}

void wsconn_lws_writeable(struct wsconn *c)
{
	if (c->taken || c->state != WSC_ADOPTING)
		return;
	if (lws_partial_buffered(c->wsi)) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (take(c))
		finish(c);
}

void wsconn_lws_receive(struct wsconn *c)
{
	/* lws parsed bytes that came with the HTTP request, before the 101:
	 * a client must wait for the handshake (RFC 6455 4.1). */
	if (c->state == WSC_DEAD)
		return;
	if (c->state == WSC_ADOPTING && !c->taken) {
		finish(c);
		return;
	}
	fail(c, WS_CLOSE_PROTOCOL, "data sent before the opening handshake completed");
}

void wsconn_lws_closed(struct wsconn *c)
{
	c->slot = NULL;	 /* lws frees the per-session data next */
	if (!c->taken) { /* lws closed it before we took it over */
		c->wsi = NULL;
		finish(c);
	} else if (!c->ssl || c->state != WSC_ADOPTING) {
		c->wsi = NULL;
	}
}

void wsconn_lws_destroyed(struct lws *wsi)
{
	for (struct wsconn *c = adopting; c; c = c->dead_next) {
		if (c->wsi != wsi)
			continue;
		list_del(&adopting, c);
		c->wsi = NULL;
		/* lws has freed the wsi and dropped its reference: the SSL
		 * object is ours; undo the quiet shutdown lws went through and
		 * put it on our descriptor. */
		SSL_set_shutdown(c->ssl, 0);
		SSL_set_quiet_shutdown(c->ssl, 0);
		SSL_clear_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
		if (!SSL_set_fd(c->ssl, c->io.fd)) {
			finish(c);
			return;
		}
		SSL_set_mode(c->ssl,
			     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if (!c->closing)
			c->deadline_ms = 0;
		open_io(c);
		return;
	}
}

/* ---- passes and the tick ---- */

void wsconn_pass_end(void)
{
	for (;;) {
		while (dirty_head) {
			struct wsconn *c = dirty_head;
			dirty_head = c->dirty_next;
			c->dirty = 0;
			flush(c);
		}
		if (!dead_head)
			return;
		struct wsconn *d = dead_head;
		dead_head = NULL;
		while (d) {
			struct wsconn *next = d->dead_next;
			d->ops->closed(d); /* may free d */
			d = next;
		}
	}
}

/* A deadline passed while our close frame still waits behind what the
 * kernel accepted before it: if the client took bytes since the last look
 * (the kernel's unsent count fell, or it made room for a write of ours),
 * it is reading, only slowly: give it another WSCONN_CLOSE_TIMEOUT_S, up to
 * close_cap_ms. 1 when the deadline moved. */
static int close_waits(struct wsconn *c, uint64_t now)
{
	if (c->state != WSC_OPEN || !c->closing || c->close_sent || now >= c->close_cap_ms)
		return 0;
	uint32_t unsent = kernel_unsent(c);
	int moved = c->close_moved || (unsent != UINT32_MAX && unsent < c->close_unsent);
	c->close_unsent = unsent;
	c->close_moved = 0;
	if (!moved)
		return 0;
	c->deadline_ms = now + WSCONN_CLOSE_TIMEOUT_S * 1000;
	if (c->deadline_ms > c->close_cap_ms)
		c->deadline_ms = c->close_cap_ms;
	return 1;
}

static void on_tick(struct fanout_timer *t, void *arg)
{
	uint64_t now = loop_now_ms();
	uint64_t ping = (uint64_t)cfg.ping_interval_s * 1000;
	for (struct wsconn *c = all, *next; c; c = next) {
		next = c->next;
		if (c->deadline_ms && now >= c->deadline_ms && close_waits(c, now))
			continue;
		if (c->deadline_ms && now >= c->deadline_ms) {
			if (c->state != WSC_LINGER)
				metrics.ws_close_timeouts++;
			finish(c);
			continue;
		}
		if (!ping || c->state != WSC_OPEN || c->closing)
			continue;
		/* The tick is 1 s: half a tick early is on time. */
		uint64_t idle = now - c->last_rx_ms + 500;
		if (idle >= 2 * ping + 10000) {
			metrics.ws_ping_timeouts++;
			finish(c);
		} else if (idle >= ping && !c->ping_out) {
			struct msg *m = msg_control(WS_OP_PING, "", 0);
			if (m && !q_push_front(c, m)) {
				c->ping_out = 1;
				metrics.ws_pings++;
				mark_dirty(c);
			}
			msg_unref(m);
		}
	}
	loop_timer_arm(t, 1000);
}

int wsconn_start(void)
{
	tick = loop_timer_add(on_tick, NULL);
	if (!tick)
		return -1;
	loop_timer_arm(tick, 1000);
	return 0;
}

void wsconn_shutdown(void)
{
	while (all)
		finish(all);
	while (adopting)
		list_del(&adopting, adopting);
	wsconn_pass_end();
	loop_timer_remove(tick);
	tick = NULL;
	buf_free(&scratch);
	ws_deflate_cleanup();
	if (devnull >= 0)
		close(devnull);
	devnull = -1;
}
