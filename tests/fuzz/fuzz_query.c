/*
 * fuzz_query.c — libFuzzer harness for proto_query_channels() (the ws
 * upgrade query, e.g. "channel=a&channel=b%2Fc@E:41") and each value
 * through proto_query_subscription(). Checks: every value handed to the
 * callback is NUL-terminated and no longer than the input, and splits into
 * a valid channel and position or an error with a message; a
 * malformed escape (-1) is found before any callback runs; a callback's
 * non-zero return stops the walk and comes back. Frees everything.
 */
#include <string.h>

#include "fuzz_common.h"
#include "protocol.h"

struct st {
	size_t size;
	unsigned calls;
	unsigned stop_at;
};

static int cb(void *arg, const char *channel, size_t len)
{
	struct st *st = arg;
	CHECK(len <= st->size);
	CHECK(channel[len] == '\0');
	(void)proto_channel_valid(channel, len);
	/* v1.1: NAME@EPOCH:OFFSET */
	char name[PROTO_CHANNEL_MAX + 1];
	struct proto_since since;
	const char *why = NULL, *code = proto_query_subscription(channel, len, name, &since, &why);
	if (code) {
		CHECK(why && *why);
	} else {
		CHECK(proto_channel_valid(name, strlen(name)));
		CHECK(!since.set || (proto_epoch_valid(since.epoch, strlen(since.epoch)) &&
				     since.offset <= PROTO_OFFSET_MAX));
	}
	st->calls++;
	return st->stop_at && st->calls == st->stop_at ? 42 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct st all = {size, 0, 0};
	int rc = proto_query_channels(s, size, cb, &all);

	CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		CHECK(all.calls == 0);
	if (rc == 0 && all.calls > 1) {
		struct st part = {size, 0, all.calls - 1};
		CHECK(proto_query_channels(s, size, cb, &part) == 42);
		CHECK(part.calls == all.calls - 1);
	}
	return 0;
}
