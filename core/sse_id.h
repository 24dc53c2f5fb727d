/*
 * sse_id.h — the id: of an event stream's events, which Last-Event-ID hands
 * back on reconnect so that every channel of the stream resumes:
 *
 *   v1;FFFFFFFF;EPOCH:OFFSET,,EPOCH:OFFSET
 *
 * FFFFFFFF is a fingerprint of the stream's channel list (in request
 * order), then one position per channel in that order, empty for a channel
 * that has none yet (or is not positioned). EventSource reconnects to the
 * same URL, so the list matches; an id from another channel list (or a
 * malformed one) resumes nothing, and those channels say so with a gap.
 * Each position is written and read as proto_position_parse() reads one.
 * Pure functions; fuzzed by tests/fuzz/fuzz_sse_id.c.
 */
#ifndef FANOUT_SSE_ID_H
#define FANOUT_SSE_ID_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "protocol.h" /* struct proto_since, proto_position_parse() */

/* The longest id written or read; a stream whose id would be longer sends
 * none (it cannot resume; its channels get gaps on reconnect). */
#define SSE_ID_MAX 2048

/* The fingerprint of a channel list (FNV-1a over the names, each ended by
 * '\n'); built one name at a time from SSE_ID_FP_INIT with
 * sse_id_fingerprint_add(). */
#define SSE_ID_FP_INIT 2166136261u
uint32_t sse_id_fingerprint_add(uint32_t fp, const char *name);
uint32_t sse_id_fingerprint(const char *const *names, size_t n);

/* Append the id for positions pos[0..n) (no "id: " and no line end).
 * Returns 0, or -1 when it would be longer than SSE_ID_MAX (nothing is
 * appended then). */
int sse_id_write(struct buf *out, uint32_t fp, const struct proto_since *pos, size_t n);

/*
 * Parse s[0..len) (a Last-Event-ID) for a stream of n channels with
 * fingerprint fp into pos[0..n). Returns 0 (every pos[i] set or not), or -1
 * when it is malformed, from another version, longer than SSE_ID_MAX, or
 * names another channel list (then every pos[i].set is 0).
 */
int sse_id_parse(const char *s, size_t len, uint32_t fp, struct proto_since *pos, size_t n);

#endif
