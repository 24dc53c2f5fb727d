/*
 * test_redis_addr.c — unit tests of fanout's one Redis URL parser
 * (plugins/valkey/redis_addr.c, used by the valkey backend and fanout-cli):
 * every accepted form, every refusal with its reason, and that no reason
 * repeats a password. Pure; single-threaded; nothing allocated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "redis_addr.h"

static struct redis_addr ok(const char *url)
{
	struct redis_addr a;
	char err[256] = "";

	if (redis_addr_parse(url, &a, err, sizeof(err)) != 0)
		fail_msg("%s: refused: %s", url, err);
	return a;
}

/* Refused, and the reason contains want. */
static void bad(const char *url, const char *want)
{
	struct redis_addr a;
	char err[256] = "";

	if (redis_addr_parse(url, &a, err, sizeof(err)) == 0)
		fail_msg("%s: accepted", url);
	if (!strstr(err, want))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", url, err, want);
}

static void t_forms(void **state)
{
	struct redis_addr a;

	(void)state;
	a = ok("redis://h");
	assert_string_equal(a.host, "h");
	assert_int_equal(a.port, 6379);
	assert_int_equal(a.db, 0);
	assert_string_equal(a.user, "");
	assert_string_equal(a.password, "");
	assert_string_equal(a.unix_path, "");
	a = ok("redis://u:p%40ss%2Fx@host.example:6380/3");
	assert_string_equal(a.user, "u");
	assert_string_equal(a.password, "p@ss/x");
	assert_string_equal(a.host, "host.example");
	assert_int_equal(a.port, 6380);
	assert_int_equal(a.db, 3);
	a = ok("redis://secret@h/"); /* a lone userinfo is the password */
	assert_string_equal(a.user, "");
	assert_string_equal(a.password, "secret");
	assert_int_equal(a.db, 0);
	a = ok("redis://:pw:with:colons@h");
	assert_string_equal(a.password, "pw:with:colons");
	a = ok("redis://:@h"); /* empty: no AUTH */
	assert_string_equal(a.password, "");
	a = ok("VALKEY://My-Host_1:1/1000000");
	assert_string_equal(a.host, "My-Host_1");
	assert_int_equal(a.port, 1);
	assert_int_equal(a.db, 1000000);
	a = ok("Redis://[::1]:7000/2");
	assert_string_equal(a.host, "::1");
	assert_int_equal(a.port, 7000);
	assert_int_equal(a.db, 2);
	a = ok("redis://[fe80::1%eth0]");
	assert_string_equal(a.host, "fe80::1%eth0");
	assert_int_equal(a.port, 6379);
	a = ok("redis://127.0.0.1:65535");
	assert_int_equal(a.port, 65535);
	a = ok("unix:///run/valkey/valkey.sock");
	assert_string_equal(a.unix_path, "/run/valkey/valkey.sock");
	assert_string_equal(a.host, "");
}

static void t_refused(void **state)
{
	char u[400];

	(void)state;
	bad(NULL, "no URL");
	bad("", "expected redis://");
	bad("h:6379", "expected redis://");
	bad("http://h", "expected redis://");
	bad("rediss://h", "TLS");
	bad("redis://", "no host");
	bad("redis://:6379/0", "no host");
	bad("redis://u:p@", "no host");
	bad("redis://h:", "port");
	bad("redis://h:0", "port");
	bad("redis://h:65536", "port");
	bad("redis://h:12a", "port");
	bad("redis://h:-1", "port");
	bad("redis://h/x", "database");
	bad("redis://h/-1", "database");
	bad("redis://h/1000001", "database");
	bad("redis://h/0/", "database");
	bad("redis://h/0?timeout=1", "query");
	bad("redis://h#frag", "fragment");
	bad("redis://::1", "brackets");
	bad("redis://[::1", "unclosed");
	bad("redis://[::1]x", "after the ]");
	bad("redis://h h", "space");
	bad("redis://h\n", "control");
	bad("redis://ho$t", "may hold only");
	bad("redis://[%40]:702", "IPv6");
	bad("redis://[h.example]", "IPv6");
	bad("redis://[::1%]", "IPv6");
	bad("redis://u:p%zz@h", "%-escape");
	bad("redis://u:p%4@h", "%-escape");
	bad("redis://u:p%@h", "%-escape");
	bad("redis://u:%00@h", "%00");
	bad("redis://user:@h", "without a password");
	bad("unix://relative.sock", "absolute");
	bad("unix:///a?b", "query");
	memset(u, 0, sizeof(u));
	strcpy(u, "redis://");
	memset(u + 8, 'a', 300);
	bad(u, "host longer");
	strcpy(u, "unix:///");
	memset(u + 8, 'a', 120);
	bad(u, "path longer");
	strcpy(u, "redis://:");
	memset(u + 9, 'p', 300);
	strcpy(u + 309, "@h");
	bad(u, "password longer");
}

/* A refusal never repeats the URL: a password in it must not reach a log. */
static void t_no_secret_in_reasons(void **state)
{
	static const char *urls[] = {
	    "redis://u:topsecret@h:99999/0", "redis://u:topsecret@h/x",	 "redis://u:topsecret@ho$t",
	    "rediss://u:topsecret@h",	     "redis://u:topsecret%zz@h", "http://u:topsecret@h",
	};
	struct redis_addr a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		assert_int_equal(redis_addr_parse(urls[i], &a, err, sizeof(err)), -1);
		assert_null(strstr(err, "topsecret"));
		assert_true(err[0]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_forms),
	    cmocka_unit_test(t_refused),
	    cmocka_unit_test(t_no_secret_in_reasons),
	};

	return cmocka_run_group_tests_name("redis URL parser", tests, NULL, NULL);
}
