/*
 * test_valkey_cluster.c — the valkey backend with cluster = yes against the
 * mock host and a real Redis Cluster built here (brokers.c): a seed that is
 * not in cluster mode; 50 channels over three shards with sharded pub/sub,
 * each message on its own shard only; a shard killed and restarted (its
 * channels get a gap, the others never pause); a slot moved (server-side
 * SUNSUBSCRIBE, ASK during the migration); a failover (a replica promoted);
 * a slot map read from a seed that has not learned a failover (READONLY from
 * the demoted primary makes the backend read the map again at once).
 *
 * Owns: one mockhost per test and the cluster nodes it starts (stopped by
 * PID; every one in teardown). Single-threaded, except the stale seed's
 * thread (a fake node answering PING and a fixed CLUSTER SLOTS), joined by
 * the test that starts it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "brokers.h"
#include "mockhost.h"

#ifndef VALKEY_SO
#define VALKEY_SO "plugins/valkey/.libs/valkey.so"
#endif

#define NCH 50

static const struct fanout_plugin *plugin;

struct cfx {
	struct mockhost *m;
	void *st;
	struct broker nodes[4];
	int n;
	char url[64];
};

static void cfx_start(struct cfx *f, struct broker *seed, const char *const *extra)
{
	static const char *const defaults[] = {
	    "reconnect_min_ms",	 "20",	"reconnect_max_ms", "300",
	    "probe_interval_ms", "200", "probe_timeout_ms", "1000"};
	const char *kv[32];
	size_t n = 0;

	f->m = mockhost_new();
	assert_non_null(f->m);
	snprintf(f->url, sizeof(f->url), "redis://127.0.0.1:%d", seed->port);
	kv[n++] = "url";
	kv[n++] = f->url;
	kv[n++] = "cluster";
	kv[n++] = "yes";
	for (size_t d = 0; d < sizeof(defaults) / sizeof(*defaults); d += 2) {
		bool given = false; /* extra sets it instead */
		for (size_t i = 0; extra && extra[i]; i += 2)
			given |= strcmp(extra[i], defaults[d]) == 0;
		if (!given) {
			kv[n++] = defaults[d];
			kv[n++] = defaults[d + 1];
		}
	}
	for (size_t i = 0; extra && extra[i]; i++)
		kv[n++] = extra[i];
	kv[n] = NULL;
	assert_int_equal(mockhost_start(f->m, plugin, kv, &f->st), 0);
}

static void cfx_free(struct cfx *f)
{
	if (f->m) {
		mockhost_stop(f->m);
		assert_int_equal(mockhost_n_watches(f->m), 0);
		assert_int_equal(mockhost_n_timers(f->m), 0);
		mockhost_free(f->m);
		f->m = NULL;
	}
	cluster_cleanup(f->nodes, f->n);
}

static const char *chname(int i)
{
	static char names[NCH][16];

	snprintf(names[i], sizeof(names[i]), "ch%d", i);
	return names[i];
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

static int pred_all_subscribed(struct mockhost *m, void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < n; i++)
		if (!mockhost_n_subscribed_for(m, chname(i), 1))
			return 0;
	return 1;
}

/* Messages delivered on channel ch so far. */
static size_t delivered_on(struct mockhost *m, const char *ch)
{
	size_t k = 0;

	for (size_t i = 0; i < mockhost_n_delivered(m); i++)
		k += strcmp(mockhost_delivered(m, i)->channel, ch) == 0;
	return k;
}

static size_t gaps_on(struct mockhost *m, const char *ch)
{
	size_t k = 0;

	for (size_t i = 0; i < mockhost_n_gaps(m); i++)
		k += mockhost_gap(m, i)->channel && strcmp(mockhost_gap(m, i)->channel, ch) == 0;
	return k;
}

/* SPUBLISH to the shard that owns ch (as redis-cli -c would). */
static void spublish(struct cfx *f, const char *ch, const char *data)
{
	struct broker *o = cluster_owner(f->nodes, f->n, ch);
	redisReply *r;

	assert_non_null(o);
	r = broker_cmd(o, "SPUBLISH %s %s", ch, data);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	freeReplyObject(r);
}

struct wait_arg {
	const char *ch;
	size_t n;
};

