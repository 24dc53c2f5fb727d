/*
 * url.c — the valkey backend's url option:
 * redis://[user:password@]host:port/db (also valkey://; IPv6 in brackets;
 * percent-escapes in user and password) or unix:///path, parsed into the
 * backend state (host_name or unix_path, port, username, password, db).
 *
 * Runs on the loop thread during init(). Allocates the strings it stores in
 * struct vk; vk_destroy() frees them.
 */
#include "vk.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Copy [s, s+n) percent-decoded into a new string. */
static char *pct_dup(const char *s, size_t n)
{
	char *d = malloc(n + 1), *o = d;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = 0;
	return d;
}

int vk_url_parse(struct vk *vk, const char *url, char *err, size_t errlen)
{
	const char *p, *at, *slash, *hostend, *colon;

	if (strncmp(url, "unix://", 7) == 0) {
		if (url[7] != '/') {
			snprintf(err, errlen, "url %s: unix:// needs an absolute path", url);
			return FANOUT_EINVAL;
		}
		vk->unix_path = strdup(url + 7);
		return vk->unix_path ? 0 : FANOUT_ENOMEM;
	}
	if (strncmp(url, "redis://", 8) == 0)
		p = url + 8;
	else if (strncmp(url, "valkey://", 9) == 0)
		p = url + 9;
	else {
		snprintf(err, errlen, "url %s: expected redis://... or unix:///path", url);
		return FANOUT_EINVAL;
	}
	slash = strchr(p, '/');
	at = memrchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
	if (at) {
		const char *c = memchr(p, ':', (size_t)(at - p));
		if (c) {
			if (c > p)
				vk->username = pct_dup(p, (size_t)(c - p));
			vk->password = pct_dup(c + 1, (size_t)(at - c - 1));
		} else if (at > p) {
			/* redis://secret@host: a lone token is the password */
			vk->password = pct_dup(p, (size_t)(at - p));
		}
		p = at + 1;
	}
	hostend = slash ? slash : p + strlen(p);
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hostend - p));
		if (!rb) {
			snprintf(err, errlen, "url %s: unclosed [", url);
			return FANOUT_EINVAL;
		}
		vk->host_name = strndup(p + 1, (size_t)(rb - p - 1));
		colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(hostend - p));
		vk->host_name = strndup(p, (size_t)((colon ? colon : hostend) - p));
	}
	if (!vk->host_name)
		return FANOUT_ENOMEM;
	if (colon) {
		char *end;
		long v = strtol(colon + 1, &end, 10);
		if (end != hostend || v < 1 || v > 65535) {
			snprintf(err, errlen, "url %s: bad port", url);
			return FANOUT_EINVAL;
		}
		vk->port = (int)v;
	}
	if (slash && slash[1]) {
		char *end;
		long long v = strtoll(slash + 1, &end, 10);
		if (*end || v < 0) {
			snprintf(err, errlen, "url %s: bad database number", url);
			return FANOUT_EINVAL;
		}
		vk->db = v;
	}
	return 0;
}
