/*
 * test_json.c — unit tests of core/json.c: json_valid() over a table of
 * RFC 8259 cases, nesting limits, strict UTF-8, json_append_string()
 * escaping and U+FFFD replacement, and a cross-check of json_valid() against
 * jansson on a few thousand generated inputs (the deliberate differences,
 * documented at the top of core/json.c, are classified, every other
 * disagreement fails). Single-threaded; frees everything it allocates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "protocol.h"

struct jcase {
	const char *text;
	size_t len; /* 0: strlen(text) */
	int valid;
};

#define V(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1, 1                                                                \
	}
#define X(s)                                                                                       \
	{                                                                                          \
		s, sizeof(s) - 1, 0                                                                \
	}

static const struct jcase json_cases[] = {
    /* scalars at top level, whitespace around */
    V("0"),
    V("-0"),
    V("1e5"),
    V("1E+5"),
    V("-1.5e-10"),
    V("0.0"),
    V("123456789012345678901234567890"),
    V("1e400"),
    V("true"),
    V("false"),
    V("null"),
    V("\"\""),
    V("\"abc\""),
    V(" \t\r\n1 \n"),
    V("  {}  "),
    V("[]"),
    V("{}"),
    V("[1,2,3]"),
    V("{\"a\":1,\"b\":[true,false,null]}"),
    V("[ 1 , [ ] , { } , \"x\" ]"),
    V("{ \"a\" : { \"b\" : { } } }"),
    /* strings: escapes, UTF-8, surrogates */
    V("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
    V("\"\\u0041\\u00e9\\uFFFF\""),
    V("\"\\ud83d\\ude00\""), /* a proper surrogate pair */
    V("\"\\ud800\""),	     /* lone high surrogate: allowed by the grammar (decision) */
    V("\"\\udc00x\""),	     /* lone low surrogate: allowed likewise */
    V("\"\\u0000\""),	     /* allowed (jansson needs JSON_ALLOW_NUL) */
    V("\"\xc3\xa9\""),
    V("\"\xe2\x82\xac\""),
    V("\"\xf0\x9f\x98\x80\""),
    V("\"\xf4\x8f\xbf\xbf\""),
    V("\"\x7f\""),
    V("{\"\xc3\xa9\":\"\xe2\x82\xac\"}"),
    /* invalid */
    X(""),
    X(" "),
    X("01"),
    X("-"),
    X("-01"),
    X("1."),
    X(".5"),
    X("1.e5"),
    X("1e"),
    X("1e+"),
    X("+1"),
    X("0x10"),
    X("NaN"),
    X("Infinity"),
    X("-Infinity"),
    X("tru"),
    X("nul"),
    X("True"),
    X("1 2"),
    X("{} x"),
    X("[] ]"),
    X("{}}"),
    X("[1,]"),
    X("[,1]"),
    X("{\"a\":1,}"),
    X("{,}"),
    X("{\"a\"}"),
    X("{\"a\":}"),
    X("{a:1}"),
    X("{'a':1}"),
    X("{1:1}"),
    X("[1 2]"),
    X("{\"a\":1 \"b\":2}"),
    X("["),
    X("{"),
    X("]"),
    X("}"),
    X("[[]"),
    X("{\"a\":[}"),
    X("\"abc"),
    X("\"\\x\""),
    X("\"\\u12\""),
    X("\"\\u12G4\""),
    X("\"\\U0041\""),
    X("\"\\\""),
    X("\"a\nb\""),
    X("\"a\tb\""),
    X("\"\x01\""),
    X("\"\x1f\""),
    X("\v1"),
    X("\f1"),
    X("1\v"),
    X("\xef\xbb\xbf{}"),       /* BOM: not JSON whitespace */
    X("\"\xc0\xaf\""),	       /* overlong '/' */
    X("\"\xe0\x80\xaf\""),     /* overlong, 3 bytes */
    X("\"\xf0\x80\x80\xaf\""), /* overlong, 4 bytes */
    X("\"\xed\xa0\x80\""),     /* UTF-8-encoded surrogate D800 */
    X("\"\xed\xbf\xbf\""),     /* DFFF */
    X("\"\xf4\x90\x80\x80\""), /* U+110000 */
    X("\"\xf5\x80\x80\x80\""),
    X("\"\xff\""),
    X("\"\x80\""),
    X("\"\xc3\""), /* truncated */
    X("\"\xe2\x82\""),
    X("\"\xf0\x9f\x98\""),
    X("[\xc3\xa9]"),
    {"\"a\0b\"", 5, 0},
    {"[1]\0", 4, 0},
    {"1\0", 2, 0},
    {"[1\0]", 4, 0}, /* jansson accepts these two */
};

static void test_json_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
		const struct jcase *c = &json_cases[i];
		int got = json_valid(c->text, c->len);
		if (got != c->valid)
			fail_msg("case %zu: json_valid(\"%.*s\") = %d, want %d", i, (int)c->len,
				 c->text, got, c->valid);
	}
	/* A prefix of a valid text is not valid: the length is honoured. */
	assert_false(json_valid("[1,2]", 4));
	assert_true(json_valid("[1,2]xxx", 5));
	assert_false(json_valid(NULL, 0));
}

