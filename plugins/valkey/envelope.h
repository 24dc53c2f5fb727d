/*
 * envelope.h — the position envelope of the valkey backend's live messages.
 *
 * A positioned publish (the fanout_publish function, history.c) sends the
 * pub/sub message
 *
 *     "\0fo1:" EPOCH ":" OFFSET "\n" PAYLOAD
 *
 * where EPOCH is 1-64 bytes of [A-Za-z0-9_-] and OFFSET a decimal number
 * from 1 to 2^64 - 1 without leading zeros. A message that does not start
 * with the five bytes "\0fo1:" is a plain PUBLISH (a third party): it is
 * delivered unpositioned, byte for byte. Pure functions, no state, no
 * allocation: the backend, the plugin test and the fuzz harness
 * (tests/fuzz/fuzz_envelope.c) link the same code.
 */
#ifndef FANOUT_VALKEY_ENVELOPE_H
#define FANOUT_VALKEY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define VK_ENV_MAGIC	 "\0fo1:"
#define VK_ENV_MAGIC_LEN 5
#define VK_EPOCH_MAX	 64

/* A parsed envelope: the epoch (NUL-terminated) and the offset. */
struct vk_pos {
	char epoch[VK_EPOCH_MAX + 1];
	uint64_t offset;
};

enum vk_env_result {
	VK_ENV_PLAIN = 0,      /* no envelope: the whole message is the payload */
	VK_ENV_POSITIONED = 1, /* pos filled; payload and plen point into msg */
	VK_ENV_BAD = -1,       /* starts with the magic but is malformed */
};

/*
 * Parse msg[0..len). On VK_ENV_POSITIONED, *payload and *plen are the bytes
 * after the envelope (borrowed from msg); on VK_ENV_PLAIN and VK_ENV_BAD they
 * are the whole message. pos is written only on VK_ENV_POSITIONED.
 */
enum vk_env_result vk_envelope_parse(const char *msg, size_t len, struct vk_pos *pos,
				     const char **payload, size_t *plen);

/* 1 when s[0..len) is a valid epoch: 1-64 bytes of [A-Za-z0-9_-]. */
int vk_epoch_valid(const char *s, size_t len);

#endif /* FANOUT_VALKEY_ENVELOPE_H */
