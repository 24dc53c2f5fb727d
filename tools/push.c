/*
 * push.c — `fanout-cli push`, the demo publisher: publishes straight to
 * Valkey at a steady rate (absolute CLOCK_MONOTONIC schedule), demo payloads
 * or one payload per input line, with FCALL fanout_publish (positioned: the
 * valkey backend's function library, loaded here too when the broker lacks
 * it) or with --plain PUBLISH; reconnects with full-jitter backoff when
 * Valkey goes away (the message in hand is sent again: at-least-once).
 * Single-threaded, synchronous hiredis; one redisContext, one line buffer
 * (getline), one payload buffer and the library text when it had to be
 * loaded, all freed before returning.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "cli.h"
#include "library.h"

struct push {
	struct redis_addr addr;
	char *channel; /* prefix + channel */
	double rate;
	int64_t count;	     /* 0 = unbounded */
	int64_t duration_ms; /* 0 = unbounded */
	FILE *in;	     /* --stdin / --file, else NULL: demo payloads */
	int quiet;
	int plain; /* --plain: PUBLISH, no positions */
	redisContext *rc;
	int64_t sent, receivers, reconnects, errors;
	char epoch[72]; /* the last position given by fanout_publish */
	long long offset;
	int loaded; /* the library had to be loaded */
};

/* demo updates: "<a><number><b>" */
static const struct {
	const char *a, *b;
} demo_text[] = {
    {"build #", " passed"},	     {"deploy of web-", " finished"}, {"order ", " shipped"},
    {"sensor ", " reports 21.5 C"},  {"ticket ", " closed"},	      {"user ", " signed in"},
    {"cache shard ", " rebalanced"}, {"invoice ", " paid"},	      {"job ", " queued"},
    {"backup ", " verified"},
};

static void rc_close(struct push *p)
{
	if (p->rc)
		redisFree(p->rc);
	p->rc = NULL;
}

/* One connect attempt (AUTH, SELECT). Returns 0, or -1 with *why set. */
static int rc_open(struct push *p, char *why, size_t whylen)
{
	struct timeval tv = {.tv_sec = 2};
	redisReply *r;

	rc_close(p);
	if (p->addr.unix_path[0])
		p->rc = redisConnectUnixWithTimeout(p->addr.unix_path, tv);
	else
		p->rc = redisConnectWithTimeout(p->addr.host, p->addr.port, tv);
	if (!p->rc || p->rc->err) {
		snprintf(why, whylen, "%s", p->rc ? p->rc->errstr : "out of memory");
		goto fail;
	}
	tv.tv_sec = 5;
	redisSetTimeout(p->rc, tv);
	if (p->addr.password[0]) {
		if (p->addr.user[0])
			r = redisCommand(p->rc, "AUTH %s %s", p->addr.user, p->addr.password);
		else
			r = redisCommand(p->rc, "AUTH %s", p->addr.password);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "AUTH: %s", r ? r->str : p->rc->errstr);
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	if (p->addr.db) {
		r = redisCommand(p->rc, "SELECT %d", p->addr.db);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "SELECT: %s", r ? r->str : p->rc->errstr);
			freeReplyObject(r);
			goto fail;
		}
		freeReplyObject(r);
	}
	return 0;
fail:
	rc_close(p);
	return -1;
}

/* Connect, retrying with backoff until it works or we are told to stop. */
static int rc_ensure(struct push *p, int64_t deadline_ms)
{
	char why[256], last[256] = "";
	int attempt = 0;

	while (!p->rc) {
		if (rc_open(p, why, sizeof(why)) == 0) {
			if (attempt && !p->quiet)
				warnx_("push: connected to Valkey again");
			return 0;
		}
		if (strcmp(why, last)) { /* log each distinct failure once */
			warnx_("push: Valkey %s:%d: %s; retrying",
			       p->addr.unix_path[0] ? p->addr.unix_path : p->addr.host,
			       p->addr.port, why);
			snprintf(last, sizeof(last), "%s", why);
		}
		{
			int64_t wait = backoff_ms(attempt++, 100, 5000);
			struct timespec ts = {.tv_sec = wait / 1000,
					      .tv_nsec = (wait % 1000) * 1000000};
			if (deadline_ms && now_ms_mono() + wait > deadline_ms)
				return -1;
			nanosleep(&ts, NULL);
			if (stop_requested)
				return -1;
		}
	}
	return 0;
}

