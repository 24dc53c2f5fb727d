/*
 * fuzz_trpc.c — libFuzzer harness for the tRPC transport's parsers
 * (core/trpc_proto.c) and the payload finder other transports use
 * (proto_message_data). The input is tried as a client message (requests
 * and batches), as connectionParams, as a [trpc] channel template and as a
 * native message frame. Checks: every accepted request's fields are
 * NUL-terminated within their caps; every frame built from what was parsed
 * is valid JSON; a template that passes trpc_template_check() expands to a
 * valid channel name or fails with a reason; the payload found in a frame
 * lies inside it, and a frame built around the input as payload gives that
 * payload back byte for byte. Frees everything.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "protocol.h"
#include "trpc_proto.h"

static const char *const templates[] = {"updates", "room.{input.roomId}",
					"a.{input.x.y}:{input.n}"};

static void frames_of(const struct trpc_req *r)
{
	struct buf b;
	char why[300], ch[PROTO_CHANNEL_MAX + 1];
	CHECK(strlen(r->id) <= PROTO_ID_MAX);
	CHECK(strlen(r->path) <= TRPC_PATH_MAX);
	CHECK(strlen(r->last_event_id) <= TRPC_EVENT_ID_MAX);
	buf_init(&b, 0);
	trpc_head(&b, r->id, r->id_null, r->jsonrpc);
	trpc_error_body(&b, TRPC_NOT_FOUND, r->path, r->path);
	CHECK(!b.oom && json_valid(buf_data(&b), b.len));
	buf_reset(&b);
	trpc_head(&b, r->id, r->id_null, r->jsonrpc);
	trpc_data_body(&b, "E-1_x", 42, "{\"a\":1}", 7);
	CHECK(!b.oom && json_valid(buf_data(&b), b.len));
	buf_free(&b);
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		why[0] = 0;
		if (trpc_template_expand(templates[i], r->input, ch, why, sizeof(why)))
			CHECK(why[0] != 0);
		else
			CHECK(proto_channel_valid(ch, strlen(ch)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char why[300];
	struct trpc_batch b;

	if (!trpc_parse(s, size, &b, why, sizeof(why))) {
		CHECK(b.n >= 1 && b.n <= TRPC_BATCH_MAX);
		for (size_t i = 0; i < b.n; i++)
			frames_of(&b.reqs[i]);
		trpc_batch_free(&b);
	} else {
		CHECK(b.reqs == NULL && why[0] != 0);
	}

	char *token = NULL;
	if (!trpc_parse_params(s, size, &token, why, sizeof(why)))
		free(token);
	else
		CHECK(token == NULL);

	/* as a template (NUL-terminated copy) */
	char *t = malloc(size + 1);
	CHECK(t != NULL);
	memcpy(t, s, size);
	t[size] = 0;
	const char *w;
	if (strlen(t) == size && !trpc_template_check(t, &w)) {
		char ch[PROTO_CHANNEL_MAX + 1];
		json_t *in = json_pack("{s:s,s:i,s:{s:s}}", "roomId", "r", "n", 7, "x", "y", "z");
		if (!trpc_template_expand(t, in, ch, why, sizeof(why)))
			CHECK(proto_channel_valid(ch, strlen(ch)));
		json_decref(in);
	}
	free(t);

	/* as a frame, and as the payload of one */
	size_t off, len;
	uint64_t offset;
	if (!proto_message_data(s, size, &off, &len, &offset))
		CHECK(off < size && off + len < size);
	struct buf f;
	buf_init(&f, 0);
	int replaced = 0;
	CHECK(proto_message(&f, "c", "i", s, size, &replaced) == 0);
	CHECK(proto_message_data(buf_data(&f), f.len, &off, &len, &offset) == 0);
	CHECK(offset == 0);
	if (size && json_valid(s, size))
		CHECK(len == size && !memcmp(buf_data(&f) + off, s, size));
	else
		CHECK(json_valid(buf_data(&f) + off, len));
	buf_free(&f);
	return 0;
}
