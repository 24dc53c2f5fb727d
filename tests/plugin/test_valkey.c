/*
 * test_valkey.c — the valkey backend against the mock host and a real
 * redis-server (or valkey-server) started here on free loopback ports.
 *
 * Owns: one mockhost per test, the brokers it starts through brokers.c
 * (stopped by PID, all of them in teardown), sync hiredis contexts used as
 * the "outside publisher".
 * Runs single-threaded (the plugin's resolver thread aside). The broker path
 * comes from $REDIS_SERVER; with none, tests skip (fail when CI=true).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brokers.h"
#include "envelope.h"
#include "mockhost.h"

#ifndef VALKEY_SO
#define VALKEY_SO "plugins/valkey/.libs/valkey.so"
#endif

static const struct fanout_plugin *plugin;

static void url_of(char *buf, size_t n, struct broker *b)
{
	snprintf(buf, n, "redis://127.0.0.1:%d/0", b->port);
}

/* A started plugin on its own mock host. */
struct fx {
	struct mockhost *m;
	void *st;
	struct broker br;
	char url[128];
};

static void fx_start(struct fx *f, const char *const *extra)
{
	const char *kv[40];
	size_t n = 0;

	f->m = mockhost_new();
	assert_non_null(f->m);
	url_of(f->url, sizeof(f->url), &f->br);
	kv[n++] = "url";
	kv[n++] = f->url;
	kv[n++] = "reconnect_min_ms";
	kv[n++] = "20";
	kv[n++] = "reconnect_max_ms";
	kv[n++] = "200";
	for (size_t i = 0; extra && extra[i]; i++)
		kv[n++] = extra[i];
	kv[n] = NULL;
	assert_int_equal(mockhost_start(f->m, plugin, kv, &f->st), 0);
}

static void fx_free(struct fx *f)
{
	if (f->m) {
		mockhost_stop(f->m);
		/* stop() + destroy() leave nothing behind on the host. */
		assert_int_equal(mockhost_n_watches(f->m), 0);
		assert_int_equal(mockhost_n_timers(f->m), 0);
		mockhost_free(f->m);
		f->m = NULL;
	}
	broker_kill(&f->br, SIGKILL);
}

static void fx_up_and_sub(struct fx *f, const char *channel)
{
	assert_true(mockhost_run_until(f->m, mockhost_pred_up, NULL, 5000));
	if (channel) {
		assert_int_equal(plugin->subscribe(f->st, channel), 0);
		assert_true(
		    mockhost_run_until(f->m, mockhost_pred_subscribed, (void *)channel, 5000));
	}
}

struct numsub_arg {
	struct broker *b;
	const char *ch;
	long long want;
};

static int pred_numsub(struct mockhost *m, void *arg)
{
	struct numsub_arg *a = arg;

	(void)m;
	return numsub(a->b, a->ch) == a->want;
}

static int pred_count(struct mockhost *m, void *ev)
{
	return mockhost_count(m, ev) > 0;
}

/* ---- tests ---- */

static void test_subscribe_deliver(void **unused)
{
	struct fx f = {0};
	static const char bin[] = "not json \x01\x00\xff end";
	size_t want = 2;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "news");
	assert_int_equal(numsub(&f.br, "news"), 1);
	assert_int_equal(publish(&f.br, "news", "{\"a\":1}", 7), 1);
	assert_int_equal(publish(&f.br, "news", bin, sizeof(bin)), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, 0)->channel, "news");
	assert_int_equal(mockhost_delivered(f.m, 0)->len, 7);
	assert_memory_equal(mockhost_delivered(f.m, 0)->data, "{\"a\":1}", 7);
	assert_int_equal(mockhost_delivered(f.m, 1)->len, sizeof(bin));
	assert_memory_equal(mockhost_delivered(f.m, 1)->data, bin, sizeof(bin));
	/* A channel nobody asked for is not subscribed on the broker. */
	assert_int_equal(numsub(&f.br, "other"), 0);
	assert_true(mockhost_count(f.m, "messages") >= 2);
	fx_free(&f);
}

static void test_prefix(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"channel_prefix", "app1:", NULL};
	size_t want = 1;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "a");
	assert_int_equal(numsub(&f.br, "app1:a"), 1);
	assert_int_equal(numsub(&f.br, "a"), 0);
	assert_int_equal(publish(&f.br, "a", "wrong", 5), 0);
	assert_int_equal(publish(&f.br, "app1:a", "right", 5), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	mockhost_run(f.m, 50);
	assert_int_equal(mockhost_n_delivered(f.m), 1);
	assert_string_equal(mockhost_delivered(f.m, 0)->channel, "a");
	assert_string_equal(mockhost_delivered(f.m, 0)->data, "right");
	/* publish() goes out prefixed too. */
	assert_int_equal(plugin->publish(f.st, "a", "mine", 4, 7), 0);
	want = 2;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, 1)->data, "mine");
	fx_free(&f);
}

static void test_big_payload(void **unused)
{
	struct fx f = {0};
	size_t len = 1024 * 1024, want = 1;
	char *big = malloc(len);

	(void)unused;
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "big");
	assert_int_equal(publish(&f.br, "big", big, len), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 5000));
	assert_int_equal(mockhost_delivered(f.m, 0)->len, len);
	assert_memory_equal(mockhost_delivered(f.m, 0)->data, big, len);
	free(big);
	fx_free(&f);
}

static void test_burst_in_order(void **unused)
{
	struct fx f = {0};
	size_t n = 10000;
	redisContext *c;
	char buf[32];

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "burst");
	c = broker_ctx(&f.br);
	assert_non_null(c);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%zu", i);
		redisAppendCommand(c, "PUBLISH burst %s", buf);
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *r;
		assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
		freeReplyObject(r);
	}
	redisFree(c);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &n, 10000));
	assert_int_equal(mockhost_n_delivered(f.m), n);
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%zu", i);
		assert_string_equal(mockhost_delivered(f.m, i)->data, buf);
	}
	fx_free(&f);
}

