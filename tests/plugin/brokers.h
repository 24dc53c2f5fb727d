/*
 * brokers.h — redis-server (or valkey-server) processes for the valkey
 * plugin tests: started on free loopback ports, reached with sync hiredis,
 * stopped by PID; and a Redis Cluster of such nodes (slots assigned, nodes
 * met, replicas attached, waited for cluster_state:ok). See brokers.c.
 */
#ifndef FANOUT_TESTS_BROKERS_H
#define FANOUT_TESTS_BROKERS_H

#include <hiredis/hiredis.h>

#include <stddef.h>
#include <sys/types.h>

struct broker {
	pid_t pid;
	int port;
	char pass[64]; /* requirepass, "" for none */
	char dir[64];  /* persistence (appendonly, fsync always) in this dir; "" for none */
	char cdir[64]; /* cluster mode: nodes.conf lives here; "" for a plain node */
};

/* Start b on port (REDIS_SERVER; skip, or fail under CI=true, without it);
 * waits for PING. broker_start: on a free port. */
void broker_start_on(struct broker *b, int port, const char *pass);
void broker_start(struct broker *b, const char *pass);
/* Send sig; SIGKILL/SIGTERM also reap the process. */
void broker_kill(struct broker *b, int sig);
/* Kill every broker still running (group teardown). */
void brokers_kill_all(void);
/* Track / untrack another process in the same list (a forked helper). */
void live_set(pid_t old, pid_t new_pid);

/* A sync connection (AUTH done) or NULL; one command on a fresh one. */
redisContext *broker_ctx(struct broker *b);
redisReply *broker_cmd(struct broker *b, const char *fmt, ...);
int broker_ping(struct broker *b);
long long numsub(struct broker *b, const char *channel);
long long publish(struct broker *b, const char *channel, const void *data, size_t len);
/* INFO commandstats: calls of cmd (lower case, e.g. "spublish"). */
long long cmd_calls(struct broker *b, const char *cmd);

/*
 * A cluster of n nodes (n <= 8): nodes[0..primaries) get the slots in equal
 * ranges, every later node replicates nodes[i % primaries]. Nodes run with
 * cluster-require-full-coverage no and a 1 s node timeout, nodes.conf in a
 * temporary directory each (kept across broker_kill + broker_start_on, so a
 * restarted node rejoins with its slots). Waits for cluster_state:ok.
 */
void cluster_create(struct broker *nodes, int n, int primaries);
/* Wait until every running node reports cluster_state:ok. */
void cluster_wait_ok(struct broker *nodes, int n);
/* The node serving slot of key (following MOVED from nodes[0]), or NULL. */
struct broker *cluster_owner(struct broker *nodes, int n, const char *key);
/* 1 when every running node's CLUSTER SLOTS says owner serves key's slot
 * (after a failover the nodes learn the new map by gossip, one by one). */
int cluster_agree(struct broker *nodes, int n, const char *key, struct broker *owner);
/* Remove the nodes' temporary directories. */
void cluster_cleanup(struct broker *nodes, int n);

#endif /* FANOUT_TESTS_BROKERS_H */
