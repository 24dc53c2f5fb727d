/*
 * recover.c — `fanout-cli bench --recovery`: the recovery storm of issue 10.
 *
 *   N clients subscribe to positioned channels on the first --url (the
 *   instance to drain), one "keeper" client per channel on each other URL
 *   (so those instances serve the channels already, as in a deployment).
 *   Then --drain-pid gets SIGTERM; once every client has been closed, the
 *   publisher sends --missed updates per channel straight to the broker
 *   (FCALL fanout_publish, the valkey backend's positioned publish) and
 *   waits until the keepers have them. Then every client reconnects at once
 *   (round robin over the other URLs) and resubscribes with `since` = the
 *   last position it saw. A client is live again when its resume was
 *   answered recovered:true and it holds every missed update.
 *
 *   Reported: the time from the reconnects' start until every client is
 *   live, per-client percentiles, the messages replayed, and checks that
 *   each client got each missed offset exactly once and in order (no
 *   duplicate, no hole); the servers' and the broker's CPU during the
 *   storm (--server-pid, --broker-pid).
 *
 * One thread, one epoll set, the wsc client of this tool; the publisher is
 * synchronous hiredis (before the storm, not timed). Allocates the client
 * arrays; frees them on return.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "redis_addr.h"

#define MAX_URLS 16
#define MAX_PIDS 16

enum rstate { R_IDLE, R_CONNECTING, R_LIVE, R_CLOSED, R_RESUMING, R_DONE, R_FAILED };

struct rclient {
	struct wsc ws; /* first: a struct wsc * is a struct rclient * */
	uint8_t state, url, out_armed, keeper;
	uint32_t ch;
	char epoch[65];
	uint64_t offset; /* the last position seen */
	uint64_t want;	 /* resuming: the top the replay reaches */
	uint64_t got;	 /* messages received since the resume */
	int64_t t_start;
	int bad; /* a duplicate or a hole was seen */
};

struct rec {
	struct wsc_url url[MAX_URLS];
	struct sockaddr_storage ss[MAX_URLS];
	socklen_t sslen[MAX_URLS];
	int nurl, nclients, nch, missed, json;
	const char *chprefix, *redis_url;
	int pids[MAX_PIDS], npids, drain_pid, broker_pid;
	double timeout_s;
	int ep;
	struct rclient *cl; /* nclients, then nch * (nurl - 1) keepers */
	int ncl;
	int live, closed, done, failed, not_recovered, dups, holes;
	uint64_t replayed;
	uint64_t *top; /* per channel: the offset the keepers must reach */
	uint64_t *lat_us;
	int nlat;
	char first_error[200];
};

/* CPU seconds of pid; 0 when there is none (pid 0: not given) or unreadable */
static double proc_cpu(int pid)
{
	double v = pid > 0 ? proc_cpu_s(pid) : 0;
	return v > 0 ? v : 0;
}

static double servers_cpu(const struct rec *s)
{
	double sum = 0;
	for (int i = 0; i < s->npids; i++)
		sum += proc_cpu(s->pids[i]);
	return sum;
}

static void arm(struct rec *s, int i, int add)
{
	struct rclient *c = &s->cl[i];
	int want = wsc_want_write(&c->ws);
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
				 .data.u64 = (uint64_t)i};
	if (add)
		epoll_ctl(s->ep, EPOLL_CTL_ADD, c->ws.fd, &ev);
	else if (c->out_armed != want)
		epoll_ctl(s->ep, EPOLL_CTL_MOD, c->ws.fd, &ev);
	c->out_armed = (uint8_t)want;
}

static void start(struct rec *s, int i)
{
	struct rclient *c = &s->cl[i];
	int u = c->url;
	c->t_start = now_ns_mono();
	if (wsc_start(&c->ws, (struct sockaddr *)&s->ss[u], s->sslen[u], s->url[u].hostport,
		      s->url[u].path)) {
		if (!s->first_error[0])
			snprintf(s->first_error, sizeof(s->first_error), "%s", c->ws.err);
		c->state = R_FAILED;
		s->failed++;
		return;
	}
	arm(s, i, 1);
}

