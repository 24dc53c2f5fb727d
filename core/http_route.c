/*
 * http_route.c — owns the decisions of fanoutd's HTTP routing that need no
 * I/O: the route table of the public and admin listeners (/healthz and
 * /readyz on both; /metrics on the admin listener when there is one, else
 * on the public port; POST /api/publish and static files on the public
 * port only), the methods each route allows, and the static-file path
 * check that keeps requests inside web_root and away from dotfiles (the
 * open itself, with symlinks confined beneath web_root, is http.c's).
 *
 * Pure: no allocation, no global state, any thread.
 */
#include <string.h>

#include "http_route.h"

static int is(const char *path, size_t len, const char *lit)
{
	return len == strlen(lit) && !memcmp(path, lit, len);
}

enum http_route http_route_of(const struct http_site *site, const char *path, size_t len)
{
	if (is(path, len, "/healthz"))
		return ROUTE_HEALTHZ;
	if (is(path, len, "/readyz"))
		return ROUTE_READYZ;
	if (is(path, len, "/metrics"))
		return site->admin || !site->admin_split ? ROUTE_METRICS : ROUTE_NOT_FOUND;
	if (site->admin)
		return ROUTE_NOT_FOUND;
	if (is(path, len, "/api/publish"))
		return site->publish_api ? ROUTE_PUBLISH : ROUTE_NOT_FOUND;
	if (site->static_files && len && path[0] == '/')
		return ROUTE_STATIC;
	return ROUTE_NOT_FOUND;
}

unsigned http_route_methods(enum http_route r)
{
	switch (r) {
	case ROUTE_PUBLISH:
		return HTTP_M_POST;
	case ROUTE_NOT_FOUND:
		return HTTP_M_GET | HTTP_M_HEAD | HTTP_M_POST;
	default:
		return HTTP_M_GET | HTTP_M_HEAD;
	}
}

const char *http_route_allow(enum http_route r)
{
	return r == ROUTE_PUBLISH ? "POST" : "GET, HEAD";
}

int http_static_path(const char *path, size_t len, char *out, size_t n)
{
	size_t o = 0;

	if (!len || path[0] != '/' || !n)
		return -1;
	for (size_t i = 1; i <= len;) {
		/* one segment: path[i .. j) */
		size_t j = i;
		while (j < len && path[j] != '/')
			j++;
		if (j == len && j == i)
			break; /* trailing '/' (or just "/"): index.html below */
		if (j == i || path[i] == '.')
			return -1; /* "//", ".", "..", dotfiles */
		for (size_t k = i; k < j; k++) {
			unsigned char c = (unsigned char)path[k];
			if (c < 0x20 || c == 0x7f || c == '\\')
				return -1;
		}
		if (o + (j - i) + 2 > n)
			return -1;
		memcpy(out + o, path + i, j - i);
		o += j - i;
		if (j == len) {
			out[o] = '\0';
			return 0;
		}
		out[o++] = '/';
		i = j + 1;
	}
	static const char idx[] = "index.html";
	if (o + sizeof(idx) > n)
		return -1;
	memcpy(out + o, idx, sizeof(idx));
	return 0;
}

const char *http_content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".htm", "text/html; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".json", "application/json"},
	    {".map", "application/json"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".jpg", "image/jpeg"},
	    {".jpeg", "image/jpeg"},
	    {".gif", "image/gif"},
	    {".webp", "image/webp"},
	    {".ico", "image/x-icon"},
	    {".wasm", "application/wasm"},
	    {".woff2", "font/woff2"},
	    {".woff", "font/woff"},
	};
	const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}