static int pred_delivered_on(struct mockhost *m, void *arg)
{
	struct wait_arg *a = arg;

	return delivered_on(m, a->ch) >= a->n;
}

static int pred_gap_on(struct mockhost *m, void *arg)
{
	return gaps_on(m, arg) > 0;
}

/* ---- tests ---- */

/* A seed that is not in cluster mode: one clear line, down with that reason. */
static void test_seed_not_cluster(void **unused)
{
	struct cfx f = {0};
	const char *reason = NULL;
	size_t errs = 0;

	(void)unused;
	broker_start(&f.nodes[0], NULL);
	f.n = 1;
	cfx_start(&f, &f.nodes[0], NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 3000));
	mockhost_run(f.m, 800); /* several refresh attempts */
	assert_int_equal(mockhost_last_state(f.m, &reason), FANOUT_DOWN);
	assert_non_null(strstr(reason, "is not in cluster mode"));
	for (size_t i = 0; i < mockhost_n_logs(f.m); i++)
		errs += mockhost_log(f.m, i)->level == FANOUT_LOG_ERR &&
			strstr(mockhost_log(f.m, i)->text, "not in cluster mode");
	assert_int_equal(errs, 1);
	/* Subscribes wait: no answer while there is no slot map. */
	assert_int_equal(plugin->subscribe(f.st, "x"), 0);
	mockhost_run(f.m, 50);
	assert_int_equal(mockhost_n_subscribed(f.m), 0);
	cfx_free(&f);
}

/* ACL SETUSER on every node: may SSUBSCRIBE "a{t}" and "c{t}", not "b{t}". */
static void acl_user(struct cfx *f)
{
	for (int k = 0; k < f->n; k++) {
		redisReply *r = broker_cmd(&f->nodes[k],
					   "ACL SETUSER lim reset on >limpw ~* +@all resetchannels "
					   "&a{t} &c{t}");
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_STATUS);
		freeReplyObject(r);
	}
}

/*
 * An ACL user: three channels of one slot travel as one SSUBSCRIBE, which
 * the shard refuses whole (-NOPERM); exactly the forbidden one is refused,
 * the others subscribe, the shard's connection stays.
 */
static void acl_refused(struct cfx *f)
{
	/* Braces put the three in one slot; no history (a key needs a plain name). */
	const char *extra[] = {"username", "lim", "password", "limpw", "history_size", "0", NULL};
	const char *chans[] = {"a{t}", "b{t}", "c{t}"};
	struct wait_arg wa = {"c{t}", 1};

	acl_user(f);
	cfx_start(f, &f->nodes[0], extra);
	assert_true(mockhost_run_until(f->m, mockhost_pred_up, NULL, 10000));
	for (int i = 0; i < 3; i++)
		assert_int_equal(plugin->subscribe(f->st, chans[i]), 0);
	assert_true(mockhost_run_until(f->m, mockhost_pred_subscribed, "a{t}", 5000));
	assert_true(mockhost_run_until(f->m, mockhost_pred_subscribed, "c{t}", 5000));
	mockhost_run(f->m, 50);
	assert_int_equal(mockhost_n_subscribed_for(f->m, "b{t}", 0), 1);
	assert_int_equal(mockhost_n_subscribed_for(f->m, "b{t}", 1), 0);
	assert_int_equal(mockhost_count(f->m, "subscribe_errors"), 1);
	assert_int_equal(mockhost_count(f->m, "sub_disconnects"), 0);
	spublish(f, "c{t}", "ok");
	assert_true(mockhost_run_until(f->m, pred_delivered_on, &wa, 5000));
}

/* 50 channels over three shards: every message arrives, each on its own
 * shard only (INFO commandstats per node), positioned and plain. */