static void test_demand_numsub_batch(void **unused)
{
	struct fx f = {0};
	const char *chs[] = {"c1", "c2", "c3", "c4", "c5"};
	struct numsub_arg na;
	long long before;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, NULL);
	before = cmd_calls(&f.br, "subscribe");
	/* Five subscribes in one loop turn travel as one SUBSCRIBE. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(plugin->subscribe(f.st, chs[i]), 0);
	for (int i = 0; i < 5; i++)
		assert_true(
		    mockhost_run_until(f.m, mockhost_pred_subscribed, (void *)chs[i], 3000));
	assert_int_equal(cmd_calls(&f.br, "subscribe") - before, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(numsub(&f.br, chs[i]), 1);
	/* Last local subscriber leaves: unsubscribed on the broker. */
	assert_int_equal(plugin->unsubscribe(f.st, "c3"), 0);
	na = (struct numsub_arg){&f.br, "c3", 0};
	assert_true(mockhost_run_until(f.m, pred_numsub, &na, 3000));
	assert_int_equal(numsub(&f.br, "c2"), 1);
	/* Leave and come back quickly: subscribed again, confirmed again. */
	assert_int_equal(plugin->unsubscribe(f.st, "c4"), 0);
	mockhost_run(f.m, 0);
	assert_int_equal(plugin->subscribe(f.st, "c4"), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "c4", 3000));
	mockhost_run(f.m, 100);
	assert_int_equal(numsub(&f.br, "c4"), 1);
	/* Messages for an unsubscribed channel are not delivered. */
	publish(&f.br, "c3", "x", 1);
	publish(&f.br, "c4", "y", 1);
	{
		size_t want = 1;
		assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	}
	mockhost_run(f.m, 50);
	assert_int_equal(mockhost_n_delivered(f.m), 1);
	assert_string_equal(mockhost_delivered(f.m, 0)->channel, "c4");
	fx_free(&f);
}

static void test_publish(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"max_pending", "2", NULL};
	size_t want = 1;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "pub");
	assert_int_equal(plugin->publish(f.st, "pub", "{\"x\":2}", 7, 42), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &want, 3000));
	assert_int_equal(mockhost_published(f.m, 0)->token, 42);
	assert_int_equal(mockhost_published(f.m, 0)->ok, 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, 0)->data, "{\"x\":2}");
	/* Over max_pending in flight: refused at once. */
	assert_int_equal(plugin->publish(f.st, "pub", "a", 1, 1), 0);
	assert_int_equal(plugin->publish(f.st, "pub", "b", 1, 2), 0);
	assert_int_equal(plugin->publish(f.st, "pub", "c", 1, 3), FANOUT_EUNAVAIL);
	want = 3;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &want, 3000));
	/* Broker gone: published(token, 0), at once or when the loss is seen. */
	broker_kill(&f.br, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 3000));
	assert_int_equal(plugin->publish(f.st, "pub", "d", 1, 99), 0);
	assert_int_equal(mockhost_n_published(f.m), 4);
	assert_int_equal(mockhost_published(f.m, 3)->token, 99);
	assert_int_equal(mockhost_published(f.m, 3)->ok, 0);
	fx_free(&f);
}

static void check_recovery(struct fx *f, const char *ch, const char *payload, const char *what)
{
	size_t gaps = 1, want = mockhost_n_delivered(f->m) + 1;
	uint64_t t0 = mockhost_now_ms();
	struct numsub_arg na = {&f->br, ch, 1};

	assert_true(mockhost_run_until(f->m, mockhost_pred_up, NULL, 10000));
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_gaps, &gaps, 10000));
	assert_null(mockhost_gap(f->m, 0)->channel);
	assert_string_equal(mockhost_gap(f->m, 0)->reason, "backend reconnected");
	assert_true(mockhost_run_until(f->m, pred_numsub, &na, 3000));
	assert_int_equal(publish(&f->br, ch, payload, strlen(payload)), 1);
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f->m, want - 1)->data, payload);
	assert_true(mockhost_count(f->m, "reconnects") >= 1);
	/* No second "subscribed" answer for a channel already confirmed. */
	assert_int_equal(mockhost_n_subscribed_for(f->m, ch, -1), 1);
	print_message("# %s: up again + message delivered %llu ms after the fault ended\n", what,
		      (unsigned long long)(mockhost_now_ms() - t0));
}

static void test_broker_restart(void **unused)
{
	struct fx f = {0};
	int port;
	uint64_t t0;
	size_t down_states;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "r1");
	port = f.br.port;
	broker_kill(&f.br, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 3000));
	mockhost_run(f.m, 500); /* several retries while it is down */
	/* Down is reported (and logged) once, not once per retry. */
	down_states = 0;
	for (size_t i = 0; i < mockhost_n_states(f.m); i++)
		down_states += mockhost_state(f.m, i)->state == FANOUT_DOWN;
	assert_int_equal(down_states, 2); /* "connecting" at start + the loss */
	t0 = mockhost_now_ms();
	broker_start_on(&f.br, port, NULL);
	check_recovery(&f, "r1", "after restart", "broker restart");
	print_message("# broker restart: restart -> message delivered in %llu ms\n",
		      (unsigned long long)(mockhost_now_ms() - t0));
	fx_free(&f);
}

static void test_client_kill(void **unused)
{
	struct fx f = {0};
	redisReply *r;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "k1");
	r = broker_cmd(&f.br, "CLIENT KILL TYPE pubsub");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_int_equal(r->integer, 1);
	freeReplyObject(r);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 3000));
	check_recovery(&f, "k1", "after kill", "CLIENT KILL TYPE pubsub");
	fx_free(&f);
}

static void test_sigstop_probe(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"probe_interval_ms",
			       "100",
			       "probe_timeout_ms",
			       "400",
			       "connect_timeout_ms",
			       "300",
			       NULL};

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "s1");
	broker_kill(&f.br, SIGSTOP);
	assert_true(mockhost_run_until(f.m, pred_count, "probe_timeouts", 3000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 1000));
	mockhost_run(f.m, 600);
	broker_kill(&f.br, SIGCONT);
	check_recovery(&f, "s1", "after sigstop", "SIGSTOP");
	fx_free(&f);
}

static void test_auth_right(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"password", "s3cret", NULL};
	size_t want = 1;

	(void)unused;
	broker_start(&f.br, "s3cret");
	fx_start(&f, extra);
	fx_up_and_sub(&f, "a1");
	assert_int_equal(publish(&f.br, "a1", "ok", 2), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_false(mockhost_log_contains(f.m, "s3cret"));
	fx_free(&f);
}

