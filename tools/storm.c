/*
 * storm.c — `fanout-cli bench --storm`: connection storms (issue 14).
 *
 *   connect  N clients open, upgrade and subscribe as fast as the servers
 *            take them (all connects started at once, at most --max-pending
 *            in flight); reported: the time until every one is confirmed
 *            (subscribed), per-client connect→subscribed percentiles,
 *            failures, the servers' CPU and RSS (memory per connection).
 *   drain    with --drain-pid (the instance of the first --url): SIGTERM to
 *            it once all are in;
 *            every client it closes (1001) reconnects at once (or after
 *            --reconnect-jitter-ms) to the next URL in the list and
 *            subscribes again; reported: the time until every client is
 *            subscribed again, per-client outage percentiles, how many were
 *            moved, connects refused meanwhile (the draining instance), and
 *            `recovered` answers where the channel is positioned.
 *
 * Several --url give several instances (a client-side round robin, like
 * DNS): client i starts on URL i % n and moves to the next one on a close.
 * One thread, one epoll set. Allocates the client array; frees it on return.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

#define MAX_URLS 16
#define MAX_PIDS 16

enum sstate { S_IDLE, S_WAIT, S_CONNECTING, S_READY, S_FAILED };

struct sclient {
	struct wsc ws; /* first: a struct wsc * is a struct sclient * */
	uint8_t state, url, moved, out_armed;
	int64_t t_start;  /* when this (re)connect began */
	int64_t t_due;	  /* S_WAIT: when to reconnect */
	int64_t t_closed; /* when the drain closed it */
};

struct storm {
	struct wsc_url url[MAX_URLS];
	struct sockaddr_storage ss[MAX_URLS];
	socklen_t sslen[MAX_URLS];
	int nurl, nclients, nch, max_pending, jitter_ms, json;
	const char *chprefix;
	int pids[MAX_PIDS], npids, drain_pid;
	double timeout_s;
	int ep;
	struct sclient *cl;
	int pending, ready, failed_final, refused, closed_1001, recovered, not_recovered;
	uint64_t *lat_us; /* per-client connect→subscribed (or outage) times */
	int nlat;
	char first_error[200];
};

/* TcpExt ListenOverflows of this network namespace (/proc/net/netstat):
 * handshakes the kernel dropped because a listener's accept queue was
 * full (net.core.somaxconn caps it); each costs its client a SYN
 * retransmit a second later. Counts every listener here, not only ours:
 * -1 if unreadable. */
static long long listen_overflows(void)
{
	FILE *f = fopen("/proc/net/netstat", "r");
	if (!f)
		return -1;
	char names[4096], vals[4096];
	long long v = -1;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		if (strncmp(names, "TcpExt:", 7))
			continue;
		char *sn, *sv;
		char *n = strtok_r(names, " \n", &sn), *x = strtok_r(vals, " \n", &sv);
		while (n && x) {
			if (!strcmp(n, "ListenOverflows")) {
				v = atoll(x);
				break;
			}
			n = strtok_r(NULL, " \n", &sn);
			x = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return v;
}

/* the servers' CPU seconds, but for `except` (0: all of them) */
static double servers_cpu_but(const struct storm *s, int except)
{
	double sum = 0;
	for (int i = 0; i < s->npids; i++) {
		if (s->pids[i] == except)
			continue;
		double v = proc_cpu_s(s->pids[i]);
		sum += v > 0 ? v : 0;
	}
	return sum;
}

static double servers_cpu(const struct storm *s)
{
	return servers_cpu_but(s, 0);
}

static long servers_rss(const struct storm *s)
{
	long sum = 0;
	for (int i = 0; i < s->npids; i++) {
		long v = proc_rss_kib(s->pids[i]);
		sum += v > 0 ? v : 0;
	}
	return sum;
}

static void arm(struct storm *s, int i, int add)
{
	struct sclient *c = &s->cl[i];
	int want = wsc_want_write(&c->ws);
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
				 .data.u64 = (uint64_t)i};
	if (add)
		epoll_ctl(s->ep, EPOLL_CTL_ADD, c->ws.fd, &ev);
	else if (c->out_armed != want)
		epoll_ctl(s->ep, EPOLL_CTL_MOD, c->ws.fd, &ev);
	c->out_armed = (uint8_t)want;
}

