/*
 * library.c — the text of the "fanout" Redis Functions library, the
 * broker-side half of positioned channels: library.lua (what it stores and
 * returns is described there and in fanout-valkey(5)), compiled in as a
 * string, behind a header with the publish command and the defaults.
 * Shared by the valkey backend, which loads it on every connect, and
 * fanout-cli push, which loads it when it finds it missing. Pure; allocates
 * only the text it returns.
 */
#include "library.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* library.lua as a C string (generated at build time by local.mk). */
static const char lib_body[] =
#include "library_lua.h"
    ;

char *vk_library_text(const char *pub_cmd, long long size, long long ttl_s)
{
	static const char head[] = "#!lua name=fanout\nlocal PUB, SIZE, TTL = '%s', %lld, %lld\n";
	int n = snprintf(NULL, 0, head, pub_cmd, size, ttl_s);
	char *t = n > 0 ? malloc((size_t)n + sizeof(lib_body)) : NULL;

	if (t) {
		snprintf(t, (size_t)n + 1, head, pub_cmd, size, ttl_s);
		memcpy(t + n, lib_body, sizeof(lib_body));
	}
	return t;
}