static void test_auth_url_and_db(void **unused)
{
	struct fx f = {0};
	const char *extra[2 + 1] = {"url", NULL, NULL};
	char url[160];

	(void)unused;
	broker_start(&f.br, "p%w");
	/* user "default" + password in the url (percent-encoded), db 3 */
	snprintf(url, sizeof(url), "redis://default:p%%25w@127.0.0.1:%d/3", f.br.port);
	extra[1] = url;
	fx_start(&f, extra);
	fx_up_and_sub(&f, "a2");
	assert_int_equal(numsub(&f.br, "a2"), 1);
	assert_int_equal(mockhost_count(f.m, "auth_failures"), 0);
	fx_free(&f);
}

static void test_auth_wrong(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"password", "wrong", NULL};
	size_t nlog = 0;

	(void)unused;
	broker_start(&f.br, "s3cret");
	fx_start(&f, extra);
	assert_true(mockhost_run_until(f.m, pred_count, "auth_failures", 3000));
	plugin->subscribe(f.st, "w1");
	mockhost_run(f.m, 700); /* the penalty delay is the cap (200 ms): several retries */
	assert_true(mockhost_count(f.m, "auth_failures") >= 3);
	assert_false(mockhost_pred_up(f.m, NULL));
	assert_int_equal(mockhost_n_subscribed_for(f.m, "w1", 1), 0);
	assert_int_equal(numsub(&f.br, "w1"), 0);
	for (size_t i = 0; i < mockhost_n_logs(f.m); i++) {
		const struct mock_log *l = mockhost_log(f.m, i);
		if (l->level <= FANOUT_LOG_WARN && strstr(l->text, "AUTH refused")) {
			assert_non_null(strstr(l->text, "WRONGPASS"));
			nlog++;
		}
	}
	/* Named clearly, once per connection, not once per retry. */
	assert_true(nlog >= 1 && nlog <= 2);
	assert_false(mockhost_log_contains(f.m, "wrong\""));
	fx_free(&f);
}

struct refused_arg {
	const char *channel;
	size_t n;
};

/* subscribed(channel, 0) was called at least n times for channel. */
static int pred_refused(struct mockhost *m, void *arg)
{
	struct refused_arg *a = arg;

	return mockhost_n_subscribed_for(m, a->channel, 0) >= a->n;
}

struct gap_arg {
	const char *channel; /* NULL: the gap of every channel */
	const char *reason;
};

/* A gap for a->channel with a->reason was recorded. */
static int pred_gap(struct mockhost *m, void *arg)
{
	struct gap_arg *a = arg;

	for (size_t i = 0; i < mockhost_n_gaps(m); i++) {
		const struct mock_gap *g = mockhost_gap(m, i);
		if ((a->channel ? g->channel && !strcmp(g->channel, a->channel) : !g->channel) &&
		    !strcmp(g->reason, a->reason))
			return 1;
	}
	return 0;
}

/* ACL SETUSER user reset on >pass ~* +@all resetchannels <chans...> (NULL-ended). */
static void acl_user(struct broker *b, const char *user, const char *pass, ...)
{
	const char *argv[16] = {"ACL", "SETUSER", user,	   "reset",	   "on",
				NULL,  "~*",	  "+@all", "resetchannels"};
	char pw[64];
	int n = 9;
	va_list ap;
	redisContext *c = broker_ctx(b);
	redisReply *r;

	assert_non_null(c);
	snprintf(pw, sizeof(pw), ">%s", pass);
	argv[5] = pw;
	va_start(ap, pass);
	for (const char *a; n < 39 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	r = redisCommandArgv(c, n, argv, NULL);
	assert_non_null(r);
	if (r->type != REDIS_REPLY_STATUS)
		fail_msg("ACL SETUSER: %s", r->str ? r->str : "?");
	freeReplyObject(r);
	redisFree(c);
}

/*
 * An ACL user without a channel: -NOPERM on SUBSCRIBE. Exactly that channel
 * is refused, even inside a batch with allowed ones; the connection and
 * the other channels are undisturbed. A live channel revoked later (the
 * broker then disconnects us) is retried and gets a gap of its own.
 */
static void test_acl_refused(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"username", "lim", "password", "limpw", NULL};
	const char *batch[] = {"ok2", "bad1", "ok3"};
	size_t want;

	(void)unused;
	broker_start(&f.br, NULL);
	acl_user(&f.br, "lim", "limpw", "&ok*", "&__fanout_probe:*", NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "ok1");
	/* Three subscribes in one loop turn: one SUBSCRIBE, refused whole. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(plugin->subscribe(f.st, batch[i]), 0);
	assert_true(mockhost_run_until(f.m, pred_refused, &(struct refused_arg){"bad1", 1}, 5000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "ok2", 5000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "ok3", 5000));
	assert_int_equal(mockhost_n_subscribed_for(f.m, "bad1", -1), 1);
	assert_int_equal(numsub(&f.br, "ok2"), 1);
	assert_int_equal(numsub(&f.br, "ok3"), 1);
	assert_int_equal(numsub(&f.br, "bad1"), 0);
	assert_int_equal(mockhost_count(f.m, "subscribe_errors"), 1);
	assert_true(mockhost_log_contains(f.m, "SUBSCRIBE bad1 refused by the broker: NOPERM"));
	/* Refused alone, once more. */
	assert_int_equal(plugin->subscribe(f.st, "bad1"), 0);
	assert_true(mockhost_run_until(f.m, pred_refused, &(struct refused_arg){"bad1", 2}, 3000));
	assert_int_equal(mockhost_count(f.m, "subscribe_errors"), 2);
	/* Nothing else was disturbed. */
	assert_int_equal(mockhost_count(f.m, "sub_disconnects"), 0);
	assert_int_equal(mockhost_n_gaps(f.m), 0);
	assert_true(mockhost_pred_up(f.m, NULL));
	assert_int_equal(publish(&f.br, "ok1", "still", 5), 1);
	want = 1;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, 0)->data, "still");

	/* ok1 revoked: the broker disconnects the subscriber; on reconnect ok1
	 * is refused, the others come back with the global gap. */
	acl_user(&f.br, "lim", "limpw", "&ok2", "&ok3", "&__fanout_probe:*", NULL);
	assert_true(mockhost_run_until(f.m, pred_gap,
				       &(struct gap_arg){NULL, "backend reconnected"}, 5000));
	assert_int_equal(numsub(&f.br, "ok2"), 1);
	assert_int_equal(numsub(&f.br, "ok1"), 0);
	assert_true(mockhost_log_contains(f.m, "SUBSCRIBE ok1 refused by the broker"));
	/* Allowed again: retried within reconnect_max_ms, then its own gap. */
	acl_user(&f.br, "lim", "limpw", "&ok*", "&__fanout_probe:*", NULL);
	assert_true(mockhost_run_until(
	    f.m, pred_gap, &(struct gap_arg){"ok1", "backend could not subscribe again"}, 5000));
	assert_int_equal(numsub(&f.br, "ok1"), 1);
	/* Never a second answer for a channel answered once. */
	assert_int_equal(mockhost_n_subscribed_for(f.m, "ok1", -1), 1);
	want = mockhost_n_delivered(f.m) + 1;
	assert_int_equal(publish(&f.br, "ok1", "back", 4), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, want - 1)->data, "back");
	fx_free(&f);
}

