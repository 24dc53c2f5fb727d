/*
 * fuzz_filetail.c — libFuzzer harness for the filetail line parser
 * (plugins/filetail/line.c). Input: byte 0 picks the format (bit 0: jsonl
 * or raw) and max_line_bytes (16 + (byte >> 1) * 64); the rest is one line.
 * Checks the parser's promises: only OK / EMPTY / BAD, a reason with every
 * BAD, nothing over max_line_bytes accepted, jsonl channels valid, the
 * serialised payload is JSON equal to the line's "data", raw payloads are the
 * line itself (minus a trailing CR) and valid UTF-8; and ft_utf8_valid()
 * agrees with jansson's own UTF-8 check. Frees everything.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ft_line l;
	const char *why = NULL;
	const char *text;
	size_t n, max;
	enum ft_format fmt;
	int r;

	if (size == 0)
		return 0;
	fmt = (data[0] & 1) ? FT_RAW : FT_JSONL;
	max = 16 + (size_t)(data[0] >> 1) * 64;
	text = (const char *)data + 1;
	n = size - 1;

	/* Differential: jansson validates UTF-8 when building a string. */
	{
		json_t *s = json_stringn(text, n);
		CHECK(ft_utf8_valid(text, n) == (s != NULL));
		json_decref(s);
	}

	r = ft_line_parse(fmt, text, n, max, &l, &why);
	CHECK(r == FT_LINE_OK || r == FT_LINE_EMPTY || r == FT_LINE_BAD);
	if (r == FT_LINE_BAD)
		CHECK(why && *why);
	if (r != FT_LINE_OK)
		return 0;
	CHECK(n <= max);
	CHECK(ft_line_payload(&l) == 0);
	CHECK(l.data != NULL);
	if (fmt == FT_RAW) {
		CHECK(l.data == text);
		CHECK(l.data_len == n || (l.data_len == n - 1 && text[n - 1] == '\r'));
		CHECK(ft_utf8_valid(l.data, l.data_len));
	} else {
		json_t *back, *orig;

		CHECK(ft_channel_valid(l.channel, strlen(l.channel)));
		CHECK(strlen(l.data) == l.data_len);
		back = json_loadb(l.data, l.data_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		CHECK(back != NULL);
		orig = json_object_get((json_t *)l.json, "data");
		CHECK(json_equal(back, orig));
		json_decref(back);
		if (l.has_ts)
			CHECK(l.ts >= 0);
	}
	ft_line_clear(&l);
	return 0;
}
