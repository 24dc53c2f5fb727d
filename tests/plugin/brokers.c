/*
 * brokers.c — redis-server processes for the valkey plugin tests (see
 * brokers.h): fork + exec on free loopback ports, sync hiredis to reach
 * them, a list of live PIDs so a failed test (cmocka longjmps out of it)
 * leaves none behind, and Redis Clusters built from them with CLUSTER MEET /
 * ADDSLOTSRANGE / REPLICATE (no redis-cli needed). Single-threaded; each
 * sync connection is freed after its command; a cluster's temporary
 * directories are removed by cluster_cleanup().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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
#include "mockhost.h"

/* Every broker still running, so a failed test (cmocka longjmps out of it)
 * leaves no process behind: group_teardown kills what is left. */
static pid_t live[64];

void live_set(pid_t old, pid_t new_pid)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] == old) {
			live[i] = new_pid;
			return;
		}
	}
}

void brokers_kill_all(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			kill(live[i], SIGCONT);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
	}
}

redisContext *broker_ctx(struct broker *b)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", b->port, tv);

	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	if (b->pass[0]) {
		redisReply *r = redisCommand(c, "AUTH %s", b->pass);
		if (r)
			freeReplyObject(r);
	}
	return c;
}

/* Run one command on a fresh sync connection; returns the reply (caller frees) or NULL. */
redisReply *broker_cmd(struct broker *b, const char *fmt, ...)
{
	redisContext *c = broker_ctx(b);
	redisReply *r;
	va_list ap;

	if (!c)
		return NULL;
	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	return r;
}

long long numsub(struct broker *b, const char *channel)
{
	redisReply *r = broker_cmd(b, "PUBSUB NUMSUB %s", channel);
	long long n = -1;

	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
		n = r->element[1]->integer;
	if (r)
		freeReplyObject(r);
	return n;
}

long long publish(struct broker *b, const char *channel, const void *data, size_t len)
{
	redisReply *r = broker_cmd(b, "PUBLISH %s %b", channel, data, len);
	long long n = -1;

	if (r && r->type == REDIS_REPLY_INTEGER)
		n = r->integer;
	if (r)
		freeReplyObject(r);
	return n;
}

int broker_ping(struct broker *b)
{
	redisReply *r = broker_cmd(b, "PING");
	int ok = r && r->type == REDIS_REPLY_STATUS;

	if (r)
		freeReplyObject(r);
	return ok;
}

void broker_start_on(struct broker *b, int port, const char *pass)
{
	const char *srv = getenv("REDIS_SERVER");
	char portstr[16];
	uint64_t end;

	if (!srv || !*srv) {
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("REDIS_SERVER not set (CI=true: no skipping)");
		skip();
	}
	b->port = port;
	snprintf(b->pass, sizeof(b->pass), "%s", pass ? pass : "");
	snprintf(portstr, sizeof(portstr), "%d", port);
	b->pid = fork();
	if (b->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (b->pid == 0) {
		const char *argv[32];
		int n = 0, nul = open("/dev/null", O_RDWR);
		char conf[128];
		dup2(nul, 1);
		argv[n++] = srv;
		argv[n++] = "--port";
		argv[n++] = portstr;
		argv[n++] = "--bind";
		argv[n++] = "127.0.0.1";
		argv[n++] = "--save";
		argv[n++] = "";
		if (b->dir[0]) {
			argv[n++] = "--appendonly";
			argv[n++] = "yes";
			argv[n++] = "--appendfsync";
			argv[n++] = "always";
			argv[n++] = "--dir";
			argv[n++] = b->dir;
		} else {
			argv[n++] = "--appendonly";
			argv[n++] = "no";
		}
		if (pass && *pass) {
			argv[n++] = "--requirepass";
			argv[n++] = pass;
		}
		if (b->cdir[0]) {
			snprintf(conf, sizeof(conf), "%s/nodes.conf", b->cdir);
			argv[n++] = "--cluster-enabled";
			argv[n++] = "yes";
			argv[n++] = "--cluster-config-file";
			argv[n++] = conf;
			argv[n++] = "--cluster-node-timeout";
			argv[n++] = "1000";
			argv[n++] = "--cluster-require-full-coverage";
			argv[n++] = "no";
		}
		argv[n] = NULL;
		execv(srv, (char *const *)argv);
		_exit(127);
	}
	live_set(0, b->pid);
	end = mockhost_now_ms() + 5000;
	while (!broker_ping(b)) {
		if (mockhost_now_ms() > end)
			fail_msg("broker on port %d did not come up", port);
		usleep(10000);
	}
}

void broker_start(struct broker *b, const char *pass)
{
	broker_start_on(b, mockhost_free_port(), pass);
}

void broker_kill(struct broker *b, int sig)
{
	if (b->pid > 0) {
		kill(b->pid, sig);
		if (sig == SIGKILL || sig == SIGTERM) {
			kill(b->pid, SIGCONT);
			waitpid(b->pid, NULL, 0);
			live_set(b->pid, 0);
			b->pid = 0;
		}
	}
}

long long cmd_calls(struct broker *b, const char *cmd)
{
	redisReply *r = broker_cmd(b, "INFO commandstats");
	long long n = 0;
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
	if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, key)))
		n = atoll(p + strlen(key));
	if (r)
		freeReplyObject(r);
	return n;
}