/* A user that may not subscribe to the probe channel: down, with the reason. */
static void test_acl_no_probe(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"username", "np", "password", "nppw", NULL};

	(void)unused;
	broker_start(&f.br, NULL);
	acl_user(&f.br, "np", "nppw", "&x*", NULL);
	fx_start(&f, extra);
	assert_true(mockhost_run_until(f.m, pred_count, "auth_failures", 3000));
	mockhost_run(f.m, 300);
	assert_false(mockhost_pred_up(f.m, NULL));
	assert_true(mockhost_log_contains(f.m, "SUBSCRIBE of the probe channel refused"));
	assert_true(mockhost_log_contains(f.m, "&__fanout_probe:*"));
	fx_free(&f);
}

static void test_unreachable_then_up(void **unused)
{
	struct fx f = {0};
	int port = mockhost_free_port();
	const char *reason;

	(void)unused;
	f.br.port = port;
	fx_start(&f, NULL);
	mockhost_run(f.m, 600);
	assert_false(mockhost_pred_up(f.m, NULL));
	assert_int_equal(mockhost_last_state(f.m, &reason), FANOUT_DOWN);
	assert_true(mockhost_count(f.m, "connect_failures") >= 4); /* retrying */
	assert_int_equal(plugin->subscribe(f.st, "u1"), 0);
	mockhost_run(f.m, 50);
	assert_int_equal(mockhost_n_subscribed(f.m), 0); /* waits for the broker */
	broker_start_on(&f.br, port, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "u1", 3000));
	assert_int_equal(numsub(&f.br, "u1"), 1);
	fx_free(&f);
}

static void test_hostname(void **unused)
{
	struct fx f = {0};
	char url[96];
	const char *extra[] = {"url", url, NULL};
	size_t want = 1;

	(void)unused;
	broker_start(&f.br, NULL);
	snprintf(url, sizeof(url), "redis://localhost:%d", f.br.port);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "h1");
	assert_int_equal(publish(&f.br, "h1", "via localhost", 13), 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	fx_free(&f);
}

static void test_bad_hostname(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"url", "redis://no-such-host.invalid:6379/0", NULL};

	(void)unused;
	fx_start(&f, extra);
	assert_true(mockhost_run_until(f.m, pred_count, "resolve_failures", 5000));
	assert_true(mockhost_log_contains(f.m, "cannot resolve no-such-host.invalid"));
	fx_free(&f);
}

/* ---- positions and history ---- */

static long long key_ttl(struct broker *b, const char *key)
{
	redisReply *r = broker_cmd(b, "TTL %s", key);
	long long t = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;

	if (r)
		freeReplyObject(r);
	return t;
}

static int key_exists(struct broker *b, const char *key)
{
	redisReply *r = broker_cmd(b, "EXISTS %s", key);
	int e = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;

	if (r)
		freeReplyObject(r);
	return e;
}

struct key_arg {
	struct broker *b;
	const char *key;
};

static int pred_key_gone(struct mockhost *m, void *arg)
{
	struct key_arg *a = arg;

	(void)m;
	return key_exists(a->b, a->key) == 0;
}

static long long hlen(struct broker *b, const char *key)
{
	redisReply *r = broker_cmd(b, "HLEN %s", key);
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	if (r)
		freeReplyObject(r);
	return n;
}

/* FCALL fanout_publish from outside (a third-party publisher): the offset, or -1. */
static long long fcall_publish(struct broker *b, const char *ch, const char *data, char *epoch)
{
	redisReply *r = broker_cmd(b, "FCALL fanout_publish 1 fanout:{%s} %s", ch, data);
	long long off = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		off = r->element[1]->integer;
		if (epoch)
			snprintf(epoch, VK_EPOCH_MAX + 1, "%s", r->element[0]->str);
	}
	if (r)
		freeReplyObject(r);
	return off;
}

/* The last subscribed record for channel (NULL if none). */
static const struct mock_sub *sub_of(struct mockhost *m, const char *ch)
{
	const struct mock_sub *found = NULL;

	for (size_t i = 0; i < mockhost_n_subscribed(m); i++)
		if (strcmp(mockhost_subscribed(m, i)->channel, ch) == 0)
			found = mockhost_subscribed(m, i);
	return found;
}

/* top(channel) through the plugin: waits for top_done and returns it. */
static const struct mock_pos *op_top(struct fx *f, const char *ch, uint64_t token)
{
	size_t want = mockhost_n_tops(f->m) + 1;

	assert_int_equal(plugin->top(f->st, ch, token), 0);
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_tops, &want, 3000));
	assert_int_equal(mockhost_top(f->m, want - 1)->token, token);
	return mockhost_top(f->m, want - 1);
}

/* history() through the plugin: waits for history_done, returns it and the
 * index of its first item in *first (items of one answer are consecutive). */
