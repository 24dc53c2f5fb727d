/*
 * fuzz_http.c — libFuzzer harness for the HTTP-side parsers fanoutd writes
 * itself: Origin values and allowed_origins patterns (core/origin.c),
 * addresses, CIDR networks and the X-Forwarded-For walk (core/netaddr.c),
 * the route table and the static-file path check (core/http_route.c), and
 * the body of POST /api/publish (core/protocol.c). The first input byte
 * picks the target, the rest is its input. Checks the promises each makes
 * (a static path never climbs out of web_root or names a dotfile, an
 * untrusted peer's header never names the client, ...).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http_route.h"
#include "netaddr.h"
#include "origin.h"
#include "protocol.h"

static char *cstr(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);
	CHECK(s);
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}

static void check_origin(const struct origin *o)
{
	size_t n = strlen(o->host);
	CHECK(n > 0 && n <= ORIGIN_HOST_MAX);
	CHECK(o->scheme[0]);
	CHECK(o->port >= 0 && o->port <= 65535);
	for (size_t i = 0; i < n; i++)
		CHECK(!(o->host[i] >= 'A' && o->host[i] <= 'Z'));
}

static void t_origin(const uint8_t *d, size_t n)
{
	static const char *const pats[] = {"https://app.example.com", "https://*.example.com",
					   "http://127.0.0.1:8080", "http://[::1]:3000"};
	struct origin o, p;
	const char *why;
	if (origin_parse((const char *)d, n, &o))
		return;
	check_origin(&o);
	CHECK(!o.wildcard);
	/* after the host only ":port" may follow */
	if (o.host[0] == '[') {
		const char *close = memchr(d, ']', n);
		CHECK(close);
		CHECK(close + 1 == (const char *)d + n || close[1] == ':');
	}
	CHECK(!memchr(d, '/', n) || memmem(d, n, "://", 3));
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		CHECK(!origin_pattern_parse(pats[i], &p, &why));
		if (origin_match(&p, &o) && !p.wildcard)
			CHECK(!strcmp(p.host, o.host) && !strcmp(p.scheme, o.scheme));
	}
	/* an origin given as a pattern matches itself */
	char *s = cstr(d, n);
	if (!memchr(d, '\0', n) && !origin_pattern_parse(s, &p, &why) && !p.wildcard)
		CHECK(origin_match(&p, &o));
	free(s);
}

static void t_pattern(const uint8_t *d, size_t n)
{
	struct origin p;
	const char *why = NULL;
	char *s = cstr(d, n);
	if (origin_pattern_parse(s, &p, &why))
		CHECK(why && *why);
	else if (p.wildcard)
		CHECK(p.host[0] == '.' && strchr(p.host + 1, '.'));
	free(s);
}

static void t_cidr(const uint8_t *d, size_t n)
{
	struct cidr c;
	const char *why = NULL;
	char *s = cstr(d, n);
	if (!cidr_parse(s, &c, &why)) {
		CHECK(c.bits >= 0 && c.bits <= 128);
		CHECK(cidr_match(&c, &c.net));
		char b[NETADDR_STRLEN];
		netaddr_format(&c.net, b, sizeof(b));
		struct netaddr back;
		CHECK(!netaddr_parse(b, strlen(b), &back) && netaddr_equal(&back, &c.net));
	} else {
		CHECK(why && *why);
	}
	free(s);
}

static void t_xff(const uint8_t *d, size_t n)
{
	static struct cidr tr[2];
	static int init;
	const char *why;
	if (!init) {
		CHECK(!cidr_parse("10.0.0.0/8", &tr[0], &why));
		CHECK(!cidr_parse("::1", &tr[1], &why));
		init = 1;
	}
	struct netaddr peer, other, cl;
	CHECK(!netaddr_parse("10.1.2.3", 8, &peer));
	CHECK(!netaddr_parse("192.0.2.1", 9, &other));
	int from = netaddr_client(&peer, tr, 2, (const char *)d, n, &cl);
	if (!from)
		CHECK(netaddr_equal(&cl, &peer));
	CHECK(!netaddr_client(&other, tr, 2, (const char *)d, n, &cl));
	CHECK(netaddr_equal(&cl, &other));
}

static void t_static(const uint8_t *d, size_t n)
{
	char out[256];
	if (http_static_path((const char *)d, n, out, sizeof(out)))
		return;
	size_t len = strlen(out);
	CHECK(len > 0 && len < sizeof(out));
	CHECK(out[0] != '/');
	for (const char *seg = out;; seg++) {
		CHECK(*seg && *seg != '.' && *seg != '/');
		seg = strchr(seg, '/');
		if (!seg)
			break;
	}
	CHECK(!strstr(out, "//") && !strchr(out, '\\'));
	for (size_t i = 0; i < len; i++)
		CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
}

static void t_route(const uint8_t *d, size_t n)
{
	for (int b = 0; b < 16; b++) {
		struct http_site s = {b & 1, (b >> 1) & 1, (b >> 2) & 1, (b >> 3) & 1};
		enum http_route r = http_route_of(&s, (const char *)d, n);
		if (s.admin)
			CHECK(r != ROUTE_STATIC && r != ROUTE_PUBLISH);
		if (s.admin_split && !s.admin)
			CHECK(r != ROUTE_METRICS);
		if (!s.publish_api)
			CHECK(r != ROUTE_PUBLISH);
		if (!s.static_files)
			CHECK(r != ROUTE_STATIC);
		CHECK(http_route_methods(r) != 0);
	}
	char *name = cstr(d, n);
	CHECK(http_content_type(name) != NULL);
	free(name);
}

static void t_publish(const uint8_t *d, size_t n)
{
	struct proto_request req;
	struct proto_error err;
	if (proto_parse_publish_body((const char *)d, n, &req, &err)) {
		CHECK(err.code && err.message[0]);
		return;
	}
	CHECK(req.type == PROTO_PUBLISH);
	CHECK(proto_channel_valid(req.channel, strlen(req.channel)));
	CHECK(req.data && req.data_len > 0);
	CHECK(json_valid(req.data, req.data_len));
	proto_request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	switch (data[0] % 7) {
	case 0:
		t_origin(data + 1, size - 1);
		break;
	case 1:
		t_pattern(data + 1, size - 1);
		break;
	case 2:
		t_cidr(data + 1, size - 1);
		break;
	case 3:
		t_xff(data + 1, size - 1);
		break;
	case 4:
		t_static(data + 1, size - 1);
		break;
	case 5:
		t_route(data + 1, size - 1);
		break;
	case 6:
		t_publish(data + 1, size - 1);
		break;
	}
	return 0;
}