int push_load_library(redisContext *rc, int quiet, const char *who)
{
	char *lib = vk_library_text("PUBLISH", VK_HISTORY_SIZE_DEFAULT, VK_HISTORY_TTL_DEFAULT);
	redisReply *r;
	int rc_ = -1;

	if (!lib)
		return -1;
	r = redisCommand(rc, "FUNCTION LOAD REPLACE %s", lib);
	if (r && r->type != REDIS_REPLY_ERROR) {
		rc_ = 0;
		if (!quiet)
			warnx_("%s: loaded the fanout functions into Valkey (history %d "
			       "messages, %d s)",
			       who, VK_HISTORY_SIZE_DEFAULT, VK_HISTORY_TTL_DEFAULT);
	} else {
		warnx_("%s: FUNCTION LOAD: %s (Redis/Valkey 7 needed; --plain publishes "
		       "without positions)",
		       who, r ? r->str : rc->errstr);
	}
	freeReplyObject(r);
	free(lib);
	return rc_;
}

/* The broker has no fanout functions (never saw fanoutd's valkey backend,
 * or restarted without persistence): load them. */
static int load_library(struct push *p)
{
	p->loaded = 1;
	return push_load_library(p->rc, p->quiet, "push");
}

/* Publish one payload; reconnect and resend on a lost connection. */
static int publish(struct push *p, const char *data, size_t len, int64_t deadline_ms)
{
	int reloaded = 0;

	for (;;) {
		redisReply *r;

		if (rc_ensure(p, deadline_ms))
			return -1;
		if (p->plain)
			r = redisCommand(p->rc, "PUBLISH %s %b", p->channel, data, len);
		else
			r = redisCommand(p->rc, "FCALL fanout_publish 1 fanout:{%s} %b", p->channel,
					 data, len);
		if (r && r->type == REDIS_REPLY_INTEGER) {
			p->receivers += r->integer;
			p->sent++;
			freeReplyObject(r);
			return 0;
		}
		if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_INTEGER) {
			snprintf(p->epoch, sizeof(p->epoch), "%s", r->element[0]->str);
			p->offset = r->element[1]->integer;
			p->sent++;
			freeReplyObject(r);
			return 0;
		}
		if (r && r->type == REDIS_REPLY_ERROR && !reloaded &&
		    !strncasecmp(r->str, "ERR Function not", 16)) {
			freeReplyObject(r);
			reloaded = 1;
			if (load_library(p) == 0)
				continue; /* send it again, once */
			p->errors++;
			return 0;
		}
		if (r) { /* an error reply: count it, the connection is fine */
			warnx_("push: %s: %s", p->plain ? "PUBLISH" : "FCALL fanout_publish",
			       r->str ? r->str : "unexpected reply");
			p->errors++;
			freeReplyObject(r);
			return 0;
		}
		warnx_("push: Valkey connection lost: %s; reconnecting", p->rc->errstr);
		p->reconnects++;
		rc_close(p);
	}
}