static const struct mock_pos *op_history(struct fx *f, const char *ch, const char *epoch,
					 uint64_t after, uint64_t max, uint64_t token,
					 size_t *first, size_t *nitems)
{
	size_t want = mockhost_n_histories(f->m) + 1, i0 = mockhost_n_items(f->m);

	assert_int_equal(plugin->history(f->st, ch, epoch, after, max, token), 0);
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_histories, &want, 3000));
	assert_int_equal(mockhost_history(f->m, want - 1)->token, token);
	*first = i0;
	*nitems = mockhost_n_items(f->m) - i0;
	for (size_t i = i0; i < mockhost_n_items(f->m); i++)
		assert_int_equal(mockhost_item(f->m, i)->token, token);
	return mockhost_history(f->m, want - 1);
}

/* Publish n messages "<tag>1".."<tag>n" through the plugin and wait for them. */
static void publish_n(struct fx *f, const char *ch, const char *tag, int n)
{
	size_t want = mockhost_n_published(f->m) + (size_t)n;
	char buf[32];

	for (int i = 1; i <= n; i++) {
		snprintf(buf, sizeof(buf), "%s%d", tag, i);
		assert_int_equal(plugin->publish(f->st, ch, buf, strlen(buf), (uint64_t)i), 0);
	}
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_published, &want, 3000));
	for (size_t i = want - (size_t)n; i < want; i++)
		assert_int_equal(mockhost_published(f->m, i)->ok, 1);
}

static void test_positions(void **unused)
{
	struct fx f = {0};
	const struct mock_sub *s;
	const struct mock_pos *t;
	char epoch[VK_EPOCH_MAX + 1], e2[VK_EPOCH_MAX + 1];
	size_t want = 3;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "p1");
	s = sub_of(f.m, "p1");
	assert_non_null(s->epoch);
	assert_true(vk_epoch_valid(s->epoch, strlen(s->epoch)));
	assert_int_equal(s->top, 0);
	assert_int_equal(s->flags, FANOUT_POS_CONTIGUOUS);
	snprintf(epoch, sizeof(epoch), "%s", s->epoch);
	/* Client publishes get consecutive positions in that epoch. */
	publish_n(&f, "p1", "m", 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(mockhost_published(f.m, i)->epoch, epoch);
		assert_int_equal(mockhost_published(f.m, i)->offset, i + 1);
	}
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	for (size_t i = 0; i < 3; i++) {
		char buf[8];
		snprintf(buf, sizeof(buf), "m%zu", i + 1);
		assert_string_equal(mockhost_delivered(f.m, i)->epoch, epoch);
		assert_int_equal(mockhost_delivered(f.m, i)->offset, i + 1);
		assert_string_equal(mockhost_delivered(f.m, i)->data, buf);
	}
	/* The third-party command continues the sequence; a plain PUBLISH is
	 * delivered unpositioned. */
	assert_int_equal(fcall_publish(&f.br, "p1", "third", e2), 4);
	assert_string_equal(e2, epoch);
	assert_int_equal(publish(&f.br, "p1", "plain", 5), 1);
	want = 5;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_int_equal(mockhost_delivered(f.m, 3)->offset, 4);
	assert_string_equal(mockhost_delivered(f.m, 3)->data, "third");
	assert_null(mockhost_delivered(f.m, 4)->epoch);
	assert_string_equal(mockhost_delivered(f.m, 4)->data, "plain");
	/* top() */
	t = op_top(&f, "p1", 77);
	assert_int_equal(t->status, FANOUT_OK);
	assert_string_equal(t->epoch, epoch);
	assert_int_equal(t->top, 4);
	/* A channel published before anyone subscribed: its top, not 0. */
	assert_int_equal(fcall_publish(&f.br, "p2", "a", NULL), 1);
	assert_int_equal(fcall_publish(&f.br, "p2", "b", NULL), 2);
	fx_up_and_sub(&f, "p2");
	assert_int_equal(sub_of(f.m, "p2")->top, 2);
	/* One key per channel, hash-tagged by it, expiring as configured. */
	assert_true(key_ttl(&f.br, "fanout:{p1}") > 0 && key_ttl(&f.br, "fanout:{p1}") <= 300);
	fx_free(&f);
}

static void test_history(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"history_size", "3", NULL};
	const struct mock_pos *h;
	char epoch[VK_EPOCH_MAX + 1];
	size_t first, n;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "h1");
	snprintf(epoch, sizeof(epoch), "%s", sub_of(f.m, "h1")->epoch);
	publish_n(&f, "h1", "m", 5);
	/* Capped at 3: offsets 1 and 2 are gone. */
	h = op_history(&f, "h1", epoch, 0, 10, 1, &first, &n);
	assert_int_equal(h->status, FANOUT_ETRUNCATED);
	assert_string_equal(h->epoch, epoch);
	assert_int_equal(h->top, 5);
	assert_int_equal(n, 0);
	h = op_history(&f, "h1", epoch, 2, 10, 2, &first, &n);
	assert_int_equal(h->status, FANOUT_OK);
	assert_int_equal(h->top, 5);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < 3; i++) {
		char buf[8];
		snprintf(buf, sizeof(buf), "m%zu", i + 3);
		assert_int_equal(mockhost_item(f.m, first + i)->offset, i + 3);
		assert_string_equal(mockhost_item(f.m, first + i)->data, buf);
	}
	/* At most max, oldest first. */
	h = op_history(&f, "h1", epoch, 3, 1, 3, &first, &n);
	assert_int_equal(h->status, FANOUT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(mockhost_item(f.m, first)->offset, 4);
	/* Up to date: nothing to give. */
	h = op_history(&f, "h1", epoch, 5, 10, 4, &first, &n);
	assert_int_equal(h->status, FANOUT_OK);
	assert_int_equal(n, 0);
	/* The channel's hash: e, o, n and the last 3 payloads. */
	assert_int_equal(hlen(&f.br, "fanout:{h1}"), 3 + 3);
	/* A smaller history size (another instance's, or a third party's
	 * argument) trims at once. */
	freeReplyObject(broker_cmd(&f.br, "FCALL fanout_top 1 fanout:{h1} 1 300"));
	assert_int_equal(hlen(&f.br, "fanout:{h1}"), 3 + 1);
	h = op_history(&f, "h1", epoch, 3, 10, 9, &first, &n);
	assert_int_equal(h->status, FANOUT_ETRUNCATED);
	h = op_history(&f, "h1", epoch, 4, 10, 10, &first, &n);
	assert_int_equal(h->status, FANOUT_OK);
	assert_int_equal(n, 1);
	assert_string_equal(mockhost_item(f.m, first)->data, "m5");
	/* Another epoch (or a malformed one): EEPOCH with the current position. */
	h = op_history(&f, "h1", "stale", 1, 10, 5, &first, &n);
	assert_int_equal(h->status, FANOUT_EEPOCH);
	assert_string_equal(h->epoch, epoch);
	assert_int_equal(h->top, 5);
	h = op_history(&f, "h1", "bad:epoch", 1, 10, 6, &first, &n);
	assert_int_equal(h->status, FANOUT_EEPOCH);
	/* A position past the top of the current epoch means the broker lost
	 * writes: a new epoch starts, so offsets are never reused. */
	h = op_history(&f, "h1", epoch, 9, 10, 7, &first, &n);
	assert_int_equal(h->status, FANOUT_EEPOCH);
	assert_string_not_equal(h->epoch, epoch);
	assert_int_equal(h->top, 0);
	assert_string_equal(op_top(&f, "h1", 8)->epoch, h->epoch);
	fx_free(&f);
}

