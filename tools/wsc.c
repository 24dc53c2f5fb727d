/*
 * wsc.c — the WebSocket client behind fanout-cli (sub, pub, bench). It owns
 * one TCP connection per struct wsc: the non-blocking connect, the HTTP/1.1
 * upgrade (Sec-WebSocket-Key sent, Sec-WebSocket-Accept checked), masked
 * client frames and a parser for server frames (fragmentation, ping → pong,
 * close handshake). Runs on the caller's thread inside the caller's loop;
 * never blocks. Allocations: the per-connection input tail, output queue and
 * fragment buffer, grown on demand and freed by wsc_free(); reads go into
 * one static scratch buffer (single-threaded use only).
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>
#include <zlib.h>

#include "wsc.h"

#define WS_GUID	      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX 8192 /* bytes of the 101 response we accept */

static char scratch[65536];

/* ---- SHA-1 (FIPS 180-1), only for the handshake ---- */

static uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80], a, b, c, d, e, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5A827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ED9EBA1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
		else
			f = b ^ c ^ d, k = 0xCA62C1D6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void wsc_sha1(const void *data, size_t len, unsigned char out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	const unsigned char *p = data;
	unsigned char tail[128];
	size_t n = len, rest, i;
	uint64_t bits = (uint64_t)len * 8;

	while (n >= 64) {
		sha1_block(h, p);
		p += 64, n -= 64;
	}
	memset(tail, 0, sizeof(tail));
	memcpy(tail, p, n);
	tail[n] = 0x80;
	rest = n + 1 + 8 <= 64 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[rest - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha1_block(h, tail);
	if (rest == 128)
		sha1_block(h, tail + 64);
	for (i = 0; i < 5; i++) {
		out[4 * i] = (unsigned char)(h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(h[i] >> 8);
		out[4 * i + 3] = (unsigned char)h[i];
	}
}

size_t wsc_base64(const unsigned char *in, size_t len, char *out)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* ---- URL ---- */

int wsc_url_parse(const char *url, struct wsc_url *u, char *err, size_t errlen)
{
	const char *p, *host_end, *path;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(url, "ws://", 5))
		p = url + 5;
	else if (!strncasecmp(url, "http://", 7))
		p = url + 7;
	else if (!strncasecmp(url, "wss://", 6) || !strncasecmp(url, "https://", 8)) {
		snprintf(err, errlen,
			 "%s: TLS (wss://) is not supported; put fanoutd or a local "
			 "proxy on ws://",
			 url);
		return -1;
	} else {
		snprintf(err, errlen, "%s: not a ws:// URL", url);
		return -1;
	}
	path = p + strcspn(p, "/?");
	if (p[0] == '[') { /* [v6]:port */
		const char *rb = strchr(p, ']');
		if (!rb || rb > path) {
			snprintf(err, errlen, "%s: bad IPv6 address", url);
			return -1;
		}
		hl = (size_t)(rb - p - 1);
		if (hl == 0 || hl >= sizeof(u->host))
			goto bad_host;
		memcpy(u->host, p + 1, hl);
		host_end = rb + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(path - p));
		host_end = colon ? colon : path;
		hl = (size_t)(host_end - p);
		if (hl == 0 || hl >= sizeof(u->host))
			goto bad_host;
		memcpy(u->host, p, hl);
	}
	if (*host_end == ':') {
		size_t pl = (size_t)(path - host_end - 1);
		char *end;
		long port;
		if (pl == 0 || pl >= sizeof(u->port))
			goto bad_port;
		memcpy(u->port, host_end + 1, pl);
		port = strtol(u->port, &end, 10);
		if (*end || port < 1 || port > 65535)
			goto bad_port;
	} else if (host_end != path) {
		goto bad_host;
	} else {
		strcpy(u->port, "80");
	}
	if (*path == '\0')
		strcpy(u->path, "/ws");
	else if (*path == '?')
		snprintf(u->path, sizeof(u->path), "/ws%s", path);
	else if (strlen(path) >= sizeof(u->path)) {
		snprintf(err, errlen, "%s: path too long", url);
		return -1;
	} else
		strcpy(u->path, path);
	if (strpbrk(u->path, " \r\n")) {
		snprintf(err, errlen, "%s: the path may not contain spaces or line breaks", url);
		return -1;
	}
	snprintf(u->hostport, sizeof(u->hostport), "%s%s%s:%s", p[0] == '[' ? "[" : "", u->host,
		 p[0] == '[' ? "]" : "", u->port);
	return 0;
bad_host:
	snprintf(err, errlen, "%s: bad host", url);
	return -1;
bad_port:
	snprintf(err, errlen, "%s: bad port", url);
	return -1;
}