static char *nest(const char *open, const char *close, int depth, size_t *len)
{
	size_t o = strlen(open), c = strlen(close);
	char *s = malloc((o + c) * (size_t)depth + 2);
	size_t n = 0;
	assert_non_null(s);
	for (int i = 0; i < depth; i++, n += o)
		memcpy(s + n, open, o);
	s[n++] = '1';
	for (int i = 0; i < depth; i++, n += c)
		memcpy(s + n, close, c);
	s[n] = '\0';
	*len = n;
	return s;
}

static void test_json_depth(void **state)
{
	(void)state;
	size_t len;
	char *s;

	s = nest("[", "]", 512, &len);
	assert_true(json_valid(s, len));
	free(s);
	s = nest("[", "]", 513, &len);
	assert_false(json_valid(s, len));
	free(s);
	s = nest("{\"k\":", "}", 512, &len);
	assert_true(json_valid(s, len));
	free(s);
	s = nest("{\"k\":[", "]}", 256, &len);
	assert_true(json_valid(s, len));
	free(s);
	s = nest("{\"k\":[", "]}", 257, &len);
	assert_false(json_valid(s, len));
	free(s);
	/* Mismatched closers at depth (the bit stack must remember each level). */
	s = nest("[{\"a\":", "}]", 200, &len);
	assert_true(json_valid(s, len));
	s[len - 1] = '}';
	assert_false(json_valid(s, len));
	free(s);
	/* Very deep but unclosed: rejected without recursion. */
	size_t big = 1000000;
	s = malloc(big);
	assert_non_null(s);
	memset(s, '[', big);
	assert_false(json_valid(s, big));
	free(s);
}

struct ucase {
	const char *s;
	size_t len;
	int valid;
};
#define U(s, v)                                                                                    \
	{                                                                                          \
		s, sizeof(s) - 1, v                                                                \
	}

static const struct ucase utf8_cases[] = {
    U("", 1),
    U("plain ascii", 1),
    U("\x7f", 1),
    U("\xc2\x80", 1),
    U("\xdf\xbf", 1),
    U("\xe0\xa0\x80", 1),
    U("\xef\xbf\xbf", 1),
    U("\xed\x9f\xbf", 1),
    U("\xee\x80\x80", 1),
    U("\xf0\x90\x80\x80", 1),
    U("\xf4\x8f\xbf\xbf", 1),
    U("caf\xc3\xa9 \xe2\x82\xac", 1),
    U("12345678\xc3\xa9"
      "12345678",
      1), /* crosses the 8-byte fast path */
    /* overlongs */
    U("\xc0\x80", 0),
    U("\xc1\xbf", 0),
    U("\xe0\x80\x80", 0),
    U("\xe0\x9f\xbf", 0),
    U("\xf0\x80\x80\x80", 0),
    U("\xf0\x8f\xbf\xbf", 0),
    /* surrogates D800-DFFF encoded */
    U("\xed\xa0\x80", 0),
    U("\xed\xaf\xbf", 0),
    U("\xed\xb0\x80", 0),
    U("\xed\xbf\xbf", 0),
    U("\xed\xa0\xbd\xed\xb8\x80", 0), /* CESU-8 pair */
    /* above U+10FFFF */
    U("\xf4\x90\x80\x80", 0),
    U("\xf5\x80\x80\x80", 0),
    U("\xf7\xbf\xbf\xbf", 0),
    U("\xf8\x88\x80\x80\x80", 0),
    U("\xfc\x84\x80\x80\x80\x80", 0),
    U("\xfe", 0),
    U("\xff", 0),
    /* lone continuation, truncated sequences */
    U("\x80", 0),
    U("\xbf", 0),
    U("a\x80z", 0),
    U("\xc3", 0),
    U("\xe2\x82", 0),
    U("\xf0\x9f\x98", 0),
    U("\xc3"
      "a",
      0),
    U("\xe2"
      "a\xac",
      0),
    U("12345678\xc3", 0),
    U("1234567\xe2\x82", 0),
};

