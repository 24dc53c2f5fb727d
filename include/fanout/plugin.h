/*
 * <fanout/plugin.h> — the fanout backend plugin ABI.
 *
 * This is the only header a backend includes from fanout. A backend is a
 * shared object that carries channel messages between fanoutd instances
 * (Valkey pub/sub, a file being tailed, an in-process loop, ...). fanoutd
 * loads it with dlopen(RTLD_NOW | RTLD_LOCAL) and talks to it through two
 * tables of function pointers:
 *
 *   struct fanout_plugin   exported by the backend (one const data symbol,
 *                          FANOUT_PLUGIN_SYMBOL): its name, version, the
 *                          config keys it accepts and its operations.
 *   struct fanout_host     given by fanoutd to init(): logging, message
 *                          delivery, completions, fd watches, timers and a
 *                          thread-safe post().
 *
 * Nothing else crosses the line: no globals in either direction, no
 * third-party types (no json_t, no struct lws, no redisAsyncContext) — only
 * bytes with lengths, integers, strings and opaque handles.
 *
 * VERSIONING. FANOUT_ABI_MAJOR changes when an existing field or a call's
 * meaning changes; FANOUT_ABI_MINOR when something is appended at the end of
 * a table. fanoutd reads abi_major/abi_minor/struct_size from the exported
 * table before it calls anything in the plugin, and refuses (one log line
 * naming the file and both versions, exit code 4) a plugin of another major
 * or of a newer minor than its own. A plugin built against an older minor
 * works: the host only uses the fields that struct_size covers. (ELF
 * constructors in the .so run at dlopen time, before any check — don't
 * write any.)
 *
 * THREADING. fanoutd runs one event loop per process. Every operation is
 * called on the loop thread and every host service must be called on the
 * loop thread, except post(), the one thread-safe call: a backend that runs
 * a thread of its own hands results back through post(). Operations must not
 * block (no synchronous connect, no DNS lookups on the loop).
 *
 * OWNERSHIP. Pointers passed into an operation or into a host call are
 * borrowed for the duration of that call: copy what you keep. deliver()
 * copies the payload once into a message shared by every subscriber.
 *
 * LIFECYCLE.
 *   init(host, backend, values, &state)  parse options, allocate; no I/O yet
 *   start(state)                         connect, arm watches and timers
 *   subscribe / unsubscribe / publish    demand-driven, any number of times
 *   stop(state)                          close connections, drop watches/timers
 *   destroy(state)                       free everything
 * subscribe(channel) is called when a channel gets its first local
 * subscriber, unsubscribe(channel) when it loses its last. The backend
 * answers every subscribe with host->subscribed(backend, channel, ok) — from
 * inside subscribe() or later — and the hub replies to clients only then, so
 * a client never misses a message published after its "subscribed" reply.
 * publish(channel, data, len, token) is answered with host->published(
 * backend, token, ok), again synchronously or later. When the connection to
 * the broker is lost and regained, the backend subscribes again on its own
 * and calls host->gap(backend, channel_or_NULL, reason) so clients refetch.
 *
 * POSITIONS (ABI 1.1, optional). A backend whose broker keeps a history of
 * each channel makes its channels *positioned*: every message has an
 * offset (1, 2, 3, ... per channel, assigned by the broker side at publish
 * time so that every fanoutd instance sees the same numbers) inside an
 * epoch (a string of 1-64 bytes of [A-Za-z0-9_-] that changes when the
 * history is lost: data wiped, keys expired, file rotated). Such a backend:
 *   - confirms subscribe() with host->subscribed_at(channel, ok, epoch,
 *     top, flags) instead of subscribed(): the top is read after the
 *     broker confirmed the subscription, so nothing newer is missed;
 *   - delivers with host->deliver_at(channel, epoch, offset, data, len)
 *     (deliver() stays for unpositioned messages, e.g. a plain PUBLISH
 *     from a third party);
 *   - assigns positions when it publishes and answers publish() with
 *     host->published_at(token, ok, epoch, offset);
 *   - implements the ops top(channel, token) -> host->top_done() and
 *     history(channel, epoch, after, max, token) -> host->history_item()
 *     for each kept message after `after`, then host->history_done().
 * The host does the rest: it replays history to clients that resume with
 * a position, repairs holes it sees (an offset jump, a gap() after a
 * broker reconnect, a quiet channel whose top moved) from history before
 * later messages go out, and sends clients a gap notice only for what
 * history cannot fill. A backend built for ABI 1.0 simply has no
 * positioned channels. plugins/example/ shows the whole set in memory.
 *
 * TUTORIAL: a complete minimal backend (it echoes publishes back, like the
 * bundled "loopback" backend; plugins/example/ is the same with comments):
 *
 *     #include <fanout/plugin.h>
 *     #include <stdlib.h>
 *
 *     struct echo { const struct fanout_host *host; struct fanout_backend *b; };
 *
 *     static const struct fanout_option opts[] = {
 *             FANOUT_OPTION_INT("greeting_count", "0", 0, 10, "unused, a demo key"),
 *             FANOUT_OPTION_END
 *     };
 *     static int e_init(const struct fanout_host *host, struct fanout_backend *b,
 *                       const struct fanout_value *values, void **state)
 *     {
 *             struct echo *e = calloc(1, sizeof(*e));
 *             if (!e)
 *                     return FANOUT_ENOMEM;
 *             e->host = host;
 *             e->b = b;
 *             (void)values; // values[0].num is greeting_count
 *             *state = e;
 *             return 0;
 *     }
 *     static int e_start(void *s)
 *     {
 *             struct echo *e = s;
 *             e->host->backend_state(e->b, FANOUT_UP, "ready");
 *             return 0;
 *     }
 *     static int e_subscribe(void *s, const char *channel)
 *     {
 *             struct echo *e = s;
 *             e->host->subscribed(e->b, channel, 1);
 *             return 0;
 *     }
 *     static int e_publish(void *s, const char *channel, const void *data,
 *                          size_t len, uint64_t token)
 *     {
 *             struct echo *e = s;
 *             e->host->deliver(e->b, channel, data, len);
 *             e->host->published(e->b, token, 1);
 *             return 0;
 *     }
 *     static void e_destroy(void *s) { free(s); }
 *
 *     FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
 *             FANOUT_PLUGIN_HEADER,
 *             .name = "echo",
 *             .version = "1.0",
 *             .description = "echoes publishes to local subscribers",
 *             .options = opts,
 *             .init = e_init,
 *             .start = e_start,
 *             .subscribe = e_subscribe,
 *             .publish = e_publish,
 *             .destroy = e_destroy,
 *     };
 *
 * Build it out of the source tree with the installed pkg-config file:
 *
 *     cc -shared -fPIC -o echo.so echo.c $(pkg-config --cflags --libs fanout-plugin)
 *
 * and load it with `plugin = /path/to/echo.so` (or just `echo` when the .so
 * sits in plugin_dir) in a [backend NAME] section of fanout.ini.
 */