/*
 * history_size 64: old payloads are deleted 4 at a time (library.lua,
 * step()), so up to 3 linger below the history; they are never answered,
 * and the hash never holds more than e, o, n + 64 + 3.
 */
static void test_history_batches(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"history_size", "64", NULL};
	const struct mock_pos *h;
	char epoch[VK_EPOCH_MAX + 1];
	size_t first, n;
	long long most = 0;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "hb");
	snprintf(epoch, sizeof(epoch), "%s", sub_of(f.m, "hb")->epoch);
	for (int i = 1; i <= 75; i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "b%d", i);
		assert_int_equal(fcall_publish(&f.br, "hb", buf, NULL), i);
		if (hlen(&f.br, "fanout:{hb}") > most)
			most = hlen(&f.br, "fanout:{hb}");
		/* A payload still stored is answered only inside the history. */
		if (i > 64) {
			h = op_history(&f, "hb", epoch, (uint64_t)(i - 65), 1, (uint64_t)i, &first,
				       &n);
			assert_int_equal(h->status, FANOUT_ETRUNCATED);
		}
	}
	assert_int_equal(most, 3 + 64 + 3);
	/* 75 - 64 = 11: offsets 1..8 deleted (two batches), 9..11 linger. */
	assert_int_equal(hlen(&f.br, "fanout:{hb}"), 3 + 64 + 3);
	h = op_history(&f, "hb", epoch, 11, 100, 100, &first, &n);
	assert_int_equal(h->status, FANOUT_OK);
	assert_int_equal(n, 64);
	assert_int_equal(mockhost_item(f.m, first)->offset, 12);
	assert_string_equal(mockhost_item(f.m, first + 63)->data, "b75");
	/* A smaller size deletes the lingering ones too, at once. */
	freeReplyObject(broker_cmd(&f.br, "FCALL fanout_top 1 fanout:{hb} 10 300"));
	assert_int_equal(hlen(&f.br, "fanout:{hb}"), 3 + 10);
	fx_free(&f);
}

static void test_history_expiry(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"history_ttl_s", "60", NULL};
	const struct mock_pos *h;
	char epoch[VK_EPOCH_MAX + 1];
	size_t first, n;
	struct key_arg ka = {&f.br, "fanout:{x1}"};

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "x1");
	snprintf(epoch, sizeof(epoch), "%s", sub_of(f.m, "x1")->epoch);
	publish_n(&f, "x1", "m", 2);
	assert_true(key_ttl(&f.br, "fanout:{x1}") > 50 && key_ttl(&f.br, "fanout:{x1}") <= 60);
	/* Any use renews the expiry: a top() too (the hub's quiet-channel probe
	 * keeps a subscribed channel's position alive). */
	freeReplyObject(broker_cmd(&f.br, "EXPIRE fanout:{x1} 5"));
	assert_int_equal(op_top(&f, "x1", 1)->top, 2);
	assert_true(key_ttl(&f.br, "fanout:{x1}") > 50);
	/* Expired (made to happen now): a new epoch from 0; a resume from the
	 * old one is told so. */
	freeReplyObject(broker_cmd(&f.br, "PEXPIRE fanout:{x1} 1"));
	assert_true(mockhost_run_until(f.m, pred_key_gone, &ka, 3000));
	h = op_history(&f, "x1", epoch, 2, 10, 2, &first, &n);
	assert_int_equal(h->status, FANOUT_EEPOCH);
	assert_string_not_equal(h->epoch, epoch);
	assert_int_equal(h->top, 0);
	assert_int_equal(n, 0);
	fx_free(&f);
}

static void test_flushall_and_reload(void **unused)
{
	struct fx f = {0};
	const struct mock_pos *t;
	char epoch[VK_EPOCH_MAX + 1], e2[VK_EPOCH_MAX + 1];
	size_t want = 3;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "f1");
	snprintf(epoch, sizeof(epoch), "%s", sub_of(f.m, "f1")->epoch);
	publish_n(&f, "f1", "m", 2);
	/* The broker's data is wiped: a new epoch. */
	freeReplyObject(broker_cmd(&f.br, "FLUSHALL"));
	t = op_top(&f, "f1", 9);
	assert_int_equal(t->status, FANOUT_OK);
	assert_string_not_equal(t->epoch, epoch);
	assert_int_equal(t->top, 0);
	snprintf(e2, sizeof(e2), "%s", t->epoch);
	publish_n(&f, "f1", "n", 1);
	assert_string_equal(mockhost_published(f.m, 2)->epoch, e2);
	assert_int_equal(mockhost_published(f.m, 2)->offset, 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_string_equal(mockhost_delivered(f.m, 2)->epoch, e2);
	assert_int_equal(mockhost_delivered(f.m, 2)->offset, 1);
	/* The functions are gone (FUNCTION FLUSH, as after a restart without
	 * persistence): the next call reloads them and is retried once. */
	freeReplyObject(broker_cmd(&f.br, "FUNCTION FLUSH"));
	publish_n(&f, "f1", "o", 1);
	assert_int_equal(mockhost_published(f.m, 3)->offset, 2);
	assert_int_equal(mockhost_count(f.m, "function_reloads"), 1);
	freeReplyObject(broker_cmd(&f.br, "FUNCTION FLUSH"));
	t = op_top(&f, "f1", 10);
	assert_int_equal(t->status, FANOUT_OK);
	assert_int_equal(t->top, 2);
	assert_int_equal(mockhost_count(f.m, "function_reloads"), 2);
	fx_free(&f);
}

