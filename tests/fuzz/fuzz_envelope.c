/*
 * fuzz_envelope.c — libFuzzer harness for the valkey backend's position
 * envelope parser (plugins/valkey/envelope.c). Input: one pub/sub message.
 * Checks the parser's promises: only PLAIN / POSITIONED / BAD; PLAIN and BAD
 * hand back the whole message; POSITIONED only for input that starts with
 * the magic, with a valid epoch, an offset >= 1, and a payload that is
 * exactly the tail after the first '\n'; re-encoding the parsed position
 * gives back the input's prefix byte for byte (one encoding per position).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data, *payload = NULL;
	size_t plen = 0;
	struct vk_pos pos;
	enum vk_env_result r = vk_envelope_parse(msg, size, &pos, &payload, &plen);

	CHECK(r == VK_ENV_PLAIN || r == VK_ENV_POSITIONED || r == VK_ENV_BAD);
	if (r != VK_ENV_POSITIONED) {
		CHECK(payload == msg && plen == size);
		if (r == VK_ENV_BAD)
			CHECK(size >= VK_ENV_MAGIC_LEN && memcmp(msg, VK_ENV_MAGIC, 5) == 0);
		return 0;
	}
	CHECK(size >= VK_ENV_MAGIC_LEN && memcmp(msg, VK_ENV_MAGIC, VK_ENV_MAGIC_LEN) == 0);
	CHECK(vk_epoch_valid(pos.epoch, strlen(pos.epoch)));
	CHECK(pos.offset >= 1);
	CHECK(payload > msg && payload <= msg + size && payload[-1] == '\n');
	CHECK(plen == size - (size_t)(payload - msg));
	{
		char head[VK_ENV_MAGIC_LEN + VK_EPOCH_MAX + 24];
		int n = snprintf(head + VK_ENV_MAGIC_LEN, sizeof(head) - VK_ENV_MAGIC_LEN,
				 "%s:%" PRIu64 "\n", pos.epoch, pos.offset);
		memcpy(head, VK_ENV_MAGIC, VK_ENV_MAGIC_LEN);
		CHECK(n > 0 && (size_t)(payload - msg) == VK_ENV_MAGIC_LEN + (size_t)n);
		CHECK(memcmp(head, msg, VK_ENV_MAGIC_LEN + (size_t)n) == 0);
	}
	return 0;
}
