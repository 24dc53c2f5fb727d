/*
 * wsc.h — a minimal WebSocket client (RFC 6455) for fanout-cli and the
 * benchmark. One struct wsc per connection, no threads, no allocation per
 * frame: the caller owns the event loop (epoll, poll, anything) and calls
 * wsc_handle_read()/wsc_handle_write() when the fd is ready. ws:// only
 * (no TLS), client frames masked, server frames unmasked.
 *
 * permessage-deflate (RFC 7692) on request (deflate = 1 before wsc_start()):
 * the client offers it with no context takeover either way, inflates the
 * server's compressed messages, and sends its own uncompressed.
 *
 * Memory per idle connection is the struct itself (~300 bytes) plus what a
 * partially received frame or an unsent request needs: input is read into
 * one shared scratch buffer and only an incomplete tail is kept per
 * connection, so 10,000 idle clients cost a few MiB.
 */
#ifndef FANOUT_WSC_H
#define FANOUT_WSC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A parsed ws:// URL. path includes the query ("/ws?channel=a"). */
struct wsc_url {
	char host[256];
	char port[8];
	char path[2048];
	char hostport[272]; /* the Host: header value */
};

/*
 * Parse "ws://host[:port][/path[?query]]" (port defaults to 80, path to
 * "/ws"; "http://" is accepted as a synonym, "wss://" is refused). Returns 0,
 * or -1 with a reason in err.
 */
int wsc_url_parse(const char *url, struct wsc_url *u, char *err, size_t errlen);

/* Resolve u (blocking getaddrinfo; call before the loop runs). Returns 0 or
 * -1 with a reason in err. */
int wsc_resolve(const struct wsc_url *u, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
		size_t errlen);

enum wsc_state {
	WSC_IDLE = 0,	/* not started */
	WSC_CONNECTING, /* TCP connect in progress */
	WSC_HANDSHAKE,	/* upgrade request sent, waiting for 101 */
	WSC_OPEN,	/* frames flow */
	WSC_CLOSING,	/* we sent a close frame, waiting for the server's */
	WSC_CLOSED,	/* fd closed; close_code / err say why */
};

/* Events passed to the callback of wsc_handle_read(). */
enum wsc_event {
	WSC_EV_OPEN = 1, /* handshake accepted */
	WSC_EV_TEXT,	 /* a complete text message (data, len) */
	WSC_EV_BINARY,	 /* a complete binary message */
	WSC_EV_CLOSE,	 /* connection ended; see close_code, close_reason, err */
};

/* close_code values that never travel in a frame (RFC 6455 7.4.1). */
#define WSC_CLOSE_NO_STATUS 1005 /* close frame without a code */
#define WSC_CLOSE_ABNORMAL  1006 /* TCP ended, handshake failed, error */

struct wsc;
/*
 * The callback may call wsc_send*() and wsc_close() on c but must not free
 * or restart it; data is only valid during the call (it is writable, so a
 * caller may NUL-terminate in place: data[len] is always addressable).
 */
typedef void (*wsc_cb)(struct wsc *c, enum wsc_event ev, char *data, size_t len, void *arg);

struct wsc {
	int fd;
	enum wsc_state state;
	char key[25]; /* Sec-WebSocket-Key (base64 of 16 random bytes) */
	uint32_t rng; /* mask key generator */
	char *in;     /* incomplete input tail */
	size_t in_len, in_cap;
	char *msg; /* fragmented message being reassembled */
	size_t msg_len, msg_cap;
	int msg_op; /* opcode of the first fragment, 0 when none */
	char *out;  /* bytes not yet written */
	size_t out_off, out_len, out_cap;
	size_t max_message; /* larger messages close with 1009 (default 64 MiB) */
	int close_code;	    /* the server's close code, or WSC_CLOSE_* */
	int close_sent;
	int close_notified;
	char close_reason[124];
	char err[160];	   /* why the connection ended, "" for a clean close */
	void *user;	   /* for the caller */
	uint8_t deflate;   /* set by the caller: offer permessage-deflate */
	uint8_t z;	   /* the server accepted it */
	uint8_t msg_z;	   /* the message being reassembled is compressed */
	uint64_t rx_bytes; /* bytes read from the socket (handshake included) */
};

void wsc_init(struct wsc *c);
/*
 * Start connecting (non-blocking socket, TCP_NODELAY) and queue the upgrade
 * request. The caller then waits for writability and calls
 * wsc_handle_write(). Returns 0, or -1 with c->err set (state WSC_CLOSED).
 */
int wsc_start(struct wsc *c, const struct sockaddr *sa, socklen_t salen, const char *hostport,
	      const char *path);
/* 1 while the connection needs EPOLLOUT (connecting or output pending). */
int wsc_want_write(const struct wsc *c);
/*
 * Finish the connect and/or flush pending output. Returns 0, or -1 when the
 * connection failed (state WSC_CLOSED, err set; the WSC_EV_CLOSE event is
 * delivered by the next wsc_handle_read() or wsc_notify_closed()).
 */
int wsc_handle_write(struct wsc *c);
/*
 * Read what is available, parse it and call cb for each event. A read
 * shorter than the buffer ends the call without a second read() (one
 * syscall per wakeup), so the caller's loop must be level-triggered
 * (poll, or epoll without EPOLLET). Returns 0
 * while the connection lives, -1 once it is closed (cb has then seen
 * WSC_EV_CLOSE exactly once).
 */
int wsc_handle_read(struct wsc *c, wsc_cb cb, void *arg);
/* Deliver WSC_EV_CLOSE if the connection is closed and it was not yet. */
void wsc_notify_closed(struct wsc *c, wsc_cb cb, void *arg);
/* Queue one masked frame (opcode 1 text, 2 binary) and try to write it.
 * Returns 0, or -1 when not open or out of memory. */
int wsc_send(struct wsc *c, int opcode, const void *data, size_t len);
static inline int wsc_send_text(struct wsc *c, const char *s, size_t len)
{
	return wsc_send(c, 1, s, len);
}
/* Send a close frame with code (0: none) and wait for the server's. */
void wsc_close(struct wsc *c, int code);
/* Close the fd at once and free the buffers; c can be started again (the
 * caller's settings, max_message, user and deflate, stay). */
void wsc_free(struct wsc *c);

/* Helpers shared with the tests: SHA-1 and base64 as the handshake needs. */
void wsc_sha1(const void *data, size_t len, unsigned char out[20]);
size_t wsc_base64(const unsigned char *in, size_t len, char *out);

#endif
