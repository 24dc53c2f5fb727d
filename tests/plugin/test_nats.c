/*
 * test_nats.c — the nats backend: its name functions directly, and the
 * plugin against the mock host and a real nats-server (core NATS and
 * JetStream) started here on free loopback ports.
 *
 * Owns: the nats-server processes it forks (killed by PID; a failed test
 * leaves none behind: group_teardown kills what is left), their temporary
 * store dirs, one mockhost per test. The "outside publisher" is a raw TCP
 * socket speaking the NATS text protocol (PUB/HPUB + PING/PONG). The
 * server path comes from $NATS_SERVER (configure's NATS_SERVER); with none,
 * tests skip (fail when CI=true).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mockhost.h"
#include "names.h"

#ifndef NATS_SO
#define NATS_SO "plugins/nats/.libs/nats.so"
#endif
#ifndef NATS_SERVER_BIN
#define NATS_SERVER_BIN "nats-server"
#endif

static const struct fanout_plugin *plugin;
static pid_t live[16];

struct server {
	pid_t pid;
	int port;
	int js;
	char dir[64]; /* JetStream store ("" for none) */
};

static void live_set(pid_t old, pid_t new)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == old) {
			live[i] = new;
			return;
		}
}

/* ---- a raw NATS client ---- */

static int raw_read_line(int fd, char *buf, size_t n)
{
	size_t k = 0;

	while (k + 1 < n) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return -1;
		buf[k++] = c;
		if (k >= 2 && buf[k - 2] == '\r' && c == '\n')
			break;
	}
	buf[k] = 0;
	return (int)k;
}

static int raw_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char line[4096];
	struct timeval tv = {2, 0};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (raw_read_line(fd, line, sizeof(line)) < 0 || strncmp(line, "INFO ", 5) != 0) {
		close(fd);
		return -1;
	}
	if (write(fd, "CONNECT {\"verbose\":false,\"headers\":true}\r\n", 42) != 42) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send text, then PING; 1 once PONG came back (the server processed it). */
static int raw_send(int port, const char *text)
{
	int fd = raw_connect(port), ok = 0;
	char line[4096];

	if (fd < 0)
		return 0;
	if (write(fd, text, strlen(text)) == (ssize_t)strlen(text) && write(fd, "PING\r\n", 6) == 6)
		while (raw_read_line(fd, line, sizeof(line)) > 0)
			if (!strncmp(line, "PONG", 4)) {
				ok = 1;
				break;
			}
	close(fd);
	return ok;
}

static void pub(struct server *s, const char *subject, const char *payload)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "PUB %s %zu\r\n%s\r\n", subject, strlen(payload), payload);
	assert_true(raw_send(s->port, buf));
}

/* HPUB with headers: what the stream's republish would look like. */
static void hpub(struct server *s, const char *subject, const char *hdrs, const char *payload)
{
	char buf[8192], h[1024];
	int hl = snprintf(h, sizeof(h), "NATS/1.0\r\n%s\r\n", hdrs);

	snprintf(buf, sizeof(buf), "HPUB %s %d %zu\r\n%s%s\r\n", subject, hl,
		 (size_t)hl + strlen(payload), h, payload);
	assert_true(raw_send(s->port, buf));
}

/* ---- nats-server ---- */

