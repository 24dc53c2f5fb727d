/*
 * test_netaddr.c — core/netaddr.c and core/origin.c: CIDR parsing and
 * matching, the X-Forwarded-For walk behind trusted proxies, Origin and
 * allowed_origins parsing and matching (cmocka).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "netaddr.h"
#include "origin.h"

static struct netaddr ip(const char *s)
{
	struct netaddr a;
	assert_int_equal(netaddr_parse(s, strlen(s), &a), 0);
	return a;
}

static void t_parse_format(void **state)
{
	struct netaddr a;
	char b[NETADDR_STRLEN];
	a = ip("10.1.2.3");
	assert_string_equal(netaddr_format(&a, b, sizeof(b)), "10.1.2.3");
	a = ip("[2001:db8::1]");
	assert_string_equal(netaddr_format(&a, b, sizeof(b)), "2001:db8::1");
	a = ip("::ffff:192.0.2.1");
	assert_string_equal(netaddr_format(&a, b, sizeof(b)), "192.0.2.1");
	const char *bad[] = {"",	   "1.2.3",	"1.2.3.4.5",	"01.2.3.4",
			     "1.2.3.4:80", "[1.2.3.4]", "fe80::1%eth0", "::g",
			     "1.2.3.256",  " 1.2.3.4",	"[::1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(netaddr_parse(bad[i], strlen(bad[i]), &a), 0);
}

static void t_cidr(void **state)
{
	struct cidr c;
	const char *why;
	assert_int_equal(cidr_parse("10.0.0.0/8", &c, &why), 0);
	struct netaddr in = ip("10.200.3.4"), out = ip("11.0.0.1"), v6 = ip("::a00:1");
	assert_true(cidr_match(&c, &in));
	assert_false(cidr_match(&c, &out));
	assert_false(cidr_match(&c, &v6)); /* ::10.0.0.1 is not IPv4-mapped */
	assert_int_equal(cidr_parse("127.0.0.1", &c, &why), 0);
	assert_int_equal(c.bits, 128);
	assert_int_equal(cidr_parse("fd00::/8", &c, &why), 0);
	struct netaddr u = ip("fd12::1");
	assert_true(cidr_match(&c, &u));
	assert_int_equal(cidr_parse("0.0.0.0/0", &c, &why), 0);
	assert_true(cidr_match(&c, &out));
	assert_false(cidr_match(&c, &u)); /* an IPv4 /0 holds only IPv4 */
	const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33",  "10.0.0.0/",	   "10.0.0.0/-1",
			     "::/129",	   "host.example", "10.0.0.0/8/8", "10.0.0.0/08x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(cidr_parse(bad[i], &c, &why), 0);
}

static void t_xff(void **state)
{
	struct cidr tr[2];
	const char *why;
	assert_int_equal(cidr_parse("10.0.0.0/8", &tr[0], &why), 0);
	assert_int_equal(cidr_parse("127.0.0.1", &tr[1], &why), 0);
	struct netaddr peer = ip("127.0.0.1"), other = ip("192.0.2.9"), cl;
	char b[NETADDR_STRLEN];
#define XFF(p, s) netaddr_client(&(p), tr, 2, (s), strlen(s), &cl)
	assert_int_equal(XFF(peer, "203.0.113.5"), 1);
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "203.0.113.5");
	/* forged left part ignored; trusted hops skipped from the right */
	XFF(peer, "6.6.6.6, 203.0.113.5, 10.1.1.1");
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "203.0.113.5");
	/* several headers (lws joins them with a space) */
	XFF(peer, "6.6.6.6 198.51.100.1");
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "198.51.100.1");
	/* garbage ends the walk at the last good hop */
	XFF(peer, "203.0.113.5, junk, 10.2.2.2");
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "10.2.2.2");
	assert_int_equal(XFF(peer, "junk"), 0);
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "127.0.0.1");
	/* all hops trusted: the leftmost is the client */
	XFF(peer, "10.9.9.9, 10.8.8.8");
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "10.9.9.9");
	/* an untrusted peer's header is not believed */
	assert_int_equal(XFF(other, "203.0.113.5"), 0);
	assert_string_equal(netaddr_format(&cl, b, sizeof(b)), "192.0.2.9");
	assert_int_equal(XFF(peer, " , ,"), 0);
#undef XFF
}

static int allowed(const char *pattern, const char *origin)
{
	struct origin p, o;
	const char *why;
	assert_int_equal(origin_pattern_parse(pattern, &p, &why), 0);
	return !origin_parse(origin, strlen(origin), &o) && origin_match(&p, &o);
}

static void t_origin(void **state)
{
	assert_true(allowed("https://app.example.com", "https://app.example.com"));
	assert_true(allowed("https://app.example.com", "HTTPS://App.Example.COM"));
	assert_true(allowed("https://app.example.com", "https://app.example.com:443"));
	assert_true(allowed("https://app.example.com:443", "https://app.example.com"));
	assert_true(allowed("http://localhost:8080", "http://localhost:8080"));
	assert_true(allowed("http://[::1]:3000", "http://[::1]:3000"));
	assert_true(allowed("https://*.example.com", "https://a.example.com"));
	assert_true(allowed("https://*.example.com", "https://b.a.example.com"));
	assert_false(allowed("https://*.example.com", "https://example.com"));
	assert_false(allowed("https://*.example.com", "https://aexample.com"));
	assert_false(allowed("https://*.example.com", "https://a.example.com.evil.net"));
	assert_false(allowed("https://*.example.com", "http://a.example.com"));
	assert_false(allowed("https://*.example.com", "https://a.example.com:8443"));
	assert_false(allowed("https://app.example.com", "https://app.example.com:8443"));
	assert_false(allowed("http://localhost:8080", "http://localhost"));
	assert_false(
	    allowed("https://app.example.com", "https://evil.com/https://app.example.com"));
	struct origin o;
	const char *bad[] = {"null",
			     "",
			     "https://",
			     "https://a.com/",
			     "https://a.com/x",
			     "https://a.com?x",
			     "https://u@a.com",
			     "https://a.com:",
			     "https://a.com:0",
			     "https://a.com:080",
			     "https://a.com:65536",
			     "https://a..com",
			     "https://.a.com",
			     "https://a.com.",
			     "https://a.com https://b.com",
			     "https://a.com,https://b.com",
			     "https://*.a.com",
			     "https://[::1",
			     "https://[zz::1]",
			     "https://[::1]/443",
			     "https://[::1]x443",
			     "//a.com",
			     "1http://a.com"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(origin_parse(bad[i], strlen(bad[i]), &o), 0);
	char longhost[300];
	memset(longhost, 'a', sizeof(longhost));
	memcpy(longhost, "https://", 8);
	longhost[sizeof(longhost) - 1] = 0;
	assert_int_not_equal(origin_parse(longhost, strlen(longhost), &o), 0); /* 63-byte labels */
	const char *why;
	const char *badpat[] = {"*",
				"https://*.com",
				"https://*",
				"https://a.*.com",
				"*.example.com",
				"https://x*.example.com"};
	for (size_t i = 0; i < sizeof(badpat) / sizeof(badpat[0]); i++)
		assert_int_not_equal(origin_pattern_parse(badpat[i], &o, &why), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_parse_format),
	    cmocka_unit_test(t_cidr),
	    cmocka_unit_test(t_xff),
	    cmocka_unit_test(t_origin),
	};
	return cmocka_run_group_tests_name("netaddr and origin", tests, NULL, NULL);
}