static void start(struct storm *s, int i)
{
	struct sclient *c = &s->cl[i];
	int u = c->url;
	c->state = S_CONNECTING;
	c->t_start = now_ns_mono();
	s->pending++;
	if (wsc_start(&c->ws, (struct sockaddr *)&s->ss[u], s->sslen[u], s->url[u].hostport,
		      s->url[u].path)) {
		if (!s->first_error[0])
			snprintf(s->first_error, sizeof(s->first_error), "%s", c->ws.err);
		c->state = S_FAILED;
		s->pending--;
		return;
	}
	arm(s, i, 1);
}

static int idx_of(struct storm *s, struct wsc *w)
{
	return (int)((struct sclient *)w - s->cl);
}

static void on_event(struct wsc *w, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct storm *s = arg;
	struct sclient *c = (struct sclient *)w;
	int i = idx_of(s, w);

	if (ev == WSC_EV_OPEN) {
		char req[300];
		int n = snprintf(req, sizeof(req),
				 "{\"type\":\"subscribe\",\"channel\":\"%s%d\",\"id\":\"s\"}",
				 s->chprefix, i % s->nch);
		wsc_send_text(w, req, (size_t)n);
	} else if (ev == WSC_EV_TEXT) {
		if (c->state == S_CONNECTING && memmem(data, len, "\"type\":\"subscribed\"", 19)) {
			c->state = S_READY;
			s->pending--;
			s->ready++;
			int64_t from = c->moved ? c->t_closed : c->t_start;
			s->lat_us[s->nlat++] = (uint64_t)((now_ns_mono() - from) / 1000);
			if (memmem(data, len, "\"recovered\":true", 16))
				s->recovered++;
			else if (memmem(data, len, "\"recovered\":false", 17))
				s->not_recovered++;
		} else if (memmem(data, len, "\"type\":\"error\"", 14) && !s->first_error[0]) {
			snprintf(s->first_error, sizeof(s->first_error), "%.*s",
				 (int)(len < 190 ? len : 190), data);
		}
	} else if (ev == WSC_EV_CLOSE) {
		int was_ready = c->state == S_READY;
		if (c->state == S_CONNECTING)
			s->pending--;
		if (was_ready) {
			s->ready--;
			if (w->close_code == 1001)
				s->closed_1001++;
			c->moved = 1;
			c->t_closed = now_ns_mono();
		} else {
			s->refused++; /* a connect that did not make it: try the next URL */
		}
		/* reconnect to the next instance (immediately, or with jitter) */
		c->url = (uint8_t)((c->url + 1) % s->nurl);
		c->state = S_WAIT;
		c->t_due = now_ns_mono() +
			   (s->jitter_ms ? (int64_t)(rand() % (s->jitter_ms + 1)) * 1000000 : 0);
		if (!c->t_closed)
			c->t_closed = c->t_start;
	}
}

