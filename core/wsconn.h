/*
 * wsconn.h — one WebSocket connection after its opening handshake, driven
 * by fanoutd itself: framing in and out (ws_frame.c), permessage-deflate
 * (ws_deflate.c), the send queue of shared frames, batching by loop pass,
 * the close handshake, keepalive pings. lws still does the HTTP request,
 * the upgrade and the TLS handshake; right after the 101 the connection
 * leaves lws (wsconn_adopt()).
 *
 * Why fanoutd owns the framing: lws 4.1.6 echoes close frames it should
 * fail with 1002, keeps sending after a protocol error, drops over-long
 * control frames without a close frame, does not wait for the client's
 * close reply, and its permessage-deflate negotiates wrongly; and lws writes
 * one frame per writable callback, where fanoutd wants every frame a loop
 * pass produced for a client in one write. See README "WebSocket I/O".
 *
 * Loop thread only.
 */
#ifndef FANOUT_WSCONN_H
#define FANOUT_WSCONN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"
#include "outq.h"
#include "ws_frame.h"

struct lws;
struct msg;
struct wsconn;

struct wsconn_ops {
	/* A whole message from the client: text is valid UTF-8, compressed
	 * messages arrive inflated. p is valid for the call only. */
	void (*message)(struct wsconn *c, int opcode, const char *p, size_t len);
	/* The connection is gone (close handshake done, failed, timed out or
	 * dropped). Called once, at the end of a loop pass, never from inside
	 * another wsconn call; the owner may free c's memory in it. */
	void (*closed)(struct wsconn *c);
	/* Bytes arrived from the client (once per read; may be NULL). */
	void (*activity)(struct wsconn *c);
};

/* Tunables, set once (wsconn_config) from the server config. */
struct wsconn_config {
	uint64_t max_message_bytes; /* inbound message cap (after inflate): 1009 */
	int ping_interval_s;	    /* 0: no pings; else ping when idle this long */
	size_t flush_early_bytes;   /* write before the pass ends once this much is queued */
};

enum wsconn_state {
	WSC_ADOPTING, /* lws still holds the socket or (TLS) the SSL object */
	WSC_OPEN,     /* ours; see `closing` for the close handshake */
	WSC_LINGER,   /* both close frames done (or failed): FIN sent, reading to EOF */
	WSC_DEAD,     /* socket closed; closed() at the end of the pass */
};

struct wsconn {
	const struct wsconn_ops *ops;
	struct lws *wsi; /* lws's connection until lws lets go of it */
	void *ssl;	 /* SSL * on a TLS connection, else NULL */
	struct loop_io io;
	uint8_t state;
	uint8_t taken;	      /* the socket is ours (lws has /dev/null) */
	uint8_t closing;      /* our close frame is queued: no more data frames */
	uint8_t zbits;	      /* permessage-deflate window bits; 0 = off */
	uint8_t close_sent;   /* our close frame went out whole */
	uint8_t close_rcvd;   /* the client's close frame arrived */
	uint8_t failed;	      /* closed for a protocol error: no reply awaited */
	uint8_t dirty;	      /* on the list to flush at the end of the pass */
	uint8_t ping_out;     /* a keepalive ping is unanswered */
	uint16_t close_code;  /* the code we close with (ours or echoed) */
	uint16_t peer_code;   /* the client's close code, 0 = none */
	uint64_t deadline_ms; /* loop clock: give up closing then (0 = none) */
	uint64_t last_rx_ms;  /* loop clock of the last byte from the client */

	/* our close frame behind a backlog (see wsconn_close) */
	uint64_t close_cap_ms; /* the deadline moves while the client reads, up to this */
	uint32_t close_unsent; /* bytes the kernel held unsent at the last look */
	uint8_t close_moved;   /* we wrote since the last look */

	struct ws_rx rx;
	struct buf in; /* a message split over reads, or compressed */

