/*
 * json.c — the JSON helpers of protocol.h that sit on the hot path: a strict
 * UTF-8 checker, an RFC 8259 validator and a JSON string writer. Pure
 * functions over caller-owned bytes; any thread; json_valid() and
 * utf8_valid() allocate nothing, json_append_string() grows only the
 * caller's struct buf.
 *
 * json_valid() runs once per broker message (proto_message() decides whether
 * a payload is embedded raw), so it is a single iterative pass: no
 * recursion, no allocation, an explicit nesting stack of 512 bits on the C
 * stack (1 = object, 0 = array).
 *
 * Decisions, where RFC 8259 leaves room:
 *  - Any top-level value is accepted ("3", "\"x\"", "null"), with optional
 *    surrounding whitespace (space, tab, CR, LF only).
 *  - \u escapes are checked for four hex digits only. A lone surrogate such
 *    as "\uD800" is allowed: the RFC 8259 grammar allows it (section 8.2), and
 *    JavaScript's JSON.parse(), which reads these frames in the browser,
 *    accepts it. "\u0000" is allowed likewise. jansson rejects both.
 *  - Numbers are checked against the grammar only, not against a range:
 *    "1e400" and 30-digit integers are valid JSON (jansson rejects them as
 *    overflow; JSON.parse() gives Infinity / a rounded double).
 *  - Nesting deeper than JSON_MAX_DEPTH (512) is invalid (jansson: 2048).
 *  - A raw NUL byte outside a string is a syntax error (jansson's
 *    json_loadb() accepts "1\0" and "[1\0]").
 *  - Raw bytes must be valid UTF-8 (utf8_valid() rules), also outside
 *    strings, where any byte >= 0x80 is a syntax error anyway.
 * tests/unit/test_json.c checks these against jansson on generated input.
 */
#include <stdint.h>
#include <string.h>

#include <fanout/plugin.h>

#include "protocol.h"

#define JSON_MAX_DEPTH 512

/*
 * Length of the valid UTF-8 sequence at p[0..n) (n >= 1): 1..4, or 0 when
 * the bytes there are not valid; then *bad is the length of the maximal
 * subpart to replace by one U+FFFD (Unicode 15, section 3.9, "U+FFFD
 * Substitution of Maximal Subparts"), at least 1. Table 3-7 of the standard:
 * no overlongs (C0, C1, E0 80..9F, F0 80..8F), no surrogates (ED A0..BF), no
 * code points above U+10FFFF (F4 90.., F5..FF).
 */
static inline size_t utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
	unsigned c = p[0];
	unsigned lo = 0x80, hi = 0xBF;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		goto invalid1;
	if (c < 0xE0) {
		need = 1;
	} else if (c < 0xF0) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c < 0xF5) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		goto invalid1;
	}
	if (n < 2 || p[1] < lo || p[1] > hi)
		goto invalid1;
	for (size_t i = 2; i <= need; i++) {
		if (i >= n || (p[i] & 0xC0) != 0x80) {
			*bad = i;
			return 0;
		}
	}
	return need + 1;
invalid1:
	*bad = 1;
	return 0;
}

int utf8_stream_feed(struct utf8_stream *st, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	unsigned need = st->need, lo = st->lo, hi = st->hi;

	if (st->bad)
		return 0;
	while (i < len) {
		if (need) { /* inside a sequence: the next byte must be in [lo, hi] */
			if (p[i] < lo || p[i] > hi)
				goto bad;
			lo = 0x80;
			hi = 0xBF;
			need--;
			i++;
			continue;
		}
		/* ASCII fast path, eight bytes at a time. */
		while (i + 8 <= len) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & UINT64_C(0x8080808080808080))
				break;
			i += 8;
		}
		if (i >= len)
			break;
		unsigned c = p[i++];
		if (c < 0x80)
			continue;
		/* Table 3-7 of the Unicode standard, as in utf8_seq(). */
		lo = 0x80;
		hi = 0xBF;
		if (c < 0xC2 || c > 0xF4)
			goto bad;
		if (c < 0xE0) {
			need = 1;
		} else if (c < 0xF0) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		}
	}
	st->need = (unsigned char)need;
	st->lo = (unsigned char)lo;
	st->hi = (unsigned char)hi;
	return 1;
bad:
	st->bad = 1;
	return 0;
}

int utf8_valid(const char *s, size_t len)
{
	struct utf8_stream st = {0};
	return utf8_stream_feed(&st, s, len) && st.need == 0;
}

/* Byte classes inside a JSON string: 0 plain, 1 ends/escapes/forbidden
 * (" \ and controls), 2 non-ASCII (start of a UTF-8 sequence). */
static const unsigned char str_class[256] = {
    [0x00 ... 0x1F] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xFF] = 2,
};

static inline int is_hex(unsigned c)
{
	return (c - '0' < 10u) || ((c | 0x20) - 'a' < 6u);
}

static inline int is_digit(unsigned c)
{
	return c - '0' < 10u;
}

