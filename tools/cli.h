/*
 * cli.h — what fanout-cli's subcommands share: entry points, option and
 * number parsing, clocks, the Valkey URL (redis_addr.h, the parser the
 * valkey backend uses), a one-connection poll loop over wsc, and a raw JSON
 * span finder (so payloads are printed byte for byte, never re-serialised).
 */
#ifndef FANOUT_CLI_H
#define FANOUT_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_addr.h"
#include "wsc.h"

/* Exit codes of every subcommand. */
#define EXIT_OK	   0
#define EXIT_FAIL  1 /* connection, server or broker failure; timeout; loss in bench */
#define EXIT_USAGE 2

int cmd_sub(int argc, char **argv);
int cmd_pub(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* `fanout-cli bench --storm` (storm.c): connection storms and drains. */
int cmd_bench_storm(int argc, char **argv);
/* `fanout-cli bench --recovery` (recover.c): the recovery storm. */
int cmd_bench_recovery(int argc, char **argv);

/* Print "fanout-cli: <msg>" to stderr. */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "fanout-cli: <cmd>: <msg>" and "Try 'fanout-cli <cmd> --help'." and
 * return EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: whole string, within [min, max]. Return 0 or -1. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int parse_double(const char *s, double min, double max, double *out);
/* "N", "N/s" or "N/min"; result in events per second (> 0). */
int parse_rate(const char *s, double *per_s);

int64_t now_ms_real(void); /* ms since the epoch */
int64_t now_ns_mono(void); /* CLOCK_MONOTONIC */
int64_t now_ms_mono(void);

/*
 * Load the valkey backend's "fanout" functions (FUNCTION LOAD REPLACE, with
 * the backend's default history settings) on a connected, blocking hiredis
 * context (push.c). who names the caller in messages; quiet: no success
 * line. 0, or -1 with the reason printed.
 */
struct redisContext;
int push_load_library(struct redisContext *rc, int quiet, const char *who);

/* Process measurements of the bench modes (bench.c, storm.c, recover.c):
 * user+sys CPU seconds of pid (/proc/PID/stat) or -1; its VmRSS in KiB or
 * -1; this process's own user+sys CPU seconds. */
double proc_cpu_s(int pid);
long proc_rss_kib(int pid);
double self_cpu_s(void);
/* qsort() comparator for uint64_t, and the nearest-rank q-quantile of n
 * sorted microsecond values, in ms (0 when n is 0). */
int u64_cmp(const void *a, const void *b);
double sorted_pct_ms(const uint64_t *v, int n, double q);

/* Stop flag set by SIGINT/SIGTERM once install_stop_signals() ran. */
extern volatile sig_atomic_t stop_requested;
void install_stop_signals(void);

/* Full-jitter exponential backoff: uniform in [0, min(max, base * 2^attempt)]. */
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms);

/* Valkey/Redis addresses: struct redis_addr and redis_addr_parse(), the
 * parser the valkey backend uses too (plugins/valkey/redis_addr.h). */

/*
 * Drive one connection with poll() until *done becomes non-zero, the
 * connection closed (cb saw WSC_EV_CLOSE), stop_requested, or deadline_ms
 * (CLOCK_MONOTONIC ms; 0 = none) passed. Returns 0, or 1 on timeout.
 */
int wsc_run_one(struct wsc *c, int64_t deadline_ms, wsc_cb cb, void *arg, volatile int *done);

/*
 * Find the value of top-level key in the JSON object text s[0..len):
 * returns 0 and sets *v and *vlen to its raw bytes, or -1 if absent or if s is
 * not an object. Values are skipped, not validated (the server sends valid
 * JSON; jansson validates where it matters).
 */
int json_span(const char *s, size_t len, const char *key, const char **v, size_t *vlen);

#endif
