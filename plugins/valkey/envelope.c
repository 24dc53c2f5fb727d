/*
 * envelope.c — parses the position envelope "\0fo1:EPOCH:OFFSET\n" in front
 * of a positioned live message (see envelope.h for the format). Pure: no
 * state, no allocation, any thread; fuzzed by tests/fuzz/fuzz_envelope.c.
 */
#include "envelope.h"

#include <string.h>

int vk_epoch_valid(const char *s, size_t len)
{
	if (!s || len < 1 || len > VK_EPOCH_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

enum vk_env_result vk_envelope_parse(const char *msg, size_t len, struct vk_pos *pos,
				     const char **payload, size_t *plen)
{
	const char *p, *end = msg + len, *colon, *nl;
	uint64_t off = 0;

	*payload = msg;
	*plen = len;
	if (len < VK_ENV_MAGIC_LEN || memcmp(msg, VK_ENV_MAGIC, VK_ENV_MAGIC_LEN) != 0)
		return VK_ENV_PLAIN;
	p = msg + VK_ENV_MAGIC_LEN;
	/* The epoch ends at the first ':' within VK_EPOCH_MAX + 1 bytes. */
	colon = memchr(p, ':',
		       (size_t)(end - p) < VK_EPOCH_MAX + 1 ? (size_t)(end - p) : VK_EPOCH_MAX + 1);
	if (!colon || !vk_epoch_valid(p, (size_t)(colon - p)))
		return VK_ENV_BAD;
	/* The offset: 1-20 digits, no leading zero, no overflow, then '\n'. */
	nl = colon + 1;
	if (nl >= end || *nl < '1' || *nl > '9')
		return VK_ENV_BAD;
	for (; nl < end && *nl >= '0' && *nl <= '9'; nl++) {
		unsigned d = (unsigned)(*nl - '0');
		if (off > (UINT64_MAX - d) / 10)
			return VK_ENV_BAD;
		off = off * 10 + d;
	}
	if (nl >= end || *nl != '\n')
		return VK_ENV_BAD;
	memcpy(pos->epoch, p, (size_t)(colon - p));
	pos->epoch[colon - p] = '\0';
	pos->offset = off;
	*payload = nl + 1;
	*plen = (size_t)(end - nl - 1);
	return VK_ENV_POSITIONED;
}