static void server_start(struct server *s)
{
	char port[16];
	uint64_t end;
	int fd;

	if (!*NATS_SERVER_BIN) {
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			fail_msg("no nats-server (CI=true: no skipping)");
		skip();
	}
	if (!s->port)
		s->port = mockhost_free_port();
	if (s->js && !s->dir[0]) {
		snprintf(s->dir, sizeof(s->dir), "/tmp/fanout-nats-XXXXXX");
		if (!mkdtemp(s->dir))
			fail_msg("mkdtemp: %s", strerror(errno));
	}
	snprintf(port, sizeof(port), "%d", s->port);
	s->pid = fork();
	if (s->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (s->pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		/* Die with the test, even when it aborts (ASan) before teardown. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(nul, 1);
		dup2(nul, 2);
		if (s->js)
			execl(NATS_SERVER_BIN, NATS_SERVER_BIN, "-a", "127.0.0.1", "-p", port,
			      "-js", "-sd", s->dir, (char *)NULL);
		else
			execl(NATS_SERVER_BIN, NATS_SERVER_BIN, "-a", "127.0.0.1", "-p", port,
			      (char *)NULL);
		_exit(127);
	}
	live_set(0, s->pid);
	end = mockhost_now_ms() + 10000;
	while ((fd = raw_connect(s->port)) < 0) {
		if (mockhost_now_ms() > end)
			fail_msg("nats-server on %d did not come up", s->port);
		usleep(10000);
	}
	close(fd);
}

static void server_kill(struct server *s, int sig)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		kill(s->pid, SIGCONT);
		waitpid(s->pid, NULL, 0);
		live_set(s->pid, 0);
		s->pid = 0;
	}
}

/* 1 when every thread of pid is stopped (state T in /proc/PID/task/N/stat). */
static int all_stopped(pid_t pid)
{
	char path[64], line[512];
	struct dirent *d;
	DIR *dir;
	int stopped = 1;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while (stopped && (d = readdir(dir)) != NULL) {
		FILE *fp;
		char *p;
		if (d->d_name[0] == '.')
			continue;
		snprintf(line, sizeof(line), "%s/%s/stat", path, d->d_name);
		fp = fopen(line, "r");
		if (!fp)
			continue;
		if (fgets(line, sizeof(line), fp) && (p = strrchr(line, ')')) != NULL &&
		    p[2] != 'T')
			stopped = 0;
		fclose(fp);
	}
	closedir(dir);
	return stopped;
}

/* SIGSTOP takes effect asynchronously: wait until the server is stopped. */
static void server_stop_signal(struct server *s)
{
	uint64_t end = mockhost_now_ms() + 5000;

	kill(s->pid, SIGSTOP);
	while (!all_stopped(s->pid)) {
		if (mockhost_now_ms() > end)
			fail_msg("nats-server %d did not stop", (int)s->pid);
		usleep(1000);
	}
}

static void server_free(struct server *s)
{
	char cmd[128];

	server_kill(s, SIGKILL);
	if (s->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", s->dir);
		s->dir[0] = 0;
	}
}

/* ---- a started plugin on its own mock host ---- */

struct fx {
	struct mockhost *m;
	void *st;
	struct server srv;
	char url[64];
};

static int fx_try(struct fx *f, const char *const *globs, size_t nglobs, const char *const *extra)
{
	const char *kv[48];
	size_t n = 0;

	f->m = mockhost_new();
	assert_non_null(f->m);
	mockhost_set_quiet(f->m, 1);
	if (nglobs)
		mockhost_set_channels(f->m, globs, nglobs);
	if (!f->url[0])
		snprintf(f->url, sizeof(f->url), "nats://127.0.0.1:%d", f->srv.port);
	kv[n++] = "url";
	kv[n++] = f->url;
	kv[n++] = "reconnect_min_ms";
	kv[n++] = "20";
	kv[n++] = "reconnect_max_ms";
	kv[n++] = "200";
	kv[n++] = "ping_interval_ms";
	kv[n++] = "200";
	for (size_t i = 0; extra && extra[i]; i++)
		kv[n++] = extra[i];
	kv[n] = NULL;
	return mockhost_start(f->m, plugin, kv, &f->st);
}

static void fx_start(struct fx *f, const char *const *globs, size_t nglobs,
		     const char *const *extra)
{
	assert_int_equal(fx_try(f, globs, nglobs, extra), 0);
}

static void fx_free(struct fx *f)
{
	if (f->m) {
		mockhost_stop(f->m);
		assert_int_equal(mockhost_n_watches(f->m), 0);
		assert_int_equal(mockhost_n_timers(f->m), 0);
		mockhost_free(f->m);
		f->m = NULL;
	}
	server_free(&f->srv);
}

static void fx_sub(struct fx *f, const char *channel)
{
	assert_int_equal(plugin->subscribe(f->st, channel), 0);
	assert_true(mockhost_run_until(f->m, mockhost_pred_subscribed, (void *)channel, 5000));
}

static int wait_n_delivered(struct fx *f, size_t n)
{
	return mockhost_run_until(f->m, mockhost_pred_n_delivered, &n, 5000);
}

static const struct mock_msg *last_msg(struct fx *f)
{
	return mockhost_delivered(f->m, mockhost_n_delivered(f->m) - 1);
}

static int pred_reason(struct mockhost *m, void *needle)
{
	const char *r = NULL;

	return mockhost_last_state(m, &r) == FANOUT_DOWN && r && strstr(r, needle);
}

/* ---- names.c ---- */

static void test_names(void **unused)
{
	char out[NN_SUBJECT_MAX], err[512];
	char **list;
	size_t n;
	int tls;
	uint64_t v;

	(void)unused;
	assert_true(nn_subject_valid("a.b.c", 5));
	assert_false(nn_subject_valid("a..b", 4));
	assert_false(nn_subject_valid(".a", 2));
	assert_false(nn_subject_valid("a.", 2));
	assert_false(nn_subject_valid("a.*.b", 5));
	assert_false(nn_subject_valid("a.>", 3));
	assert_true(nn_subject_valid("a.b*c", 5)); /* not a wildcard token */
	assert_false(nn_subject_valid("a b", 3));
	assert_int_equal(nn_subject("app.", "news:eu/1", out, sizeof(out)), 0);
	assert_string_equal(out, "app.news:eu/1");
	assert_int_equal(nn_subject("", "a..b", out, sizeof(out)), FANOUT_EINVAL);
	assert_string_equal(nn_channel("app.", 4, "app.x"), "x");
	assert_null(nn_channel("app.", 4, "other.x"));
	assert_null(nn_channel("app.", 4, "app."));

	assert_int_equal(nn_check_prefix("", err, sizeof(err)), 0);
	assert_int_equal(nn_check_prefix("app.", err, sizeof(err)), 0);
	assert_int_equal(nn_check_prefix("app", err, sizeof(err)), 0);
	assert_int_equal(nn_check_prefix("a..b.", err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_prefix("*.", err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_prefix("a b.", err, sizeof(err)), FANOUT_EINVAL);

	assert_int_equal(nn_check_url("nats://127.0.0.1:4222", &tls, err, sizeof(err)), 0);
	assert_int_equal(tls, 0);
	assert_int_equal(
	    nn_check_url("tls://u:p@h-1.example:1, nats://[::1]:4222, h2", &tls, err, sizeof(err)),
	    0);
	assert_int_equal(tls, 1);
	assert_int_equal(nn_check_url("nats://h:99999", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_non_null(strstr(err, "port must be 1-65535"));
	assert_int_equal(nn_check_url("http://h:1", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_non_null(strstr(err, "scheme"));
	assert_int_equal(nn_check_url("nats://h:1/x", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_url("nats://h:1,", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_url("nats://", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_url("nats://[::1", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_url("nats://h:", &tls, err, sizeof(err)), FANOUT_EINVAL);
	assert_int_equal(nn_check_url("", &tls, err, sizeof(err)), FANOUT_EINVAL);

	{
		const char *g[] = {"news.*", "news.eu", "chat.*.x", "updates", "chat.a"};
		assert_int_equal(nn_stream_subjects("", g, 5, &list, &n, err, sizeof(err)), 0);
		assert_int_equal(n, 3); /* news.eu under news.>, chat.a under chat.> */
		for (size_t i = 0; i < n; i++)
			assert_true(!strcmp(list[i], "news.>") || !strcmp(list[i], "chat.>") ||
				    !strcmp(list[i], "updates"));
		nn_free_list(list, n);
	}
	{
		const char *g[] = {"*"};
		assert_int_equal(nn_stream_subjects("", g, 1, &list, &n, err, sizeof(err)),
				 FANOUT_EINVAL);
		assert_non_null(strstr(err, "cannot be a JetStream stream subject"));
		assert_int_equal(nn_stream_subjects("app.", g, 1, &list, &n, err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		assert_string_equal(list[0], "app.>");
		nn_free_list(list, n);
	}
	{
		const char *g[] = {"news*"};
		assert_int_equal(nn_stream_subjects("", g, 1, &list, &n, err, sizeof(err)),
				 FANOUT_EINVAL);
		const char *g2[] = {"a.b", "a.b"};
		assert_int_equal(nn_stream_subjects("", g2, 2, &list, &n, err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		nn_free_list(list, n);
	}

	assert_int_equal(nn_sub_violation("Permissions Violation for Subscription to \"news.a\"",
					  out, sizeof(out)),
			 1);
	assert_string_equal(out, "news.a");
	assert_int_equal(
	    nn_sub_violation("permissions violation for subscription to x.y", out, sizeof(out)), 1);
	assert_string_equal(out, "x.y");
	assert_int_equal(
	    nn_sub_violation("Permissions Violation for Publish to \"a\"", out, sizeof(out)), 0);
	assert_int_equal(nn_sub_violation(NULL, out, sizeof(out)), 0);

	assert_int_equal(nn_epoch("2024-05-02T10:11:12.123456789Z", out, sizeof(out)), 0);
	assert_string_equal(out, "20240502T101112123456789Z");
	assert_int_equal(nn_epoch("-:.", out, sizeof(out)), FANOUT_EINVAL);

	assert_int_equal(nn_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(nn_u64("18446744073709551616", 20, &v), FANOUT_EINVAL);
	assert_int_equal(nn_u64("", 0, &v), FANOUT_EINVAL);
	assert_int_equal(nn_u64("12a", 3, &v), FANOUT_EINVAL);

	{
		const char *ok = "{\"stream\":\"S\",\"seq\":42}";
		const char *bad = "{\"error\":{\"code\":503,\"description\":\"no space\"}}";
		assert_int_equal(nn_parse_puback(ok, strlen(ok), &v, err, sizeof(err)), 0);
		assert_true(v == 42);
		assert_int_equal(nn_parse_puback(bad, strlen(bad), &v, err, sizeof(err)),
				 FANOUT_EIO);
		assert_non_null(strstr(err, "no space"));
		assert_int_equal(nn_parse_puback("[]", 2, &v, err, sizeof(err)), FANOUT_EINVAL);
		assert_int_equal(nn_parse_puback("{\"seq\":1}", 9, &v, err, sizeof(err)),
				 FANOUT_EINVAL);
	}
}

/* ---- bad configuration: one clear line, init fails ---- */

static void test_bad_config(void **unused)
{
	struct fx f = {0};
	const char *bad_url[] = {NULL};
	const char *star[] = {"*"};
	const char *js[] = {"jetstream", "yes", NULL};
	const char *js_over[] = {"jetstream", "yes", "republish_prefix", "news.", NULL};
	const char *news[] = {"news.*"};

	(void)unused;
	snprintf(f.url, sizeof(f.url), "nats://localhost:99999");
	assert_int_equal(fx_try(&f, NULL, 0, bad_url), FANOUT_EINVAL);
	assert_true(mockhost_log_contains(f.m, "port must be 1-65535"));
	mockhost_free(f.m);
	f.m = NULL;

	snprintf(f.url, sizeof(f.url), "nats://127.0.0.1:4222");
	assert_int_equal(fx_try(&f, star, 1, js), FANOUT_EINVAL);
	assert_true(mockhost_log_contains(f.m, "cannot be a JetStream stream subject"));
	mockhost_free(f.m);
	f.m = NULL;

	assert_int_equal(fx_try(&f, news, 1, js_over), FANOUT_EINVAL);
	assert_true(mockhost_log_contains(f.m, "overlaps the stream subject"));
	mockhost_free(f.m);
	f.m = NULL;
}

/* ---- core NATS ---- */

static void test_core(void **unused)
{
	struct fx f = {0};
	size_t n0;

	(void)unused;
	server_start(&f.srv);
	fx_start(&f, NULL, 0, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.a");
	/* A raw publisher reaches the channel, and only that one. */
	pub(&f.srv, "news.b", "no");
	pub(&f.srv, "news.a", "{\"n\":1}");
	assert_true(wait_n_delivered(&f, 1));
	assert_string_equal(last_msg(&f)->channel, "news.a");
	assert_string_equal(last_msg(&f)->data, "{\"n\":1}");
	assert_null(last_msg(&f)->epoch);

	/* A client publish is confirmed and comes back through the server. */
	assert_int_equal(plugin->publish(f.st, "news.a", "two", 3, 7), 0);
	{
		size_t one = 1;
		assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &one, 5000));
	}
	assert_true(mockhost_published(f.m, 0)->token == 7);
	assert_int_equal(mockhost_published(f.m, 0)->ok, 1);
	assert_true(wait_n_delivered(&f, 2));
	assert_string_equal(last_msg(&f)->data, "two");

	/* Unsubscribed: nothing more on news.a. news.z, published after it
	 * by the same publisher, marks the point all earlier ones passed. */
	assert_int_equal(plugin->unsubscribe(f.st, "news.a"), 0);
	fx_sub(&f, "news.z");
	n0 = mockhost_n_delivered(f.m);
	assert_true(raw_send(f.srv.port, "PUB news.a 4\r\nlost\r\nPUB news.z 4\r\nmark\r\n"));
	assert_true(wait_n_delivered(&f, n0 + 1));
	assert_string_equal(last_msg(&f)->channel, "news.z");

	/* Not a subject: refused at once. */
	assert_int_equal(plugin->subscribe(f.st, "a..b"), 0);
	assert_int_equal(mockhost_n_subscribed_for(f.m, "a..b", 0), 1);
	assert_int_equal(plugin->publish(f.st, "a..b", "x", 1, 8), FANOUT_EINVAL);
	fx_free(&f);
}

/* A burst from a raw publisher arrives whole and in order. */
static void test_burst(void **unused)
{
	struct fx f = {0};
	enum { N = 5000 };
	char *buf = malloc(N * 40), *p;

	(void)unused;
	assert_non_null(buf);
	server_start(&f.srv);
	fx_start(&f, NULL, 0, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "burst");
	p = buf;
	for (int i = 0; i < N; i++) {
		char num[16];
		int l = snprintf(num, sizeof(num), "%d", i);
		p += sprintf(p, "PUB burst %d\r\n%s\r\n", l, num);
	}
	assert_true(raw_send(f.srv.port, buf));
	free(buf);
	assert_true(wait_n_delivered(&f, N));
	for (int i = 0; i < N; i++)
		assert_int_equal(atoi(mockhost_delivered(f.m, (size_t)i)->data), i);
	fx_free(&f);
}

/* Killed and restarted: down, up again, a gap, deliveries resume. */
static void test_restart(void **unused)
{
	struct fx f = {0};
	size_t one = 1;

	(void)unused;
	server_start(&f.srv);
	fx_start(&f, NULL, 0, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.a");
	server_kill(&f.srv, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 5000));
	assert_int_equal(plugin->publish(f.st, "news.a", "x", 1, 1), FANOUT_EUNAVAIL);
	server_start(&f.srv);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_gaps, &one, 5000));
	assert_null(mockhost_gap(f.m, 0)->channel);
	/* libnats subscribed again before the backend said up. */
	pub(&f.srv, "news.a", "after");
	assert_true(wait_n_delivered(&f, 1));
	assert_string_equal(last_msg(&f)->data, "after");
	fx_free(&f);
}

/* A stopped server: the subscribe waits; SIGCONT confirms it. Long
 * stopped: PINGs go unanswered and the backend goes down. */
static void test_sigstop(void **unused)
{
	struct fx f = {0};

	(void)unused;
	server_start(&f.srv);
	fx_start(&f, NULL, 0, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	server_stop_signal(&f.srv);
	assert_int_equal(plugin->subscribe(f.st, "news.s"), 0);
	mockhost_run(f.m, 150);
	assert_int_equal(mockhost_n_subscribed_for(f.m, "news.s", -1), 0);
	server_kill(&f.srv, SIGCONT);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "news.s", 5000));
	server_stop_signal(&f.srv);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 10000));
	server_kill(&f.srv, SIGCONT);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	pub(&f.srv, "news.s", "back");
	assert_true(wait_n_delivered(&f, 1));
	fx_free(&f);
}

/* Nothing to connect to: down with the reason; stop is clean. */
static void test_unreachable(void **unused)
{
	struct fx f = {0};

	(void)unused;
	f.srv.port = mockhost_free_port();
	fx_start(&f, NULL, 0, NULL);
	assert_true(mockhost_run_until(f.m, pred_reason, "connect", 3000));
	assert_int_equal(plugin->subscribe(f.st, "news.a"), 0);
	mockhost_run(f.m, 50);
	/* The subscribe waits for a connection; the server appears. */
	server_start(&f.srv);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "news.a", 10000));
	fx_free(&f);
}

/* ---- JetStream ---- */

static const char *const news_glob[] = {"news.*"};
static const char *const js_keys[] = {"jetstream", "yes", NULL};

static int pred_n_subscribed(struct mockhost *m, void *np)
{
	return mockhost_n_subscribed(m) >= *(size_t *)np;
}

static void test_js_positions(void **unused)
{
	struct fx f = {0};
	const struct mock_sub *s;
	char epoch[80];
	size_t n;

	(void)unused;
	f.srv.js = 1;
	server_start(&f.srv);
	fx_start(&f, news_glob, 1, js_keys);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.a");
	s = mockhost_subscribed(f.m, 0);
	assert_non_null(s->epoch);
	assert_true(s->top == 0);
	assert_int_equal(s->flags & FANOUT_POS_CONTIGUOUS, 0);
	snprintf(epoch, sizeof(epoch), "%s", s->epoch);

	/* Raw publishers are stored and positioned: stream sequences. */
	pub(&f.srv, "news.a", "a1");
	pub(&f.srv, "news.b", "b1");
	pub(&f.srv, "news.a", "a2");
	assert_true(wait_n_delivered(&f, 2));
	assert_string_equal(mockhost_delivered(f.m, 0)->epoch, epoch);
	assert_true(mockhost_delivered(f.m, 0)->offset == 1);
	assert_true(mockhost_delivered(f.m, 1)->offset == 3);
	assert_string_equal(mockhost_delivered(f.m, 1)->data, "a2");

	/* A client publish: acknowledged with its position. */
	assert_int_equal(plugin->publish(f.st, "news.a", "a3", 2, 11), 0);
	n = 1;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &n, 5000));
	assert_int_equal(mockhost_published(f.m, 0)->ok, 1);
	assert_string_equal(mockhost_published(f.m, 0)->epoch, epoch);
	assert_true(mockhost_published(f.m, 0)->offset == 4);
	assert_true(wait_n_delivered(&f, 3));
	assert_true(last_msg(&f)->offset == 4);

	/* top */
	assert_int_equal(plugin->top(f.st, "news.a", 21), 0);
	assert_int_equal(plugin->top(f.st, "news.b", 22), 0);
	assert_int_equal(plugin->top(f.st, "news.never", 23), 0);
	n = 3;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_tops, &n, 5000));
	assert_int_equal(mockhost_top(f.m, 0)->status, 0);
	assert_string_equal(mockhost_top(f.m, 0)->epoch, epoch);
	assert_true(mockhost_top(f.m, 0)->top == 4);
	assert_true(mockhost_top(f.m, 1)->top == 2);
	assert_true(mockhost_top(f.m, 2)->top == 0); /* nothing kept: 0 */

	/* history */
	assert_int_equal(plugin->history(f.st, "news.a", epoch, 0, 10, 31), 0);
	n = 1;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_histories, &n, 5000));
	assert_int_equal(mockhost_history(f.m, 0)->status, 0);
	assert_true(mockhost_history(f.m, 0)->top == 4);
	assert_int_equal(mockhost_n_items(f.m), 3);
	assert_true(mockhost_item(f.m, 0)->offset == 1);
	assert_string_equal(mockhost_item(f.m, 0)->data, "a1");
	assert_true(mockhost_item(f.m, 1)->offset == 3);
	assert_true(mockhost_item(f.m, 2)->offset == 4);
	assert_int_equal(plugin->history(f.st, "news.a", epoch, 1, 1, 32), 0);
	n = 2;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_histories, &n, 5000));
	assert_int_equal(mockhost_n_items(f.m), 4);
	assert_true(mockhost_item(f.m, 3)->offset == 3);
	assert_true(mockhost_item(f.m, 3)->token == 32);
	/* another epoch */
	assert_int_equal(plugin->history(f.st, "news.a", "stale", 0, 10, 33), 0);
	n = 3;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_histories, &n, 5000));
	assert_int_equal(mockhost_history(f.m, 2)->status, FANOUT_EEPOCH);
	assert_string_equal(mockhost_history(f.m, 2)->epoch, epoch);
	assert_int_equal(mockhost_n_items(f.m), 4);

	/* A second subscriber instance's view: top read after the SUB. */
	fx_sub(&f, "news.b");
	n = 2;
	assert_true(mockhost_run_until(f.m, pred_n_subscribed, &n, 5000));
	assert_true(mockhost_subscribed(f.m, 1)->top == 2);
	fx_free(&f);
}

