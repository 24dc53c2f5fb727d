/*
 * mockhost — a fake fanoutd for testing a backend plugin in isolation.
 *
 * It implements every service of struct fanout_host on a tiny poll()-based,
 * single-threaded loop (fd watches, one-shot timers, a thread-safe post()
 * backed by a mutex + pipe) and records every call the plugin makes back into
 * the host (deliver, subscribed, published, backend_state, gap, count, log)
 * so a test can assert on them. One mockhost hosts one backend.
 *
 * Typical use (cmocka):
 *
 *     struct mockhost *m = mockhost_new();
 *     const struct fanout_plugin *p = mockhost_dlopen(getenv("PLUGIN_SO"));
 *     void *st;
 *     const char *kv[] = {"url", "redis://127.0.0.1:6390/0", NULL};
 *     assert_int_equal(mockhost_start(m, p, kv, &st), 0);
 *     p->subscribe(st, "news");
 *     assert_true(mockhost_run_until(m, mockhost_pred_subscribed, "news", 3000));
 *     ...
 *     mockhost_free(m);     // calls stop() + destroy() if still started
 *
 * Everything here runs on the calling thread except post(), which may be
 * called from any thread (as the ABI says). Recorded strings are copies owned
 * by the mockhost and valid until mockhost_reset_records() or mockhost_free().
 */
#ifndef FANOUT_TESTS_MOCKHOST_H
#define FANOUT_TESTS_MOCKHOST_H

#include <fanout/plugin.h>
#include <stddef.h>
#include <stdint.h>

struct mockhost;

/* A recorded deliver(): channel, a copy of the payload (NUL-terminated for convenience). */
struct mock_msg {
	char *channel;
	char *data;
	size_t len;
	char *epoch;	 /* deliver_at(): the epoch; deliver(): NULL */
	uint64_t offset; /* deliver_at(): the offset; deliver(): 0 */
};

/* A recorded subscribed(channel, ok). */
struct mock_sub {
	char *channel;
	int ok;
	char *epoch;	/* subscribed_at(): the epoch (may be NULL); subscribed(): NULL */
	uint64_t top;	/* subscribed_at(): the top offset */
	unsigned flags; /* subscribed_at(): FANOUT_POS_* */
};

/* A recorded published(token, ok). */
struct mock_pub {
	uint64_t token;
	int ok;
	char *epoch;	 /* published_at(): the epoch; published(): NULL */
	uint64_t offset; /* published_at(): the offset */
};

/* A recorded top_done() or history_done(token, status, epoch, top). */
struct mock_pos {
	uint64_t token;
	int status;
	char *epoch; /* may be NULL */
	uint64_t top;
};

/* A recorded history_item(token, offset, data, len). */
struct mock_item {
	uint64_t token;
	uint64_t offset;
	char *data; /* NUL-terminated copy */
	size_t len;
};

/* A recorded backend_state(state, reason). */
struct mock_state {
	enum fanout_state state;
	char *reason;
};

/* A recorded gap(channel or NULL, reason). */
struct mock_gap {
	char *channel; /* NULL: every channel */
	char *reason;
};

/* A recorded log line. */
struct mock_log {
	enum fanout_log_level level;
	char *text;
};

/* Create / free a host. free() stops and destroys a started plugin first. */
struct mockhost *mockhost_new(void);
void mockhost_free(struct mockhost *m);

/* The service table and the backend handle given to init(). */
const struct fanout_host *mockhost_host(struct mockhost *m);
struct fanout_backend *mockhost_backend(struct mockhost *m);

/* Settings that tests may change before mockhost_start(). */
void mockhost_set_instance(struct mockhost *m, const char *instance); /* default "mock" */
void mockhost_set_name(struct mockhost *m, const char *name);	      /* default "test" */
void mockhost_set_quiet(struct mockhost *m, int quiet); /* 1: do not echo logs to stderr */
/* What channels() answers (borrowed until mockhost_free; n 0: the default {"*"}). */
void mockhost_set_channels(struct mockhost *m, const char *const *globs, size_t n);

/*
 * dlopen(path, RTLD_NOW | RTLD_LOCAL) and return its FANOUT_PLUGIN_SYMBOL
 * table, or NULL (reason printed to stderr) when fanoutd would refuse it:
 * the same checks (core/contract.c: ABI version, table size, mandatory
 * fields, option table). The handle stays open until exit.
 */
const struct fanout_plugin *mockhost_dlopen(const char *path);