static void push_help(void)
{
	fputs("Usage: fanout-cli push [OPTIONS]\n"
	      "\n"
	      "The demo publisher: publish updates straight to Valkey (or Redis) at a steady\n"
	      "rate, for fanoutd's valkey backend to fan out, with FCALL fanout_publish: each\n"
	      "update gets its position and is kept in the channel's history, so clients\n"
	      "recover it (the function is loaded if the broker lacks it). Default payload:\n"
	      "  {\"seq\":N,\"ts\":MS,\"text\":\"<random demo update>\",\"value\":<random>}\n"
	      "With --stdin or --file each non-empty line is one payload, sent as is. Runs\n"
	      "until --count, --duration-s, the end of the input, or SIGINT/SIGTERM, then\n"
	      "prints a summary on stdout. Reconnects when Valkey goes away.\n"
	      "\n"
	      "Options:\n"
	      "  --redis URL           redis://[[user]:password@]host[:port][/db] or\n"
	      "                        unix:///path (default redis://127.0.0.1:6379/0)\n"
	      "  --redis-host H        overrides the URL's host\n"
	      "  --redis-port P        overrides the URL's port\n"
	      "  -c, --channel C       channel (default updates)\n"
	      "  --prefix P            Valkey channel prefix, as the backend's channel_prefix:\n"
	      "                        publishes to P + C\n"
	      "  -r, --rate N[/s|/min] messages per second (default 1/s)\n"
	      "  -n, --count N         stop after N messages\n"
	      "  -d, --duration-s S    stop after S seconds\n"
	      "  --plain               PUBLISH without positions (no history: Redis 6, or a\n"
	      "                        backend with history_size = 0)\n"
	      "  --stdin               payloads from standard input, one per line\n"
	      "  --file F              payloads from file F, one per line\n"
	      "  -q, --quiet           no progress lines on stderr\n"
	      "  -h, --help            this text\n",
	      stdout);
}

