/*
 * cli.c — fanout-cli's entry point: the global --help/--version, dispatch to
 * the subcommands (sub.c: sub and pub; push.c; bench.c) and the helpers they
 * share (number parsing, clocks, signals, backoff, /proc CPU and RSS
 * readings and percentiles for the bench modes, the
 * one-connection loop, json_span). Single-threaded; nothing here allocates
 * beyond the stack.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef VERSION
#define VERSION "0.1.0"
#endif

volatile sig_atomic_t stop_requested;

static const char usage_text[] =
    "Usage: fanout-cli COMMAND [OPTIONS] ARGS...\n"
    "\n"
    "Talk to fanoutd and its Valkey broker from a terminal.\n"
    "\n"
    "Commands:\n"
    "  sub URL CHANNEL...        subscribe and print one JSON line per message\n"
    "  pub URL CHANNEL DATA      publish one message over the WebSocket protocol\n"
    "  push [OPTIONS]            publish demo updates (or lines) straight to Valkey\n"
    "  bench [OPTIONS]           load generator: N clients, latency, loss, server CPU/RSS\n"
    "\n"
    "URL is ws://HOST:PORT/PATH (default path /ws). Run 'fanout-cli COMMAND --help'\n"
    "for each command's options, or see fanout-cli(1).\n"
    "\n"
    "Exit status: 0 success, 1 failure (connection, server error, timeout, loss),\n"
    "2 usage error.\n";

void warnx_(const char *fmt, ...)
{
	va_list ap;

	fputs("fanout-cli: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fanout-cli: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'fanout-cli %s --help'.\n", cmd);
	return EXIT_USAGE;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_rate(const char *s, double *per_s)
{
	char num[64];
	const char *slash = strchr(s, '/');
	double div = 1, v;
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (slash) {
		if (!strcmp(slash, "/s"))
			div = 1;
		else if (!strcmp(slash, "/min"))
			div = 60;
		else
			return -1;
	}
	if (parse_double(num, 1e-6, 1e9, &v))
		return -1;
	*per_s = v / div;
	return 0;
}

int64_t now_ms_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_ns_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t now_ms_mono(void)
{
	return now_ns_mono() / 1000000;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

void install_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop; /* no SA_RESTART: poll()/sleeps return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms)
{
	int64_t cap = base_ms;

	for (int i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return (int64_t)((double)random() / ((double)RAND_MAX + 1.0) * (double)(cap + 1));
}

int wsc_run_one(struct wsc *c, int64_t deadline_ms, wsc_cb cb, void *arg, volatile int *done)
{
	while (!*done && !stop_requested) {
		struct pollfd pfd;
		int timeout = -1, r;

		if (c->state == WSC_CLOSED) {
			wsc_notify_closed(c, cb, arg);
			return 0;
		}
		if (deadline_ms) {
			int64_t left = deadline_ms - now_ms_mono();
			if (left <= 0)
				return 1;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN | (wsc_want_write(c) ? POLLOUT : 0);
		pfd.revents = 0;
		r = poll(&pfd, 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			warnx_("poll: %s", strerror(errno));
			return 1;
		}
		if (r == 0)
			continue;
		if (pfd.revents & (POLLOUT | POLLERR | POLLHUP))
			wsc_handle_write(c);
		if (c->state != WSC_CONNECTING && (pfd.revents & (POLLIN | POLLERR | POLLHUP)))
			wsc_handle_read(c, cb, arg);
		wsc_notify_closed(c, cb, arg);
	}
	return 0;
}

/* ---- json_span ---- */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_string(const char *p, const char *end)
{
	/* p at the opening quote */
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	p = skip_ws(p, end);
	if (p >= end)
		return NULL;
	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			p = skip_string(p, end);
			if (!p)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (depth == 0) {
			/* a scalar at top level: up to a delimiter */
			while (p < end && !strchr(",}] \t\r\n", *p))
				p++;
			return p;
		}
		p++;
	} while (depth > 0);
	return p;
}

int json_span(const char *s, size_t len, const char *key, const char **v, size_t *vlen)
{
	const char *p = s, *end = s + len;
	size_t kl = strlen(key);

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return -1;
	p = skip_ws(p + 1, end);
	while (p < end && *p == '"') {
		const char *k = p + 1, *ke = skip_string(p, end), *val, *ve;
		if (!ke)
			return -1;
		p = skip_ws(ke, end);
		if (p >= end || *p != ':')
			return -1;
		val = skip_ws(p + 1, end);
		ve = skip_value(val, end);
		if (!ve)
			return -1;
		if ((size_t)(ke - 1 - k) == kl && !memcmp(k, key, kl)) {
			*v = val;
			*vlen = (size_t)(ve - val);
			return 0;
		}
		p = skip_ws(ve, end);
		if (p < end && *p == ',')
			p = skip_ws(p + 1, end);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	    {"sub", cmd_sub},
	    {"pub", cmd_pub},
	    {"push", cmd_push},
	    {"bench", cmd_bench},
	};

	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)(now_ns_mono() ^ ((int64_t)getpid() << 16)));
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("fanout-cli %s\n", VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	warnx_("unknown command '%s'", argv[1]);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* ---- process measurements and percentiles (the bench modes) ---- */

double proc_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long proc_rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

double sorted_pct_ms(const uint64_t *v, int n, double q)
{
	if (n <= 0)
		return 0;
	int k = (int)ceil(q * n) - 1;
	if (k >= n)
		k = n - 1;
	return (double)v[k < 0 ? 0 : k] / 1000.0;
}
