/*
 * fuzz_redis_addr.c — libFuzzer harness for fanout's one Redis URL parser
 * (plugins/valkey/redis_addr.c). Input: a URL (cut at the first NUL).
 * Checks the parser's promises: 0 or -1; a reason with every refusal, never
 * containing a password the URL held; on success exactly one of host and
 * unix_path, port 1-65535, db 0-REDIS_ADDR_DB_MAX, a user only with a
 * password; and the round trip: the parts written back as a canonical URL
 * (every byte of user and password %-escaped, IPv6 in brackets) parse to
 * the same parts. Stack only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "redis_addr.h"

static size_t put_escaped(char *o, const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += (size_t)sprintf(o + n, "%%%02X", (unsigned char)*s);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[1024], again[2048], err[256] = "";
	struct redis_addr a, b;
	size_t n = size < sizeof(url) - 1 ? size : sizeof(url) - 1;
	int r;

	memcpy(url, data, n);
	url[n] = '\0';
	r = redis_addr_parse(url, &a, err, sizeof(err));
	CHECK(r == 0 || r == -1);
	if (r < 0) {
		CHECK(err[0] != '\0');
		CHECK(strlen(err) < sizeof(err));
		return 0;
	}
	CHECK(!a.host[0] != !a.unix_path[0]);
	CHECK(strlen(a.host) < sizeof(a.host) && strlen(a.unix_path) < sizeof(a.unix_path));
	CHECK(strlen(a.user) < sizeof(a.user) && strlen(a.password) < sizeof(a.password));
	CHECK(a.port >= 1 && a.port <= 65535);
	CHECK(a.db >= 0 && a.db <= REDIS_ADDR_DB_MAX);
	CHECK(!a.user[0] || a.password[0]);
	if (a.unix_path[0]) {
		CHECK(a.unix_path[0] == '/');
		snprintf(again, sizeof(again), "unix://%s", a.unix_path);
	} else {
		size_t o = (size_t)sprintf(again, "redis://");
		if (a.user[0] || a.password[0]) {
			o += put_escaped(again + o, a.user);
			again[o++] = ':';
			o += put_escaped(again + o, a.password);
			again[o++] = '@';
		}
		o += (size_t)sprintf(again + o, strchr(a.host, ':') ? "[%s]:%d/%d" : "%s:%d/%d",
				     a.host, a.port, a.db);
	}
	CHECK(redis_addr_parse(again, &b, err, sizeof(err)) == 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0); /* both zero-filled before parsing */
	/* A refusal of the same URL with one byte of the password changed to a
	 * bad escape never shows the password. */
	if (a.password[0] && strlen(a.password) >= 6 && !strchr(a.password, '%')) {
		char bad[2048];
		snprintf(bad, sizeof(bad), "redis://u:%s%%zz@h", a.password);
		if (redis_addr_parse(bad, &b, err, sizeof(err)) < 0)
			CHECK(!strstr(err, a.password));
	}
	return 0;
}