#ifndef FANOUT_PLUGIN_H
#define FANOUT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FANOUT_ABI_MAJOR 1
#define FANOUT_ABI_MINOR 2

/* The name of the one exported symbol, as C identifier and as a string. */
#define FANOUT_PLUGIN_SYMBOL	  fanout_plugin_v1
#define FANOUT_PLUGIN_SYMBOL_NAME "fanout_plugin_v1"

#if defined(__GNUC__)
#define FANOUT_PLUGIN_EXPORT __attribute__((visibility("default")))
#define FANOUT_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#else
#define FANOUT_PLUGIN_EXPORT
#define FANOUT_PRINTF(f, a)
#endif

/*
 * Error codes: 0 is success, failures are negative. Operations return
 * them; statuses in top_done()/history_done() carry them; fanoutd's logs
 * print them with fanout_strerror()'s text and the number. What the host
 * does with a failure depends on the operation (see each one below), not
 * on which code it is: the code says why, for the log.
 */
enum fanout_err {
	FANOUT_OK = 0,
	FANOUT_EINVAL = -1,   /* bad argument or option value */
	FANOUT_ENOMEM = -2,   /* out of memory */
	FANOUT_EIO = -3,      /* I/O or connection failure */
	FANOUT_EUNAVAIL = -4, /* backend not connected / cannot serve now */
	FANOUT_ETOOBIG = -5,  /* payload over a limit */
	FANOUT_ENOTSUP = -6,  /* operation not supported by this backend */
	FANOUT_EDENIED = -7,  /* refused by the broker (auth, ACL) */
	/* ABI 1.1, answers about positions (top_done / history_done): */
	FANOUT_EEPOCH = -8,	/* the epoch asked about is not the channel's current one */
	FANOUT_ETRUNCATED = -9, /* history no longer reaches back that far */
};