static void test_sharded(void **unused)
{
	struct cfx f = {0};
	int n = NCH;
	long long own[3] = {0}, spub[3], fcall[3];
	size_t want;

	(void)unused;
	f.n = 3;
	cluster_create(f.nodes, 3, 3);
	cfx_start(&f, &f.nodes[1], NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	for (int i = 0; i < n; i++)
		assert_int_equal(plugin->subscribe(f.st, chname(i)), 0);
	assert_true(mockhost_run_until(f.m, pred_all_subscribed, &n, 10000));
	for (int i = 0; i < n; i++) {
		const struct mock_sub *s = sub_of(f.m, chname(i));
		assert_non_null(s->epoch);
		assert_int_equal(s->top, 0);
		own[cluster_owner(f.nodes, 3, chname(i)) - f.nodes]++;
	}
	for (int k = 0; k < 3; k++) {
		assert_true(own[k] > 0); /* the channels span every shard */
		spub[k] = cmd_calls(&f.nodes[k], "spublish");
		fcall[k] = cmd_calls(&f.nodes[k], "fcall");
	}
	/* A third party's SPUBLISH on the owning shard, and a positioned
	 * publish through the backend, for every channel. */
	for (int i = 0; i < n; i++) {
		spublish(&f, chname(i), "plain");
		assert_int_equal(plugin->publish(f.st, chname(i), "pos", 3, (uint64_t)i + 1), 0);
	}
	want = 2 * (size_t)n;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 10000));
	want = (size_t)n;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_published, &want, 10000));
	for (int i = 0; i < n; i++) {
		assert_int_equal(mockhost_published(f.m, (size_t)i)->ok, 1);
		assert_int_equal(mockhost_published(f.m, (size_t)i)->offset, 1);
		assert_int_equal(delivered_on(f.m, chname(i)), 2);
	}
	/* Each message reached its own shard only: per node, two SPUBLISHes
	 * (the plain one, the one inside the function) and one FCALL per
	 * channel it owns. */
	for (int k = 0; k < 3; k++) {
		assert_int_equal(cmd_calls(&f.nodes[k], "spublish") - spub[k], 2 * own[k]);
		assert_int_equal(cmd_calls(&f.nodes[k], "fcall") - fcall[k], own[k]);
	}
	print_message("# 50 channels over 3 shards: %lld / %lld / %lld\n", own[0], own[1], own[2]);
	mockhost_free(f.m);
	f.m = NULL;
	acl_refused(&f);
	cfx_free(&f);
}

/* Subscribe ch0..ch49 and wait until every one is confirmed. */
static void subscribe_all(struct cfx *f)
{
	int n = NCH;

	assert_true(mockhost_run_until(f->m, mockhost_pred_up, NULL, 10000));
	for (int i = 0; i < n; i++)
		assert_int_equal(plugin->subscribe(f->st, chname(i)), 0);
	assert_true(mockhost_run_until(f->m, pred_all_subscribed, &n, 10000));
}

struct gaps_arg {
	struct broker *victim;
	struct broker **owner;
};

static int pred_victim_gaps(struct mockhost *m, void *arg)
{
	struct gaps_arg *a = arg;

	for (int i = 0; i < NCH; i++)
		if (a->owner[i] == a->victim && !gaps_on(m, chname(i)))
			return 0;
	return 1;
}

/* One shard killed and restarted (no persistence): the others never pause;
 * its channels resume with a gap and a new epoch. */
