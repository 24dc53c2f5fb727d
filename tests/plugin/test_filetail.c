/*
 * test_filetail.c — the filetail backend against the mock host, and its line
 * parser directly (line.c is linked in). Each test works in a fresh
 * mkdtemp() directory, writes the tailed file itself and drives the mock
 * loop until the expected deliveries arrive (deadlines, never fixed sleeps,
 * except where the test must show that nothing arrives).
 *
 * Single-threaded: the file is written between loop runs, so the order of
 * "writer" and "reader" steps is exact and the results deterministic.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "line.h"
#include "mockhost.h"

#ifndef FILETAIL_SO
#define FILETAIL_SO "plugins/filetail/.libs/filetail.so"
#endif

/* ---- helpers ---- */

struct fx {
	char dir[64];
	char path[128];
	struct mockhost *m;
	const struct fanout_plugin *p;
	void *st;
};

static void wfile(const char *path, const char *flags, const char *data, size_t len)
{
	FILE *fp = fopen(path, flags);
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static void put(const char *path, const char *s)
{
	wfile(path, "wb", s, strlen(s));
}

static void append(const char *path, const char *s)
{
	wfile(path, "ab", s, strlen(s));
}

static void appendf(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(const char *path, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	append(path, buf);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/filetail-test-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/updates.jsonl", fx->dir);
	fx->m = mockhost_new();
	assert_non_null(fx->m);
	mockhost_set_quiet(fx->m, getenv("FILETAIL_VERBOSE") == NULL);
	fx->p = mockhost_dlopen(FILETAIL_SO);
	assert_non_null(fx->p);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	mockhost_free(fx->m);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", fx->dir);
	free(fx);
	return 0;
}

/* Start the backend on fx->path with extra "key","value" pairs (NULL-ended). */
static int start(struct fx *fx, ...)
{
	const char *kv[40];
	size_t n = 0;
	va_list ap;
	const char *k;

	kv[n++] = "path";
	kv[n++] = fx->path;
	va_start(ap, fx);
	while ((k = va_arg(ap, const char *)) != NULL && n < 38) {
		kv[n++] = k;
		kv[n++] = va_arg(ap, const char *);
	}
	va_end(ap);
	kv[n] = NULL;
	return mockhost_start(fx->m, fx->p, kv, &fx->st);
}

struct sub_wait {
	const char *ch;
	size_t n;
};

static int pred_sub_n(struct mockhost *m, void *arg)
{
	struct sub_wait *w = arg;

	return mockhost_n_subscribed_for(m, w->ch, 1) >= w->n;
}

static void sub(struct fx *fx, const char *ch)
{
	struct sub_wait w = {ch, mockhost_n_subscribed_for(fx->m, ch, 1) + 1};

	assert_int_equal(fx->p->subscribe(fx->st, ch), 0);
	/* Confirmed at once, or (start = end) once the lines before the start
	 * are counted. */
	assert_true(mockhost_run_until(fx->m, pred_sub_n, &w, 3000));
}

static int wait_n(struct fx *fx, size_t n, int ms)
{
	return mockhost_run_until(fx->m, mockhost_pred_n_delivered, &n, ms);
}

static uint64_t last_offset(struct fx *fx)
{
	return mockhost_delivered(fx->m, mockhost_n_delivered(fx->m) - 1)->offset;
}

static int wait_gaps(struct fx *fx, size_t n, int ms)
{
	return mockhost_run_until(fx->m, mockhost_pred_n_gaps, &n, ms);
}

static void expect_msg(struct fx *fx, size_t i, const char *ch, const char *data)
{
	const struct mock_msg *msg = mockhost_delivered(fx->m, i);

	assert_non_null(msg);
	assert_string_equal(msg->channel, ch);
	assert_int_equal(msg->len, strlen(data));
	assert_memory_equal(msg->data, data, msg->len);
}

/* Deliveries i..n-1 carry {"n":k} payloads k = first, first+1, ... in order. */
static void expect_seq(struct fx *fx, size_t from, size_t count, int first)
{
	char want[64];

	assert_int_equal(mockhost_n_delivered(fx->m), from + count);
	for (size_t i = 0; i < count; i++) {
		snprintf(want, sizeof(want), "{\"n\":%d}", first + (int)i);
		expect_msg(fx, from + i, "a", want);
	}
}

static void write_seq(const char *path, int from, int to)
{
	char buf[65536];
	size_t o = 0;

	for (int k = from; k <= to; k++) {
		if (o > sizeof(buf) - 128) {
			wfile(path, "ab", buf, o);
			o = 0;
		}
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "{\"channel\":\"a\",\"data\":{\"n\":%d}}\n", k);
	}
	wfile(path, "ab", buf, o);
}

/* ---- the line parser ---- */

static void parse_good(void **state)
{
	struct ft_line l;
	const char *why;
	const char *s = "{\"channel\":\"a.b:c/d-e_f\",\"data\":{\"x\": [1, 2, \"y\"]},"
			"\"ts\":1700000000123,\"extra\":true}";

	(void)state;
	assert_int_equal(ft_line_parse(FT_JSONL, s, strlen(s), 1024, &l, &why), FT_LINE_OK);
	assert_string_equal(l.channel, "a.b:c/d-e_f");
	assert_true(l.has_ts);
	assert_true(l.ts == 1700000000123LL);
	assert_int_equal(ft_line_payload(&l), 0);
	assert_int_equal(l.data_len, strlen("{\"x\":[1,2,\"y\"]}"));
	assert_memory_equal(l.data, "{\"x\":[1,2,\"y\"]}", l.data_len);
	ft_line_clear(&l);
	ft_line_clear(&l); /* twice is safe */

	/* A string payload keeps its quotes; CRLF endings are accepted. */
	s = "{\"channel\":\"a\",\"data\":\"x\\u00e9\"}\r";
	assert_int_equal(ft_line_parse(FT_JSONL, s, strlen(s), 1024, &l, &why), FT_LINE_OK);
	assert_false(l.has_ts);
	assert_int_equal(ft_line_payload(&l), 0);
	assert_string_equal(l.data, "\"x\xc3\xa9\"");
	ft_line_clear(&l);

	s = "{\"channel\":\"a\",\"data\":null,\"ts\":null}";
	assert_int_equal(ft_line_parse(FT_JSONL, s, strlen(s), 1024, &l, &why), FT_LINE_OK);
	assert_int_equal(ft_line_payload(&l), 0);
	assert_string_equal(l.data, "null");
	ft_line_clear(&l);

	/* raw: the line itself, not NUL-terminated input. */
	assert_int_equal(ft_line_parse(FT_RAW, "hello world|junk", 11, 1024, &l, &why), FT_LINE_OK);
	assert_int_equal(l.data_len, 11);
	assert_memory_equal(l.data, "hello world", 11);
	ft_line_clear(&l);

	assert_int_equal(ft_line_parse(FT_JSONL, "  \t\r", 4, 1024, &l, &why), FT_LINE_EMPTY);
	assert_int_equal(ft_line_parse(FT_RAW, "", 0, 1024, &l, &why), FT_LINE_EMPTY);
}

static void parse_bad(void **state)
{
	static const struct {
		const char *line;
		const char *why;
	} bad[] = {
	    {"{\"channel\":\"a\",\"data\":1", "bad JSON"},
	    {"[1,2]", "not a JSON object"},
	    {"{\"data\":1}", "missing \"channel\""},
	    {"{\"channel\":5,\"data\":1}", "not a string"},
	    {"{\"channel\":\"\",\"data\":1}", "invalid \"channel\""},
	    {"{\"channel\":\"a b\",\"data\":1}", "invalid \"channel\""},
	    {"{\"channel\":\"a\"}", "missing \"data\""},
	    {"{\"channel\":\"a\",\"data\":1,\"ts\":\"x\"}", "\"ts\""},
	    {"{\"channel\":\"a\",\"data\":1,\"ts\":-5}", "\"ts\""},
	    {"{\"channel\":\"a\",\"channel\":\"b\",\"data\":1}", "bad JSON"},
	    {"{\"channel\":\"a\",\"data\":\"\xff\"}", "invalid UTF-8"},
	};
	struct ft_line l;
	const char *why;
	char longline[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = ft_line_parse(FT_JSONL, bad[i].line, strlen(bad[i].line), 1024, &l, &why);
		if (r != FT_LINE_BAD || !why || !strstr(why, bad[i].why))
			fail_msg("line %zu (%s): r=%d why=%s, want %s", i, bad[i].line, r,
				 why ? why : "(null)", bad[i].why);
	}
	memset(longline, 'x', sizeof(longline));
	assert_int_equal(ft_line_parse(FT_RAW, longline, sizeof(longline), 299, &l, &why),
			 FT_LINE_BAD);
	assert_non_null(strstr(why, "max_line_bytes"));
	assert_int_equal(ft_line_parse(FT_RAW, longline, sizeof(longline), 300, &l, &why),
			 FT_LINE_OK);
	assert_int_equal(ft_line_parse(FT_RAW, "ab\xc0\x80", 4, 300, &l, &why), FT_LINE_BAD);
}

static void utf8(void **state)
{
	(void)state;
	assert_true(ft_utf8_valid("", 0));
	assert_true(ft_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_false(ft_utf8_valid("\xc3", 1));		    /* truncated */
	assert_false(ft_utf8_valid("\xe0\x80\x80", 3));	    /* overlong */
	assert_false(ft_utf8_valid("\xed\xa0\x80", 3));	    /* surrogate */
	assert_false(ft_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(ft_utf8_valid("\x80", 1));		    /* stray continuation */
	assert_true(ft_channel_valid("updates", 7));
	assert_false(ft_channel_valid("up dates", 8));
}

/* ---- the backend ---- */

static void config_errors(void **state)
{
	struct fx *fx = *state;

	/* raw needs a channel; speed must be a positive decimal. */
	assert_int_equal(start(fx, "format", "raw", NULL), FANOUT_EINVAL);
	assert_true(mockhost_log_contains(fx->m, "channel: required"));
	assert_int_equal(start(fx, "format", "raw", "channel", "bad channel", NULL), FANOUT_EINVAL);
	assert_int_equal(start(fx, "speed", "fast", NULL), FANOUT_EINVAL);
	assert_int_equal(start(fx, "speed", "0", NULL), FANOUT_EINVAL);
	assert_int_equal(start(fx, "speed", "-1", NULL), FANOUT_EINVAL);
	assert_int_equal(start(fx, "speed", "1e3", NULL), FANOUT_EINVAL);
	assert_int_equal(start(fx, "speed", "0.5", NULL), 0);
}

/* Replay from the beginning: every line in order; other channels skipped. */
static void replay(void **state)
{
	struct fx *fx = *state;
	enum { N = 3000 };
	char *big = malloc(200001);
	size_t n;

	assert_non_null(big);
	put(fx->path, "");
	for (int k = 1; k <= N; k++) {
		appendf(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":%d},\"ts\":%d}\n", k, k);
		if (k % 1000 == 0) /* a channel nobody subscribed to */
			append(fx->path, "{\"channel\":\"other\",\"data\":0}\n");
	}
	/* A line bigger than one read slice (64 KiB): the buffer grows. */
	memset(big, 'z', 200000);
	big[200000] = '\0';
	appendf(fx->path, "{\"channel\":\"b\",\"data\":\"");
	append(fx->path, big);
	append(fx->path, "\"}\n");

	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	sub(fx, "b");
	assert_true(wait_n(fx, N + 1, 10000));
	mockhost_run(fx->m, 50);
	n = mockhost_n_delivered(fx->m);
	assert_int_equal(n, N + 1);
	for (size_t i = 0; i < N; i++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"n\":%zu}", i + 1);
		expect_msg(fx, i, "a", want);
	}
	{
		const struct mock_msg *msg = mockhost_delivered(fx->m, N);
		assert_string_equal(msg->channel, "b");
		assert_int_equal(msg->len, 200002);
		assert_int_equal(msg->data[0], '"');
		assert_int_equal(msg->data[200001], '"');
	}
	assert_int_equal(mockhost_count(fx->m, "skipped_lines"), 3);
	assert_int_equal(mockhost_count(fx->m, "lines"), N + 4);
	assert_int_equal(mockhost_count(fx->m, "bad_lines"), 0);
	assert_int_equal(mockhost_last_state(fx->m, NULL), FANOUT_UP);
	assert_int_equal(mockhost_n_gaps(fx->m), 0);
	free(big);
}

/* Appends while running: single lines, a burst, a line written in two parts. */
static void appends(void **state)
{
	struct fx *fx = *state;

	put(fx->path, "");
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(mockhost_run_until(fx->m, mockhost_pred_up, NULL, 2000));
	mockhost_run(fx->m, 20);
	assert_int_equal(mockhost_n_delivered(fx->m), 0);

	write_seq(fx->path, 1, 1);
	assert_true(wait_n(fx, 1, 3000));
	write_seq(fx->path, 2, 2);
	assert_true(wait_n(fx, 2, 3000));
	write_seq(fx->path, 3, 5002); /* a burst: 5000 lines */
	assert_true(wait_n(fx, 5002, 5000));

	/* Half a line: nothing may be delivered until its newline arrives, even
	 * across several poll intervals (250 ms) and inotify wakeups. */
	append(fx->path, "{\"channel\":\"a\",\"da");
	mockhost_run(fx->m, 600);
	assert_int_equal(mockhost_n_delivered(fx->m), 5002);
	append(fx->path, "ta\":{\"n\":5003}}");
	mockhost_run(fx->m, 300);
	assert_int_equal(mockhost_n_delivered(fx->m), 5002);
	append(fx->path, "\n");
	assert_true(wait_n(fx, 5003, 3000));
	mockhost_run(fx->m, 50);
	expect_seq(fx, 0, 5003, 1);
	assert_int_equal(mockhost_count(fx->m, "bad_lines"), 0);
}

/* copytruncate: the file shrinks; the new content is read exactly once. */
static void truncation(void **state)
{
	struct fx *fx = *state;

	write_seq(fx->path, 1, 10);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 10, 3000));

	/* Truncate and write fewer bytes at once (as copytruncate + a writer do). */
	put(fx->path, "");
	write_seq(fx->path, 11, 13);
	assert_true(wait_gaps(fx, 1, 3000));
	assert_true(wait_n(fx, 13, 3000));
	/* More appends after the event: all of them, once. */
	write_seq(fx->path, 14, 20);
	assert_true(wait_n(fx, 20, 3000));
	mockhost_run(fx->m, 300);
	expect_seq(fx, 0, 20, 1);
	assert_int_equal(mockhost_n_gaps(fx->m), 1);
	assert_null(mockhost_gap(fx->m, 0)->channel);
	assert_string_equal(mockhost_gap(fx->m, 0)->reason, "file truncated");
	assert_int_equal(mockhost_count(fx->m, "truncated"), 1);
}

