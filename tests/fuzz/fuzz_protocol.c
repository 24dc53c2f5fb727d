/*
 * fuzz_protocol.c — libFuzzer harness for client frames: proto_parse() on
 * the input, then every server frame built from what it returned, and
 * proto_message() with the input as a broker payload, and
 * proto_position_parse() ("EPOCH:OFFSET") on the input. Checks the codec's
 * promises: a request has a known type, a valid channel, an id and data that
 * are JSON text; an error has a stable code, an id that is JSON text or
 * empty, and a UTF-8 message; every frame written is valid JSON. Frees
 * everything (LSan). Single-threaded.
 */
#include <string.h>

#include "fuzz_common.h"
#include "protocol.h"

static int known_code(const char *c)
{
	static const char *const codes[] = {
	    PROTO_E_BAD_JSON,  PROTO_E_BAD_REQUEST,   PROTO_E_UNKNOWN_TYPE, PROTO_E_BAD_CHANNEL,
	    PROTO_E_FORBIDDEN, PROTO_E_TOO_MANY_SUBS, PROTO_E_NO_BACKEND,   PROTO_E_BACKEND_UNAVAIL,
	};
	for (size_t i = 0; c && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(c, codes[i]))
			return 1;
	return 0;
}

static void check_frame(struct buf *b, int rc)
{
	CHECK(rc == 0);
	CHECK(json_valid(buf_data(b), b->len));
	CHECK(buf_data(b)[0] == '{');
	buf_reset(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct proto_request req;
	struct proto_error err;
	struct buf b;
	int replaced = -1;

	buf_init(&b, 16);
	if (proto_parse(s, size, &req, &err) == 0) {
		CHECK(req.type >= PROTO_SUBSCRIBE && req.type <= PROTO_PING);
		CHECK(strlen(req.id) <= PROTO_ID_MAX);
		CHECK(!req.id[0] || json_valid(req.id, strlen(req.id)));
		if (req.type != PROTO_PING)
			CHECK(proto_channel_valid(req.channel, strlen(req.channel)));
		if (req.type == PROTO_PUBLISH) {
			CHECK(req.data && req.data_len == strlen(req.data));
			CHECK(json_valid(req.data, req.data_len));
		} else {
			CHECK(!req.data);
		}
		check_frame(&b, proto_ack(&b, "subscribed", req.id, req.channel));
		check_frame(&b, proto_pong(&b, req.id));
		check_frame(&b, proto_gap(&b, req.channel, "fuzz"));
		if (req.since.set) {
			CHECK(req.type == PROTO_SUBSCRIBE);
			CHECK(proto_epoch_valid(req.since.epoch, strlen(req.since.epoch)));
			CHECK(req.since.offset <= PROTO_OFFSET_MAX);
			check_frame(&b, proto_subscribed(&b, req.id, req.channel, req.since.epoch,
							 req.since.offset, 1));
			check_frame(&b, proto_gap_at(&b, req.channel, "fuzz", req.since.epoch,
						     req.since.offset));
			/* The position's text form reads back the same. */
			char pos[PROTO_EPOCH_MAX + 32];
			int n = snprintf(pos, sizeof(pos), "%s:%llu", req.since.epoch,
					 (unsigned long long)req.since.offset);
			struct proto_since back;
			CHECK(proto_position_parse(pos, (size_t)n, &back) == 0);
			CHECK(!strcmp(back.epoch, req.since.epoch) &&
			      back.offset == req.since.offset);
		}
		proto_request_clear(&req);
	} else {
		CHECK(known_code(err.code));
		CHECK(err.message[0] && utf8_valid(err.message, strlen(err.message)));
		CHECK(!err.id[0] || json_valid(err.id, strlen(err.id)));
		CHECK(!req.data);
		check_frame(&b, proto_error_frame(&b, err.id, err.code, err.message));
	}

	/* The input as a position text: accepted only in its exact form. */
	struct proto_since pos;
	if (proto_position_parse(s, size, &pos) == 0) {
		char txt[PROTO_EPOCH_MAX + 32];
		int n = snprintf(txt, sizeof(txt), "%s:%llu", pos.epoch,
				 (unsigned long long)pos.offset);
		CHECK((size_t)n == size && !memcmp(txt, s, size));
		CHECK(pos.offset <= PROTO_OFFSET_MAX);
	}

	/* The input as a broker payload (with and without an offset), and as
	 * an instance name. */
	check_frame(&b, proto_message_at(&b, "c", "i1", 1, size, s, size, NULL));
	CHECK(proto_message(&b, "c", "i1", s, size, &replaced) == 0);
	CHECK(json_valid(buf_data(&b), b.len));
	int raw = size && json_valid(s, size);
	CHECK(replaced == (!raw && !utf8_valid(s, size)));
	if (raw)
		CHECK(b.len > size && !memcmp(buf_data(&b) + b.len - size - 1, s, size));
	buf_reset(&b);
	if (size < 4096 && !memchr(s, 0, size)) {
		char name[4096];
		memcpy(name, s, size);
		name[size] = '\0';
		check_frame(&b, proto_hello(&b, name, PROTO_VERSION));
	}
	buf_free(&b);
	return 0;
}