/* Broker restart with (dir set: append-only file, fsync always) or without
 * persistence: positions survive, or a new epoch starts. */
static void restart_positions(int persist)
{
	struct fx f = {0};
	const struct mock_pos *t, *h;
	char epoch[VK_EPOCH_MAX + 1], dir[] = "/tmp/fanout-vk-XXXXXX";
	size_t gaps = 1, first, n, want;
	int port;

	if (persist) {
		assert_non_null(mkdtemp(dir));
		snprintf(f.br.dir, sizeof(f.br.dir), "%s", dir);
	}
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, "rp");
	snprintf(epoch, sizeof(epoch), "%s", sub_of(f.m, "rp")->epoch);
	publish_n(&f, "rp", "m", 3);
	port = f.br.port;
	broker_kill(&f.br, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 3000));
	broker_start_on(&f.br, port, NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_gaps, &gaps, 10000));
	t = op_top(&f, "rp", 1);
	assert_int_equal(t->status, FANOUT_OK);
	if (persist) {
		assert_string_equal(t->epoch, epoch);
		assert_int_equal(t->top, 3);
		h = op_history(&f, "rp", epoch, 0, 10, 2, &first, &n);
		assert_int_equal(h->status, FANOUT_OK);
		assert_int_equal(n, 3);
		assert_string_equal(mockhost_item(f.m, first + 2)->data, "m3");
	} else {
		assert_string_not_equal(t->epoch, epoch);
		assert_int_equal(t->top, 0);
		h = op_history(&f, "rp", epoch, 3, 10, 2, &first, &n);
		assert_int_equal(h->status, FANOUT_EEPOCH);
		assert_string_equal(h->epoch, t->epoch);
	}
	/* Live positioned messages continue from there. */
	want = mockhost_n_delivered(f.m) + 1;
	publish_n(&f, "rp", "n", 1);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_int_equal(mockhost_delivered(f.m, want - 1)->offset, persist ? 4 : 1);
	fx_free(&f);
	if (persist) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void test_restart_persistent(void **unused)
{
	(void)unused;
	restart_positions(1);
}

static void test_restart_volatile(void **unused)
{
	(void)unused;
	restart_positions(0);
}

/* Stop a forked publisher. */
static void child_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	live_set(pid, 0);
}

/*
 * Messages published while a subscription's top is read are held back and
 * released behind subscribed_at() minus those the top covers: the first
 * message after subscribed_at(top) is top + 1 and none is missed.
 */
static void test_hold_until_top(void **unused)
{
	struct fx f = {0};
	const struct mock_sub *s;
	pid_t pub;
	size_t want = 100, nd;
	uint64_t top, final;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, NULL);
	pub = fork();
	assert_true(pub >= 0);
	if (pub == 0) {
		/* A third-party publisher as fast as it goes, pipelined. */
		redisContext *c = broker_ctx(&f.br);
		for (unsigned i = 0; c && !c->err; i++) {
			redisReply *r;
			for (int k = 0; k < 8; k++)
				redisAppendCommand(c, "FCALL fanout_publish 1 fanout:{hold} %u",
						   i * 8 + k);
			for (int k = 0; k < 8; k++) {
				if (redisGetReply(c, (void **)&r) != REDIS_OK)
					_exit(0);
				freeReplyObject(r);
			}
		}
		_exit(0);
	}
	live_set(0, pub);
	/* Let it run, then subscribe in the middle of the stream. */
	while (fcall_publish(&f.br, "hold-probe", "x", NULL) > 0 &&
	       key_ttl(&f.br, "fanout:{hold}") < 0)
		usleep(1000);
	assert_int_equal(plugin->subscribe(f.st, "hold"), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "hold", 5000));
	s = sub_of(f.m, "hold");
	top = s->top;
	assert_true(top > 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 5000));
	child_stop(pub);
	/* Commands the publisher had in flight may still run: wait until the
	 * top stands still and everything up to it arrived. */
	final = 0;
	for (;;) {
		redisReply *r = broker_cmd(&f.br, "FCALL fanout_top 1 fanout:{hold}");
		uint64_t now;
		assert_non_null(r);
		now = (uint64_t)r->element[1]->integer;
		freeReplyObject(r);
		if (now == final)
			break;
		final = now;
		want = (size_t)(final - top);
		assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 5000));
		mockhost_run(f.m, 20);
	}
	nd = mockhost_n_delivered(f.m);
	assert_int_equal(nd, final - top);
	for (size_t i = 0; i < nd; i++)
		assert_int_equal(mockhost_delivered(f.m, i)->offset, top + 1 + i);
	print_message("# subscribed at top %llu; %llu held back or live after it, in order\n",
		      (unsigned long long)top, (unsigned long long)(final - top));
	fx_free(&f);
}

/* history_size = 0: plain pub/sub, no functions, no positions. */
static void test_plain_mode(void **unused)
{
	struct fx f = {0};
	const char *extra[] = {"history_size", "0", NULL};
	size_t want = 1;
	redisReply *r;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, extra);
	fx_up_and_sub(&f, "pl");
	assert_null(sub_of(f.m, "pl")->epoch);
	assert_int_equal(plugin->publish(f.st, "pl", "x", 1, 5), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &want, 3000));
	assert_int_equal(mockhost_published(f.m, 0)->ok, 1);
	assert_null(mockhost_published(f.m, 0)->epoch);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 3000));
	assert_null(mockhost_delivered(f.m, 0)->epoch);
	assert_int_equal(plugin->top(f.st, "pl", 1), FANOUT_ENOTSUP);
	r = broker_cmd(&f.br, "FUNCTION LIST");
	assert_non_null(r);
	assert_int_equal(r->elements, 0); /* nothing loaded */
	freeReplyObject(r);
	fx_free(&f);
}

