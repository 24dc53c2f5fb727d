/*
 * line.c — the filetail line parser (see line.h). Owns nothing between
 * calls: ft_line_parse() turns one line of a tailed file into an update and
 * ft_line_clear() frees what it allocated (the jansson tree and the
 * serialised payload). Runs on whatever thread calls it (the loop thread in
 * the plugin); no globals, no I/O, so the fuzz harness can drive it alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "line.h"

int ft_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0; /* continuation byte, overlong lead (c0/c1) or > f4 */
		}
		if (len - i <= n)
			return 0;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

int ft_channel_valid(const char *s, size_t len)
{
	if (len == 0 || len > FT_CHANNEL_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			return 0;
	}
	return 1;
}

static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

int ft_line_parse(enum ft_format fmt, const char *line, size_t len, size_t max_bytes,
		  struct ft_line *out, const char **reason)
{
	/* jansson's error text lives here; one parse at a time per thread. */
	static _Thread_local char why[JSON_ERROR_TEXT_LENGTH + 32];
	json_error_t jerr;
	json_t *root = NULL, *ch, *ts;
	const char *name;
	size_t name_len;

	memset(out, 0, sizeof(*out));
	*reason = NULL;
	if (len > max_bytes) {
		*reason = "line longer than max_line_bytes";
		return FT_LINE_BAD;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (blank(line, len))
		return FT_LINE_EMPTY;
	if (!ft_utf8_valid(line, len)) {
		*reason = "invalid UTF-8";
		return FT_LINE_BAD;
	}
	if (fmt == FT_RAW) {
		out->data = line;
		out->data_len = len;
		return FT_LINE_OK;
	}

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, sizeof(why), "bad JSON: %s (column %d)", jerr.text, jerr.column);
		*reason = why;
		return FT_LINE_BAD;
	}
	if (!json_is_object(root)) {
		*reason = "not a JSON object";
		goto bad;
	}
	ch = json_object_get(root, "channel");
	if (!ch) {
		*reason = "missing \"channel\"";
		goto bad;
	}
	if (!json_is_string(ch)) {
		*reason = "\"channel\" is not a string";
		goto bad;
	}
	name = json_string_value(ch);
	name_len = json_string_length(ch);
	if (!ft_channel_valid(name, name_len)) {
		*reason = "invalid \"channel\" (1-200 bytes of A-Za-z0-9_.:/-)";
		goto bad;
	}
	if (!json_object_get(root, "data")) {
		*reason = "missing \"data\"";
		goto bad;
	}
	ts = json_object_get(root, "ts");
	if (ts && !json_is_null(ts)) {
		double v;
		if (json_is_integer(ts))
			v = (double)json_integer_value(ts);
		else if (json_is_real(ts))
			v = json_real_value(ts);
		else
			v = -1;
		/* 2^53: past any real clock, and exact as a double. */
		if (!(v >= 0 && v <= 9007199254740992.0)) {
			*reason = "\"ts\" is not a non-negative number of milliseconds";
			goto bad;
		}
		out->has_ts = 1;
		out->ts = (int64_t)v;
	}
	memcpy(out->channel, name, name_len);
	out->channel[name_len] = '\0';
	out->json = root;
	return FT_LINE_OK;
bad:
	json_decref(root);
	return FT_LINE_BAD;
}

int ft_line_payload(struct ft_line *l)
{
	if (l->data || !l->json)
		return 0;
	json_t *data = json_object_get(l->json, "data");
	/* JSON_ENCODE_ANY: a string, number or null is a valid payload too. */
	l->owned = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!l->owned)
		return FT_LINE_NOMEM;
	l->data = l->owned;
	l->data_len = strlen(l->owned);
	return 0;
}

void ft_line_clear(struct ft_line *l)
{
	free(l->owned);
	l->owned = NULL;
	json_decref((json_t *)l->json);
	l->json = NULL;
	l->data = NULL;
	l->data_len = 0;
}