int wsc_resolve(const struct wsc_url *u, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
		size_t errlen)
{
	struct addrinfo hints = {0}, *res = NULL;
	int rc;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s: %s", u->host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* ---- buffers ---- */

static int grow(char **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	char *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n + 1); /* +1: room for a caller's NUL */
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static int out_append(struct wsc *c, const void *p, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (grow(&c->out, &c->out_cap, c->out_len + n))
		return -1;
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

static void fail(struct wsc *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct wsc *c, int code, const char *fmt, ...)
{
	va_list ap;

	if (c->state == WSC_CLOSED)
		return;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	if (!c->close_code)
		c->close_code = code;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = WSC_CLOSED;
}

/* ---- lifecycle ---- */

void wsc_init(struct wsc *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->max_message = 64u << 20;
}

void wsc_free(struct wsc *c)
{
	size_t max = c->max_message;
	void *user = c->user;
	uint8_t deflate = c->deflate;

	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->msg);
	free(c->out);
	wsc_init(c);
	c->max_message = max;
	c->user = user;
	c->deflate = deflate;
}

int wsc_start(struct wsc *c, const struct sockaddr *sa, socklen_t salen, const char *hostport,
	      const char *path)
{
	unsigned char rnd[16];
	char req[2560];
	int one = 1, n;

	wsc_free(c);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* getrandom() only fails before the pool is seeded; fall back. */
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)random();
	}
	wsc_base64(rnd, sizeof(rnd), c->key);
	memcpy(&c->rng, rnd, sizeof(c->rng));
	c->rng |= 1;
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s"
		     "User-Agent: fanout-cli\r\n\r\n",
		     path, hostport, c->key,
		     c->deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
				  "server_no_context_takeover; client_no_context_takeover\r\n"
				: "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fail(c, WSC_CLOSE_ABNORMAL, "request too long");
		return -1;
	}
	if (out_append(c, req, (size_t)n)) {
		fail(c, WSC_CLOSE_ABNORMAL, "out of memory");
		return -1;
	}
	c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, WSC_CLOSE_ABNORMAL, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = WSC_CONNECTING;
	if (connect(c->fd, sa, salen) < 0 && errno != EINPROGRESS) {
		fail(c, WSC_CLOSE_ABNORMAL, "connect: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int wsc_want_write(const struct wsc *c)
{
	return c->state == WSC_CONNECTING || (c->state != WSC_CLOSED && c->out_off < c->out_len);
}

static int flush(struct wsc *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			fail(c, WSC_CLOSE_ABNORMAL, "write: %s", strerror(errno));
			return -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

int wsc_handle_write(struct wsc *c)
{
	if (c->state == WSC_CLOSED)
		return -1;
	if (c->state == WSC_CONNECTING) {
		int e = 0;
		socklen_t l = sizeof(e);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
			e = errno;
		if (e == EINPROGRESS || e == EALREADY)
			return 0;
		if (e) {
			fail(c, WSC_CLOSE_ABNORMAL, "connect: %s", strerror(e));
			return -1;
		}
		c->state = WSC_HANDSHAKE;
	}
	return flush(c);
}

static int send_frame(struct wsc *c, int opcode, const void *data, size_t len)
{
	unsigned char hdr[14];
	size_t h = 0, i;
	uint32_t m;
	unsigned char mask[4];
	char *dst;

	hdr[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		hdr[h++] = (unsigned char)(0x80 | len);
	} else if (len <= 0xffff) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(len >> 8);
		hdr[h++] = (unsigned char)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			hdr[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	/* xorshift32: masking only has to be unpredictable to proxies, not secret. */
	m = c->rng;
	m ^= m << 13, m ^= m >> 17, m ^= m << 5;
	c->rng = m;
	memcpy(mask, &m, 4);
	memcpy(hdr + h, mask, 4);
	h += 4;
	if (out_append(c, hdr, h) || grow(&c->out, &c->out_cap, c->out_len + len))
		return -1;
	dst = c->out + c->out_len;
	for (i = 0; i < len; i++)
		dst[i] = (char)(((const unsigned char *)data)[i] ^ mask[i & 3]);
	c->out_len += len;
	return 0;
}

int wsc_send(struct wsc *c, int opcode, const void *data, size_t len)
{
	if (c->state != WSC_OPEN)
		return -1;
	if (send_frame(c, opcode, data, len))
		return -1;
	return flush(c);
}

void wsc_close(struct wsc *c, int code)
{
	unsigned char b[2];

	if (c->state == WSC_OPEN && !c->close_sent) {
		b[0] = (unsigned char)(code >> 8);
		b[1] = (unsigned char)code;
		send_frame(c, 8, b, code ? 2 : 0);
		c->close_sent = 1;
		c->state = WSC_CLOSING;
		flush(c);
	} else if (c->state != WSC_CLOSING) {
		fail(c, code ? code : WSC_CLOSE_ABNORMAL, NULL);
	}
}

void wsc_notify_closed(struct wsc *c, wsc_cb cb, void *arg)
{
	if (c->state == WSC_CLOSED && !c->close_notified) {
		c->close_notified = 1;
		cb(c, WSC_EV_CLOSE, c->close_reason, strlen(c->close_reason), arg);
	}
}

/* ---- input ---- */

/* Header value (trimmed) of name in the response head, or NULL. */
static const char *header(const char *head, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		if (!end)
			return NULL;
		if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
				end--;
			*vlen = (size_t)(end - v);
			return v;
		}
		p = end;
	}
	return NULL;
}

static int token_in(const char *v, size_t len, const char *tok)
{
	size_t tl = strlen(tok);
	for (size_t i = 0; i + tl <= len; i++)
		if (!strncasecmp(v + i, tok, tl))
			return 1;
	return 0;
}

/* Parse the 101 response in buf; returns bytes consumed, 0 if incomplete, -1 on error. */
static ssize_t parse_handshake(struct wsc *c, char *buf, size_t len)
{
	char *end = memmem(buf, len, "\r\n\r\n", 4);
	char keybuf[64], expect[32];
	unsigned char sha[20];
	const char *v;
	size_t vl, hl;
	char save;

	if (!end) {
		if (len > HANDSHAKE_MAX) {
			fail(c, WSC_CLOSE_ABNORMAL, "handshake: response head too long");
			return -1;
		}
		return 0;
	}
	hl = (size_t)(end - buf) + 4;
	save = buf[hl - 1];
	buf[hl - 1] = '\0'; /* head ends "\r\n\r"; header() stops at "\r\n\r" */
	if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
		char status[80];
		size_t sl = strcspn(buf, "\r\n");
		snprintf(status, sizeof(status), "%.*s", (int)(sl < 79 ? sl : 79), buf);
		fail(c, WSC_CLOSE_ABNORMAL, "handshake refused: %s", status);
		return -1;
	}
	v = header(buf, "Upgrade", &vl);
	if (!v || !token_in(v, vl, "websocket")) {
		fail(c, WSC_CLOSE_ABNORMAL, "handshake: no Upgrade: websocket header");
		return -1;
	}
	v = header(buf, "Connection", &vl);
	if (!v || !token_in(v, vl, "upgrade")) {
		fail(c, WSC_CLOSE_ABNORMAL, "handshake: no Connection: Upgrade header");
		return -1;
	}
	snprintf(keybuf, sizeof(keybuf), "%s%s", c->key, WS_GUID);
	wsc_sha1(keybuf, strlen(keybuf), sha);
	wsc_base64(sha, sizeof(sha), expect);
	v = header(buf, "Sec-WebSocket-Accept", &vl);
	if (!v || vl != strlen(expect) || memcmp(v, expect, vl) != 0) {
		fail(c, WSC_CLOSE_ABNORMAL, "handshake: wrong Sec-WebSocket-Accept");
		return -1;
	}
	v = header(buf, "Sec-WebSocket-Extensions", &vl);
	if (v) {
		/* only what we offered: permessage-deflate, no context takeover
		 * (server_no_context_takeover must be in the answer: we inflate
		 * every message on its own) */
		if (!c->deflate || vl < 18 || strncmp(v, "permessage-deflate", 18) ||
		    !memmem(v, vl, "server_no_context_takeover", 26)) {
			fail(c, WSC_CLOSE_ABNORMAL,
			     "handshake: server chose an extension we did not offer");
			return -1;
		}
		c->z = 1;
	}
	buf[hl - 1] = save;
	c->state = WSC_OPEN;
	return (ssize_t)hl;
}

static void protocol_error(struct wsc *c, int code, const char *why)
{
	snprintf(c->err, sizeof(c->err), "protocol error: %s", why);
	if (c->state == WSC_OPEN) {
		wsc_close(c, code);
		flush(c);
	}
	fail(c, WSC_CLOSE_ABNORMAL, NULL);
}

/* Inflate a compressed message (fresh context: server_no_context_takeover)
 * into the shared out buffer; returns its length or -1. */
static char *zout;
static size_t zout_cap;
static z_stream zs;
static int zs_ready;

static ssize_t inflate_msg(struct wsc *c, const char *p, size_t n)
{
	static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
	if (!zs_ready) {
		if (inflateInit2(&zs, -15) != Z_OK)
			return -1;
		zs_ready = 1;
	} else if (inflateReset(&zs) != Z_OK) {
		return -1;
	}
	size_t len = 0;
	for (int part = 0; part < 2; part++) {
		zs.next_in = (Bytef *)(part ? (const char *)tail : p);
		zs.avail_in = (uInt)(part ? sizeof(tail) : n);
		while (zs.avail_in) {
			if (zout_cap - len < 4096 && grow(&zout, &zout_cap, zout_cap * 2 + 65536))
				return -1;
			zs.next_out = (Bytef *)zout + len;
			zs.avail_out = (uInt)(zout_cap - len - 1);
			int rc = inflate(&zs, Z_SYNC_FLUSH);
			len = zout_cap - 1 - zs.avail_out;
			if (len > c->max_message)
				return -1;
			if (rc == Z_STREAM_END)
				break;
			if (rc != Z_OK && rc != Z_BUF_ERROR)
				return -1;
			if (rc == Z_BUF_ERROR && zs.avail_out)
				break;
		}
	}
	return (ssize_t)len;
}

/* A whole message (inflated first when compressed): to the callback. */
static void message(struct wsc *c, int op, int z, char *p, size_t n, wsc_cb cb, void *arg)
{
	if (z) {
		ssize_t k = inflate_msg(c, p, n);
		if (k < 0) {
			protocol_error(c, 1007, "bad compressed data");
			return;
		}
		zout[k] = '\0';
		p = zout;
		n = (size_t)k;
	}
	cb(c, op == 1 ? WSC_EV_TEXT : WSC_EV_BINARY, p, n, arg);
}

/* Handle one complete frame; returns 0, or -1 once the connection is closed. */
static int on_frame(struct wsc *c, int fin, int op, int rsv1, char *p, size_t n, wsc_cb cb,
		    void *arg)
{
	switch (op) {
	case 0x0: /* continuation */
		if (!c->msg_op) {
			protocol_error(c, 1002, "continuation without a first fragment");
			return -1;
		}
		goto frag;
	case 0x1:
	case 0x2:
		if (c->msg_op) {
			protocol_error(c, 1002, "new message inside a fragmented one");
			return -1;
		}
		if (fin) {
			char save = p[n]; /* p[n] exists: the frame parser never passes the
					     last byte of a buffer without its +1 room */
			p[n] = '\0';
			message(c, op, rsv1, p, n, cb, arg);
			if (c->state != WSC_CLOSED)
				p[n] = save;
			return c->state == WSC_CLOSED ? -1 : 0;
		}
		c->msg_op = op;
		c->msg_z = (uint8_t)rsv1;
		c->msg_len = 0;
	frag:
		if (c->msg_len + n > c->max_message) {
			protocol_error(c, 1009, "message too big");
			c->close_code = 1009;
			return -1;
		}
		if (grow(&c->msg, &c->msg_cap, c->msg_len + n)) {
			protocol_error(c, 1011, "out of memory");
			return -1;
		}
		memcpy(c->msg + c->msg_len, p, n);
		c->msg_len += n;
		if (fin) {
			int mop = c->msg_op;
			c->msg_op = 0;
			c->msg[c->msg_len] = '\0';
			message(c, mop, c->msg_z, c->msg, c->msg_len, cb, arg);
			if (c->msg_cap > 65536) { /* don't keep a big buffer per client */
				free(c->msg);
				c->msg = NULL;
				c->msg_cap = 0;
			}
		}
		return c->state == WSC_CLOSED ? -1 : 0;
	case 0x8: { /* close */
		int code = WSC_CLOSE_NO_STATUS;
		if (n >= 2) {
			code = (unsigned char)p[0] << 8 | (unsigned char)p[1];
			snprintf(c->close_reason, sizeof(c->close_reason), "%.*s",
				 (int)(n - 2 > 123 ? 123 : n - 2), p + 2);
		}
		c->close_code = code;
		if (!c->close_sent && c->state == WSC_OPEN) {
			unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
			send_frame(c, 8, b, code == WSC_CLOSE_NO_STATUS ? 0 : 2);
			c->close_sent = 1;
			flush(c);
		}
		fail(c, code, NULL);
		return -1;
	}
	case 0x9: /* ping */
		if (c->state == WSC_OPEN && (send_frame(c, 0xA, p, n) || flush(c)))
			return -1;
		return 0;
	case 0xA: /* pong */
		return 0;
	default:
		protocol_error(c, 1002, "unknown opcode");
		return -1;
	}
}

/* Parse frames from buf; returns bytes consumed or -1 once closed. */
static ssize_t parse_frames(struct wsc *c, char *buf, size_t len, wsc_cb cb, void *arg)
{
	size_t off = 0;

	while (c->state == WSC_OPEN || c->state == WSC_CLOSING) {
		unsigned char *p = (unsigned char *)buf + off;
		size_t avail = len - off, h = 2;
		uint64_t n;
		int fin, op, rsv1;

		if (avail < 2)
			break;
		fin = p[0] & 0x80;
		op = p[0] & 0x0f;
		rsv1 = (p[0] & 0x40) != 0;
		if ((p[0] & 0x30) || (rsv1 && (!c->z || op == 0 || (op & 0x8)))) {
			protocol_error(c, 1002, "reserved bits set");
			return -1;
		}
		if (p[1] & 0x80) {
			protocol_error(c, 1002, "masked frame from the server");
			return -1;
		}
		n = p[1] & 0x7f;
		if (n == 126) {
			if (avail < 4)
				break;
			n = (uint64_t)p[2] << 8 | p[3];
			h = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | p[2 + i];
			h = 10;
		}
		if ((op & 0x8) && (n > 125 || !fin)) {
			protocol_error(c, 1002, "bad control frame");
			return -1;
		}
		if (n > c->max_message) {
			protocol_error(c, 1009, "message too big");
			c->close_code = 1009;
			return -1;
		}
		if (avail < h + n) {
			/* Incomplete: make sure the tail buffer can take the rest. */
			if (buf != c->in && grow(&c->in, &c->in_cap, h + n)) {
				protocol_error(c, 1011, "out of memory");
				return -1;
			}
			if (buf == c->in && grow(&c->in, &c->in_cap, off + h + n)) {
				protocol_error(c, 1011, "out of memory");
				return -1;
			}
			break;
		}
		/* The byte after the payload may belong to the next frame; on_frame
		 * saves and restores it around its NUL. At the end of the buffer,
		 * the +1 of every allocation (and the scratch slack) covers it. */
		if (on_frame(c, fin, op, rsv1, (char *)p + h, (size_t)n, cb, arg))
			return -1;
		off += h + (size_t)n;
	}
	return (ssize_t)off;
}

static ssize_t parse(struct wsc *c, char *buf, size_t len, wsc_cb cb, void *arg)
{
	ssize_t used = 0, r;

	if (c->state == WSC_HANDSHAKE) {
		used = parse_handshake(c, buf, len);
		if (used <= 0)
			return used;
		cb(c, WSC_EV_OPEN, NULL, 0, arg);
		if (c->state == WSC_CLOSED)
			return -1;
	}
	r = parse_frames(c, buf + used, len - (size_t)used, cb, arg);
	if (r < 0)
		return -1;
	return used + r;
}

int wsc_handle_read(struct wsc *c, wsc_cb cb, void *arg)
{
	int rounds = 0;

	while (c->state == WSC_HANDSHAKE || c->state == WSC_OPEN || c->state == WSC_CLOSING) {
		char *dst;
		size_t room;
		ssize_t r, used;

		if (c->in_len) {
			if (grow(&c->in, &c->in_cap, c->in_len + 16384)) {
				protocol_error(c, 1011, "out of memory");
				break;
			}
			dst = c->in + c->in_len;
			room = c->in_cap - c->in_len;
		} else {
			dst = scratch;
			room = sizeof(scratch) - 1; /* keep one byte for the NUL */
		}
		r = read(c->fd, dst, room);
		if (r > 0)
			c->rx_bytes += (uint64_t)r;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			fail(c, WSC_CLOSE_ABNORMAL, "read: %s", strerror(errno));
			break;
		}
		if (r == 0) {
			if (c->state == WSC_HANDSHAKE)
				fail(c, WSC_CLOSE_ABNORMAL,
				     "handshake: server closed the connection");
			else if (c->state == WSC_CLOSING)
				fail(c, c->close_code ? c->close_code : WSC_CLOSE_NO_STATUS, NULL);
			else
				fail(c, WSC_CLOSE_ABNORMAL,
				     "connection closed without a close frame");
			break;
		}
		if (dst == scratch) {
			used = parse(c, scratch, (size_t)r, cb, arg);
			if (used < 0)
				break;
			if ((size_t)used < (size_t)r) {
				size_t rest = (size_t)r - (size_t)used;
				if (grow(&c->in, &c->in_cap, rest)) {
					protocol_error(c, 1011, "out of memory");
					break;
				}
				memcpy(c->in, scratch + used, rest);
				c->in_len = rest;
			}
		} else {
			c->in_len += (size_t)r;
			used = parse(c, c->in, c->in_len, cb, arg);
			if (used < 0)
				break;
			memmove(c->in, c->in + used, c->in_len - (size_t)used);
			c->in_len -= (size_t)used;
			if (!c->in_len && c->in_cap > 65536) {
				free(c->in);
				c->in = NULL;
				c->in_cap = 0;
			}
		}
		/* A short read drained the socket: skip the read() that would only
		 * say EAGAIN (the loop must be level-triggered; more data wakes it
		 * again). Also be fair to other connections in a shared loop. */
		if ((size_t)r < room || ++rounds >= 16)
			return c->state == WSC_CLOSED ? (wsc_notify_closed(c, cb, arg), -1) : 0;
	}
	wsc_notify_closed(c, cb, arg);
	return c->state == WSC_CLOSED ? -1 : 0;
}
