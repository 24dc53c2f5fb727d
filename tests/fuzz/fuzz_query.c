/*
 * fuzz_query.c — libFuzzer harness for proto_query_channels() (the ws
 * upgrade query, e.g. "channel=a&channel=b%2Fc"). Checks: every value
 * handed to the callback is NUL-terminated and no longer than the input; a
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