	/* send queue: (head, body) references to shared frames (outq.h); the
	 * first entry may be half written. q.bytes is what client_queue_bytes
	 * caps. */
	struct outq q;
	size_t q_off;	    /* bytes of the first entry's frame already written */
	struct msg *q_wire; /* ... and the frame (plain or compressed) they were of */
	/* TLS: an SSL_write that wants a retry must be given the same bytes
	 * again (SSL_write(3)), so the entries it covered count as started:
	 * nothing is cleared from or inserted into them until it completes. */
	size_t tls_pend;      /* bytes that SSL_write was offered (0 = none pending) */
	size_t tls_pend_ents; /* entries those bytes (partly) cover, from the front */
	struct wsconn **slot; /* the owner's pointer in lws's per-session data */

	struct wsconn *prev, *next; /* every connection (keepalive, deadlines) */
	struct wsconn *dirty_next;  /* flush list of this pass */
	struct wsconn *dead_next;   /* TLS adoptions waiting for lws, then the dead */
};

void wsconn_config(const struct wsconn_config *cfg);

/*
 * Take the connection over from lws, from its LWS_CALLBACK_ESTABLISHED (or,
 * when lws still holds part of the 101, from a later SERVER_WRITEABLE: see
 * wsconn_lws_writeable()). c must be zeroed. zbits: the deflate window bits
 * negotiated at the upgrade (0 = off). The socket is ours from here on (lws
 * is handed /dev/null in its place and drops its wsi on its next turn); a
 * TLS connection's SSL object becomes ours once lws has freed the wsi
 * (wsconn_lws_destroyed()). Frames may be queued at once. 0, or -1 (no
 * descriptor free: the caller refuses the connection).
 */
int wsconn_adopt(struct wsconn *c, struct lws *wsi, const struct wsconn_ops *ops, int zbits);
/* ... slot: where lws's per-session data points at the connection's owner;
 * wsconn clears it when the connection dies first (lws may call back for the
 * wsi after that), and forgets it when lws closes the wsi first. Set it
 * right after wsconn_adopt(). */

/* lws callbacks that concern a connection during or after the takeover:
 * the owner forwards its wsi's SERVER_WRITEABLE, RECEIVE and CLOSED; the
 * server forwards every WSI_DESTROY (protocols[0]). */
void wsconn_lws_writeable(struct wsconn *c);
void wsconn_lws_receive(struct wsconn *c);
void wsconn_lws_closed(struct wsconn *c);
void wsconn_lws_destroyed(struct lws *wsi);

/* Queue a shared frame (takes a reference), or head's bytes followed by
 * m's as one frame (head may be NULL). Written at the end of the pass with
 * everything else queued for this client. Ignored once closing. 0, or -1
 * out of memory (the connection is then failed 1011). */
int wsconn_send(struct wsconn *c, struct msg *head, struct msg *m);
/*
 * Close with code and why (a static string): after the queued frames
 * (flush = 1) or instead of them (flush = 0; a frame already half written
 * is finished first). Then waits for the client's close reply (at most
 * WSCONN_CLOSE_TIMEOUT_S, or WSCONN_FLUSH_TIMEOUT_S with flush), sends FIN
 * and reads to EOF (at most WSCONN_LINGER_S). No-op when already closing.
 * Until the close frame is out, what the kernel already accepted is ahead
 * of it (up to the socket's send buffer, megabytes on a fast link): while
 * the client takes bytes the deadline moves (another WSCONN_CLOSE_TIMEOUT_S
 * each time, up to WSCONN_FLUSH_TIMEOUT_S in all), so a client that reads
 * slowly still gets the close code; one that takes nothing is dropped
 * without it.
 */
void wsconn_close(struct wsconn *c, int code, const char *why, int flush);

#define WSCONN_CLOSE_TIMEOUT_S 5
#define WSCONN_FLUSH_TIMEOUT_S 30
#define WSCONN_LINGER_S	       2

/* Connections open now (any state but DEAD). */
long long wsconn_count(void);

/* The end of a loop pass: write every connection that got frames, then
 * report the connections that died. Registered with loop_on_pass_end() by
 * the server. */
void wsconn_pass_end(void);
/* Start the 1 s keepalive/deadline tick (after the loop exists). 0 or -1. */
int wsconn_start(void);
/* Drop every connection at once (exit) and free the shared buffers. */
void wsconn_shutdown(void);

#endif