/*
 * The text of a FANOUT_E* code (any other number: "unknown error"), for a
 * plugin's own log lines and fanoutd's. A static inline function rather
 * than a symbol of fanoutd: plugins are linked -no-undefined and opened
 * RTLD_LOCAL by a fanoutd that exports nothing, and there is no libfanout
 * to link against, so a plugin could not reach a function of the host
 * except through the host table (which the mock host, tools and a plugin's
 * own tests would then need too). Inline, every user has the same table of
 * texts with nothing to link; a plugin built against an older header only
 * lacks the texts of codes added later ("unknown error").
 */
static inline const char *fanout_strerror(int err)
{
	switch (err) {
	case FANOUT_OK:
		return "success";
	case FANOUT_EINVAL:
		return "invalid argument or option value";
	case FANOUT_ENOMEM:
		return "out of memory";
	case FANOUT_EIO:
		return "I/O or connection failure";
	case FANOUT_EUNAVAIL:
		return "backend unavailable";
	case FANOUT_ETOOBIG:
		return "payload over a limit";
	case FANOUT_ENOTSUP:
		return "operation not supported by this backend";
	case FANOUT_EDENIED:
		return "refused by the broker";
	case FANOUT_EEPOCH:
		return "epoch is not the channel's current one";
	case FANOUT_ETRUNCATED:
		return "history no longer reaches back that far";
	default:
		return "unknown error";
	}
}

/* Log levels for host->log(). */
enum fanout_log_level {
	FANOUT_LOG_ERR = 0,
	FANOUT_LOG_WARN = 1,
	FANOUT_LOG_INFO = 2,
	FANOUT_LOG_DEBUG = 3,
};

/* Backend states for host->backend_state(). */
enum fanout_state {
	FANOUT_DOWN = 0,
	FANOUT_UP = 1,
};

/* Flags of host->subscribed_at(). */
#define FANOUT_POS_CONTIGUOUS 1u /* offsets on the channel go up by exactly one */

/* fd watch interest and readiness bits. */
#define FANOUT_FD_READ	1u
#define FANOUT_FD_WRITE 2u

/* ---- options -------------------------------------------------------- */

enum fanout_opt_type {
	FANOUT_OPT_STRING = 0, /* any text (after ${VAR} expansion) */
	FANOUT_OPT_INT = 1,    /* decimal integer within [min, max] */
	FANOUT_OPT_BOOL = 2,   /* true/false/yes/no/on/off/1/0 */
	FANOUT_OPT_ENUM = 3,   /* one of the '|'-separated words in choices */
};

/* Flags of a struct fanout_option. */
#define FANOUT_OPT_REQUIRED 1u /* the key must be set; def is ignored */
#define FANOUT_OPT_SECRET                                                                          \
	2u /* value never printed (--check-config shows ***),                                      \
	    * whatever the key's name */

/*
 * One config key the backend accepts in its [backend NAME] section. The
 * host checks every key of the section against this list before init(): an
 * unknown key, a value of the wrong type or out of bounds is a config error
 * naming the file and line, and the plugin's code never runs. The keys
 * `plugin` and `channels` belong to the host and are never passed on.
 * The table itself is checked when the plugin is loaded (exit code 4 on a
 * mistake): names of [a-z0-9_], unique, not `plugin` or `channels`; INT
 * with min <= max; ENUM with choices; every default valid for its type.
 * INT options whose name ends in _bytes accept k/m/g (x1024) suffixes,
 * like the server's _bytes keys. `help` is shown by
 * `fanoutd --check-config -v` and in the generated OPTIONS section of the
 * backend's man page (tools: man/plugin-options).
 */
struct fanout_option {
	const char *name;	   /* key name; units in the name (_ms, _bytes) */
	enum fanout_opt_type type; /* how the value is checked and parsed */
	const char *def;	   /* default as text; NULL: empty / unset */
	long long min, max;	   /* bounds for FANOUT_OPT_INT */
	const char *choices;	   /* FANOUT_OPT_ENUM: "a|b|c" */
	const char *help;	   /* one line for --check-config and docs */
	unsigned flags;		   /* FANOUT_OPT_REQUIRED, FANOUT_OPT_SECRET */
};

#define FANOUT_OPTION_STRING(n, d, h)                                                              \
	{                                                                                          \
		(n), FANOUT_OPT_STRING, (d), 0, 0, NULL, (h), 0                                    \
	}
#define FANOUT_OPTION_INT(n, d, lo, hi, h)                                                         \
	{                                                                                          \
		(n), FANOUT_OPT_INT, (d), (lo), (hi), NULL, (h), 0                                 \
	}