static void test_envelope(void **unused)
{
	struct vk_pos p;
	const char *d;
	size_t n;
	static const char good[] = "\0fo1:abc-_Z9:42\npay\0load";
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
	    {"\0fo1:", 5},	   {"\0fo1::1\nx", 9},	 {"\0fo1:e:0\nx", 10},
	    {"\0fo1:e:01\nx", 11}, {"\0fo1:e:1x\n", 10}, {"\0fo1:e:1", 8},
	    {"\0fo1:e!:1\n", 10},  {"\0fo1:e:-1\n", 10}, {"\0fo1:e:18446744073709551616\n", 29},
	};

	(void)unused;
	assert_int_equal(vk_envelope_parse(good, sizeof(good) - 1, &p, &d, &n), VK_ENV_POSITIONED);
	assert_string_equal(p.epoch, "abc-_Z9");
	assert_int_equal(p.offset, 42);
	assert_int_equal(n, 8);
	assert_memory_equal(d, "pay\0load", 8);
	assert_int_equal(vk_envelope_parse("\0fo1:e:18446744073709551615\n", 28, &p, &d, &n),
			 VK_ENV_POSITIONED);
	assert_true(p.offset == UINT64_MAX);
	assert_int_equal(n, 0);
	assert_int_equal(vk_envelope_parse("{\"a\":1}", 7, &p, &d, &n), VK_ENV_PLAIN);
	assert_int_equal(n, 7);
	assert_int_equal(vk_envelope_parse("", 0, &p, &d, &n), VK_ENV_PLAIN);
	assert_int_equal(vk_envelope_parse("\0fo2:e:1\n", 9, &p, &d, &n), VK_ENV_PLAIN);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vk_envelope_parse(bad[i].s, bad[i].n, &p, &d, &n), VK_ENV_BAD);
		assert_ptr_equal(d, bad[i].s);
		assert_int_equal(n, bad[i].n);
	}
	{
		char e[80] = "\0fo1:";
		memset(e + 5, 'a', 65);
		memcpy(e + 70, ":1\n", 3);
		assert_int_equal(vk_envelope_parse(e, 73, &p, &d, &n), VK_ENV_BAD);
		memcpy(e + 69, ":1\n", 3); /* 64 bytes: the longest epoch */
		assert_int_equal(vk_envelope_parse(e, 72, &p, &d, &n), VK_ENV_POSITIONED);
		assert_int_equal(strlen(p.epoch), 64);
	}
}

/* The backend refuses the reserved namespace itself too (fanoutd already
 * does): the probe channel stays subscribed, the backend up. */
static void test_reserved(void **unused)
{
	struct fx f = {0};
	redisReply *r;
	char probe[128];
	size_t want = 1;

	(void)unused;
	broker_start(&f.br, NULL);
	fx_start(&f, NULL);
	fx_up_and_sub(&f, NULL);
	r = broker_cmd(&f.br, "PUBSUB CHANNELS __fanout_probe:*");
	assert_non_null(r);
	assert_int_equal(r->elements, 1);
	snprintf(probe, sizeof(probe), "%s", r->element[0]->str);
	freeReplyObject(r);
	assert_int_equal(plugin->subscribe(f.st, probe), 0);
	assert_int_equal(mockhost_n_subscribed_for(f.m, probe, 0), 1);
	assert_int_equal(plugin->unsubscribe(f.st, probe), 0);
	assert_int_equal(plugin->publish(f.st, probe, "1", 1, 3), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &want, 3000));
	assert_int_equal(mockhost_published(f.m, 0)->ok, 0);
	mockhost_run(f.m, 100);
	assert_int_equal(numsub(&f.br, probe), 1);
	assert_true(mockhost_pred_up(f.m, NULL));
	fx_free(&f);
}

static void test_config_errors(void **unused)
{
	struct mockhost *m = mockhost_new();
	void *st;
	const char *bad[][3] = {
	    {"url", "http://x", NULL},		{"url", "redis://h:99999/0", NULL},
	    {"url", "unix://relative", NULL},	{"username", "u", NULL}, /* without a password */
	    {"channel_prefix", "{app}:", NULL}, {"history_size", "100001", NULL},
	};

	(void)unused;
	mockhost_set_quiet(m, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(mockhost_start(m, plugin, bad[i], &st) < 0);
	{
		const char *kv[] = {"reconnect_min_ms", "500", "reconnect_max_ms", "100", NULL};
		assert_true(mockhost_start(m, plugin, kv, &st) < 0);
	}
	mockhost_free(m);
}

static int group_setup(void **unused)
{
	(void)unused;
	signal(SIGPIPE, SIG_IGN);
	plugin = mockhost_dlopen(getenv("VALKEY_SO") ? getenv("VALKEY_SO") : VALKEY_SO);
	return plugin ? 0 : -1;
}

static int group_teardown(void **unused)
{
	(void)unused;
	brokers_kill_all();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_subscribe_deliver),
	    cmocka_unit_test(test_prefix),
	    cmocka_unit_test(test_big_payload),
	    cmocka_unit_test(test_burst_in_order),
	    cmocka_unit_test(test_demand_numsub_batch),
	    cmocka_unit_test(test_publish),
	    cmocka_unit_test(test_broker_restart),
	    cmocka_unit_test(test_client_kill),
	    cmocka_unit_test(test_sigstop_probe),
	    cmocka_unit_test(test_auth_right),
	    cmocka_unit_test(test_auth_url_and_db),
	    cmocka_unit_test(test_auth_wrong),
	    cmocka_unit_test(test_acl_refused),
	    cmocka_unit_test(test_acl_no_probe),
	    cmocka_unit_test(test_unreachable_then_up),
	    cmocka_unit_test(test_hostname),
	    cmocka_unit_test(test_bad_hostname),
	    cmocka_unit_test(test_envelope),
	    cmocka_unit_test(test_positions),
	    cmocka_unit_test(test_history),
	    cmocka_unit_test(test_history_batches),
	    cmocka_unit_test(test_history_expiry),
	    cmocka_unit_test(test_flushall_and_reload),
	    cmocka_unit_test(test_restart_persistent),
	    cmocka_unit_test(test_restart_volatile),
	    cmocka_unit_test(test_hold_until_top),
	    cmocka_unit_test(test_plain_mode),
	    cmocka_unit_test(test_reserved),
	};

	return cmocka_run_group_tests_name("valkey backend", tests, group_setup, group_teardown);
}