/* Rotation: rename + new file. The old file is finished first (including
 * lines its writer appended after the rename), then the new one from its
 * start; then the file disappears and comes back. */
static void rotation(void **state)
{
	struct fx *fx = *state;
	char old[160];
	FILE *writer;

	snprintf(old, sizeof(old), "%s.1", fx->path);
	write_seq(fx->path, 1, 10);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 10, 3000));

	writer = fopen(fx->path, "ab");
	assert_non_null(writer);
	assert_int_equal(rename(fx->path, old), 0);
	fprintf(writer, "{\"channel\":\"a\",\"data\":{\"n\":11}}\n");
	fprintf(writer, "{\"channel\":\"a\",\"data\":{\"n\":12}}\n");
	assert_int_equal(fclose(writer), 0);
	write_seq(fx->path, 13, 20);
	assert_true(wait_n(fx, 20, 3000));
	assert_true(wait_gaps(fx, 1, 3000));
	write_seq(fx->path, 21, 25);
	assert_true(wait_n(fx, 25, 3000));
	mockhost_run(fx->m, 300);
	expect_seq(fx, 0, 25, 1);
	assert_int_equal(mockhost_n_gaps(fx->m), 1);
	assert_string_equal(mockhost_gap(fx->m, 0)->reason, "file rotated");

	/* Gone: not ready, waiting; back: ready again, a gap, read from the start. */
	assert_int_equal(unlink(fx->path), 0);
	assert_true(mockhost_run_until(fx->m, mockhost_pred_down, NULL, 3000));
	{
		const char *why;
		assert_int_equal(mockhost_last_state(fx->m, &why), FANOUT_DOWN);
		assert_non_null(strstr(why, "waiting for"));
		assert_non_null(strstr(why, fx->path));
	}
	write_seq(fx->path, 26, 30);
	assert_true(wait_n(fx, 30, 3000));
	assert_true(mockhost_run_until(fx->m, mockhost_pred_up, NULL, 3000));
	mockhost_run(fx->m, 300);
	expect_seq(fx, 0, 30, 1);
	assert_int_equal(mockhost_n_gaps(fx->m), 2);
	assert_int_equal(mockhost_count(fx->m, "rotated"), 2);
}

