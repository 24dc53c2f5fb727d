/*
 * ws_deflate.c — owns permessage-deflate (see ws_deflate.h): the offer
 * parser and response of the negotiation (pure), and zlib: one raw-deflate
 * stream per window size and one inflate stream for the whole process,
 * each reset per message (no context takeover either way, so no zlib state
 * lives in a connection).
 *
 * Loop thread only (the shared streams). Allocates the zlib streams on first
 * use (freed by ws_deflate_cleanup()) and grows the caller's buf.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "ws_deflate.h"

/* ---- negotiation ---- */

struct scan {
	const char *p, *end;
};

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void ows(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
		s->p++;
}

/* A token; its bounds in *t, *n. 0, or -1 when there is none. */
static int token(struct scan *s, const char **t, size_t *n)
{
	const char *b = s->p;
	while (s->p < s->end && is_tchar((unsigned char)*s->p))
		s->p++;
	*t = b;
	*n = (size_t)(s->p - b);
	return *n ? 0 : -1;
}

/* A token or quoted-string value, unquoted into v (at most vmax-1 bytes;
 * longer values are kept cut: no valid value is that long). 0 or -1. */
static int value(struct scan *s, char *v, size_t vmax)
{
	size_t k = 0;
	if (s->p < s->end && *s->p == '"') {
		s->p++;
		while (s->p < s->end && *s->p != '"') {
			if (*s->p == '\\' && s->p + 1 < s->end)
				s->p++;
			if (k + 1 < vmax)
				v[k++] = *s->p;
			s->p++;
		}
		if (s->p >= s->end)
			return -1; /* unterminated */
		s->p++;
	} else {
		const char *t;
		size_t n;
		if (token(s, &t, &n))
			return -1;
		for (size_t i = 0; i < n && k + 1 < vmax; i++)
			v[k++] = t[i];
	}
	v[k] = '\0';
	return 0;
}

/* "8".."15" in decimal without leading zeros, else -1. */
static int window_bits(const char *v)
{
	if (!strcmp(v, "8") || !strcmp(v, "9"))
		return v[0] - '0';
	if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && !v[2])
		return 10 + v[1] - '0';
	return -1;
}

static int name_is(const char *t, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(t, name, n);
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8 };

int ws_deflate_negotiate(const char *hdr, size_t len, char *out)
{
	struct scan s = {hdr, hdr + len};

	for (;;) { /* one offer per turn */
		const char *t;
		size_t n;
		ows(&s);
		if (s.p >= s.end)
			return 0;
		if (token(&s, &t, &n))
			return 0; /* not an extension list: refuse everything */
		int ours = name_is(t, n, "permessage-deflate"), ok = ours;
		unsigned seen = 0;
		int server_bits = 0;
		for (;;) { /* parameters */
			ows(&s);
			if (s.p >= s.end || *s.p == ',')
				break;
			if (*s.p != ';')
				return 0;
			s.p++;
			ows(&s);
			if (token(&s, &t, &n))
				return 0;
			ows(&s);
			char v[16];
			int has_value = 0;
			if (s.p < s.end && *s.p == '=') {
				s.p++;
				ows(&s);
				if (value(&s, v, sizeof(v)))
					return 0;
				has_value = 1;
			}
			unsigned bit = name_is(t, n, "server_no_context_takeover")   ? P_SNCT
				       : name_is(t, n, "client_no_context_takeover") ? P_CNCT
				       : name_is(t, n, "server_max_window_bits")     ? P_SMWB
				       : name_is(t, n, "client_max_window_bits")     ? P_CMWB
										     : 0;
			if (!bit || (seen & bit)) {
				ok = 0; /* unknown or repeated: refuse this offer */
				continue;
			}
			seen |= bit;
			if (bit == P_SNCT || bit == P_CNCT) {
				if (has_value)
					ok = 0;
			} else if (bit == P_SMWB) {
				server_bits = has_value ? window_bits(v) : -1;
				if (server_bits < 9) /* 8: zlib's raw deflate cannot */
					ok = 0;
			} else if (has_value && window_bits(v) < 0) {
				ok = 0;
			}
		}
		if (ours && ok) {
			int wbits = server_bits ? server_bits : 15;
			char *o = out;
			o += sprintf(o, "permessage-deflate; server_no_context_takeover; "
					"client_no_context_takeover");
			if (server_bits)
				sprintf(o, "; server_max_window_bits=%d", server_bits);
			return wbits;
		}
		if (s.p < s.end)
			s.p++; /* the ',' */
	}
}