/*
 * Check p and build the value array from p->options exactly as fanoutd
 * does (core/contract.c: the same table check, unknown keys, INT bounds
 * with k/m/g on _bytes keys, BOOL and ENUM words, REQUIRED keys); kv holds
 * "key", "value", ..., NULL pairs (kv may be NULL). A config error returns
 * -1 without calling the plugin (reason on stderr). Then p->init and
 * p->start; a failed start gets destroy() without stop(), as in fanoutd.
 * Returns 0, -1 on a config error, or the plugin's negative FANOUT_E* code
 * from init/start. *state receives the plugin state.
 */
int mockhost_start(struct mockhost *m, const struct fanout_plugin *p, const char *const *kv,
		   void **state);

/* Call p->stop (after it, posted callbacks are dropped) and p->destroy. Idempotent. */
void mockhost_stop(struct mockhost *m);

/* Run the loop for about ms milliseconds (0: one non-blocking turn). */
void mockhost_run(struct mockhost *m, int ms);

/*
 * Run the loop until pred(m, arg) returns non-zero or timeout_ms passes.
 * Returns 1 when pred became true, 0 on timeout. pred is checked before the
 * first turn and after every turn.
 */
int mockhost_run_until(struct mockhost *m, int (*pred)(struct mockhost *, void *), void *arg,
		       int timeout_ms);

/* Monotonic milliseconds (the mock loop's clock). */
uint64_t mockhost_now_ms(void);
/* A TCP port on 127.0.0.1 that nothing is bound to now and this process
 * has not handed out before, taken below the kernel's ephemeral range (a
 * port in that range can become the local end of anyone's outgoing
 * connection between our check and the server's bind()). Aborts the test
 * (fail_msg) when none is found. */
int mockhost_free_port(void);

/* ---- recorded calls ---- */
size_t mockhost_n_delivered(struct mockhost *m);
const struct mock_msg *mockhost_delivered(struct mockhost *m, size_t i);
size_t mockhost_n_subscribed(struct mockhost *m);
const struct mock_sub *mockhost_subscribed(struct mockhost *m, size_t i);
size_t mockhost_n_published(struct mockhost *m);
const struct mock_pub *mockhost_published(struct mockhost *m, size_t i);
size_t mockhost_n_states(struct mockhost *m);
const struct mock_state *mockhost_state(struct mockhost *m, size_t i);
size_t mockhost_n_gaps(struct mockhost *m);
const struct mock_gap *mockhost_gap(struct mockhost *m, size_t i);
size_t mockhost_n_tops(struct mockhost *m); /* top_done() answers */
const struct mock_pos *mockhost_top(struct mockhost *m, size_t i);
size_t mockhost_n_items(struct mockhost *m); /* history_item() calls */
const struct mock_item *mockhost_item(struct mockhost *m, size_t i);
size_t mockhost_n_histories(struct mockhost *m); /* history_done() answers */
const struct mock_pos *mockhost_history(struct mockhost *m, size_t i);
size_t mockhost_n_logs(struct mockhost *m);
const struct mock_log *mockhost_log(struct mockhost *m, size_t i);

/* Sum of every count(event, delta) so far (0 if never counted). */
uint64_t mockhost_count(struct mockhost *m, const char *event);
/* The last backend_state() (FANOUT_DOWN, reason NULL, if none yet). */
enum fanout_state mockhost_last_state(struct mockhost *m, const char **reason);
/* Number of live (not removed) watches / timers, e.g. to check stop() cleans up. */
size_t mockhost_n_watches(struct mockhost *m);
size_t mockhost_n_timers(struct mockhost *m);
/* 1 if some log line contains needle. */
int mockhost_log_contains(struct mockhost *m, const char *needle);
/* How many subscribed() calls for channel with ok (ok < 0: any). */
size_t mockhost_n_subscribed_for(struct mockhost *m, const char *channel, int ok);
/* Forget all records (counters and last state included). */
void mockhost_reset_records(struct mockhost *m);

/* Ready-made predicates for mockhost_run_until(). */
int mockhost_pred_up(struct mockhost *m, void *unused);		   /* last state is UP */
int mockhost_pred_down(struct mockhost *m, void *unused);	   /* last state is DOWN (seen) */
int mockhost_pred_subscribed(struct mockhost *m, void *channel);   /* subscribed(channel, 1) seen */
int mockhost_pred_n_delivered(struct mockhost *m, void *size_t_p); /* n_delivered >= *(size_t*) */
int mockhost_pred_n_published(struct mockhost *m, void *size_t_p); /* n_published >= *(size_t*) */
int mockhost_pred_n_gaps(struct mockhost *m, void *size_t_p);	   /* n_gaps >= *(size_t*) */
int mockhost_pred_n_tops(struct mockhost *m, void *size_t_p);	   /* n_tops >= *(size_t*) */
int mockhost_pred_n_histories(struct mockhost *m, void *size_t_p); /* n_histories >= *(size_t*) */

#endif /* FANOUT_TESTS_MOCKHOST_H */