static void test_shard_restart(void **unused)
{
	struct cfx f = {0};
	struct broker *owner[NCH], *victim;
	size_t others = 0, mine = 0, want;
	int port;
	uint64_t t0;
	struct gaps_arg ga;

	(void)unused;
	f.n = 3;
	cluster_create(f.nodes, 3, 3);
	cfx_start(&f, &f.nodes[0], NULL);
	subscribe_all(&f);
	for (int i = 0; i < NCH; i++)
		owner[i] = cluster_owner(f.nodes, 3, chname(i));
	victim = &f.nodes[2];
	port = victim->port;
	broker_kill(victim, SIGKILL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_down, NULL, 5000));
	/* The other shards' channels keep flowing while it is down. */
	t0 = mockhost_now_ms();
	for (int i = 0; i < NCH; i++) {
		if (owner[i] == victim) {
			mine++;
			continue;
		}
		others++;
		assert_int_equal(plugin->publish(f.st, chname(i), "during", 6, (uint64_t)i), 0);
	}
	want = others;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 5000));
	print_message("# shard down: %zu messages on the other shards delivered in %llu ms\n",
		      others, (unsigned long long)(mockhost_now_ms() - t0));
	for (size_t i = 0; i < mockhost_n_published(f.m); i++)
		assert_int_equal(mockhost_published(f.m, i)->ok, 1);
	/* Back (same node id and slots, empty): its channels get a gap each,
	 * the others none. */
	broker_start_on(victim, port, NULL);
	cluster_wait_ok(f.nodes, 3);
	ga = (struct gaps_arg){victim, owner};
	assert_true(mockhost_run_until(f.m, pred_victim_gaps, &ga, 10000));
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	for (int i = 0; i < NCH; i++) {
		assert_int_equal(gaps_on(f.m, chname(i)), owner[i] == victim ? 1 : 0);
		if (owner[i] == victim)
			assert_string_equal(mockhost_gap(f.m, 0)->reason, "backend reconnected");
	}
	/* Its channels carry messages again, in a new epoch. */
	for (int i = 0; i < NCH; i++)
		if (owner[i] == victim)
			assert_int_equal(plugin->publish(f.st, chname(i), "after", 5, 1000 + i), 0);
	want = others + mine;
	assert_true(mockhost_run_until(f.m, mockhost_pred_n_delivered, &want, 5000));
	for (size_t i = others; i < want; i++) {
		assert_int_equal(mockhost_delivered(f.m, i)->offset, 1);
		assert_string_equal(mockhost_delivered(f.m, i)->data, "after");
	}
	cfx_free(&f);
}

static char *node_id(struct broker *b)
{
	redisReply *r = broker_cmd(b, "CLUSTER MYID");
	char *id;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	id = strdup(r->str);
	freeReplyObject(r);
	return id;
}

static void ok_cmd(redisReply *r)
{
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s", r->str);
	freeReplyObject(r);
}

/* Publish through the backend and wait for its answer; returns it. */
static const struct mock_pub *pub_wait(struct cfx *f, const char *ch, const char *data,
				       uint64_t token)
{
	size_t want = mockhost_n_published(f->m) + 1;

	assert_int_equal(plugin->publish(f->st, ch, data, strlen(data), token), 0);
	assert_true(mockhost_run_until(f->m, mockhost_pred_n_published, &want, 5000));
	return mockhost_published(f->m, want - 1);
}

/* A slot moves to another shard: a call during the migration follows ASK;
 * the server's SUNSUBSCRIBE moves the subscription, with a gap that the
 * history fills. */
static void test_slot_migration(void **unused)
{
	struct cfx f = {0};
	struct broker *src, *dst;
	char *src_id, *dst_id, epoch[80];
	long long slot;
	redisReply *r;
	const struct mock_pub *p;
	struct wait_arg wa = {"mv", 0};

	(void)unused;
	f.n = 3;
	cluster_create(f.nodes, 3, 3);
	cfx_start(&f, &f.nodes[0], NULL);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 10000));
	assert_int_equal(plugin->subscribe(f.st, "mv"), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, "mv", 5000));
	p = pub_wait(&f, "mv", "one", 1);
	assert_int_equal(p->offset, 1);
	snprintf(epoch, sizeof(epoch), "%s", p->epoch);
	src = cluster_owner(f.nodes, 3, "mv");
	dst = src == &f.nodes[0] ? &f.nodes[1] : &f.nodes[0];
	src_id = node_id(src);
	dst_id = node_id(dst);
	r = broker_cmd(src, "CLUSTER KEYSLOT mv");
	slot = r->integer;
	freeReplyObject(r);
	ok_cmd(broker_cmd(dst, "CLUSTER SETSLOT %lld IMPORTING %s", slot, src_id));
	ok_cmd(broker_cmd(src, "CLUSTER SETSLOT %lld MIGRATING %s", slot, dst_id));
	ok_cmd(broker_cmd(src, "MIGRATE 127.0.0.1 %d %s 0 5000 KEYS fanout:{mv}", dst->port, ""));
	/* The key left, the slot has not: the source answers ASK. */
	p = pub_wait(&f, "mv", "two", 2);
	assert_int_equal(p->ok, 1);
	assert_int_equal(p->offset, 2);
	assert_string_equal(p->epoch, epoch);
	assert_true(mockhost_count(f.m, "redirects") >= 1);
	for (int i = 0; i < 3; i++)
		ok_cmd(broker_cmd(&f.nodes[i], "CLUSTER SETSLOT %lld NODE %s", slot, dst_id));
	/* The source drops our SSUBSCRIBE; we follow to the new owner. */
	assert_true(mockhost_run_until(f.m, pred_gap_on, "mv", 5000));
	assert_string_equal(mockhost_gap(f.m, 0)->reason, "slot moved");
	assert_true(mockhost_count(f.m, "server_unsubscribes") >= 1);
	wa.n = delivered_on(f.m, "mv") + 1;
	p = pub_wait(&f, "mv", "three", 3);
	assert_int_equal(p->offset, 3);
	assert_string_equal(p->epoch, epoch);
	assert_true(mockhost_run_until(f.m, pred_delivered_on, &wa, 5000));
	/* The history has what the move may have cost. */
	{
		size_t h0 = mockhost_n_histories(f.m), i0 = mockhost_n_items(f.m), hw = h0 + 1;
		assert_int_equal(plugin->history(f.st, "mv", epoch, 1, 10, 9), 0);
		assert_true(mockhost_run_until(f.m, mockhost_pred_n_histories, &hw, 5000));
		assert_int_equal(mockhost_history(f.m, h0)->status, FANOUT_OK);
		assert_int_equal(mockhost_n_items(f.m) - i0, 2);
		assert_string_equal(mockhost_item(f.m, i0)->data, "two");
	}
	free(src_id);
	free(dst_id);
	cfx_free(&f);
}

