/*
 * sse_id.c — event stream ids (sse_id.h): writing the positions of a
 * stream's channels as one id and reading them back from Last-Event-ID.
 * Pure functions, any thread; allocates nothing (writes into the caller's
 * buffer).
 */
#include <stdio.h>
#include <string.h>

#include "sse_id.h"

uint32_t sse_id_fingerprint_add(uint32_t h, const char *name)
{
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return (h ^ (uint8_t)'\n') * 16777619u;
}

uint32_t sse_id_fingerprint(const char *const *names, size_t n)
{
	uint32_t h = SSE_ID_FP_INIT;
	for (size_t i = 0; i < n; i++)
		h = sse_id_fingerprint_add(h, names[i]);
	return h;
}

int sse_id_write(struct buf *out, uint32_t fp, const struct proto_since *pos, size_t n)
{
	char tmp[PROTO_EPOCH_MAX + 24];
	size_t start = out->len;

	buf_printf(out, "v1;%08x;", fp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(out, ',');
		if (pos[i].set) {
			int k = snprintf(tmp, sizeof(tmp), "%s:%llu", pos[i].epoch,
					 (unsigned long long)pos[i].offset);
			buf_append(out, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
		}
		if (out->len - start > SSE_ID_MAX)
			break;
	}
	if (out->oom || out->len - start > SSE_ID_MAX) {
		out->len = start;
		return -1;
	}
	return 0;
}

int sse_id_parse(const char *s, size_t len, uint32_t fp, struct proto_since *pos, size_t n)
{
	char head[16];
	memset(pos, 0, n * sizeof(*pos));
	if (len > SSE_ID_MAX || len < 12)
		return -1;
	snprintf(head, sizeof(head), "v1;%08x;", fp);
	if (memcmp(s, head, 12))
		return -1;
	const char *p = s + 12, *end = s + len;
	for (size_t i = 0; i < n; i++) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		if ((comma != NULL) != (i + 1 < n))
			goto bad; /* n fields, n - 1 commas */
		if (e > p && proto_position_parse(p, (size_t)(e - p), &pos[i]))
			goto bad;
		p = comma ? comma + 1 : end;
	}
	if (p != end)
		goto bad;
	return 0;
bad:
	memset(pos, 0, n * sizeof(*pos));
	return -1;
}
