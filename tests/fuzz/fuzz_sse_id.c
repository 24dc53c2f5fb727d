/*
 * fuzz_sse_id.c — libFuzzer harness for Last-Event-ID parsing
 * (core/sse_id.c). The first byte picks the number of channels (0-7), the
 * rest is the id. Checks: a parse either sets nothing or sets positions
 * within the caps; what was parsed writes back to exactly the same id, and
 * a refused id leaves no position set.
 */
#include <string.h>

#include "fuzz_common.h"
#include "sse_id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t n = data[0] & 7;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	const char *names[] = {"a", "b", "c", "d", "e", "f", "g"};
	uint32_t fp = sse_id_fingerprint(names, n);
	struct proto_since pos[7];

	if (sse_id_parse(s, len, fp, pos, n)) {
		for (size_t i = 0; i < n; i++)
			CHECK(!pos[i].set);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (pos[i].set) {
			CHECK(strlen(pos[i].epoch) >= 1 && strlen(pos[i].epoch) <= PROTO_EPOCH_MAX);
			CHECK(pos[i].offset <= PROTO_OFFSET_MAX);
		}
	struct buf b;
	buf_init(&b, 0);
	CHECK(sse_id_write(&b, fp, pos, n) == 0);
	CHECK(b.len == len && !memcmp(buf_data(&b), s, len));
	buf_free(&b);
	return 0;
}
