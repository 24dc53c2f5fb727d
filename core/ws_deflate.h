/*
 * ws_deflate.h — permessage-deflate (RFC 7692), owned by fanoutd: the
 * negotiation, compressing a message once for every subscriber, inflating
 * a client's message under a hard cap.
 *
 * fanoutd always answers with server_no_context_takeover and
 * client_no_context_takeover: every message is compressed with a fresh
 * context, so a message's compressed frame is the same bytes for every
 * subscriber that negotiated the same window size (it is built once and
 * shared like the plain frame), and a client's message inflates without
 * per-connection zlib state. Window sizes: server_max_window_bits=N asked by
 * the client is honoured (9..15; 8 cannot be produced by zlib's raw deflate,
 * so such an offer is declined); client_max_window_bits is accepted and left
 * to the client (we inflate with a 32 KiB window, which reads any).
 */
#ifndef FANOUT_WS_DEFLATE_H
#define FANOUT_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Messages shorter than this go out uncompressed on deflate connections
 * (RSV1 clear: allowed per message by RFC 7692); so do messages whose
 * compressed form is not smaller. */
#define WS_DEFLATE_MIN_BYTES 64
/* The response header value is at most this long. */
#define WS_DEFLATE_RESPONSE_MAX 128

/*
 * Pick the first acceptable permessage-deflate offer in a
 * Sec-WebSocket-Extensions request header value (hdr, len bytes; several
 * offers separated by ",", parameters by ";", values may be quoted). An
 * offer is refused when it has an unknown or repeated parameter, a value
 * where none is allowed, or a window size outside 9..15 (server) / 8..15
 * (client). On success returns the server window bits to compress with
 * (9..15) and writes the response header value into out (NUL-terminated,
 * at most WS_DEFLATE_RESPONSE_MAX bytes with the NUL); 0 when no offer is
 * acceptable (the connection runs uncompressed). Pure.
 */
int ws_deflate_negotiate(const char *hdr, size_t len, char *out);

/* Compress a whole message with a fresh raw-deflate context of wbits
 * (9..15), without the final 00 00 FF FF (RFC 7692 7.2.1), appending to
 * out. 0, or -1 (out of memory / zlib error). Loop thread only (one shared
 * zlib stream per window size). */
int ws_deflate_compress(const void *p, size_t len, int wbits, struct buf *out);

/* Inflate a whole compressed message (the 00 00 FF FF tail is added here),
 * appending to out. 0; 1 when the output would pass max bytes (inflating
 * stops there: a decompression bomb costs max bytes, no more); -1 when the
 * data is not valid deflate or memory ran out. Loop thread only. */
int ws_deflate_inflate(const void *p, size_t len, size_t max, struct buf *out);

/* Free the shared zlib streams (at exit, for leak checkers). */
void ws_deflate_cleanup(void);

#endif