/* A republished copy whose Nats-Last-Sequence is newer than what we
 * delivered: a message was lost on the way, the channel gets a gap and its
 * position up to the lost message (subscribed_at again: the host repairs
 * from history before the copy goes out). */
static void test_js_hole(void **unused)
{
	struct fx f = {0};
	size_t one = 1;

	(void)unused;
	f.srv.js = 1;
	server_start(&f.srv);
	fx_start(&f, news_glob, 1, js_keys);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.h");
	pub(&f.srv, "news.h", "one");
	assert_true(wait_n_delivered(&f, 1));
	hpub(&f.srv, "_fanout.rp.news.h",
	     "Nats-Stream: FANOUT\r\nNats-Sequence: 10\r\nNats-Last-Sequence: 9\r\n", "ten");
	assert_true(wait_n_delivered(&f, 2));
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_gaps, &one, 5000));
	assert_string_equal(mockhost_gap(f.m, 0)->channel, "news.h");
	assert_true(last_msg(&f)->offset == 10);
	assert_true(mockhost_count(f.m, "holes") == 1);
	assert_int_equal(mockhost_n_subscribed(f.m), 2);
	assert_string_equal(mockhost_subscribed(f.m, 1)->channel, "news.h");
	assert_string_equal(mockhost_subscribed(f.m, 1)->epoch, mockhost_subscribed(f.m, 0)->epoch);
	assert_true(mockhost_subscribed(f.m, 1)->top == 9);
	/* No position at all: not from the stream, dropped. */
	fx_sub(&f, "news.i");
	pub(&f.srv, "_fanout.rp.news.i", "forged");
	pub(&f.srv, "news.i", "real");
	assert_true(wait_n_delivered(&f, 3));
	assert_string_equal(last_msg(&f)->data, "real");
	assert_true(mockhost_count(f.m, "unpositioned_dropped") == 1);
	fx_free(&f);
}