#define FANOUT_OPTION_BOOL(n, d, h)                                                                \
	{                                                                                          \
		(n), FANOUT_OPT_BOOL, (d), 0, 1, NULL, (h), 0                                      \
	}
#define FANOUT_OPTION_ENUM(n, d, choices, h)                                                       \
	{                                                                                          \
		(n), FANOUT_OPT_ENUM, (d), 0, 0, (choices), (h), 0                                 \
	}
#define FANOUT_OPTION_END                                                                          \
	{                                                                                          \
		NULL, FANOUT_OPT_STRING, NULL, 0, 0, NULL, NULL, 0                                 \
	}

/*
 * The checked value of one option, in the same order as the plugin's
 * options[] array. str is the text (the default when the key is absent;
 * NULL when there is neither), set tells whether the config named the key.
 * num is the parsed number for INT, 0/1 for BOOL, the index into choices
 * for ENUM, 0 for STRING. Borrowed: valid only during init().
 */
struct fanout_value {
	const char *str;
	long long num;
	int set;
};

/* ---- opaque handles ------------------------------------------------- */

struct fanout_backend; /* the host's handle for one loaded backend section */
struct fanout_watch;   /* an fd watch */
struct fanout_timer;   /* a timer */

typedef void (*fanout_fd_cb)(struct fanout_watch *w, int fd, unsigned revents, void *arg);
typedef void (*fanout_timer_cb)(struct fanout_timer *t, void *arg);
typedef void (*fanout_post_cb)(void *arg);

/* ---- host services -------------------------------------------------- */

/*
 * The host's services, passed to init(). The table stays valid until
 * destroy() returns. Every call takes the backend handle given to init().
 * Only post() may be called from another thread.
 */
struct fanout_host {
	uint32_t abi_major;   /* FANOUT_ABI_MAJOR of the host */
	uint32_t abi_minor;   /* FANOUT_ABI_MINOR of the host */
	uint32_t struct_size; /* sizeof(struct fanout_host) of the host */

	/* Log a line through fanoutd's log (tagged with the backend's name). */
	void (*log)(struct fanout_backend *b, enum fanout_log_level level, const char *fmt, ...)
	    FANOUT_PRINTF(3, 4);

	/*
	 * A message arrived on channel (NUL-terminated, the client-visible
	 * name). data/len are any bytes; the host copies them once, drops
	 * payloads over max_payload_bytes (counted, logged) and embeds valid
	 * JSON as JSON, anything else as a JSON string.
	 */
	void (*deliver)(struct fanout_backend *b, const char *channel, const void *data,
			size_t len);

	/*
	 * Answer to subscribe(channel): ok != 0 when the broker confirmed it.
	 * Waiting clients get "subscribed" (or an error backend_unavailable)
	 * only now. Calls for channels nobody waits for are ignored.
	 */
	void (*subscribed)(struct fanout_backend *b, const char *channel, int ok);

	/* Answer to publish(..., token): ok != 0 when the broker accepted it. */
	void (*published)(struct fanout_backend *b, uint64_t token, int ok);

	/* The backend is up (serving) or down; reason is a short phrase. Feeds
	 * /readyz and /metrics; log state changes yourself only once. */
	void (*backend_state)(struct fanout_backend *b, enum fanout_state state,
			      const char *reason);

	/* Messages on channel (NULL: every channel of this backend) may have
	 * been missed; subscribers get a "gap" notice carrying reason. */
	void (*gap)(struct fanout_backend *b, const char *channel, const char *reason);

	/*
	 * Watch fd for FANOUT_FD_READ and/or FANOUT_FD_WRITE. cb runs on the
	 * loop with the ready bits (errors and hang-ups show as READ, so a
	 * read sees them). The host never closes fd. Returns NULL on failure
	 * (out of memory, or fd already watched): nothing is watched then.
	 */
	struct fanout_watch *(*watch_add)(struct fanout_backend *b, int fd, unsigned events,
					  fanout_fd_cb cb, void *arg);
	/* Change the interest of a watch (0 pauses it). Returns 0, or a
	 * negative FANOUT_E* (the watch keeps its old interest). */
	int (*watch_set)(struct fanout_watch *w, unsigned events);
	/* Stop watching and free the watch (safe inside its own callback). */
	void (*watch_remove)(struct fanout_watch *w);