/* Fail, listing every gap and log line: what made the backend gap a
 * channel the failover did not touch. */
static void fail_gaps(struct mockhost *m, const char *ch)
{
	for (size_t g = 0; g < mockhost_n_gaps(m); g++) {
		const struct mock_gap *gp = mockhost_gap(m, g);
		print_message("gap %s: %s\n", gp->channel ? gp->channel : "*", gp->reason);
	}
	for (size_t g = 0; g < mockhost_n_logs(m); g++)
		print_message("log: %s\n", mockhost_log(m, g)->text);
	fail_msg("%s, on a shard the failover did not touch, got a gap", ch);
}

static int is_master(struct broker *b)
{
	redisReply *r = broker_cmd(b, "INFO replication");
	int yes = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:master");

	if (r)
		freeReplyObject(r);
	return yes;
}

/* A replica is promoted (CLUSTER FAILOVER): the old primary drops our
 * SSUBSCRIBEs, we follow its slots to the new one with a gap, positions
 * carry on (the data was replicated), the other shards see nothing. */
static void test_failover(void **unused)
{
	struct cfx f = {0};
	struct broker *owner[NCH];
	struct gaps_arg ga;
	uint64_t end;
	size_t moved = 0;

	(void)unused;
	f.n = 4;
	cluster_create(f.nodes, 4, 3); /* nodes[3] replicates nodes[0] */
	cfx_start(&f, &f.nodes[1], NULL);
	subscribe_all(&f);
	for (int i = 0; i < NCH; i++) {
		owner[i] = cluster_owner(f.nodes, 4, chname(i));
		assert_int_equal(pub_wait(&f, chname(i), "one", (uint64_t)i)->offset, 1);
	}
	ok_cmd(broker_cmd(&f.nodes[3], "CLUSTER FAILOVER"));
	end = mockhost_now_ms() + 10000;
	while (!is_master(&f.nodes[3])) {
		if (mockhost_now_ms() > end)
			fail_msg("the replica was not promoted");
		mockhost_run(f.m, 20);
	}
	/* Until every node knows (gossip), a slot map read from one that does
	 * not yet sends the backend back to the demoted primary, which is
	 * only a replica now: the backend rides that out; the test waits
	 * for a settled cluster before it counts on the new map. */
	for (int i = 0; i < NCH; i++)
		while (owner[i] == &f.nodes[0] &&
		       !cluster_agree(f.nodes, 4, chname(i), &f.nodes[3])) {
			if (mockhost_now_ms() > end)
				fail_msg("the nodes do not agree on the new primary");
			mockhost_run(f.m, 20);
		}
	ga = (struct gaps_arg){&f.nodes[0], owner};
	assert_true(mockhost_run_until(f.m, pred_victim_gaps, &ga, 10000));
	/* (The new shard reported down when it joined; up once both its
	 * connections are ready.) */
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 5000));
	for (int i = 0; i < NCH; i++) {
		moved += owner[i] == &f.nodes[0];
		/* A moved channel gets a gap (two when the old primary's
		 * SUNSUBSCRIBE and its connection loss are seen separately, as
		 * under load); the other shards' channels get none. */
		if (owner[i] == &f.nodes[0])
			assert_true(gaps_on(f.m, chname(i)) >= 1);
		else if (gaps_on(f.m, chname(i)))
			fail_gaps(f.m, chname(i));
		assert_int_equal(pub_wait(&f, chname(i), "two", 100 + i)->offset, 2);
	}
	assert_true(moved > 0);
	cfx_free(&f);
}