/* The number after "key": in a frame (0 when absent). */
static uint64_t num_of(const char *d, size_t len, const char *key)
{
	const char *p = memmem(d, len, key, strlen(key));
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static void str_of(const char *d, size_t len, const char *key, char *out, size_t size)
{
	const char *p = memmem(d, len, key, strlen(key));
	size_t n = 0;
	if (p)
		for (p += strlen(key); n + 1 < size && p < d + len && *p != '"'; p++)
			out[n++] = *p;
	out[n] = '\0';
}

static void on_event(struct wsc *w, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct rec *s = arg;
	struct rclient *c = (struct rclient *)w;

	if (ev == WSC_EV_OPEN) {
		char req[400];
		int n;
		if (c->state == R_RESUMING)
			n = snprintf(req, sizeof(req),
				     "{\"type\":\"subscribe\",\"channel\":\"%s%u\",\"id\":\"s\","
				     "\"since\":{\"epoch\":\"%s\",\"offset\":%" PRIu64 "}}",
				     s->chprefix, c->ch, c->epoch, c->offset);
		else
			n = snprintf(req, sizeof(req),
				     "{\"type\":\"subscribe\",\"channel\":\"%s%u\",\"id\":\"s\"}",
				     s->chprefix, c->ch);
		wsc_send_text(w, req, (size_t)n);
		return;
	}
	if (ev == WSC_EV_TEXT) {
		if (memmem(data, len, "\"type\":\"message\"", 16)) {
			uint64_t off = num_of(data, len, "\"offset\":");
			if (off != c->offset + 1) {
				if (off <= c->offset)
					s->dups++;
				else
					s->holes++;
				c->bad = 1;
			}
			c->offset = off;
			if (c->state == R_RESUMING) {
				c->got++;
				s->replayed++;
			}
		} else if (memmem(data, len, "\"type\":\"subscribed\"", 19)) {
			if (c->state == R_CONNECTING) {
				str_of(data, len, "\"epoch\":\"", c->epoch, sizeof(c->epoch));
				c->offset = num_of(data, len, "\"offset\":");
				c->state = R_LIVE;
				s->live++;
			} else if (c->state == R_RESUMING) {
				if (!memmem(data, len, "\"recovered\":true", 16)) {
					s->not_recovered++;
					c->state = R_FAILED;
					s->failed++;
					return;
				}
				c->want = num_of(data, len, "\"offset\":");
			}
		} else if (memmem(data, len, "\"type\":\"error\"", 14) && !s->first_error[0]) {
			snprintf(s->first_error, sizeof(s->first_error), "%.*s",
				 (int)(len < 190 ? len : 190), data);
		}
		if (c->state == R_RESUMING && c->want && c->offset >= c->want) {
			c->state = R_DONE;
			s->done++;
			s->lat_us[s->nlat++] = (uint64_t)((now_ns_mono() - c->t_start) / 1000);
		}
		return;
	}
	if (ev == WSC_EV_CLOSE && c->state == R_LIVE) {
		c->state = R_CLOSED;
		s->live--;
		s->closed++;
	} else if (ev == WSC_EV_CLOSE && c->state != R_DONE && c->state != R_FAILED) {
		if (!s->first_error[0])
			snprintf(s->first_error, sizeof(s->first_error), "closed %d: %s",
				 w->close_code, w->err);
		c->state = R_FAILED;
		s->failed++;
	}
}

static void poll_round(struct rec *s, int timeout_ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(s->ep, evs, 512, timeout_ms);
	for (int k = 0; k < n; k++) {
		int i = (int)evs[k].data.u64;
		struct rclient *c = &s->cl[i];
		if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			wsc_handle_write(&c->ws);
		if (c->ws.state != WSC_CONNECTING &&
		    (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			wsc_handle_read(&c->ws, on_event, s);
		wsc_notify_closed(&c->ws, on_event, s);
		if (c->ws.state != WSC_CLOSED)
			arm(s, i, 0);
	}
}

/* Publish `missed` updates on every channel through the broker's function;
 * records each channel's new top. 0 or -1. */
static int publish_missed(struct rec *s)
{
	struct redis_addr a;
	char err[256];
	if (redis_addr_parse(s->redis_url, &a, err, sizeof(err))) {
		warnx_("bench: --redis: %s", err);
		return -1;
	}
	redisContext *rc =
	    a.unix_path[0] ? redisConnectUnix(a.unix_path) : redisConnect(a.host, a.port);
	if (!rc || rc->err) {
		warnx_("bench: cannot connect to the broker: %s",
		       rc ? rc->errstr : "out of memory");
		if (rc)
			redisFree(rc);
		return -1;
	}
	char payload[64];
	for (int ch = 0; ch < s->nch; ch++)
		for (int k = 0; k < s->missed; k++) {
			char key[256];
			snprintf(key, sizeof(key), "fanout:{%s%d}", s->chprefix, ch);
			int n = snprintf(payload, sizeof(payload), "{\"missed\":%d}", k + 1);
			redisReply *r = redisCommand(rc, "FCALL fanout_publish 1 %s %b", key,
						     payload, (size_t)n);
			if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				warnx_("bench: FCALL fanout_publish: %s",
				       r && r->type == REDIS_REPLY_ERROR ? r->str
									 : "unexpected reply");
				if (r)
					freeReplyObject(r);
				redisFree(rc);
				return -1;
			}
			s->top[ch] = (uint64_t)r->element[1]->integer;
			freeReplyObject(r);
		}
	redisFree(rc);
	return 0;
}

static void recover_help(void)
{
	fputs("Usage: fanout-cli bench --recovery --url URL_DRAINED --url URL2 [--url ...]\n"
	      "       --drain-pid PID --redis URL [OPTIONS]\n"
	      "\n"
	      "Recovery storm: --clients subscribe on the first URL; its instance gets SIGTERM;\n"
	      "while they are away --missed updates per channel are published (positioned,\n"
	      "FCALL fanout_publish); then every client reconnects at once to the other URLs\n"
	      "with since = its last position. Reports the time until all are live again\n"
	      "(recovered:true and every missed update received, each once, in order).\n"
	      "\n"
	      "Options:\n"
	      "  -u, --url URL           fanoutd ws:// URLs: the drained one first\n"
	      "  -c, --clients N         clients (10000)\n"
	      "  -m, --channels M        channels P0..P(M-1), client i on channel i %% M (1)\n"
	      "  --channel-prefix P      (recover.)\n"
	      "  --missed K              updates per channel published while away (100)\n"
	      "  --drain-pid PID         the first URL's fanoutd\n"
	      "  --redis URL             the broker (redis://127.0.0.1:6379)\n"
	      "  -p, --server-pid PID    servers to sample (CPU); repeat or comma-separate\n"
	      "  --broker-pid PID        the broker's process (CPU)\n"
	      "  --timeout-s S           give up after S seconds per phase (60)\n"
	      "  --json                  one JSON object\n",
	      stdout);
}

enum phase { P_SUBSCRIBED, P_CLOSED, P_KEPT };

static int phase_done(const struct rec *s, enum phase p)
{
	switch (p) {
	case P_SUBSCRIBED:
		return s->live + s->failed >= s->ncl;
	case P_CLOSED:
		return s->closed >= s->nclients;
	case P_KEPT:
		for (int i = s->nclients; i < s->ncl; i++)
			if (s->cl[i].offset < s->top[s->cl[i].ch])
				return 0;
		return 1;
	}
	return 1;
}

/* Poll until phase p is done or the timeout; returns the seconds taken. */
static double run_phase(struct rec *s, enum phase p)
{
	int64_t t0 = now_ns_mono(), end = t0 + (int64_t)(s->timeout_s * 1e9);
	while (!phase_done(s, p) && !stop_requested && now_ns_mono() < end)
		poll_round(s, 1);
	return (double)(now_ns_mono() - t0) / 1e9;
}

int cmd_bench_recovery(int argc, char **argv)
{
	enum { O_REC = 256, O_CHPREFIX, O_MISSED, O_DRAIN, O_REDIS, O_BROKER, O_TIMEOUT, O_JSON };
	static const struct option opts[] = {
	    {"recovery", no_argument, NULL, O_REC},
	    {"url", required_argument, NULL, 'u'},
	    {"clients", required_argument, NULL, 'c'},
	    {"channels", required_argument, NULL, 'm'},
	    {"channel-prefix", required_argument, NULL, O_CHPREFIX},
	    {"missed", required_argument, NULL, O_MISSED},
	    {"drain-pid", required_argument, NULL, O_DRAIN},
	    {"redis", required_argument, NULL, O_REDIS},
	    {"broker-pid", required_argument, NULL, O_BROKER},
	    {"timeout-s", required_argument, NULL, O_TIMEOUT},
	    {"server-pid", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rec rr = {0}, *s = &rr;
	char err[256];
	int opt, rc = EXIT_FAIL;
	int64_t v;

	s->nclients = 10000;
	s->nch = 1;
	s->missed = 100;
	s->chprefix = "recover.";
	s->redis_url = "redis://127.0.0.1:6379";
	s->timeout_s = 60;
	s->ep = -1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:c:m:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_REC:
			break;
		case 'u':
			if (s->nurl == MAX_URLS)
				return usage_error("bench", "--url: at most %d", MAX_URLS);
			if (wsc_url_parse(optarg, &s->url[s->nurl], err, sizeof(err)) ||
			    wsc_resolve(&s->url[s->nurl], &s->ss[s->nurl], &s->sslen[s->nurl], err,
					sizeof(err)))
				return usage_error("bench", "%s", err);
			s->nurl++;
			break;
		case 'c':
			if (parse_i64(optarg, 1, 200000, &v))
				return usage_error("bench", "--clients: 1..200000");
			s->nclients = (int)v;
			break;
		case 'm':
			if (parse_i64(optarg, 1, 10000, &v))
				return usage_error("bench", "--channels: 1..10000");
			s->nch = (int)v;
			break;
		case O_CHPREFIX:
			if (strlen(optarg) > 180)
				return usage_error("bench", "--channel-prefix: too long");
			s->chprefix = optarg;
			break;
		case O_MISSED:
			if (parse_i64(optarg, 1, 1000000, &v))
				return usage_error("bench", "--missed: 1..1000000");
			s->missed = (int)v;
			break;
		case O_DRAIN:
			if (parse_i64(optarg, 1, INT32_MAX, &v) || kill((pid_t)v, 0))
				return usage_error("bench", "--drain-pid: no such process");
			s->drain_pid = (int)v;
			break;
		case O_REDIS:
			s->redis_url = optarg;
			break;
		case O_BROKER:
			if (parse_i64(optarg, 1, INT32_MAX, &v))
				return usage_error("bench", "--broker-pid: a PID");
			s->broker_pid = (int)v;
			break;
		case O_TIMEOUT:
			if (parse_double(optarg, 0.1, 3600, &s->timeout_s))
				return usage_error("bench", "--timeout-s: 0.1..3600");
			break;
		case 'p': {
			char tmp[256], *save = NULL;
			snprintf(tmp, sizeof(tmp), "%s", optarg);
			for (char *t = strtok_r(tmp, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (s->npids == MAX_PIDS || parse_i64(t, 1, INT32_MAX, &v))
					return usage_error("bench", "--server-pid: PID[,PID...]");
				s->pids[s->npids++] = (int)v;
			}
			break;
		}
		case O_JSON:
			s->json = 1;
			break;
		case 'h':
			recover_help();
			return EXIT_OK;
		default:
			return usage_error("bench", "unknown option");
		}
	}
	if (s->nurl < 2 || !s->drain_pid)
		return usage_error("bench", "--recovery needs --drain-pid and two or more --url");
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	s->ncl = s->nclients + s->nch * (s->nurl - 1);
	if ((rlim_t)s->ncl + 32 > rl.rlim_cur)
		return usage_error("bench", "%d connections need more file descriptors than %lu",
				   s->ncl, (unsigned long)rl.rlim_cur);

	install_stop_signals();
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->cl = calloc((size_t)s->ncl, sizeof(*s->cl));
	s->lat_us = calloc((size_t)s->nclients + 1, sizeof(uint64_t));
	s->top = calloc((size_t)s->nch, sizeof(uint64_t));
	if (s->ep < 0 || !s->cl || !s->lat_us || !s->top) {
		warnx_("bench: out of memory");
		goto out;
	}
	/* clients on URL 0; keepers: one per channel on every other URL */
	for (int i = 0; i < s->ncl; i++) {
		struct rclient *c = &s->cl[i];
		wsc_init(&c->ws);
		c->state = R_CONNECTING;
		if (i < s->nclients) {
			c->ch = (uint32_t)(i % s->nch);
			c->url = 0;
		} else {
			int k = i - s->nclients;
			c->keeper = 1;
			c->ch = (uint32_t)(k % s->nch);
			c->url = (uint8_t)(1 + k / s->nch);
		}
	}
	for (int i = 0; i < s->ncl; i++) {
		start(s, i);
		if (i % 256 == 255)
			poll_round(s, 0);
	}
	double t_connect = run_phase(s, P_SUBSCRIBED);
	if (s->live < s->ncl) {
		warnx_("bench: only %d of %d subscribed (%s)", s->live, s->ncl, s->first_error);
		goto out;
	}

	/* the drain: every client of URL 0 closed */
	kill(s->drain_pid, SIGTERM);
	double t_drain = run_phase(s, P_CLOSED);
	if (s->closed < s->nclients) {
		warnx_("bench: only %d of %d clients closed by the drain", s->closed, s->nclients);
		goto out;
	}

	/* updates while they are away; the keepers show the other instances
	 * have them */
	if (publish_missed(s))
		goto out;
	double t_keep = run_phase(s, P_KEPT);

	/* the storm: everyone back at once, with since */
	double cpu0 = servers_cpu(s), bcpu0 = proc_cpu(s->broker_pid);
	int64_t t0 = now_ns_mono();
	for (int i = 0; i < s->nclients; i++) {
		struct rclient *c = &s->cl[i];
		wsc_free(&c->ws);
		c->state = R_RESUMING;
		c->url = (uint8_t)(1 + i % (s->nurl - 1));
		start(s, i);
		if (i % 256 == 255)
			poll_round(s, 0);
	}
	int64_t end = t0 + (int64_t)(s->timeout_s * 1e9);
	while (s->done + s->failed < s->nclients && !stop_requested && now_ns_mono() < end)
		poll_round(s, 1);
	double t_storm = (double)(now_ns_mono() - t0) / 1e9;
	double cpu = servers_cpu(s) - cpu0, bcpu = proc_cpu(s->broker_pid) - bcpu0;
	for (int k = 0; k < 20; k++) /* anything more now would be a duplicate */
		poll_round(s, 10);
	int bad = 0;
	for (int i = 0; i < s->nclients; i++)
		bad += s->cl[i].bad ||
		       (s->cl[i].state == R_DONE && s->cl[i].got != (uint64_t)s->missed);
	qsort(s->lat_us, (size_t)s->nlat, sizeof(uint64_t), u64_cmp);
	rc = s->done == s->nclients && !bad ? EXIT_OK : EXIT_FAIL;

	if (s->json) {
		printf("{\"clients\":%d,\"channels\":%d,\"instances\":%d,\"missed\":%d,\"ok\":%s,"
		       "\"connect_s\":%.3f,\"drain_s\":%.3f,\"keepers_s\":%.3f,"
		       "\"storm\":{\"all_live_s\":%.3f,\"live\":%d,\"failed\":%d,"
		       "\"not_recovered\":%d,\"replayed\":%" PRIu64 ",\"duplicates\":%d,"
		       "\"holes\":%d,\"clients_bad\":%d,\"ms\":{\"p50\":%.2f,\"p90\":%.2f,"
		       "\"p99\":%.2f,\"max\":%.2f},\"server_cpu_s\":%.3f,\"broker_cpu_s\":%.3f}}\n",
		       s->nclients, s->nch, s->nurl, s->missed, rc == EXIT_OK ? "true" : "false",
		       t_connect, t_drain, t_keep, t_storm, s->done, s->failed, s->not_recovered,
		       s->replayed, s->dups, s->holes, bad, sorted_pct_ms(s->lat_us, s->nlat, 0.5),
		       sorted_pct_ms(s->lat_us, s->nlat, 0.9),
		       sorted_pct_ms(s->lat_us, s->nlat, 0.99),
		       s->nlat ? (double)s->lat_us[s->nlat - 1] / 1000.0 : 0, cpu, bcpu);
	} else {
		printf("fanout-cli bench --recovery: %d clients, %d channel(s), %d missed updates "
		       "per channel\n",
		       s->nclients, s->nch, s->missed);
		printf("subscribed in %.3f s; drained (all closed) in %.3f s; missed updates on "
		       "the other instances in %.3f s\n",
		       t_connect, t_drain, t_keep);
		printf("storm: %d of %d live again in %.3f s (recovered:false %d, failed %d); "
		       "per client ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
		       s->done, s->nclients, t_storm, s->not_recovered, s->failed,
		       sorted_pct_ms(s->lat_us, s->nlat, 0.5),
		       sorted_pct_ms(s->lat_us, s->nlat, 0.9),
		       sorted_pct_ms(s->lat_us, s->nlat, 0.99),
		       s->nlat ? (double)s->lat_us[s->nlat - 1] / 1000.0 : 0);
		printf("replayed %" PRIu64 " messages; duplicates %d, holes %d, clients wrong %d; "
		       "server CPU %.3f s, broker CPU %.3f s\n",
		       s->replayed, s->dups, s->holes, bad, cpu, bcpu);
		if (s->first_error[0])
			printf("first error: %s\n", s->first_error);
		printf("result: %s\n", rc == EXIT_OK ? "ok" : "FAILED");
	}
out:
	if (s->cl) {
		for (int i = 0; i < s->ncl; i++)
			wsc_free(&s->cl[i].ws);
		free(s->cl);
	}
	free(s->lat_us);
	free(s->top);
	if (s->ep >= 0)
		close(s->ep);
	return rc;
}
