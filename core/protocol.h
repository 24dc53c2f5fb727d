/*
 * protocol.h — client protocol v1 and v1.1 (DESIGN.md): parsing client frames into
 * requests and writing every server frame. Pure functions, no I/O, no
 * libwebsockets; fuzzed by tests/fuzz/fuzz_protocol.c.
 */
#ifndef FANOUT_PROTOCOL_H
#define FANOUT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROTO_VERSION	  "0.1.0"
#define PROTO_CHANNEL_MAX 200 /* bytes */
#define PROTO_ID_MAX	  128 /* bytes of the id's JSON text */
/* The text of a bad_channel error. */
#define PROTO_CHANNEL_RULE "channel must be 1-200 bytes of [A-Za-z0-9_.:/-], not starting with __"
#define PROTO_TOKEN_MAX	   8192 /* bytes of an auth token (= AUTH_TOKEN_MAX) */
#define PROTO_EPOCH_MAX	   64	/* bytes of an epoch: [A-Za-z0-9_-]{1,64} */
/* The largest offset a client may name in "since": 2^53 - 1, the largest
 * integer every JSON reader represents exactly (a JavaScript Number).
 * Bigger, negative, fractional or non-numeric offsets are a bad_request. */
#define PROTO_OFFSET_MAX 9007199254740991ULL

enum proto_type {
	PROTO_SUBSCRIBE = 1,
	PROTO_UNSUBSCRIBE,
	PROTO_PUBLISH,
	PROTO_PING,
	PROTO_AUTH, /* {"type":"auth","token":"…"}: a fresh access token */
};

/* Stable error codes (the "code" of an error frame). */
#define PROTO_E_BAD_JSON	"bad_json"
#define PROTO_E_BAD_REQUEST	"bad_request"
#define PROTO_E_UNKNOWN_TYPE	"unknown_type"
#define PROTO_E_BAD_CHANNEL	"bad_channel"
#define PROTO_E_FORBIDDEN	"forbidden"
#define PROTO_E_TOO_MANY_SUBS	"too_many_subscriptions"
#define PROTO_E_NO_BACKEND	"no_backend"
#define PROTO_E_BACKEND_UNAVAIL "backend_unavailable"
#define PROTO_E_RATE_LIMITED	"rate_limited"

/* A client's position on a channel ("since" of a subscribe, v1.1). */
struct proto_since {
	int set;			 /* 0: no since (absent or null) */
	char epoch[PROTO_EPOCH_MAX + 1]; /* [A-Za-z0-9_-]{1,64} */
	uint64_t offset;		 /* 0 .. PROTO_OFFSET_MAX */
};

struct proto_request {
	enum proto_type type;
	/* The request's "id" as compact JSON text (a string with its quotes, or
	 * a number), "" when absent. Echoed verbatim in the reply. */
	char id[PROTO_ID_MAX + 1];
	char channel[PROTO_CHANNEL_MAX + 1]; /* subscribe/unsubscribe/publish */
	/* publish: "data" serialised as compact JSON (malloc'd, caller frees
	 * with proto_request_clear()); this is the payload given to the backend. */
	char *data;
	size_t data_len;
	/* auth: the token (malloc'd, freed by proto_request_clear()) */
	char *token;
	size_t token_len;
	/* subscribe: "since":{"epoch":E,"offset":N} ("since": null = absent). */
	struct proto_since since;
};

/* When parsing fails: the error code, a human message, and the id if one
 * could be read (so the error reply still echoes it). */
struct proto_error {
	const char *code;
	char message[160];
	char id[PROTO_ID_MAX + 1];
};

/*
 * Parse one text frame. Returns 0 and fills req, or -1 and fills err.
 * Checks: valid UTF-8 and JSON (bad_json: not JSON, or not an object),
 * "type" a known string (bad_request when missing/not a string,
 * unknown_type otherwise), "channel" present and valid where needed
 * (bad_request when missing/not a string, bad_channel when invalid),
 * "data" present for publish (bad_request), "token" a string of 1..
 * PROTO_TOKEN_MAX bytes for auth (bad_request), "id" a string or number of
 * at most PROTO_ID_MAX bytes (bad_request), "since" on subscribe an object
 * with "epoch" (proto_epoch_valid) and "offset" (an integer from 0 to
 * PROTO_OFFSET_MAX) or null (bad_request otherwise, naming the field). A
 * number too big for 64 bits anywhere in a valid JSON frame is a
 * bad_request ("number out of range"), not bad_json. Unknown fields are
 * ignored.
 */
int proto_parse(const char *frame, size_t len, struct proto_request *req, struct proto_error *err);
/* The body of POST /api/publish: {"channel":"c","data":<any JSON>} with
 * the checks of a publish frame ("type" not needed, ignored if present);
 * req->type is PROTO_PUBLISH. "data" keeps the sender's own bytes. */
int proto_parse_publish_body(const char *body, size_t len, struct proto_request *req,
			     struct proto_error *err);
void proto_request_clear(struct proto_request *req);

/*
 * 1..200 bytes of [A-Za-z0-9_.:/-], not starting with "__": that prefix is
 * reserved for backends' internal channels (the valkey backend's probe), so
 * no client can subscribe to, unsubscribe from or publish on one.
 */
int proto_channel_valid(const char *s, size_t len);
/* 1..64 bytes of [A-Za-z0-9_-] (no ':', so "EPOCH:OFFSET" splits). */
int proto_epoch_valid(const char *s, size_t len);
/*
 * Parse a position written "EPOCH:OFFSET" (s[0..len), not NUL-terminated),
 * as in ?channel=NAME@EPOCH:OFFSET and the ids other transports use: a
 * valid epoch, one ':', an offset of 1-16 decimal digits without sign or
 * leading zero (0 itself allowed) and at most PROTO_OFFSET_MAX. Returns 0
 * and fills *out (set = 1), or -1.
 */