static void test_utf8(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		const struct ucase *c = &utf8_cases[i];
		if (utf8_valid(c->s, c->len) != c->valid)
			fail_msg("utf8 case %zu: want %d", i, c->valid);
		/* utf8_valid and the replacement in json_append_string agree. */
		struct buf b;
		int replaced = 0;
		buf_init(&b, 0);
		assert_int_equal(json_append_string(&b, c->s, c->len, &replaced), 0);
		assert_int_equal(replaced, !c->valid);
		assert_true(json_valid(buf_data(&b), b.len));
		buf_free(&b);
	}
	/* NUL is valid UTF-8. */
	assert_true(utf8_valid("a\0b", 3));
}

static void expect_str(const char *in, size_t len, const char *want, int want_replaced)
{
	struct buf b;
	int replaced = 0;

	buf_init(&b, 16); /* headroom must not matter */
	assert_int_equal(json_append_string(&b, in, len, &replaced), 0);
	assert_string_equal(buf_data(&b), want);
	assert_int_equal(b.len, strlen(want));
	assert_int_equal(replaced, want_replaced);
	buf_free(&b);
}

#define ES(in, want, r) expect_str(in, sizeof(in) - 1, want, r)

static void test_append_string(void **state)
{
	(void)state;
	ES("", "\"\"", 0);
	ES("hello", "\"hello\"", 0);
	ES("a\"b\\c", "\"a\\\"b\\\\c\"", 0);
	ES("\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"", 0);
	ES("\x01\x1f\x00", "\"\\u0001\\u001f\\u0000\"", 0);
	ES("/\x7f", "\"/\x7f\"", 0);
	ES("caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", 0);
	/* invalid sequences: one U+FFFD per maximal subpart */
	ES("a\xff"
	   "b",
	   "\"a\xef\xbf\xbd"
	   "b\"",
	   1);
	ES("\xc3", "\"\xef\xbf\xbd\"", 1);
	ES("\xe2\x82"
	   "x",
	   "\"\xef\xbf\xbd"
	   "x\"",
	   1);						   /* truncated 3-byte: one FFFD */
	ES("\xf0\x9f\x98", "\"\xef\xbf\xbd\"", 1);	   /* truncated 4-byte: one FFFD */
	ES("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"", 1); /* overlong: two */
	ES("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", 1); /* surrogate: three */
	ES("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", 1);
	ES("\x80\"", "\"\xef\xbf\xbd\\\"\"", 1);
	/* NULL replaced is allowed */
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(json_append_string(&b, "\xff", 1, NULL), 0);
	assert_string_equal(buf_data(&b), "\"\xef\xbf\xbd\"");
	buf_free(&b);
}

/* ---- cross-check against jansson ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void gen_value(struct buf *b, int depth);

static void gen_string(struct buf *b)
{
	static const char *const parts[] = {
	    "a",
	    "xyz",
	    " ",
	    "\\n",
	    "\\\"",
	    "\\\\",
	    "\\/",
	    "\\u00e9",
	    "\\u0041",
	    "\\ud83d\\ude00",
	    "\xc3\xa9",
	    "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80",
	    "\\t",
	    "\x7f",
	};
	buf_putc(b, '"');
	for (unsigned i = rnd(5); i > 0; i--)
		buf_puts(b, parts[rnd(sizeof(parts) / sizeof(parts[0]))]);
	buf_putc(b, '"');
}

static void gen_ws(struct buf *b)
{
	static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
	buf_puts(b, ws[rnd(sizeof(ws) / sizeof(ws[0]))]);
}

static void gen_value(struct buf *b, int depth)
{
	static const char *const nums[] = {"0",	   "-0",     "1",      "-12",  "3.25", "1e5",
					   "2E-3", "0.5e+2", "123456", "-7.0", "10"};
	unsigned k = rnd(depth > 6 ? 6 : 9);
	gen_ws(b);
	switch (k) {
	case 0:
	case 1:
		buf_puts(b, nums[rnd(sizeof(nums) / sizeof(nums[0]))]);
		break;
	case 2:
	case 3:
		gen_string(b);
		break;
	case 4:
		buf_puts(b, rnd(2) ? "true" : "false");
		break;
	case 5:
		buf_puts(b, "null");
		break;
	case 6:
	case 7: {
		buf_putc(b, '[');
		unsigned n = rnd(4);
		for (unsigned i = 0; i < n; i++) {
			if (i)
				buf_putc(b, ',');
			gen_value(b, depth + 1);
		}
		gen_ws(b);
		buf_putc(b, ']');
		break;
	}
	default: {
		buf_putc(b, '{');
		unsigned n = rnd(4);
		for (unsigned i = 0; i < n; i++) {
			if (i)
				buf_putc(b, ',');
			gen_ws(b);
			buf_printf(b, "\"k%u\"", i); /* distinct keys */
			gen_ws(b);
			buf_putc(b, ':');
			gen_value(b, depth + 1);
		}
		gen_ws(b);
		buf_putc(b, '}');
		break;
	}
	}
	gen_ws(b);
}