	/* A one-shot timer, created disarmed. NULL when out of memory. */
	struct fanout_timer *(*timer_add)(struct fanout_backend *b, fanout_timer_cb cb, void *arg);
	/* (Re)arm to fire once after ms milliseconds (0: on the next loop turn). */
	void (*timer_arm)(struct fanout_timer *t, uint64_t ms);
	/* Disarm without freeing. */
	void (*timer_disarm)(struct fanout_timer *t);
	/* Disarm and free (safe inside its own callback). */
	void (*timer_remove)(struct fanout_timer *t);

	/*
	 * Thread-safe: run cb(arg) on the loop thread soon. Returns 0, or
	 * FANOUT_ENOMEM. Callbacks posted after stop() has returned are
	 * dropped without being run (free arg yourself before stop then).
	 */
	int (*post)(struct fanout_backend *b, fanout_post_cb cb, void *arg);

	/* The instance id of this fanoutd (config `instance`). */
	const char *(*instance)(struct fanout_backend *b);

	/* The section name of this backend ("valkey" for [backend valkey]). */
	const char *(*name)(struct fanout_backend *b);

	/* Monotonic milliseconds, the loop's clock. */
	uint64_t (*now_ms)(struct fanout_backend *b);

	/*
	 * Add delta to the backend's event counter `event` ([a-z0-9_]+, e.g.
	 * "reconnects", "bad_lines"); /metrics shows it as
	 * fanout_backend_events_total{backend="NAME",event="EVENT"}. At most
	 * 32 distinct events per backend; further names are ignored.
	 */
	void (*count)(struct fanout_backend *b, const char *event, uint64_t delta);

	/* ---- ABI 1.1: positions (see POSITIONS above) ---- */

	/*
	 * Answer to subscribe(channel) for a positioned channel: like
	 * subscribed(), plus the channel's current epoch and top offset (the
	 * offset of the newest message, 0 when nothing was published yet; the
	 * epoch is created then if it did not exist) read *after* the broker
	 * confirmed the subscription, so every message newer than top reaches
	 * deliver_at(). flags: FANOUT_POS_CONTIGUOUS when offsets on this
	 * channel go up by exactly one. epoch NULL: the channel is not
	 * positioned (the same as subscribed()).
	 * Called again for a channel that is already live (after subscribing
	 * again on a new connection, or when the backend learns that the
	 * channel's top passed what it delivered, before delivering what is
	 * newer), it is a position report: the host checks it as it checks a
	 * top() answer, repairing (what it fanned out, top] from history
	 * before later messages, a gap for what history cannot fill, a new
	 * epoch for an epoch change. On a channel whose offsets skip, that is
	 * the only way the host learns of a hole before a newer message.
	 */
	void (*subscribed_at)(struct fanout_backend *b, const char *channel, int ok,
			      const char *epoch, uint64_t top, unsigned flags);

	/* A positioned message: like deliver(), with its epoch and offset. */
	void (*deliver_at)(struct fanout_backend *b, const char *channel, const char *epoch,
			   uint64_t offset, const void *data, size_t len);

	/* Answer to publish(..., token) on a positioned channel: like
	 * published(), plus the position the broker gave the message. */
	void (*published_at)(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
			     uint64_t offset);

	/* Answer to top(channel, token): status FANOUT_OK with the current
	 * epoch and top offset, or a negative FANOUT_E* (epoch NULL). */
	void (*top_done)(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
			 uint64_t top);

	/* One message of the answer to history(..., token), in increasing
	 * offset order. */
	void (*history_item)(struct fanout_backend *b, uint64_t token, uint64_t offset,
			     const void *data, size_t len);

	/*
	 * End of the answer to history(channel, epoch, after, max, token):
	 *   FANOUT_OK          every kept message after `after` was given, up
	 *                      to max of them (fewer than max: up to top)
	 *   FANOUT_EEPOCH      epoch is not the current one; no items
	 *   FANOUT_ETRUNCATED  the oldest kept message is newer than
	 *                      after + 1 (trimmed or expired); no items
	 *   other FANOUT_E*    failure (broker down ...); no items
	 * epoch/top: the channel's current position (epoch NULL on failure).
	 */
	void (*history_done)(struct fanout_backend *b, uint64_t token, int status,
			     const char *epoch, uint64_t top);

	/* ---- ABI 1.2 ---- */