/* The file (and its directory) does not exist yet: DOWN, then it appears. */
static void waits_for_file(void **state)
{
	struct fx *fx = *state;
	char sub_dir[100];
	const char *why;

	snprintf(sub_dir, sizeof(sub_dir), "%s/later", fx->dir);
	snprintf(fx->path, sizeof(fx->path), "%s/later/f.jsonl", fx->dir);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	mockhost_run(fx->m, 30);
	assert_int_equal(mockhost_last_state(fx->m, &why), FANOUT_DOWN);
	assert_non_null(strstr(why, "waiting for"));
	assert_int_equal(mkdir(sub_dir, 0700), 0);
	write_seq(fx->path, 1, 3);
	assert_true(wait_n(fx, 3, 3000)); /* found by polling, then watched */
	write_seq(fx->path, 4, 6);
	assert_true(wait_n(fx, 6, 3000));
	mockhost_run(fx->m, 50);
	expect_seq(fx, 0, 6, 1);
	assert_int_equal(mockhost_last_state(fx->m, NULL), FANOUT_UP);
	assert_int_equal(mockhost_n_gaps(fx->m), 0); /* a first file is no rotation */
}

/* Delivery times of messages 0..n-1 (loop clock, ms), as observed. */
static void times(struct fx *fx, size_t n, uint64_t *t, int timeout_ms)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(wait_n(fx, i + 1, timeout_ms));
		t[i] = mockhost_now_ms();
	}
}

