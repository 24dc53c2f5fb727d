/*
 * ws_frame.c — owns RFC 6455 framing (see ws_frame.h for the rules it
 * enforces): the inbound parser's state machine and the outbound header
 * and close payload writers. Pure functions over the caller's memory; any
 * thread; allocates nothing.
 *
 * The parser gathers each header (2 to 14 bytes) into the state struct, so
 * a header split over reads costs nothing special; payload bytes are
 * unmasked in place and handed on in the pieces they arrived in, except
 * control frames, which are gathered whole (at most 125 bytes) first.
 */
#include <string.h>

#include "ws_frame.h"

void ws_rx_init(struct ws_rx *rx, uint64_t max_message, int allow_rsv1)
{
	memset(rx, 0, sizeof(*rx));
	rx->max_message = max_message;
	rx->allow_rsv1 = allow_rsv1 ? 1 : 0;
}

int ws_close_code_valid(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

static int fail(struct ws_rx *rx, int code, const char *why)
{
	rx->state = WS_RX_FAILED;
	rx->code = (uint16_t)code;
	rx->why = why;
	return code;
}

/* Header bytes needed once the first two are known. */
static unsigned header_size(const uint8_t *h)
{
	unsigned n = 2, len7 = h[1] & 0x7F;
	if (len7 == 126)
		n += 2;
	else if (len7 == 127)
		n += 8;
	if (h[1] & 0x80)
		n += 4;
	return n;
}

/* Checks that need only the first two bytes: reserved bits, opcode,
 * control frame shape, message sequencing, masking. */
static int check_start(struct ws_rx *rx)
{
	uint8_t b0 = rx->hdr[0], b1 = rx->hdr[1];
	unsigned op = b0 & 0x0F, rsv = (b0 >> 4) & 7;
	int fin = b0 >> 7, control = op & 8;

	if (rsv & 3)
		return fail(rx, WS_CLOSE_PROTOCOL, "reserved bits RSV2/RSV3 set");
	if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
	    op != WS_OP_PING && op != WS_OP_PONG)
		return fail(rx, WS_CLOSE_PROTOCOL, "unknown opcode");
	if (control) {
		if (!fin)
			return fail(rx, WS_CLOSE_PROTOCOL, "fragmented control frame");
		if ((b1 & 0x7F) > WS_CONTROL_MAX)
			return fail(rx, WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
		if (rsv)
			return fail(rx, WS_CLOSE_PROTOCOL, "RSV1 set on a control frame");
	} else if (op == WS_OP_CONT) {
		if (!rx->msg_op)
			return fail(rx, WS_CLOSE_PROTOCOL,
				    "continuation frame with no message open");
		if (rsv)
			return fail(rx, WS_CLOSE_PROTOCOL, "RSV1 set on a continuation frame");
	} else {
		if (rx->msg_op)
			return fail(rx, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
		if (rsv && !rx->allow_rsv1)
			return fail(rx, WS_CLOSE_PROTOCOL, "RSV1 set without permessage-deflate");
	}
	if (!(b1 & 0x80))
		return fail(rx, WS_CLOSE_PROTOCOL, "unmasked client frame");
	return 0;
}

/* The header is complete: decode the length and key, start the frame. */
static int start_frame(struct ws_rx *rx)
{
	const uint8_t *h = rx->hdr;
	unsigned len7 = h[1] & 0x7F, k = 2;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
		k = 4;
		if (len < 126)
			return fail(rx, WS_CLOSE_PROTOCOL, "frame length not in its shortest form");
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		k = 10;
		if (len >> 63)
			return fail(rx, WS_CLOSE_PROTOCOL, "frame length with the top bit set");
		if (len < 65536)
			return fail(rx, WS_CLOSE_PROTOCOL, "frame length not in its shortest form");
	}
	memcpy(rx->key, h + k, 4);
	rx->kpos = 0;
	rx->op = h[0] & 0x0F;
	rx->fin = h[0] >> 7;
	rx->rsv1 = (h[0] >> 6) & 1;
	rx->remain = len;
	rx->hlen = 0;
	if (rx->op & 8) {
		rx->ctl_len = 0;
	} else {
		if (rx->op != WS_OP_CONT) {
			rx->msg_op = rx->op;
			rx->msg_z = rx->rsv1;
			rx->msg_len = 0;
			memset(&rx->utf8, 0, sizeof(rx->utf8));
		}
		if (rx->max_message && len > rx->max_message - rx->msg_len)
			return fail(rx, WS_CLOSE_TOO_BIG, "message larger than max_message_bytes");
		rx->msg_len += len;
	}
	rx->state = WS_RX_PAYLOAD;
	return 0;
}

static void unmask(struct ws_rx *rx, uint8_t *p, size_t n)
{
	unsigned k = rx->kpos;
	for (size_t i = 0; i < n; i++, k = (k + 1) & 3)
		p[i] ^= rx->key[k];
	rx->kpos = (uint8_t)k;
}

/* A whole control frame is in rx->ctl. */
static int control_done(struct ws_rx *rx, const struct ws_rx_cb *cb, void *arg)
{
	if (rx->op == WS_OP_CLOSE) {
		if (rx->ctl_len == 1)
			return fail(rx, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
		if (rx->ctl_len >= 2) {
			unsigned code = (unsigned)rx->ctl[0] << 8 | rx->ctl[1];
			if (!ws_close_code_valid(code))
				return fail(rx, WS_CLOSE_PROTOCOL, "invalid close code");
			if (!utf8_valid((const char *)rx->ctl + 2, rx->ctl_len - 2u))
				return fail(rx, WS_CLOSE_BAD_DATA,
					    "invalid UTF-8 in a close reason");
		}
		rx->state = WS_RX_CLOSED; /* nothing after a close frame counts */
	}
	int rc = cb->control(arg, rx->op, rx->ctl, rx->ctl_len);
	if (rc)
		return fail(rx, rc, "closed by the session");
	return 0;
}

/* n payload bytes of a data frame (already unmasked); end: frame done. */
static int data_piece(struct ws_rx *rx, const uint8_t *p, size_t n, int end,
		      const struct ws_rx_cb *cb, void *arg)
{
	int last = end && rx->fin;
	if (rx->msg_op == WS_OP_TEXT && !rx->msg_z) {
		if (!utf8_stream_feed(&rx->utf8, (const char *)p, n) ||
		    (last && !utf8_stream_complete(&rx->utf8)))
			return fail(rx, WS_CLOSE_BAD_DATA, "invalid UTF-8 in a text message");
	}
	int op = rx->msg_op, z = rx->msg_z;
	if (last)
		rx->msg_op = 0;
	if (n || last) {
		int rc = cb->data(arg, op, z, p, n, last);
		if (rc)
			return fail(rx, rc, "closed by the session");
	}
	return 0;
}

static int frame_end(struct ws_rx *rx, const struct ws_rx_cb *cb, void *arg)
{
	rx->state = WS_RX_HEADER;
	if (rx->op & 8)
		return control_done(rx, cb, arg);
	return data_piece(rx, (const uint8_t *)"", 0, 1, cb, arg); /* never NULL */
}

int ws_rx_feed(struct ws_rx *rx, uint8_t *p, size_t len, const struct ws_rx_cb *cb, void *arg)
{
	size_t i = 0;
	int rc;

	while (i < len) {
		switch (rx->state) {
		case WS_RX_FAILED:
			return rx->code;
		case WS_RX_CLOSED:
			return 0;
		case WS_RX_HEADER: {
			rx->hdr[rx->hlen++] = p[i++];
			if (rx->hlen == 2 && (rc = check_start(rx)))
				return rc;
			if (rx->hlen < 2 || rx->hlen < header_size(rx->hdr))
				break;
			if ((rc = start_frame(rx)))
				return rc;
			if (rx->remain == 0 && (rc = frame_end(rx, cb, arg)))
				return rc;
			break;
		}
		case WS_RX_PAYLOAD: {
			size_t n = len - i;
			if (n > rx->remain)
				n = (size_t)rx->remain;
			unmask(rx, p + i, n);
			rx->remain -= n;
			if (rx->op & 8) {
				memcpy(rx->ctl + rx->ctl_len, p + i, n);
				rx->ctl_len = (uint8_t)(rx->ctl_len + n);
				i += n;
				if (!rx->remain && (rc = frame_end(rx, cb, arg)))
					return rc;
				break;
			}
			int end = rx->remain == 0;
			if (end)
				rx->state = WS_RX_HEADER;
			rc = data_piece(rx, p + i, n, end, cb, arg);
			i += n;
			if (rc)
				return rc;
			break;
		}
		}
	}
	return rx->state == WS_RX_FAILED ? rx->code : 0;
}

size_t ws_close_payload(uint8_t *out, unsigned code, const char *why)
{
	if (!code)
		return 0;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	size_t n = why ? strlen(why) : 0;
	if (n > WS_CONTROL_MAX - 2)
		n = WS_CONTROL_MAX - 2;
	while (n && !utf8_valid(why, n)) /* never cut a character in two */
		n--;
	if (n)
		memcpy(out + 2, why, n);
	return n + 2;
}