	/*
	 * The `channels` globs of this backend's [backend NAME] section (the
	 * host's key, never passed as an option), in file order; *n receives
	 * their number (at least 1: the default is "*"). Borrowed, valid until
	 * destroy() returns. For a backend that maps the channels it serves
	 * onto broker-side objects, e.g. the subjects of a JetStream stream.
	 */
	const char *const *(*channels)(struct fanout_backend *b, size_t *n);

	/* Append new services here and bump FANOUT_ABI_MINOR. */
};

/* ---- the plugin's table --------------------------------------------- */

struct fanout_plugin {
	uint32_t abi_major;   /* set by FANOUT_PLUGIN_HEADER */
	uint32_t abi_minor;   /* set by FANOUT_PLUGIN_HEADER */
	uint32_t struct_size; /* set by FANOUT_PLUGIN_HEADER */

	const char *name;		     /* short name, e.g. "valkey" (mandatory) */
	const char *version;		     /* the backend's own version (mandatory) */
	const char *description;	     /* one line */
	const struct fanout_option *options; /* ended by FANOUT_OPTION_END; NULL: none */

	/*
	 * Mandatory. Check values, allocate, store state in *state. No I/O.
	 * Returns 0, or a negative FANOUT_E*: fanoutd logs it with
	 * fanout_strerror() and exits with code 5 (destroy() is not called;
	 * free what init allocated before returning). `fanoutd --check-config`
	 * calls init and then destroy() at once (no start), so refuse every
	 * bad value here, not in start().
	 */
	int (*init)(const struct fanout_host *host, struct fanout_backend *b,
		    const struct fanout_value *values, void **state);
	/*
	 * Mandatory. Begin serving: connect, add watches and timers. Returns 0
	 * (connected or not: a backend that cannot reach its broker yet
	 * reports FANOUT_DOWN through backend_state() and keeps retrying), or
	 * a negative FANOUT_E* for a failure that retrying cannot mend:
	 * fanoutd logs it, calls destroy() (not stop()) and exits with code 5.
	 */
	int (*start)(void *state);
	/*
	 * Mandatory. First local subscriber of channel: answer with
	 * subscribed() (or subscribed_at()), now or later. Returns 0 when the
	 * request was taken. A negative FANOUT_E* refuses it at once: no
	 * answer need follow, the host answers the waiting clients with error
	 * backend_unavailable itself (as for subscribed(channel, 0)).
	 */
	int (*subscribe)(void *state, const char *channel);
	/* Optional. Last local subscriber of channel left. Returns 0, or a
	 * negative FANOUT_E* that the host only logs (the channel is gone on
	 * the host's side either way). */
	int (*unsubscribe)(void *state, const char *channel);
	/*
	 * Optional (NULL: clients get "forbidden"). Answer with published()
	 * (or published_at()), now or later. Returns 0 when the publish was
	 * taken; a negative FANOUT_E* refuses it at once and no answer need
	 * follow: the client gets error backend_unavailable (FANOUT_ETOOBIG,
	 * FANOUT_EDENIED: the same error, the log says why).
	 */
	int (*publish)(void *state, const char *channel, const void *data, size_t len,
		       uint64_t token);
	/* Optional. Close connections, remove watches and timers. */
	void (*stop)(void *state);
	/* Mandatory. Free everything. */
	void (*destroy)(void *state);

	/* ---- ABI 1.1: positions (optional; NULL: no positioned channels) ---- */

	/* Ask for channel's current epoch and top offset: answer with
	 * host->top_done(token, ...), now or later. A channel without an epoch
	 * gets one. Returns 0, or a negative FANOUT_E* (then no answer comes). */
	int (*top)(void *state, const char *channel, uint64_t token);

	/* Ask for the kept messages of channel after offset `after` of epoch,
	 * at most max of them, oldest first: answer with host->history_item()
	 * for each, then host->history_done(token, ...), now or later. Returns
	 * 0, or a negative FANOUT_E* (then no answer comes). */
	int (*history)(void *state, const char *channel, const char *epoch, uint64_t after,
		       uint64_t max, uint64_t token);

	/* Append new operations here and bump FANOUT_ABI_MINOR. */
};

/*
 * Put first in the plugin's initialiser: sets the ABI fields. Every
 * operation not named afterwards is NULL, never garbage.
 */
#define FANOUT_PLUGIN_HEADER                                                                       \
	.abi_major = FANOUT_ABI_MAJOR, .abi_minor = FANOUT_ABI_MINOR,                              \
	.struct_size = sizeof(struct fanout_plugin)

#ifdef __cplusplus
}
#endif

#endif /* FANOUT_PLUGIN_H */