int proto_position_parse(const char *s, size_t len, struct proto_since *out);

/*
 * Parse a ws upgrade query string ("channel=a&channel=b&x=y", without the
 * '?'), percent-decoding values; calls cb for each channel= value (other
 * keys are ignored). Returns 0, or -1 on a malformed escape.
 */
int proto_query_channels(const char *query, size_t len,
			 int (*cb)(void *arg, const char *channel, size_t len), void *arg);

/*
 * One channel= value of the upgrade query, v1.1: "NAME" or
 * "NAME@EPOCH:OFFSET" (resume from that position, like "since"). Fills
 * channel (PROTO_CHANNEL_MAX + 1 bytes) and *since (set = 0 without '@').
 * Returns NULL, or the error code (PROTO_E_BAD_CHANNEL, PROTO_E_BAD_REQUEST)
 * with a human message in *why.
 */
const char *proto_query_subscription(const char *v, size_t len, char *channel,
				     struct proto_since *since, const char **why);

/* ---- server frames; each appends one complete JSON text to out ---- */

int proto_hello(struct buf *out, const char *instance, const char *version);
/* type is "subscribed", "unsubscribed" or "published"; id as in the request. */
int proto_ack(struct buf *out, const char *type, const char *id, const char *channel);
int proto_pong(struct buf *out, const char *id);
int proto_error_frame(struct buf *out, const char *id, const char *code, const char *message);
int proto_gap(struct buf *out, const char *channel, const char *reason);

/*
 * v1.1 frames with positions. epoch NULL: the channel is not positioned and
 * the position fields are left out (the v1 frame).
 *   {"type":"subscribed","id":I,"channel":C,"epoch":E,"offset":N,"recovered":R}
 * recovered: -1 leaves the field out (no "since" was given), 0 false, 1 true.
 * "recovered" is written even on an unpositioned channel (always false).
 */
int proto_subscribed(struct buf *out, const char *id, const char *channel, const char *epoch,
		     uint64_t offset, int recovered);
/* {"type":"published","id":I,"channel":C,"epoch":E,"offset":N} */
int proto_published(struct buf *out, const char *id, const char *channel, const char *epoch,
		    uint64_t offset);
/* {"type":"gap","channel":C,"reason":R,"epoch":E,"offset":N}: the position
 * the subscriber stands at after the gap (the next message is N + 1 on a
 * contiguous channel). */
int proto_gap_at(struct buf *out, const char *channel, const char *reason, const char *epoch,
		 uint64_t offset);

/*
 * A message frame: {"type":"message","channel":C,"instance":I,"data":D}.
 * D is payload itself when it is valid JSON (json_valid()), else payload as
 * a JSON string (invalid UTF-8 sequences replaced by U+FFFD; *replaced is
 * set to 1 when that happened). Work is linear in len.
 */
int proto_message(struct buf *out, const char *channel, const char *instance, const char *payload,
		  size_t len, int *replaced);
/* The same with "offset":N between instance and data when has_offset. */
int proto_message_at(struct buf *out, const char *channel, const char *instance, int has_offset,
		     uint64_t offset, const char *payload, size_t len, int *replaced);

/* ---- JSON helpers (json.c) ---- */

/* 1 if s[0..len) is one valid JSON value (RFC 8259, any top-level type,
 * surrounding whitespace allowed, valid UTF-8, nesting <= 512), else 0. */
int json_valid(const char *s, size_t len);
/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int utf8_valid(const char *s, size_t len);
/* The same check over a stream that arrives in pieces (a WebSocket message in
 * fragments): zero-initialise, feed each piece in order. utf8_stream_feed()
 * returns 0 as soon as the bytes so far cannot start valid UTF-8 (fail fast,
 * and 0 from then on), else 1; the stream is whole UTF-8 when, at its end,
 * utf8_stream_complete() is 1 too (no character cut off). */
struct utf8_stream {
	unsigned char need;   /* continuation bytes still expected */
	unsigned char lo, hi; /* allowed range of the next one */
	unsigned char bad;
};
int utf8_stream_feed(struct utf8_stream *st, const char *s, size_t len);
static inline int utf8_stream_complete(const struct utf8_stream *st)
{
	return !st->bad && st->need == 0;
}
/* Append s as a JSON string with quotes; invalid UTF-8 becomes U+FFFD and
 * sets *replaced (may be NULL). */
int json_append_string(struct buf *out, const char *s, size_t len, int *replaced);

/* A request id (a jansson string or number) as compact JSON text into out
 * (PROTO_ID_MAX + 1 bytes): strings re-escaped, integers in decimal, reals
 * in the shortest form that reads back the same. 0, or -1 when it is not a
 * string or number or is longer than PROTO_ID_MAX. */
struct json_t;
int proto_id_text(const struct json_t *id, char *out);

/* ---- reading the server's own frames (other transports rewrap them) ---- */

/*
 * In a "message" frame written by proto_message*() (frame[0..len)), find
 * the payload: its JSON text is frame[*off .. *off + *dlen) — "data" is the
 * frame's last member, so this costs the length of the members before it,
 * not of the payload — and *offset is the frame's "offset" (0 when it has
 * none). Returns 0, or -1 when frame is not such a frame (any bytes are
 * safe to pass).
 */
int proto_message_data(const char *frame, size_t len, size_t *off, size_t *dlen, uint64_t *offset);
/* In a "gap" frame written by proto_gap_at() (frame[0..len)): the position
 * it carries into *pos. 0, or -1 when it has none (a gap on a channel
 * without positions) or is not such a frame (*pos is left alone). */
int proto_gap_position(const char *frame, size_t len, struct proto_since *pos);

#endif