/* ---- a cluster ---- */

/* cmd arg (e.g. CLUSTER INFO) answers a text containing needle. */
static int info_has(struct broker *b, const char *cmd, const char *arg, const char *needle)
{
	redisReply *r = broker_cmd(b, "%s %s", cmd, arg);
	int yes = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
		  strstr(r->str, needle);

	if (r)
		freeReplyObject(r);
	return yes;
}

static void wait_for(int (*ok)(struct broker *, int, void *), struct broker *nodes, int n,
		     void *arg, const char *what)
{
	uint64_t end = mockhost_now_ms() + 20000;

	while (!ok(nodes, n, arg)) {
		if (mockhost_now_ms() > end)
			fail_msg("cluster: %s did not happen within 20 s", what);
		usleep(20000);
	}
}

static int all_ok(struct broker *nodes, int n, void *arg)
{
	(void)arg;
	for (int i = 0; i < n; i++)
		if (nodes[i].pid > 0 && !info_has(&nodes[i], "CLUSTER", "INFO", "cluster_state:ok"))
			return 0;
	return 1;
}

static int all_known(struct broker *nodes, int n, void *arg)
{
	(void)arg;
	for (int i = 0; i < n; i++) {
		redisReply *r = broker_cmd(&nodes[i], "CLUSTER NODES");
		int lines = 0;
		if (r && r->type == REDIS_REPLY_STRING)
			for (const char *p = r->str; (p = strchr(p, '\n')); p++)
				lines++;
		if (r)
			freeReplyObject(r);
		if (lines < n)
			return 0;
	}
	return 1;
}

static int replicas_up(struct broker *nodes, int n, void *arg)
{
	int primaries = *(int *)arg;

	for (int i = primaries; i < n; i++)
		if (!info_has(&nodes[i], "INFO", "replication", "master_link_status:up"))
			return 0;
	return 1;
}

void cluster_wait_ok(struct broker *nodes, int n)
{
	wait_for(all_ok, nodes, n, NULL, "cluster_state:ok");
}