static void poll_round(struct storm *s, int timeout_ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(s->ep, evs, 512, timeout_ms);
	for (int k = 0; k < n; k++) {
		int i = (int)evs[k].data.u64;
		struct sclient *c = &s->cl[i];
		if (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			wsc_handle_write(&c->ws);
		if (c->ws.state != WSC_CONNECTING &&
		    (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			wsc_handle_read(&c->ws, on_event, s);
		wsc_notify_closed(&c->ws, on_event, s);
		if (c->ws.state != WSC_CLOSED)
			arm(s, i, 0);
	}
	/* reconnects that are due (the closed socket left the epoll set with
	 * its fd) */
	int64_t now = now_ns_mono();
	for (int i = 0; i < s->nclients && s->pending < s->max_pending; i++) {
		struct sclient *c = &s->cl[i];
		if (c->state == S_WAIT && now >= c->t_due) {
			wsc_free(&c->ws);
			start(s, i);
		}
	}
}

struct phase {
	double secs, p50, p90, p99, max;
	int done, total;
};

static void phase_stats(struct storm *s, struct phase *ph, double secs, int total)
{
	qsort(s->lat_us, (size_t)s->nlat, sizeof(uint64_t), u64_cmp);
	ph->secs = secs;
	ph->p50 = sorted_pct_ms(s->lat_us, s->nlat, 0.5);
	ph->p90 = sorted_pct_ms(s->lat_us, s->nlat, 0.9);
	ph->p99 = sorted_pct_ms(s->lat_us, s->nlat, 0.99);
	ph->max = s->nlat ? (double)s->lat_us[s->nlat - 1] / 1000.0 : 0;
	ph->done = s->nlat;
	ph->total = total;
}

static void storm_help(void)
{
	fputs("Usage: fanout-cli bench --storm --url URL [--url URL2 ...] [OPTIONS]\n"
	      "\n"
	      "Connection storms. Opens --clients WebSocket connections at once (client i\n"
	      "on URL i %% n), each subscribing to one of --channels channels, and reports\n"
	      "how long until every subscription is confirmed. With --drain-pid, then sends\n"
	      "SIGTERM to that instance: the clients it closes reconnect to the next URL and\n"
	      "subscribe again, and the report says how long until all are back.\n"
	      "\n"
	      "Options:\n"
	      "  -u, --url URL             a fanoutd ws:// URL; repeat for several instances\n"
	      "  -c, --clients N           clients (10000)\n"
	      "  -m, --channels M          channels bench.0 .. bench.M-1 (1)\n"
	      "  --channel-prefix P        channel names P0..P(M-1) (bench.)\n"
	      "  --max-pending N           connects in flight at once (default: all)\n"
	      "  --drain-pid PID           SIGTERM this instance (the first --url's) once\n"
	      "                            every client is in\n"
	      "  --reconnect-jitter-ms J   reconnect after a random 0..J ms (0: at once)\n"
	      "  --timeout-s S             give up after S seconds per phase (60)\n"
	      "  -p, --server-pid PID      servers to sample (CPU, RSS); repeat or comma-separate\n"
	      "  --json                    print one JSON object\n"
	      "\n"
	      "Exit status: 0 when every client got in (and back in), 1 otherwise.\n",
	      stdout);
}

static void print_phase(const char *name, const struct phase *ph, int json, int last)
{
	if (json)
		printf(
		    "\"%s\":{\"secs\":%.3f,\"done\":%d,\"of\":%d,\"ms\":{\"p50\":%.2f,\"p90\":%.2f,"
		    "\"p99\":%.2f,\"max\":%.2f}}%s",
		    name, ph->secs, ph->done, ph->total, ph->p50, ph->p90, ph->p99, ph->max,
		    last ? "" : ",");
	else
		printf(
		    "%s: %d of %d in %.3f s; per client ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
		    name, ph->done, ph->total, ph->secs, ph->p50, ph->p90, ph->p99, ph->max);
}

int cmd_bench_storm(int argc, char **argv)
{
	enum { O_STORM = 256, O_CHPREFIX, O_MAXPEND, O_DRAIN, O_JITTER, O_TIMEOUT, O_JSON };
	static const struct option opts[] = {
	    {"storm", no_argument, NULL, O_STORM},
	    {"url", required_argument, NULL, 'u'},
	    {"clients", required_argument, NULL, 'c'},
	    {"channels", required_argument, NULL, 'm'},
	    {"channel-prefix", required_argument, NULL, O_CHPREFIX},
	    {"max-pending", required_argument, NULL, O_MAXPEND},
	    {"drain-pid", required_argument, NULL, O_DRAIN},
	    {"reconnect-jitter-ms", required_argument, NULL, O_JITTER},
	    {"timeout-s", required_argument, NULL, O_TIMEOUT},
	    {"server-pid", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct storm ss = {0}, *s = &ss;
	char err[256];
	int opt, rc = EXIT_FAIL;
	int64_t v;

	s->nclients = 10000;
	s->nch = 1;
	s->chprefix = "bench.";
	s->timeout_s = 60;
	s->ep = -1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:c:m:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case O_STORM:
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
			if (parse_i64(optarg, 1, 100000, &v))
				return usage_error("bench", "--channels: 1..100000");
			s->nch = (int)v;
			break;
		case O_CHPREFIX:
			if (strlen(optarg) > 180)
				return usage_error("bench", "--channel-prefix: too long");
			s->chprefix = optarg;
			break;
		case O_MAXPEND:
			if (parse_i64(optarg, 1, 200000, &v))
				return usage_error("bench", "--max-pending: 1..200000");
			s->max_pending = (int)v;
			break;
		case O_DRAIN:
			if (parse_i64(optarg, 1, INT32_MAX, &v) || kill((pid_t)v, 0))
				return usage_error("bench", "--drain-pid: no such process");
			s->drain_pid = (int)v;
			break;
		case O_JITTER:
			if (parse_i64(optarg, 0, 600000, &v))
				return usage_error("bench", "--reconnect-jitter-ms: 0..600000");
			s->jitter_ms = (int)v;
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
			storm_help();
			return EXIT_OK;
		default:
			return usage_error("bench", "unknown option");
		}
	}
	if (!s->nurl)
		return usage_error("bench", "--storm needs at least one --url");
	if (s->drain_pid && s->nurl < 2)
		return usage_error("bench", "--drain-pid needs the other instances' --url too");
	if (!s->max_pending)
		s->max_pending = s->nclients;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)s->nclients + 32 > rl.rlim_cur)
		return usage_error("bench", "--clients %d needs more file descriptors than %lu",
				   s->nclients, (unsigned long)rl.rlim_cur);

	install_stop_signals();
	srand((unsigned)now_ns_mono());
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->cl = calloc((size_t)s->nclients, sizeof(*s->cl));
	s->lat_us = calloc((size_t)s->nclients + 1, sizeof(uint64_t));
	if (s->ep < 0 || !s->cl || !s->lat_us) {
		warnx_("bench: out of memory");
		goto out;
	}
	for (int i = 0; i < s->nclients; i++) {
		wsc_init(&s->cl[i].ws);
		s->cl[i].url = (uint8_t)(i % s->nurl);
		s->cl[i].state = S_WAIT; /* due at once */
	}

	/* ---- the storm ---- */
	long rss0 = servers_rss(s);
	double cpu0 = servers_cpu(s), self0 = self_cpu_s();
	long long ovf0 = listen_overflows();
	int64_t t0 = now_ns_mono(), end = t0 + (int64_t)(s->timeout_s * 1e9);
	while (s->ready < s->nclients && !stop_requested && now_ns_mono() < end)
		poll_round(s, 1);
	struct phase conn;
	phase_stats(s, &conn, (double)(now_ns_mono() - t0) / 1e9, s->nclients);
	double cpu_conn = servers_cpu(s) - cpu0, self_conn = self_cpu_s() - self0;
	long long ovf_conn = ovf0 < 0 ? -1 : listen_overflows() - ovf0;
	for (int k = 0; k < 50 && !stop_requested; k++) /* let the servers settle */
		poll_round(s, 10);
	long rss1 = servers_rss(s);
	int all_in = s->ready == s->nclients;
	int refused_conn = s->refused;

	/* ---- the drain ---- */
	struct phase back = {0};
	int moved = 0;
	double cpu_back = 0, self_back = 0;
	if (s->drain_pid && all_in) {
		double c0 = servers_cpu_but(s, s->drain_pid), b0 = self_cpu_s();
		s->nlat = 0;
		s->refused = 0;
		int64_t d0 = now_ns_mono();
		end = d0 + (int64_t)(s->timeout_s * 1e9);
		/* the drained instance is the first --url: every client that
		 * started there must be closed, move and be back */
		int on_first = 0;
		for (int i = 0; i < s->nclients; i++)
			on_first += s->cl[i].url == 0;
		kill(s->drain_pid, SIGTERM);
		while (!stop_requested && now_ns_mono() < end &&
		       (s->closed_1001 < on_first || s->ready < s->nclients))
			poll_round(s, 1);
		for (int i = 0; i < s->nclients; i++)
			moved += s->cl[i].moved;
		cpu_back = servers_cpu_but(s, s->drain_pid) - c0; /* the ones taking them */
		self_back = self_cpu_s() - b0;
		phase_stats(s, &back, (double)(now_ns_mono() - d0) / 1e9, moved);
	}

	rc = all_in && (!s->drain_pid || s->ready == s->nclients) ? EXIT_OK : EXIT_FAIL;
	if (s->json) {
		printf("{\"clients\":%d,\"channels\":%d,\"instances\":%d,\"ok\":%s,", s->nclients,
		       s->nch, s->nurl, rc == EXIT_OK ? "true" : "false");
		print_phase("connect", &conn, 1, 0);
		printf("\"connect_refused\":%d,\"server_cpu_s\":%.3f,\"bench_cpu_s\":%.3f,"
		       "\"listen_overflows\":%lld,"
		       "\"server_rss_kib\":[%ld,%ld],\"server_kib_per_connection\":%.3f",
		       refused_conn, cpu_conn, self_conn, ovf_conn, rss0, rss1,
		       all_in && s->npids ? (double)(rss1 - rss0) / s->nclients : -1.0);
		if (s->drain_pid) {
			printf(
			    ",\"drain\":{\"closed_1001\":%d,\"moved\":%d,\"refused_meanwhile\":%d,"
			    "\"recovered\":%d,\"not_recovered\":%d,\"servers_cpu_s\":%.3f,"
			    "\"bench_cpu_s\":%.3f,",
			    s->closed_1001, moved, s->refused, s->recovered, s->not_recovered,
			    cpu_back, self_back);
			print_phase("back", &back, 1, 1);
			printf("}");
		}
		if (s->first_error[0]) {
			printf(",\"first_error\":\"");
			for (const char *q = s->first_error; *q; q++)
				printf(*q == '"' || *q == '\\'	  ? "\\%c"
				       : (unsigned char)*q < 0x20 ? "?"
								  : "%c",
				       *q);
			printf("\"");
		}
		printf("}\n");
	} else {
		printf("fanout-cli bench --storm: %d clients, %d channel(s), %d instance(s)\n",
		       s->nclients, s->nch, s->nurl);
		print_phase("connected and subscribed", &conn, 0, 1);
		printf("refused or failed connects: %d; server CPU %.3f s, this bench's %.3f s; "
		       "handshakes dropped by full accept queues: %lld",
		       refused_conn, cpu_conn, self_conn, ovf_conn);
		if (s->npids && all_in)
			printf("; server RSS %.1f -> %.1f MiB: %.2f KiB per connection",
			       rss0 / 1024.0, rss1 / 1024.0, (double)(rss1 - rss0) / s->nclients);
		printf("\n");
		if (s->drain_pid) {
			printf(
			    "drain: SIGTERM to %d: %d clients closed 1001, %d moved, %d connects "
			    "refused meanwhile, recovered %d / not %d\n",
			    s->drain_pid, s->closed_1001, moved, s->refused, s->recovered,
			    s->not_recovered);
			print_phase("back on the other instances", &back, 0, 1);
		}
		if (s->first_error[0])
			printf("first error: %s\n", s->first_error);
		printf("result: %s\n", rc == EXIT_OK ? "ok" : "FAILED");
	}
out:
	if (s->cl) {
		for (int i = 0; i < s->nclients; i++)
			wsc_free(&s->cl[i].ws);
		free(s->cl);
	}
	free(s->lat_us);
	if (s->ep >= 0)
		close(s->ep);
	return rc;
}