/* pace = recorded: order and relative gaps (scaled by speed) respected. */
static void pace_recorded(void **state)
{
	struct fx *fx = *state;
	/* Recorded gaps 200, 600, 100, 400 ms; at speed 2: 100, 300, 50, 200. */
	static const int64_t ts[] = {0, 200, 800, 900, 1300};
	uint64_t t[5];

	put(fx->path, "");
	for (int i = 0; i < 5; i++)
		appendf(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":%d},\"ts\":%lld}\n", i + 1,
			(long long)(1700000000000LL + ts[i]));
	assert_int_equal(start(fx, "pace", "recorded", "speed", "2", NULL), 0);
	sub(fx, "a");
	times(fx, 5, t, 5000);
	expect_seq(fx, 0, 5, 1);
	for (int i = 1; i < 5; i++) {
		/* Scheduled against the first line's time, so compare cumulatively:
		 * one late wakeup must not make the next gap look short. */
		int64_t want = (ts[i] - ts[0]) / 2, got = (int64_t)(t[i] - t[0]);
		print_message("# line %d: recorded +%lld ms, speed 2: due +%lld, measured +%lld\n",
			      i + 1, (long long)(ts[i] - ts[0]), (long long)want, (long long)got);
		/* Never early; late only loosely. t[0] is when line 1's delivery
		 * was recorded, which on a slow run (valgrind, a loaded machine)
		 * is a few ms after the base the backend schedules from: allow
		 * that much (10 ms) besides clock rounding. */
		assert_true(got >= want - 10);
		assert_true(got <= want + 250);
		/* In order. (Two in one loop turn is right when the loop woke
		 * up late, as on a loaded machine: both were due.) */
		assert_true(t[i] >= t[i - 1]);
	}
	/* The whole run keeps the recorded span. */
	assert_true(t[4] - t[0] >= 650 - 10);
}