/* A byte edit that often breaks the text: JSON punctuation, digits, escape
 * material and bytes >= 0x80 are likelier than others. */
static void mutate(struct buf *b)
{
	static const char pool[] =
	    "{}[],:\"\\u0123456789eE+-.tfnlx \n\x01\x80\xbf\xc3\xed\xa0\xf4\xff"
	    "Dd8";
	char *s = buf_data(b);
	size_t pos = b->len ? rnd((unsigned)b->len) : 0;
	char c = pool[rnd(sizeof(pool) - 1)];

	switch (rnd(3)) {
	case 0: /* replace */
		if (b->len)
			s[pos] = c;
		break;
	case 1: /* delete */
		if (b->len) {
			memmove(s + pos, s + pos + 1, b->len - pos - 1);
			b->len--;
		}
		break;
	default: /* insert */
		buf_putc(b, 0);
		s = buf_data(b);
		memmove(s + pos + 1, s + pos, b->len - 1 - pos);
		s[pos] = c;
		break;
	}
}

/* jansson rejects these on purpose where json_valid() accepts (see json.c). */
static int known_difference(const json_error_t *e)
{
	return strstr(e->text, "invalid Unicode '") || strstr(e->text, "real number overflow") ||
	       strstr(e->text, "too big") || strstr(e->text, "NUL byte in object key");
}

static void test_cross_check_jansson(void **state)
{
	(void)state;
	unsigned n = 0, valid = 0, invalid = 0, known = 0;
	struct buf b;

	buf_init(&b, 0);
	for (unsigned i = 0; i < 6000; i++) {
		buf_reset(&b);
		gen_value(&b, 0);
		unsigned edits = rnd(3); /* a third stay valid */
		for (unsigned e = 0; e < edits; e++)
			mutate(&b);
		json_error_t jerr;
		json_t *j =
		    json_loadb(buf_data(&b), b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		int ours = json_valid(buf_data(&b), b.len);
		n++;
		if (ours && !j && known_difference(&jerr)) {
			known++;
			continue;
		}
		if (ours != (j != NULL))
			fail_msg("disagreement on [%.*s]: json_valid=%d jansson=%s", (int)b.len,
				 buf_data(&b), ours, j ? "valid" : jerr.text);
		if (ours)
			valid++;
		else
			invalid++;
		json_decref(j);
	}
	buf_free(&b);
	print_message("# cross-check: %u cases, %u valid, %u invalid, %u known differences\n", n,
		      valid, invalid, known);
	assert_true(valid >= 1000);
	assert_true(invalid >= 1000);
}

/* json_append_string output reads back through jansson as the input. */
static void test_append_roundtrip(void **state)
{
	(void)state;
	struct buf in, out;

	buf_init(&in, 0);
	buf_init(&out, 0);
	for (unsigned i = 0; i < 3000; i++) {
		buf_reset(&in);
		buf_reset(&out);
		unsigned n = rnd(24);
		for (unsigned k = 0; k < n; k++) {
			unsigned r = rnd(10);
			if (r < 4)
				buf_putc(&in, (char)rnd(128));
			else if (r < 6)
				buf_puts(&in, "\xc3\xa9");
			else if (r < 7)
				buf_puts(&in, "\xf0\x9f\x98\x80");
			else
				buf_putc(&in, (char)(0x80 + rnd(128)));
		}
		int replaced = 0;
		assert_int_equal(
		    json_append_string(&out, buf_data(&in) ? buf_data(&in) : "", in.len, &replaced),
		    0);
		assert_int_equal(replaced, !utf8_valid(buf_data(&in), in.len));
		assert_true(json_valid(buf_data(&out), out.len));
		json_error_t jerr;
		json_t *j =
		    json_loadb(buf_data(&out), out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!j)
			fail_msg("jansson rejects our string: %s", jerr.text);
		assert_true(json_is_string(j));
		if (!replaced) {
			assert_int_equal(json_string_length(j), in.len);
			assert_memory_equal(json_string_value(j), buf_data(&in), in.len);
		}
		json_decref(j);
	}
	buf_free(&in);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_table),
	    cmocka_unit_test(test_json_depth),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_append_string),
	    cmocka_unit_test(test_cross_check_jansson),
	    cmocka_unit_test(test_append_roundtrip),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