int cmd_push(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"redis", required_argument, NULL, 'R'},
	    {"redis-host", required_argument, NULL, 'H'},
	    {"redis-port", required_argument, NULL, 'P'},
	    {"channel", required_argument, NULL, 'c'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"rate", required_argument, NULL, 'r'},
	    {"count", required_argument, NULL, 'n'},
	    {"duration-s", required_argument, NULL, 'd'},
	    {"stdin", no_argument, NULL, 'S'},
	    {"plain", no_argument, NULL, 'L'},
	    {"file", required_argument, NULL, 'F'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct push p = {.rate = 1};
	const char *url = "redis://127.0.0.1:6379/0", *host = NULL, *channel = "updates";
	const char *prefix = "", *file = NULL;
	int64_t port = 0, start, next_ns, interval_ns, deadline = 0, late = 0;
	double dur = 0;
	int use_stdin = 0, opt, rc = EXIT_FAIL;
	char err[256], *line = NULL, *payload = NULL;
	size_t linecap = 0;

	while ((opt = getopt_long(argc, argv, "c:r:n:d:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'R':
			url = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'P':
			if (parse_i64(optarg, 1, 65535, &port))
				return usage_error("push", "--redis-port: 1..65535");
			break;
		case 'c':
			channel = optarg;
			break;
		case 'p':
			prefix = optarg;
			break;
		case 'r':
			if (parse_rate(optarg, &p.rate))
				return usage_error("push", "--rate: N, N/s or N/min, not '%s'",
						   optarg);
			break;
		case 'n':
			if (parse_i64(optarg, 1, INT64_MAX, &p.count))
				return usage_error("push", "--count: a positive integer");
			break;
		case 'd':
			if (parse_double(optarg, 0.001, 1e7, &dur))
				return usage_error("push", "--duration-s: a positive number");
			p.duration_ms = (int64_t)(dur * 1000);
			break;
		case 'S':
			use_stdin = 1;
			break;
		case 'L':
			p.plain = 1;
			break;
		case 'F':
			file = optarg;
			break;
		case 'q':
			p.quiet = 1;
			break;
		case 'h':
			push_help();
			return EXIT_OK;
		default:
			return usage_error("push", "unknown option");
		}
	}
	if (optind != argc)
		return usage_error("push", "unexpected argument '%s'", argv[optind]);
	if (use_stdin && file)
		return usage_error("push", "--stdin and --file exclude each other");
	if (!*channel)
		return usage_error("push", "--channel may not be empty");
	if (redis_addr_parse(url, &p.addr, err, sizeof(err)))
		return usage_error("push", "--redis: %s", err);
	if (host) {
		if (strlen(host) >= sizeof(p.addr.host))
			return usage_error("push", "--redis-host: too long");
		strcpy(p.addr.host, host);
		p.addr.unix_path[0] = '\0';
	}
	if (port)
		p.addr.port = (int)port;
	if (use_stdin)
		p.in = stdin;
	else if (file && !(p.in = fopen(file, "r"))) {
		warnx_("push: %s: %s", file, strerror(errno));
		return EXIT_FAIL;
	}
	if (asprintf(&p.channel, "%s%s", prefix, channel) < 0)
		return EXIT_FAIL;
	install_stop_signals();
	start = now_ms_mono();
	if (p.duration_ms)
		deadline = start + p.duration_ms;
	if (rc_ensure(&p, deadline)) {
		if (!stop_requested) {
			warnx_("push: could not reach Valkey before the end of the run");
			goto out;
		}
	}
	interval_ns = (int64_t)(1e9 / p.rate);
	if (interval_ns < 1)
		interval_ns = 1;
	next_ns = now_ns_mono();
	while (!stop_requested && (!p.count || p.sent + p.errors < p.count)) {
		const char *data;
		size_t len;
		int64_t now = now_ns_mono();

		if (deadline && now / 1000000 >= deadline)
			break;
		if (next_ns > now) {
			struct timespec ts = {.tv_sec = next_ns / 1000000000,
					      .tv_nsec = next_ns % 1000000000};
			int e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			if (e == EINTR)
				continue;
			if (deadline && now_ms_mono() >= deadline)
				break;
		} else if (now - next_ns > 1000000000) {
			/* more than a second behind (Valkey slow or away): don't burst */
			next_ns = now;
			late++;
		}
		next_ns += interval_ns;
		if (p.in) {
			ssize_t n = getline(&line, &linecap, p.in);
			if (n < 0)
				break;
			while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			if (n == 0) {
				next_ns -= interval_ns; /* empty lines cost no time */
				continue;
			}
			data = line;
			len = (size_t)n;
		} else {
			size_t k = (size_t)random() % (sizeof(demo_text) / sizeof(*demo_text));
			char text[96];
			free(payload);
			snprintf(text, sizeof(text), "%s%d%s", demo_text[k].a,
				 (int)(random() % 9000 + 1000), demo_text[k].b);
			if (asprintf(&payload,
				     "{\"seq\":%" PRId64 ",\"ts\":%" PRId64
				     ",\"text\":\"%s\",\"value\":%.2f}",
				     p.sent + 1, now_ms_real(), text,
				     (double)(random() % 100000) / 100.0) < 0) {
				payload = NULL;
				goto out;
			}
			data = payload;
			len = strlen(payload);
		}
		if (publish(&p, data, len, deadline))
			break;
	}
	{
		double secs = (double)(now_ms_mono() - start) / 1000.0;
		char what[160];
		if (p.plain)
			snprintf(what, sizeof(what), "%" PRId64 " deliveries to Valkey subscribers",
				 p.receivers);
		else if (p.offset)
			snprintf(what, sizeof(what), "last position %s:%lld", p.epoch, p.offset);
		else
			snprintf(what, sizeof(what), "no position");
		printf("published %" PRId64 " messages to %s in %.2f s (%.1f/s), %s, %" PRId64
		       " reconnects, %" PRId64 " errors%s\n",
		       p.sent, p.channel, secs, secs > 0 ? (double)p.sent / secs : 0.0, what,
		       p.reconnects, p.errors, late ? ", fell behind the rate" : "");
		fflush(stdout);
	}
	rc = p.errors ? EXIT_FAIL : EXIT_OK;
out:
	rc_close(&p);
	if (p.in && p.in != stdin)
		fclose(p.in);
	free(line);
	free(payload);
	free(p.channel);
	return rc;
}