/* pace = rate: lines spaced by 1/rate. */
static void pace_rate(void **state)
{
	struct fx *fx = *state;
	uint64_t t[11];

	put(fx->path, "");
	write_seq(fx->path, 1, 11);
	assert_int_equal(start(fx, "pace", "rate", "rate", "50", NULL), 0);
	sub(fx, "a");
	times(fx, 11, t, 5000);
	expect_seq(fx, 0, 11, 1);
	print_message("# rate 50/s: 10 intervals took %llu ms (ideal 200)\n",
		      (unsigned long long)(t[10] - t[0]));
	assert_true(t[10] - t[0] >= 200 - 2);
	assert_true(t[10] - t[0] <= 200 + 400);
}

/* Mixed good and bad lines: every good one delivered, every bad one counted
 * and logged as FILE:LINE: reason. */
static void bad_lines(void **state)
{
	struct fx *fx = *state;
	static const int bad_at[] = {2, 4, 5, 6, 8, 10, 11};
	char needle[200];
	char big[200];

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(fx->path, "");
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":1}}\n");	 /* 1 */
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":\n");	 /* 2 broken */
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":2}}\n");	 /* 3 */
	append(fx->path, "{\"data\":{\"n\":99}}\n");			 /* 4 no channel */
	appendf(fx->path, "{\"channel\":\"a\",\"data\":\"%s\"}\n", big); /* 5 too long */
	append(fx->path, "{\"channel\":\"a\",\"data\":\"\xc3\x28\"}\n"); /* 6 bad UTF-8 */
	append(fx->path, "\n");						 /* 7 blank: fine */
	append(fx->path, "{\"channel\":\"no good\",\"data\":1}\n");	 /* 8 bad channel */
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":3}}\n");	 /* 9 */
	append(fx->path, "not json at all\n");				 /* 10 */
	append(fx->path, "{\"channel\":\"a\"}\n");			 /* 11 no data */
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":4}}\n");	 /* 12 */
	assert_int_equal(start(fx, "max_line_bytes", "128", NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 4, 3000));
	mockhost_run(fx->m, 50);
	expect_seq(fx, 0, 4, 1);
	assert_int_equal(mockhost_count(fx->m, "bad_lines"), 7);
	for (size_t i = 0; i < sizeof(bad_at) / sizeof(bad_at[0]); i++) {
		snprintf(needle, sizeof(needle), "%s:%d: ", fx->path, bad_at[i]);
		if (!mockhost_log_contains(fx->m, needle))
			fail_msg("no log line for bad line %d (%s)", bad_at[i], needle);
	}
	snprintf(needle, sizeof(needle), "%s:7: ", fx->path);
	assert_false(mockhost_log_contains(fx->m, needle));
}

/* A flood of bad lines: all counted, at most 10 logged a second, then a summary. */
static void bad_lines_rate_limited(void **state)
{
	struct fx *fx = *state;
	size_t logged = 0;
	char needle[160];

	put(fx->path, "");
	for (int i = 0; i < 500; i++)
		append(fx->path, "garbage\n");
	write_seq(fx->path, 1, 1);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 1, 3000));
	assert_int_equal(mockhost_count(fx->m, "bad_lines"), 500);
	assert_true(mockhost_run_until(fx->m,
				       (int (*)(struct mockhost *, void *))mockhost_log_contains,
				       "490 more bad lines suppressed", 3000));
	snprintf(needle, sizeof(needle), "%s:", fx->path);
	for (size_t i = 0; i < mockhost_n_logs(fx->m); i++)
		if (strstr(mockhost_log(fx->m, i)->text, "bad JSON"))
			logged++;
	assert_int_equal(logged, 10);
}