/* ---- a seed that never learns: a fake node with a fixed CLUSTER SLOTS ---- */

struct stale_seed {
	int lfd, wake[2], port;
	char *slots; /* the CLUSTER SLOTS reply, as RESP */
	size_t slots_len;
	pthread_t tid;
};

static void resp_put(FILE *out, const redisReply *r)
{
	switch (r->type) {
	case REDIS_REPLY_INTEGER:
		fprintf(out, ":%lld\r\n", r->integer);
		break;
	case REDIS_REPLY_STRING:
		fprintf(out, "$%zu\r\n", r->len);
		fwrite(r->str, 1, r->len, out);
		fputs("\r\n", out);
		break;
	case REDIS_REPLY_ARRAY:
		fprintf(out, "*%zu\r\n", r->elements);
		for (size_t i = 0; i < r->elements; i++)
			resp_put(out, r->element[i]);
		break;
	default:
		fail_msg("unexpected reply type %d in CLUSTER SLOTS", r->type);
	}
}

static void seed_answer(int fd, const redisReply *req, const struct stale_seed *ss)
{
	const char *cmd = req->type == REDIS_REPLY_ARRAY && req->elements &&
				  req->element[0]->type == REDIS_REPLY_STRING
			      ? req->element[0]->str
			      : "";
	const char *out = "-ERR unknown command\r\n";
	size_t len;

	if (!strcasecmp(cmd, "PING"))
		out = "+PONG\r\n";
	else if (!strcasecmp(cmd, "CLUSTER"))
		out = ss->slots;
	len = out == ss->slots ? ss->slots_len : strlen(out);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, out + off, len - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void *seed_main(void *arg)
{
	struct stale_seed *ss = arg;
	struct pollfd pf[10];
	redisReader *rd[10] = {0};
	size_t n = 2;

	pf[0] = (struct pollfd){.fd = ss->wake[0], .events = POLLIN};
	pf[1] = (struct pollfd){.fd = ss->lfd, .events = POLLIN};
	while (poll(pf, n, -1) >= 0 && !pf[0].revents) {
		if ((pf[1].revents & POLLIN) && n < 10) {
			int fd = accept(ss->lfd, NULL, NULL);
			if (fd >= 0) {
				pf[n] = (struct pollfd){.fd = fd, .events = POLLIN};
				rd[n++] = redisReaderCreate();
			}
		}
		for (size_t i = 2; i < n; i++) {
			char buf[4096];
			ssize_t r;
			void *req;
			if (!pf[i].revents)
				continue;
			r = read(pf[i].fd, buf, sizeof(buf));
			if (r <= 0) {
				close(pf[i].fd);
				redisReaderFree(rd[i]);
				pf[i] = pf[--n];
				rd[i--] = rd[n];
				continue;
			}
			redisReaderFeed(rd[i], buf, (size_t)r);
			while (redisReaderGetReply(rd[i], &req) == REDIS_OK && req) {
				seed_answer(pf[i].fd, req, ss);
				freeReplyObject(req);
			}
		}
	}
	for (size_t i = 2; i < n; i++) {
		close(pf[i].fd);
		redisReaderFree(rd[i]);
	}
	return NULL;
}

/* A fake seed answering CLUSTER SLOTS with what real's says now, forever. */
static void stale_seed_start(struct stale_seed *ss, struct broker *real)
{
	redisReply *r = broker_cmd(real, "CLUSTER SLOTS");
	FILE *out = open_memstream(&ss->slots, &ss->slots_len);
	struct sockaddr_in a = {.sin_family = AF_INET};
	int one = 1;

	assert_non_null(r);
	assert_non_null(out);
	resp_put(out, r);
	fclose(out);
	freeReplyObject(r);
	ss->port = mockhost_free_port();
	a.sin_port = htons((uint16_t)ss->port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ss->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ss->lfd >= 0);
	setsockopt(ss->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(ss->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ss->lfd, 8), 0);
	assert_int_equal(pipe(ss->wake), 0);
	assert_int_equal(pthread_create(&ss->tid, NULL, seed_main, ss), 0);
}

static void stale_seed_stop(struct stale_seed *ss)
{
	assert_int_equal(write(ss->wake[1], "x", 1), 1);
	pthread_join(ss->tid, NULL);
	close(ss->wake[0]);
	close(ss->wake[1]);
	close(ss->lfd);
	free(ss->slots);
}

/* The backend reads its slot map from a seed that has not learned of a
 * failover (here one that never does): it names the demoted primary, a
 * replica now, whose FUNCTION LOAD is answered READONLY. That means "the
 * map is stale" like MOVED: the backend reads it again at once from another
 * node and is up on the new primary long before reconnect_max_ms (10 s;
 * the READONLY connection was once retried only after 5-10 s). */
static void test_stale_map_readonly(void **unused)
{
	struct cfx f = {0};
	struct stale_seed ss = {0};
	struct broker fake = {0};
	const char *extra[] = {"reconnect_max_ms", "10000", "cluster_refresh_ms", "0", NULL};
	const char *ch = NULL;
	const struct mock_pub *p;
	struct wait_arg wa = {NULL, 1};
	uint64_t t0, end;

	(void)unused;
	f.n = 4;
	cluster_create(f.nodes, 4, 3); /* nodes[3] replicates nodes[0] */
	for (int i = 0; i < NCH && !ch; i++)
		if (cluster_owner(f.nodes, 4, chname(i)) == &f.nodes[0])
			ch = chname(i);
	assert_non_null(ch);
	stale_seed_start(&ss, &f.nodes[1]); /* nodes[0] a primary */
	ok_cmd(broker_cmd(&f.nodes[3], "CLUSTER FAILOVER"));
	end = mockhost_now_ms() + 10000;
	while (!cluster_agree(f.nodes, 4, ch, &f.nodes[3])) {
		if (mockhost_now_ms() > end)
			fail_msg("the nodes do not agree on the new primary");
		usleep(20000);
	}
	fake.port = ss.port;
	t0 = mockhost_now_ms();
	cfx_start(&f, &fake, extra);
	assert_true(mockhost_run_until(f.m, mockhost_pred_up, NULL, 4000));
	print_message("up on the new primary after %llu ms\n",
		      (unsigned long long)(mockhost_now_ms() - t0));
	assert_true(mockhost_count(f.m, "readonly_replies") >= 1);
	/* Subscribed and published on the new primary. */
	assert_int_equal(plugin->subscribe(f.st, ch), 0);
	assert_true(mockhost_run_until(f.m, mockhost_pred_subscribed, (void *)ch, 5000));
	p = pub_wait(&f, ch, "after", 1);
	assert_int_equal(p->ok, 1);
	assert_int_equal(p->offset, 1);
	wa.ch = ch;
	assert_true(mockhost_run_until(f.m, pred_delivered_on, &wa, 5000));
	{
		redisReply *r = broker_cmd(&f.nodes[3], "PUBSUB SHARDNUMSUB %s", ch);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		assert_int_equal(r->element[1]->integer, 1);
		freeReplyObject(r);
	}
	cfx_free(&f);
	stale_seed_stop(&ss);
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
	    cmocka_unit_test(test_seed_not_cluster), cmocka_unit_test(test_sharded),
	    cmocka_unit_test(test_shard_restart),    cmocka_unit_test(test_slot_migration),
	    cmocka_unit_test(test_failover),	     cmocka_unit_test(test_stale_map_readonly),
	};

	return cmocka_run_group_tests_name("valkey backend, cluster mode", tests, group_setup,
					   group_teardown);
}