/* History limited to 3 messages: older offsets are truncated. */
static void test_js_truncated(void **unused)
{
	struct fx f = {0};
	const char *keys[] = {"jetstream", "yes", "history_size", "3", NULL};
	const char *epoch;
	size_t n;

	(void)unused;
	f.srv.js = 1;
	server_start(&f.srv);
	fx_start(&f, news_glob, 1, keys);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.t");
	epoch = mockhost_subscribed(f.m, 0)->epoch;
	assert_true(raw_send(f.srv.port, "PUB news.t 1\r\n1\r\nPUB news.t 1\r\n2\r\n"
					 "PUB news.t 1\r\n3\r\nPUB news.t 1\r\n4\r\n"
					 "PUB news.t 1\r\n5\r\nPUB news.t 1\r\n6\r\n"));
	assert_true(wait_n_delivered(&f, 6));
	assert_int_equal(plugin->history(f.st, "news.t", epoch, 1, 10, 1), 0);
	assert_int_equal(plugin->history(f.st, "news.t", epoch, 3, 10, 2), 0);
	n = 2;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_histories, &n, 5000));
	assert_int_equal(mockhost_history(f.m, 0)->status, FANOUT_ETRUNCATED);
	assert_true(mockhost_history(f.m, 0)->top == 6);
	assert_int_equal(mockhost_history(f.m, 1)->status, 0);
	assert_int_equal(mockhost_n_items(f.m), 3);
	assert_true(mockhost_item(f.m, 0)->offset == 4);
	assert_true(mockhost_item(f.m, 0)->token == 2);
	fx_free(&f);
}