/* raw format, start = end, unsubscribe. */
static void raw_start_end(void **state)
{
	struct fx *fx = *state;

	put(fx->path, "old line 1\nold line 2\nhalf of a li");
	assert_int_equal(start(fx, "format", "raw", "channel", "logs", "start", "end", NULL), 0);
	sub(fx, "logs");
	mockhost_run(fx->m, 50);
	append(fx->path, "ne\n"); /* the rest of the line that started before us: skipped */
	append(fx->path, "plain text\n{\"json\":true}\n\"quoted\"\n");
	assert_true(wait_n(fx, 3, 3000));
	mockhost_run(fx->m, 50);
	assert_int_equal(mockhost_n_delivered(fx->m), 3);
	expect_msg(fx, 0, "logs", "plain text");
	expect_msg(fx, 1, "logs", "{\"json\":true}");
	expect_msg(fx, 2, "logs", "\"quoted\"");

	assert_int_equal(fx->p->unsubscribe(fx->st, "logs"), 0);
	append(fx->path, "nobody listens\n");
	mockhost_run(fx->m, 300);
	assert_int_equal(mockhost_n_delivered(fx->m), 3);
	sub(fx, "logs");
	append(fx->path, "back\n");
	assert_true(wait_n(fx, 4, 3000));
	expect_msg(fx, 3, "logs", "back");
}

/* follow = false: a finished file's last line counts without its newline;
 * loop = true replays it again and again. */
static void no_follow_loop(void **state)
{
	struct fx *fx = *state;

	write_seq(fx->path, 1, 2);
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":3}}");
	assert_int_equal(start(fx, "follow", "false", NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 3, 3000));
	mockhost_run(fx->m, 300);
	expect_seq(fx, 0, 3, 1);
	assert_true(mockhost_log_contains(fx->m, "finished after 3 lines"));
	mockhost_stop(fx->m);
	assert_int_equal(mockhost_n_timers(fx->m), 0);
	assert_int_equal(mockhost_n_watches(fx->m), 0);

	mockhost_reset_records(fx->m);
	assert_int_equal(
	    start(fx, "follow", "false", "loop", "true", "pace", "rate", "rate", "1000", NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 10, 3000));
	for (size_t i = 0; i < 10; i++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"n\":%zu}", i % 3 + 1);
		expect_msg(fx, i, "a", want);
	}
	assert_int_equal(mockhost_n_gaps(fx->m), 0);
}

/* Replay speed with pace = none (reported, not asserted). */
static void replay_speed(void **state)
{
	struct fx *fx = *state;
	size_t n = getenv("FANOUT_ASAN") && *getenv("FANOUT_ASAN") == 'y' ? 50000 : 200000;
	uint64_t t0, t1;
	struct timespec c0, c1;
	double cpu_s;

	put(fx->path, "");
	write_seq(fx->path, 1, (int)n);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	t0 = mockhost_now_ms();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	assert_true(wait_n(fx, n, 60000));
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	t1 = mockhost_now_ms();
	cpu_s = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	print_message("# replayed %zu lines in %llu ms: %.0f lines/s (pace = none, mock host)\n", n,
		      (unsigned long long)(t1 - t0),
		      (double)n * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1));
	print_message("# CPU: %.3f s, %.2f us per line, %.0f lines per CPU second\n", cpu_s,
		      cpu_s * 1e6 / (double)n, cpu_s > 0 ? (double)n / cpu_s : 0.0);
	{
		char want[32];
		snprintf(want, sizeof(want), "{\"n\":%zu}", n);
		assert_string_equal(mockhost_delivered(fx->m, n - 1)->data, want);
	}
}

/* Truncated and rewritten to the same size before the backend looked: the
 * first line changed, so it is a truncation (new epoch, gap), not silence. */
static void rewrite_same_size(void **state)
{
	struct fx *fx = *state;

	put(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":1}}\n");
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 1, 3000));
	put(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":2}}\n");
	assert_true(wait_gaps(fx, 1, 3000));
	assert_true(wait_n(fx, 2, 3000));
	expect_seq(fx, 0, 2, 1);
	assert_true(last_offset(fx) == 1);
	assert_string_not_equal(mockhost_delivered(fx->m, 0)->epoch,
				mockhost_delivered(fx->m, 1)->epoch);
}

/* ---- positions (ABI 1.1) ---- */

static int wait_hist(struct fx *fx, size_t n)
{
	return mockhost_run_until(fx->m, mockhost_pred_n_histories, &n, 3000);
}

/* Items of history answer number h (tokens are unique per test). */
static size_t items_of(struct fx *fx, uint64_t token, uint64_t *offs, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < mockhost_n_items(fx->m); i++)
		if (mockhost_item(fx->m, i)->token == token && k < cap)
			offs[k++] = mockhost_item(fx->m, i)->offset;
	return k;
}

/* Offsets are line numbers (every line counts: other channels, blank and
 * bad lines); top and history come from the file. */