/* ---- zlib ---- */

static z_stream deflaters[16]; /* by window bits 9..15 */
static int deflater_ready[16];
static z_stream inflater;
static int inflater_ready;

static int grow(struct buf *out, size_t more)
{
	return buf_reserve(out, more);
}

int ws_deflate_compress(const void *p, size_t len, int wbits, struct buf *out)
{
	if (wbits < 9 || wbits > 15)
		return -1;
	z_stream *z = &deflaters[wbits];
	if (!deflater_ready[wbits]) {
		memset(z, 0, sizeof(*z));
		if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -wbits, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		deflater_ready[wbits] = 1;
	} else if (deflateReset(z) != Z_OK) {
		return -1;
	}
	z->next_in = (Bytef *)p;
	z->avail_in = (uInt)len;
	size_t start = out->len;
	for (;;) {
		size_t room = deflateBound(z, z->avail_in) + 16;
		if (grow(out, room))
			return -1;
		z->next_out = (Bytef *)buf_data(out) + out->len;
		z->avail_out = (uInt)(out->cap - out->len);
		int rc = deflate(z, Z_SYNC_FLUSH);
		out->len = out->cap - z->avail_out;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
		if (z->avail_in == 0 && z->avail_out > 0)
			break;
	}
	/* A sync flush ends with an empty stored block, 00 00 FF FF: drop it. */
	if (out->len - start < 4 || memcmp(buf_data(out) + out->len - 4, "\0\0\xff\xff", 4))
		return -1;
	out->len -= 4;
	return 0;
}

/* 0: all input taken; 2: a final block ended the stream; 1: over max; -1. */
static int inflate_some(const void *p, size_t len, size_t max, size_t start, struct buf *out)
{
	z_stream *z = &inflater;
	z->next_in = (Bytef *)p;
	z->avail_in = (uInt)len;
	while (z->avail_in) {
		size_t used = out->len - start;
		if (used >= max + 1)
			return 1;
		size_t room = len * 4 + 256;
		if (room > max + 1 - used)
			room = max + 1 - used;
		if (grow(out, room))
			return -1;
		z->next_out = (Bytef *)buf_data(out) + out->len;
		z->avail_out = (uInt)room;
		int rc = inflate(z, Z_SYNC_FLUSH);
		out->len += room - z->avail_out;
		if (out->len - start > max)
			return 1;
		if (rc == Z_STREAM_END)
			return 2;		       /* a final block: nothing after it counts */
		if (rc == Z_BUF_ERROR && z->avail_out) /* no progress possible */
			return 0;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -1;
	}
	return 0;
}

int ws_deflate_inflate(const void *p, size_t len, size_t max, struct buf *out)
{
	static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
	if (!inflater_ready) {
		memset(&inflater, 0, sizeof(inflater));
		if (inflateInit2(&inflater, -15) != Z_OK)
			return -1;
		inflater_ready = 1;
	} else if (inflateReset(&inflater) != Z_OK) {
		return -1;
	}
	size_t start = out->len;
	int rc = inflate_some(p, len, max, start, out);
	if (rc == 0) {
		/* Not ended by a final block: the sync-flush tail the sender
		 * dropped ends the message, which must then sit at a block
		 * boundary (else it was cut short). */
		rc = inflate_some(tail, sizeof(tail), max, start, out);
		if (rc == 0 && !(inflater.data_type & 128))
			rc = -1;
	}
	return rc == 2 ? 0 : rc;
}

void ws_deflate_cleanup(void)
{
	for (int i = 0; i < 16; i++)
		if (deflater_ready[i]) {
			deflateEnd(&deflaters[i]);
			deflater_ready[i] = 0;
		}
	if (inflater_ready) {
		inflateEnd(&inflater);
		inflater_ready = 0;
	}
}
