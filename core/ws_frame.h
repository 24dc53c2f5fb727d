/*
 * ws_frame.h — RFC 6455 framing as pure functions: the inbound frame parser
 * of one client connection (a byte-at-a-time-safe state machine: any split
 * of the input gives the same events) and the outbound header and close
 * payload writers. No I/O, no allocation, no lws: session I/O (wsconn.c)
 * feeds it what it read and writes what it builds.
 *
 * What the parser enforces (each failure is a close code and a reason):
 *   1002  RSV2/RSV3 set; RSV1 set unless permessage-deflate was negotiated,
 *         or on a control or continuation frame; an unknown opcode; a control
 *         frame that is fragmented or longer than 125 bytes; a continuation
 *         with no message open, or a new message inside an open one; an
 *         unmasked client frame; a length not in its shortest form or with
 *         the top bit set; a close payload of 1 byte or with a code that is
 *         not valid on the wire (ws_close_code_valid()).
 *   1007  invalid UTF-8 in an uncompressed text message (checked fragment by
 *         fragment as the bytes arrive: the first bad byte fails it) or in a
 *         close reason.
 *   1009  a message longer than max_message bytes on the wire (known from
 *         the frame header, before any of its payload is read).
 * After a close frame, or after a failure, it ignores all further input.
 */
#ifndef FANOUT_WS_FRAME_H
#define FANOUT_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h" /* struct utf8_stream */

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes fanoutd sends. */
enum ws_close {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_BAD_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
	WS_CLOSE_TRY_AGAIN = 1013,
};

#define WS_CONTROL_MAX 125 /* payload bytes of a control frame */
#define WS_HEADER_MAX  10  /* bytes of a server (unmasked) frame header */

/* What the parser hands its owner. Each callback returns 0 to go on, or a
 * close code to fail the connection with (the parser then stops). */
struct ws_rx_cb {
	/* A piece of a data message, unmasked, in order. opcode is the
	 * message's (TEXT or BINARY), compressed its RSV1 bit; last is 1 on the
	 * final piece (len may be 0 there: an empty final frame). Uncompressed
	 * text has passed the UTF-8 check up to here. */
	int (*data)(void *arg, int opcode, int compressed, const uint8_t *p, size_t len, int last);
	/* A whole control frame, unmasked. For WS_OP_CLOSE the payload has
	 * been validated (empty, or a valid code + UTF-8 reason). */
	int (*control)(void *arg, int opcode, const uint8_t *p, size_t len);
};

enum ws_rx_state { WS_RX_HEADER, WS_RX_PAYLOAD, WS_RX_CLOSED, WS_RX_FAILED };

struct ws_rx {
	/* set by the owner */
	uint64_t max_message; /* wire bytes per data message; 0 = no limit */
	uint8_t allow_rsv1;   /* permessage-deflate negotiated */

	/* parser state (zero-initialised by ws_rx_init) */
	uint8_t state;
	uint8_t hdr[14], hlen; /* header bytes gathered so far */
	uint8_t op, fin, rsv1, kpos;
	uint8_t key[4];
	uint64_t remain; /* payload bytes left in this frame */
	uint8_t msg_op;	 /* opcode of the open data message, 0 = none */
	uint8_t msg_z;	 /* ... and its RSV1 (compressed) */
	uint64_t msg_len;
	struct utf8_stream utf8;
	uint8_t ctl_len;
	uint8_t ctl[WS_CONTROL_MAX];
	uint16_t code;	 /* the failure's close code */
	const char *why; /* and its reason (a static string) */
};

void ws_rx_init(struct ws_rx *rx, uint64_t max_message, int allow_rsv1);

/* Parse p[0..len), unmasking it in place, calling cb as frames complete.
 * Returns 0, or the close code of a failure (rx->why says why; the same code
 * again on every later call). */
int ws_rx_feed(struct ws_rx *rx, uint8_t *p, size_t len, const struct ws_rx_cb *cb, void *arg);

/* 1 if a client may send code in a close frame: 1000-1003, 1007-1014
 * (1012-1014 are registered with IANA since RFC 6455), 3000-4999. */
int ws_close_code_valid(unsigned code);

/* Write the header of an unfragmented, unmasked server frame of len payload
 * bytes into h (WS_HEADER_MAX bytes); returns its length (2, 4 or 10).
 * Inline: msg.c writes it into shared frames without linking the parser. */
static inline size_t ws_frame_header(uint8_t *h, int opcode, int rsv1, uint64_t len)
{
	h[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
	if (len < 126) {
		h[1] = (uint8_t)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

/* Build a close payload into out (WS_CONTROL_MAX bytes): nothing for code 0,
 * else the code and why, cut to a whole UTF-8 character within 123 bytes.
 * Returns its length. */
size_t ws_close_payload(uint8_t *out, unsigned code, const char *why);

#endif