static void positions(void **state)
{
	struct fx *fx = *state;
	const struct mock_sub *s;
	char epoch[80];
	uint64_t offs[16];
	size_t n;

	put(fx->path, "{\"channel\":\"a\",\"data\":1}\n"
		      "{\"channel\":\"b\",\"data\":2}\n"
		      "\n"
		      "not json\n"
		      "{\"channel\":\"a\",\"data\":{\"five\":5}}\n");
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	s = mockhost_subscribed(fx->m, 0);
	assert_non_null(s->epoch);
	assert_int_equal(s->epoch[0], 'f');
	assert_int_equal(strlen(s->epoch), 17);
	assert_int_equal(s->flags & FANOUT_POS_CONTIGUOUS, 0);
	snprintf(epoch, sizeof(epoch), "%s", s->epoch);
	assert_true(wait_n(fx, 2, 3000));
	assert_string_equal(mockhost_delivered(fx->m, 0)->epoch, epoch);
	assert_true(mockhost_delivered(fx->m, 0)->offset == 1);
	assert_true(mockhost_delivered(fx->m, 1)->offset == 5);
	expect_msg(fx, 1, "a", "{\"five\":5}");

	assert_int_equal(fx->p->top(fx->st, "a", 1), 0);
	assert_int_equal(mockhost_n_tops(fx->m), 1); /* answered at once */
	assert_string_equal(mockhost_top(fx->m, 0)->epoch, epoch);
	assert_true(mockhost_top(fx->m, 0)->top == 5);

	assert_int_equal(fx->p->history(fx->st, "a", epoch, 0, 10, 11), 0);
	assert_int_equal(fx->p->history(fx->st, "a", epoch, 1, 10, 12), 0);
	assert_int_equal(fx->p->history(fx->st, "a", epoch, 0, 1, 13), 0);
	assert_int_equal(fx->p->history(fx->st, "b", epoch, 0, 10, 14), 0);
	assert_int_equal(fx->p->history(fx->st, "a", epoch, 5, 10, 15), 0);
	assert_int_equal(fx->p->history(fx->st, "a", "f0000000000000000", 0, 10, 16), 0);
	assert_true(wait_hist(fx, 6));
	for (size_t i = 0; i < 6; i++) {
		const struct mock_pos *h = mockhost_history(fx->m, i);
		assert_int_equal(h->status, h->token == 16 ? FANOUT_EEPOCH : 0);
		assert_string_equal(h->epoch, epoch);
		assert_true(h->top == 5);
	}
	n = items_of(fx, 11, offs, 16);
	assert_int_equal(n, 2);
	assert_true(offs[0] == 1 && offs[1] == 5);
	n = items_of(fx, 12, offs, 16);
	assert_true(n == 1 && offs[0] == 5);
	n = items_of(fx, 13, offs, 16);
	assert_true(n == 1 && offs[0] == 1);
	n = items_of(fx, 14, offs, 16);
	assert_true(n == 1 && offs[0] == 2);
	assert_int_equal(items_of(fx, 15, offs, 16), 0);
	assert_int_equal(items_of(fx, 16, offs, 16), 0);
	for (size_t i = 0; i < mockhost_n_items(fx->m); i++)
		if (mockhost_item(fx->m, i)->offset == 5)
			assert_string_equal(mockhost_item(fx->m, i)->data, "{\"five\":5}");

	/* Appended: the next line number. */
	append(fx->path, "{\"channel\":\"a\",\"data\":6}\n");
	assert_true(wait_n(fx, 3, 3000));
	assert_true(last_offset(fx) == 6);
}

/* Truncation and rotation start new epochs; the old one answers EEPOCH. */
static void positions_new_epochs(void **state)
{
	struct fx *fx = *state;
	char e1[80], e2[80], old[160];

	snprintf(old, sizeof(old), "%s.1", fx->path);
	write_seq(fx->path, 1, 3);
	assert_int_equal(start(fx, NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 3, 3000));
	snprintf(e1, sizeof(e1), "%s", mockhost_delivered(fx->m, 0)->epoch);

	put(fx->path, "");
	write_seq(fx->path, 4, 5);
	assert_true(wait_n(fx, 5, 3000));
	snprintf(e2, sizeof(e2), "%s", mockhost_delivered(fx->m, 4)->epoch);
	assert_string_not_equal(e1, e2);
	assert_true(mockhost_delivered(fx->m, 3)->offset == 1);
	assert_true(mockhost_delivered(fx->m, 4)->offset == 2);
	assert_int_equal(fx->p->history(fx->st, "a", e1, 0, 10, 1), 0);
	assert_true(wait_hist(fx, 1));
	assert_int_equal(mockhost_history(fx->m, 0)->status, FANOUT_EEPOCH);
	assert_string_equal(mockhost_history(fx->m, 0)->epoch, e2);

	assert_int_equal(rename(fx->path, old), 0);
	write_seq(fx->path, 6, 6);
	assert_true(wait_n(fx, 6, 3000));
	assert_string_not_equal(mockhost_delivered(fx->m, 5)->epoch, e2);
	assert_string_not_equal(mockhost_delivered(fx->m, 5)->epoch, e1);
	assert_true(mockhost_delivered(fx->m, 5)->offset == 1);
}

/* start = end: the lines before the start are counted, so offsets are the
 * same as for an instance reading from the beginning, and history serves
 * them. Two instances on one file agree on epoch and offsets. */