static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* p points just after the opening quote; returns the byte after the closing
 * quote, or NULL. */
static const unsigned char *scan_string(const unsigned char *p, const unsigned char *end)
{
	size_t bad;

	for (;;) {
		while (p < end && !str_class[*p])
			p++;
		if (p >= end)
			return NULL;
		unsigned c = *p;
		if (c == '"')
			return p + 1;
		if (c == '\\') {
			if (end - p < 2)
				return NULL;
			switch (p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p += 2;
				break;
			case 'u':
				if (end - p < 6 || !is_hex(p[2]) || !is_hex(p[3]) ||
				    !is_hex(p[4]) || !is_hex(p[5]))
					return NULL;
				p += 6;
				break;
			default:
				return NULL;
			}
		} else if (c >= 0x80) {
			size_t k = utf8_seq(p, (size_t)(end - p), &bad);
			if (!k)
				return NULL;
			p += k;
		} else {
			return NULL; /* control character */
		}
	}
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static const unsigned char *scan_number(const unsigned char *p, const unsigned char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (is_digit(*p)) {
		while (p < end && is_digit(*p))
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	return p;
}

static inline const unsigned char *scan_lit(const unsigned char *p, const unsigned char *end,
					    const char *lit, size_t n)
{
	if ((size_t)(end - p) < n || memcmp(p, lit, n))
		return NULL;
	return p + n;
}

int json_valid(const char *s, size_t len)
{
	if (!s)
		return 0;
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	uint64_t stack[JSON_MAX_DEPTH / 64] = {0}; /* bit set: object */
	unsigned depth = 0;

	p = skip_ws(p, end);

value:
	if (p >= end)
		return 0;
	switch (*p) {
	case '{':
	case '[': {
		int obj = *p == '{';
		if (depth == JSON_MAX_DEPTH)
			return 0;
		if (obj)
			stack[depth / 64] |= UINT64_C(1) << (depth % 64);
		else
			stack[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
		depth++;
		p = skip_ws(p + 1, end);
		if (p < end && *p == (obj ? '}' : ']')) {
			depth--;
			p++;
			goto after;
		}
		if (obj)
			goto key;
		goto value;
	}
	case '"':
		p = scan_string(p + 1, end);
		break;
	case 't':
		p = scan_lit(p, end, "true", 4);
		break;
	case 'f':
		p = scan_lit(p, end, "false", 5);
		break;
	case 'n':
		p = scan_lit(p, end, "null", 4);
		break;
	default:
		p = scan_number(p, end);
		break;
	}
	if (!p)
		return 0;

after:
	p = skip_ws(p, end);
	if (depth == 0)
		return p == end;
	if (p >= end)
		return 0;
	{
		int obj = (stack[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
		if (*p == ',') {
			p = skip_ws(p + 1, end);
			if (obj)
				goto key;
			goto value;
		}
		if (*p != (obj ? '}' : ']'))
			return 0;
		depth--;
		p++;
		goto after;
	}

key:
	if (p >= end || *p != '"')
		return 0;
	p = scan_string(p + 1, end);
	if (!p)
		return 0;
	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return 0;
	p = skip_ws(p + 1, end);
	goto value;
}

int json_append_string(struct buf *out, const char *s, size_t len, int *replaced)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0, bad;

	/* One reservation for the common case (nothing to escape). */
	if (buf_reserve(out, len + 2) || buf_putc(out, '"'))
		return FANOUT_ENOMEM;
	while (i < len) {
		unsigned c = p[i];
		unsigned cls = str_class[c];
		if (!cls) {
			i++;
			continue;
		}
		size_t skip = 1;
		if (cls == 2) {
			size_t k = utf8_seq(p + i, len - i, &bad);
			if (k) {
				i += k;
				continue;
			}
			skip = bad;
		}
		/* Flush the run of bytes that need no escaping. */
		buf_append(out, p + run, i - run);
		if (cls == 2) {
			buf_append(out, "\xEF\xBF\xBD", 3);
			if (replaced)
				*replaced = 1;
		} else {
			char e[6] = {'\\', 0, '0', '0', 0, 0};
			size_t n = 2;
			switch (c) {
			case '"':
				e[1] = '"';
				break;
			case '\\':
				e[1] = '\\';
				break;
			case '\n':
				e[1] = 'n';
				break;
			case '\t':
				e[1] = 't';
				break;
			case '\r':
				e[1] = 'r';
				break;
			case '\b':
				e[1] = 'b';
				break;
			case '\f':
				e[1] = 'f';
				break;
			default:
				e[1] = 'u';
				e[4] = hex[c >> 4];
				e[5] = hex[c & 15];
				n = 6;
				break;
			}
			buf_append(out, e, n);
		}
		i += skip;
		run = i;
	}
	buf_append(out, p + run, i - run);
	buf_putc(out, '"');
	return out->oom ? FANOUT_ENOMEM : 0;
}
