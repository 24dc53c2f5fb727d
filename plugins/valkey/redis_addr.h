/*
 * redis_addr.h — the one parser of Redis/Valkey URLs in fanout, shared by
 * the valkey backend (its url option) and fanout-cli (--redis):
 *
 *   redis://[[user]:password@]host[:port][/db]     also valkey://
 *   redis://password@host ...                      a lone userinfo is the password
 *   redis://[::1]:6379/0                           IPv6 addresses in brackets
 *   unix:///path/to/socket                         an absolute path
 *
 * Schemes are case-insensitive; user and password may hold %XX escapes (a
 * '@', ':' or '/' in them must be escaped); port 1-65535 (default 6379);
 * db 0-REDIS_ADDR_DB_MAX (default 0). Refused with a reason: other schemes
 * (rediss:// is named: hiredis 0.14 has no TLS), a query or fragment,
 * spaces or control characters, a bad %-escape or %00, an unbracketed IPv6
 * address, an empty host, parts longer than their buffers. The reason never
 * repeats the URL, so a password in it never reaches a log.
 *
 * Pure: no allocation, no I/O, any thread. Fuzzed by
 * tests/fuzz/fuzz_redis_addr.c, unit-tested by tests/unit/test_redis_addr.c.
 */
#ifndef FANOUT_REDIS_ADDR_H
#define FANOUT_REDIS_ADDR_H

#include <stddef.h>

#define REDIS_ADDR_DB_MAX 1000000

struct redis_addr {
	char host[256];	     /* "" for a unix socket */
	int port;	     /* 6379 unless the URL names one */
	char unix_path[108]; /* "" for TCP; fits struct sockaddr_un */
	char user[128];	     /* "" when absent */
	char password[256];  /* "" when absent */
	int db;		     /* 0 unless the URL names one */
};

/* Parse url into *a. 0, or -1 with the reason in err (never the URL). */
int redis_addr_parse(const char *url, struct redis_addr *a, char *err, size_t errlen);

#endif /* FANOUT_REDIS_ADDR_H */