static void positions_start_end(void **state)
{
	struct fx *fx = *state;
	struct mockhost *m2 = mockhost_new();
	void *st2;
	const char *kv[] = {"path", fx->path, NULL};
	uint64_t offs[8];
	const char *e;
	size_t one = 1;

	assert_non_null(m2);
	mockhost_set_quiet(m2, 1);
	write_seq(fx->path, 1, 3);
	assert_int_equal(start(fx, "start", "end", NULL), 0);
	sub(fx, "a");
	assert_true(mockhost_subscribed(fx->m, 0)->top == 3);
	e = mockhost_subscribed(fx->m, 0)->epoch;
	assert_int_equal(mockhost_start(m2, fx->p, kv, &st2), 0);
	assert_int_equal(fx->p->subscribe(st2, "a"), 0);
	append(fx->path, "{\"channel\":\"a\",\"data\":{\"n\":4}}\n");
	assert_true(wait_n(fx, 1, 3000));
	assert_true(mockhost_run_until(m2, mockhost_pred_n_delivered, &(size_t){4}, 3000));
	assert_true(mockhost_delivered(fx->m, 0)->offset == 4);
	assert_true(mockhost_delivered(m2, 3)->offset == 4);
	assert_string_equal(mockhost_delivered(m2, 3)->epoch, e);
	assert_string_equal(mockhost_delivered(fx->m, 0)->epoch, e);

	assert_int_equal(fx->p->history(fx->st, "a", e, 0, 10, 7), 0);
	assert_true(mockhost_run_until(fx->m, mockhost_pred_n_histories, &one, 3000));
	assert_int_equal(items_of(fx, 7, offs, 8), 4);
	assert_true(offs[0] == 1 && offs[3] == 4);
	mockhost_free(m2);
}

/* A long file with a small index (index_entries = 16: the stride doubles
 * many times): history still finds exactly the right lines. */
static void positions_index(void **state)
{
	struct fx *fx = *state;
	char buf[1 << 16];
	size_t o = 0;
	uint64_t offs[8];
	const char *e;
	int one_hist;

	for (int k = 1; k <= 5000; k++) {
		if (o > sizeof(buf) - 128) {
			wfile(fx->path, "ab", buf, o);
			o = 0;
		}
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "{\"channel\":\"%s\",\"data\":{\"n\":%d}}\n",
				      k % 3 == 0 ? "a" : "b", k);
	}
	wfile(fx->path, "ab", buf, o);
	assert_int_equal(start(fx, "index_entries", "16", NULL), 0);
	sub(fx, "a");
	assert_true(wait_n(fx, 1666, 5000));
	e = mockhost_delivered(fx->m, 0)->epoch;
	assert_int_equal(fx->p->history(fx->st, "a", e, 3000, 3, 1), 0);
	assert_int_equal(fx->p->history(fx->st, "a", e, 4990, 100, 2), 0);
	assert_int_equal(fx->p->history(fx->st, "b", e, 0, 2, 3), 0);
	one_hist = wait_hist(fx, 3);
	assert_true(one_hist);
	assert_int_equal(items_of(fx, 1, offs, 8), 3);
	assert_true(offs[0] == 3003 && offs[1] == 3006 && offs[2] == 3009);
	assert_int_equal(items_of(fx, 2, offs, 8), 3);
	assert_true(offs[0] == 4992 && offs[2] == 4998);
	assert_int_equal(items_of(fx, 3, offs, 8), 2);
	assert_true(offs[0] == 1 && offs[1] == 2);
	for (size_t i = 0; i < mockhost_n_items(fx->m); i++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"n\":%llu}",
			 (unsigned long long)mockhost_item(fx->m, i)->offset);
		assert_string_equal(mockhost_item(fx->m, i)->data, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_good),
	    cmocka_unit_test(parse_bad),
	    cmocka_unit_test(utf8),
	    cmocka_unit_test_setup_teardown(config_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(appends, setup, teardown),
	    cmocka_unit_test_setup_teardown(truncation, setup, teardown),
	    cmocka_unit_test_setup_teardown(rotation, setup, teardown),
	    cmocka_unit_test_setup_teardown(waits_for_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(pace_recorded, setup, teardown),
	    cmocka_unit_test_setup_teardown(pace_rate, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_lines_rate_limited, setup, teardown),
	    cmocka_unit_test_setup_teardown(raw_start_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(no_follow_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(replay_speed, setup, teardown),
	    cmocka_unit_test_setup_teardown(rewrite_same_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(positions, setup, teardown),
	    cmocka_unit_test_setup_teardown(positions_new_epochs, setup, teardown),
	    cmocka_unit_test_setup_teardown(positions_start_end, setup, teardown),
	    cmocka_unit_test_setup_teardown(positions_index, setup, teardown),
	};

	return cmocka_run_group_tests_name("filetail", tests, NULL, NULL);
}
