/*
 * log.c — owns the process's log sink (stderr) and its threshold. Every
 * line is scrubbed of access tokens (a value after "token=" or "Bearer ")
 * before it is written.
 *
 * Runs on the loop thread; log_write() is also safe from other threads (one
 * fprintf per line, stdio locks the stream). Allocates nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

static enum log_level threshold = LOG_LVL_INFO;
static char instance_id[64] = "-";

static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
	threshold = level;
}

enum log_level log_get_level(void)
{
	return threshold;
}

void log_set_instance(const char *instance)
{
	snprintf(instance_id, sizeof(instance_id), "%s", instance ? instance : "-");
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	if (!strcasecmp(s, "err"))
		return LOG_LVL_ERR;
	if (!strcasecmp(s, "warning"))
		return LOG_LVL_WARN;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < 4 ? names[level] : "?";
}

/* Characters a token can be made of (base64url, '.', and what a URL
 * might escape them as). */
static int token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '%' || c == '~' || c == '+' || c == '/' ||
	       c == '=';
}

/* Replace the value after each marker ("token=", "Bearer ") with "***": an
 * access token is a secret, and a URL or header quoted in any log line —
 * lws's own included — must not leak it. In place; the text only shrinks. */
static void mask_tokens(char *text)
{
	static const char *const marks[] = {"token=", "Bearer ", "bearer "};
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		size_t ml = strlen(marks[m]);
		for (char *p = text; (p = strstr(p, marks[m]));) {
			char *v = p + ml, *e = v;
			while (*e && token_char(*e))
				e++;
			if (e - v > 3) {
				memcpy(v, "***", 3);
				memmove(v + 3, e, strlen(e) + 1);
			}
			p = v;
		}
	}
}

void log_vwrite(enum log_level level, const char *tag, const char *fmt, va_list ap)
{
	if (level > threshold)
		return;
	struct timespec ts;
	struct tm tm;
	char when[32], text[2048];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(text, sizeof(text), fmt, ap);
	mask_tokens(text);
	/* One line per call: strip trailing newlines a caller may add. */
	size_t n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	fprintf(stderr, "%s.%03ldZ %-5s [%s] %s: %s\n", when, ts.tv_nsec / 1000000,
		log_level_name(level), instance_id, tag, text);
}

void log_write(enum log_level level, const char *tag, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, tag, fmt, ap);
	va_end(ap);
}