/* 1 if nothing listens on port now. */
static int port_free(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A free port whose cluster bus port (+10000) is free too. */
static int cluster_port(void)
{
	for (int i = 0; i < 1000; i++) {
		int p = mockhost_free_port();
		if (p <= 55535 && port_free(p + 10000))
			return p;
	}
	fail_msg("no free port pair for a cluster node");
	return 0;
}

void cluster_create(struct broker *nodes, int n, int primaries)
{
	for (int i = 0; i < n; i++) {
		memset(&nodes[i], 0, sizeof(nodes[i]));
		snprintf(nodes[i].cdir, sizeof(nodes[i].cdir), "/tmp/fanout-vkc-XXXXXX");
		if (!mkdtemp(nodes[i].cdir))
			fail_msg("mkdtemp: %s", strerror(errno));
		broker_start_on(&nodes[i], cluster_port(), NULL);
	}
	for (int i = 1; i < n; i++)
		freeReplyObject(broker_cmd(&nodes[0], "CLUSTER MEET 127.0.0.1 %d", nodes[i].port));
	for (int i = 0; i < primaries; i++) {
		int a = i * 16384 / primaries, z = (i + 1) * 16384 / primaries - 1;
		redisReply *r = broker_cmd(&nodes[i], "CLUSTER ADDSLOTSRANGE %d %d", a, z);
		if (!r || r->type == REDIS_REPLY_ERROR)
			fail_msg("CLUSTER ADDSLOTSRANGE: %s", r ? r->str : "no reply");
		freeReplyObject(r);
	}
	wait_for(all_known, nodes, n, NULL, "every node knowing every other");
	for (int i = primaries; i < n; i++) {
		redisReply *id = broker_cmd(&nodes[i % primaries], "CLUSTER MYID");
		redisReply *r;
		if (!id || id->type != REDIS_REPLY_STRING)
			fail_msg("CLUSTER MYID failed");
		r = broker_cmd(&nodes[i], "CLUSTER REPLICATE %s", id->str);
		if (!r || r->type == REDIS_REPLY_ERROR)
			fail_msg("CLUSTER REPLICATE: %s", r ? r->str : "no reply");
		freeReplyObject(r);
		freeReplyObject(id);
	}
	wait_for(replicas_up, nodes, n, &primaries, "replicas in sync");
	cluster_wait_ok(nodes, n);
}

static long long key_slot(struct broker *nodes, int n, const char *key)
{
	redisReply *r = NULL;
	long long slot;

	for (int i = 0; i < n && !r; i++)
		if (nodes[i].pid > 0)
			r = broker_cmd(&nodes[i], "CLUSTER KEYSLOT %s", key);
	if (!r || r->type != REDIS_REPLY_INTEGER)
		fail_msg("CLUSTER KEYSLOT failed");
	slot = r->integer;
	freeReplyObject(r);
	return slot;
}

/* The node that serves slot in at's CLUSTER SLOTS, or NULL. */
static struct broker *owner_seen_by(struct broker *at, struct broker *nodes, int n, long long slot)
{
	redisReply *r = broker_cmd(at, "CLUSTER SLOTS");
	struct broker *owner = NULL;

	for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
		redisReply *e = r->element[k];
		if (slot >= e->element[0]->integer && slot <= e->element[1]->integer)
			for (int j = 0; j < n; j++)
				if (nodes[j].port == e->element[2]->element[1]->integer)
					owner = &nodes[j];
	}
	if (r)
		freeReplyObject(r);
	return owner;
}

struct broker *cluster_owner(struct broker *nodes, int n, const char *key)
{
	struct broker *owner = NULL;
	long long slot = key_slot(nodes, n, key);

	for (int i = 0; i < n && !owner; i++)
		if (nodes[i].pid > 0)
			owner = owner_seen_by(&nodes[i], nodes, n, slot);
	return owner;
}

int cluster_agree(struct broker *nodes, int n, const char *key, struct broker *owner)
{
	long long slot = key_slot(nodes, n, key);

	for (int i = 0; i < n; i++)
		if (nodes[i].pid > 0 && owner_seen_by(&nodes[i], nodes, n, slot) != owner)
			return 0;
	return 1;
}

void cluster_cleanup(struct broker *nodes, int n)
{
	for (int i = 0; i < n; i++) {
		char cmd[128];
		broker_kill(&nodes[i], SIGKILL);
		if (nodes[i].cdir[0]) {
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nodes[i].cdir);
			if (system(cmd) != 0)
				fail_msg("cannot remove %s", nodes[i].cdir);
		}
	}
}
