/*
 * fuzz_json.c — libFuzzer harness for core/json.c, differential against
 * jansson: json_valid() must agree with json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL) except for the deliberate differences documented in
 * json.c (lone surrogate escapes, numbers out of double/int64 range, NUL in
 * keys: jansson refuses, json_valid accepts; nesting over 512, raw NUL
 * bytes outside strings: json_valid refuses). Also: valid JSON is valid UTF-8; json_append_string()
 * output is valid JSON that jansson reads back as the input when nothing was replaced, and it
 * replaces exactly when utf8_valid() says no. Frees everything.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "protocol.h"

static size_t depth_of(json_t *j)
{
	size_t d = 0, i;
	const char *k;
	json_t *v;

	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			size_t c = depth_of(v);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
		{
			size_t c = depth_of(v);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	return 0;
}

static int known_difference(const char *text)
{
	return strstr(text, "invalid Unicode '") || strstr(text, "real number overflow") ||
	       strstr(text, "too big") || strstr(text, "NUL byte in object key");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	int v = json_valid(s, size);
	int u = utf8_valid(s, size);
	json_error_t jerr;
	json_t *j;
	struct buf b;
	int replaced = 0;

	if (v)
		CHECK(u);
	j = json_loadb(s, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	/* jansson also accepts some texts with a raw NUL byte outside strings
	 * ("1\0", "[1\0]"), which are not JSON: json_valid() refuses them. */
	if (j && !v)
		CHECK(depth_of(j) > 512 || memchr(s, 0, size));
	if (!j && v)
		CHECK(known_difference(jerr.text));
	json_decref(j);

	buf_init(&b, 0);
	CHECK(json_append_string(&b, s, size, &replaced) == 0);
	CHECK(replaced == !u);
	CHECK(json_valid(buf_data(&b), b.len));
	j = json_loadb(buf_data(&b), b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	CHECK(j && json_is_string(j));
	if (!replaced)
		CHECK(json_string_length(j) == size && !memcmp(json_string_value(j), s, size));
	json_decref(j);
	buf_free(&b);
	return 0;
}
