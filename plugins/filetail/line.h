/*
 * line.h — the filetail line parser: one line of a tailed file in, one
 * update (channel, payload, optional timestamp) out. Pure functions with no
 * I/O and no state between calls, so the plugin, the unit test and the fuzz
 * harness (tests/fuzz/fuzz_filetail.c) link the same code.
 */
#ifndef FANOUT_FILETAIL_LINE_H
#define FANOUT_FILETAIL_LINE_H

#include <stddef.h>
#include <stdint.h>

enum ft_format {
	FT_JSONL = 0, /* {"channel":"...","data":<any JSON>,"ts":<ms, optional>} */
	FT_RAW = 1,   /* the line is the payload, for one configured channel */
};

/* Longest channel name (the client protocol's limit). */
#define FT_CHANNEL_MAX 200

/*
 * A parsed line. For FT_JSONL channel and the JSON tree are owned by the
 * struct (free with ft_line_clear()); data/data_len are only set by
 * ft_line_payload(). For FT_RAW, data points into the caller's line and
 * channel is NULL (the caller knows its configured channel).
 */
struct ft_line {
	char channel[FT_CHANNEL_MAX + 1]; /* NUL-terminated; "" for FT_RAW */
	int has_ts;			  /* ts present in the line */
	int64_t ts;			  /* ms since the epoch */
	const char *data;		  /* the payload bytes, once known */
	size_t data_len;
	char *owned; /* malloc'd payload (FT_JSONL), freed by ft_line_clear */
	void *json;  /* the parsed object (FT_JSONL), freed by ft_line_clear */
};

/* Results of ft_line_parse(). */
enum ft_parse_result {
	FT_LINE_OK = 0,	    /* *out holds an update */
	FT_LINE_EMPTY = 1,  /* blank line (only whitespace): skip, not an error */
	FT_LINE_BAD = -1,   /* malformed: *reason says why */
	FT_LINE_NOMEM = -2, /* allocation failure */
};

/*
 * Parse one line (without its '\n'; a trailing '\r' is dropped). line need
 * not be NUL-terminated. Lines longer than max_bytes, invalid UTF-8, broken
 * JSON, a root that is not an object, a missing or invalid "channel"
 * (1..200 bytes of [A-Za-z0-9_.:/-]), a missing "data" or a "ts" that is not
 * a non-negative number are FT_LINE_BAD with *reason set to a static or
 * per-thread string (valid until the next call). On FT_LINE_OK call
 * ft_line_clear() when done; on any other result *out needs no clearing.
 */
int ft_line_parse(enum ft_format fmt, const char *line, size_t len, size_t max_bytes,
		  struct ft_line *out, const char **reason);

/*
 * Serialise the payload of a parsed line (FT_JSONL: `data` compactly, so a
 * JSON string keeps its quotes; FT_RAW: already set). Done apart from
 * parsing so lines nobody subscribed to cost no serialisation. Returns 0 or
 * FT_LINE_NOMEM.
 */
int ft_line_payload(struct ft_line *l);

/* Free what a successful ft_line_parse() allocated; safe to call twice. */
void ft_line_clear(struct ft_line *l);

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ft_utf8_valid(const char *s, size_t len);

/* 1 when s[0..len) is a valid channel name: 1..200 bytes of [A-Za-z0-9_.:/-]. */
int ft_channel_valid(const char *s, size_t len);

#endif /* FANOUT_FILETAIL_LINE_H */