/* Memory storage: a restarted server has lost the stream; the backend
 * creates it again: a new epoch and a gap for every channel. */
static void test_js_new_epoch(void **unused)
{
	struct fx f = {0};
	const char *keys[] = {"jetstream", "yes", "stream_storage", "memory", NULL};
	char epoch[80];
	size_t n;

	(void)unused;
	f.srv.js = 1;
	server_start(&f.srv);
	fx_start(&f, news_glob, 1, keys);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	fx_sub(&f, "news.e");
	snprintf(epoch, sizeof(epoch), "%s", mockhost_subscribed(f.m, 0)->epoch);
	pub(&f.srv, "news.e", "old");
	assert_true(wait_n_delivered(&f, 1));
	server_kill(&f.srv, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 5000));
	usleep(2000); /* creation times are in ns: make sure the clock moved */
	server_start(&f.srv);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	n = 2; /* "history was reset" and "reconnected" */
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_gaps, &n, 5000));
	pub(&f.srv, "news.e", "new");
	assert_true(wait_n_delivered(&f, 2));
	assert_non_null(last_msg(&f)->epoch);
	assert_string_not_equal(last_msg(&f)->epoch, epoch);
	assert_true(last_msg(&f)->offset == 1);
	fx_free(&f);
}

/* A server without JetStream: down with the reason, never a fallback. */
static void test_js_absent(void **unused)
{
	struct fx f = {0};

	(void)unused;
	server_start(&f.srv);
	fx_start(&f, news_glob, 1, js_keys);
	assert_true(mockhost_run_until(f.m, pred_reason, "JetStream is not enabled", 5000));
	assert_false(mockhost_run_until(f.m, mockhost_pred_up, NULL, 300));
	assert_int_equal(plugin->publish(f.st, "news.a", "x", 1, 1), FANOUT_EUNAVAIL);
	fx_free(&f);
}

static int group_setup(void **unused)
{
	(void)unused;
	signal(SIGPIPE, SIG_IGN);
	plugin = mockhost_dlopen(getenv("NATS_SO") ? getenv("NATS_SO") : NATS_SO);
	return plugin ? 0 : -1;
}

static int group_teardown(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			kill(live[i], SIGCONT);
			waitpid(live[i], NULL, 0);
		}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),	 cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_core),	 cmocka_unit_test(test_burst),
	    cmocka_unit_test(test_restart),	 cmocka_unit_test(test_sigstop),
	    cmocka_unit_test(test_unreachable),	 cmocka_unit_test(test_js_positions),
	    cmocka_unit_test(test_js_hole),	 cmocka_unit_test(test_js_truncated),
	    cmocka_unit_test(test_js_new_epoch), cmocka_unit_test(test_js_absent),
	};

	return cmocka_run_group_tests_name("nats backend", tests, group_setup, group_teardown);
}
