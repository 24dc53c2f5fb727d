/*
 * config.h — fanoutd's configuration: the server key table, the ini
 * loader and the checks of backend sections against a plugin's option specs.
 *
 * One table (config.c: server_keys[]) drives parsing, defaults, bounds,
 * --check-config output and the man page; tests/unit/test_config.c checks
 * that the table and conf/fanout.ini agree.
 *
 * Errors are written to errf, one per line, as
 *   FILE:LINE: [section] key: reason
 * (command line overrides as  -o section.key: reason), and every error in
 * the file is reported, not just the first.
 */
#ifndef FANOUT_CONFIG_H
#define FANOUT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include <fanout/plugin.h>

#include "contract.h"

/* The longest line of a config file, in bytes (without its line end).
 * A longer line is an error ("line longer than ... bytes"), read no further
 * than this into memory. */
#define CONFIG_MAX_LINE 65536

/* One key = value line of a [backend NAME] section, in file order. */
struct cfg_kv {
	char *key;
	char *value; /* after ${VAR} expansion */
	int line;    /* 0 when it came from -o */
};

/* One [backend NAME] section. */
struct cfg_backend {
	char *name;	 /* NAME from the section header */
	char *plugin;	 /* `plugin` key: a name in plugin_dir or a path (has a '/') */
	char **channels; /* `channels` globs (split on ',' and spaces); default {"*"} */
	size_t n_channels;
	struct cfg_kv *kv; /* every other key, for the plugin's option check */
	size_t n_kv;
	int line; /* line of the section header (0: from -o) */
};

struct config {
	char *path; /* the file loaded */

	/* [server] */
	char *listen;	   /* as written, e.g. "0.0.0.0:8080" */
	char *listen_host; /* parsed: "0.0.0.0", "::", "127.0.0.1", "" = all */
	int listen_port;   /* parsed */
	char *instance;	   /* default: gethostname() */
	char *ws_path;	   /* default "/ws"; must start with '/' */
	char *trpc_path;   /* default "/trpc"; "" = no tRPC endpoint */
	char *sse_path;	   /* default "/sse"; "" = no Server-Sent Events */
	char *web_root;	   /* default FANOUT_WEB_ROOT; "" = serve no static files */
	char *plugin_dir;  /* default FANOUT_PLUGIN_DIR */
	int workers;	   /* 1..64; 0 means "auto" (one per CPU) */
	long long max_clients;
	long long max_message_bytes;
	long long max_payload_bytes;
	long long max_subscriptions;
	long long max_channels; /* distinct channels in the hub */
	long long client_queue_bytes;
	long long shutdown_grace_ms;
	long long ping_interval_s; /* 0 disables keepalive pings */
	int allow_publish;	   /* bool */
	char **allowed_origins;	   /* {"*"} = any */
	size_t n_allowed_origins;
	char **trusted_proxies; /* addresses / CIDR networks whose X-Forwarded-For is believed */
	size_t n_trusted_proxies;
	long long max_connections_per_ip; /* 0 = off */
	char *admin_listen;		  /* "" = off; else host:port like listen */
	char *publish_api_key;		  /* "" = the HTTP publish API is off */
	char *tls_cert;			  /* "" = plain; else PEM chain: TLS only */
	char *tls_key;			  /* PEM private key of tls_cert */
	long long handshake_timeout_s;	  /* accept to complete first request */
	long long idle_timeout_s;	  /* 0 = off */
	char **channels;		  /* globs a client may use; {"*"} = any valid name */
	size_t n_channels;
	int permessage_deflate;	      /* bool, default false */
	/* positions and recovery (recovery.h) */
	long long recovery_max_messages;    /* replay / hole repair cap */
	long long recovery_buffer_messages; /* held while a recovery or repair waits */
	long long recovery_ring_messages;   /* recent messages kept per channel */
	long long recovery_ring_bytes;	    /* payload bytes of every ring together */
	long long recovery_max_requests;    /* top/history requests in flight */
	long long recovery_timeout_ms;
	long long position_probe_s; /* quiet channels' top checked this often; 0: off */
	int log_level;		      /* enum log_level */
	long long max_requests_per_s; /* per client; 0 = unlimited (guard.h) */
	long long max_queued_bytes;   /* all send queues (budget.h); -1 = auto */
	long long max_channels_per_ip; /* channels charged per address (hub.c); 0 = off */

	/* [auth] (auth.h); jwt_secret and jwt_public_key both "": tokens off */
	char *jwt_secret;     /* HS256 secret, >= AUTH_SECRET_MIN bytes */
	char *jwt_public_key; /* path of a PEM public key (RS256 / ES256) */
	char *jwt_audience;   /* "": aud not checked */
	long long jwt_leeway_s;

	struct cfg_backend *backends; /* in file order */
	size_t n_backends;

	/* [trpc]: tRPC procedure path -> channel template (trpc_proto.h), in
	 * file order; line as in cfg_kv. */
	struct cfg_kv *trpc;
	size_t n_trpc;
};

/*
 * Load path (NULL: defaults only) and then apply overrides, each
 * "section.key=value" where section is "server" or "backend.NAME" (an
 * override may create a new backend section). Returns 0, or the number of
 * errors (> 0) after writing every one of them to errf; c is then freed.
 */
int config_load(struct config *c, const char *path, const char *const *overrides,
		size_t n_overrides, FILE *errf);
void config_free(struct config *c);

/* Print the effective configuration (every server key, each backend's
 * keys) in ini form; secrets are printed as "***": server keys flagged
 * secret in the key table, backend keys whose name ends in password,
 * secret or token, and URL passwords (scheme://user:***@host). */
void config_dump(const struct config *c, FILE *out);

/* The same, knowing each backend's plugin (plugins[i] for backends[i];
 * plugins or an entry NULL: unknown): an option flagged FANOUT_OPT_SECRET
 * is printed as "***" whatever its name. verbose: every key gets its help
 * as a comment line, and each plugin's options that the section does not
 * set are listed commented out with their defaults (--check-config -v). */
void config_dump_full(const struct config *c, const struct fanout_plugin *const *plugins,
		      int verbose, FILE *out);

/*
 * Check a backend section against the plugin's option specs (the array
 * ends with a NULL name): unknown keys, types, bounds, enum choices,
 * required keys. On success returns 0 and *values (n = number of specs,
 * same order; strings point into c) for init(); free with free(). On
 * failure writes each error to errf (FILE:LINE: [backend NAME] key: reason)
 * and returns the error count.
 */
int config_backend_values(const struct config *c, const struct cfg_backend *b,
			  const struct fanout_option *opts, struct fanout_value **values,
			  FILE *errf);

/* The channel template of tRPC procedure path ([trpc]), or NULL. */
const char *config_trpc_channel(const struct config *c, const char *path);

/* The backend whose `channels` globs match channel first, or NULL. */
const struct cfg_backend *config_route(const struct config *c, const char *channel);

/* ---- reload (SIGHUP, reload.c) ---- */

/* Called by config_apply() for each [server]/[auth] key whose value
 * differs: live = the change was applied (else it needs a restart and the
 * running value stays); old/new as text, secrets as ***. */
typedef void (*config_note_fn)(void *arg, const char *key, int live, const char *old_value,
			       const char *new_value);

/*
 * Apply the freshly loaded next to the running run, in place (every module
 * keeps its pointer to run): each key whose value changed and that is
 * marked live in the key table takes next's value; the others keep run's
 * and are reported (note). The [backend NAME] and [trpc] sections of next
 * replace run's — the plugin host re-points its backends by name. next
 * then holds the replaced values: config_free() it. Returns how many
 * changed keys need a restart.
 */
int config_apply(struct config *run, struct config *next, config_note_fn note, void *arg);
/* Give next the running value of key name (a change refused before
 * config_apply, e.g. TLS switched on or off). 0 or -1. */
int config_keep_key(struct config *next, const struct config *run, const char *name);
/* The [backend NAME] section of c, or NULL. */
const struct cfg_backend *config_find_backend(const struct config *c, const char *name);
/* 1 when two sections say the same (plugin, channels, keys in any order). */
int config_backend_equal(const struct cfg_backend *a, const struct cfg_backend *b);
/* Append a copy of section b to to (a section a reload keeps running
 * although the file lost it). 0, or -1 (out of memory; to is consistent
 * and config_free() frees the partial copy). */
int config_copy_backend(struct config *to, const struct cfg_backend *b);
/* Move section i of from to the end of to (a section a reload keeps
 * running although the file lost it). 0 or -1 (out of memory). */
int config_move_backend(struct config *to, struct config *from, size_t i);
/* 1 when key i is applied by a reload (KF_LIVE), 0 when it needs a restart. */
int config_server_key_live(size_t i);

/* The key table of [server] and [auth], for tests and docs: the name /
 * one-line help / section ("server" or "auth") of key i, or NULL past the
 * end. */
const char *config_server_key(size_t i);
const char *config_server_key_help(size_t i);
const char *config_server_key_section(size_t i);

/* ---- value parsers (pure; fuzzed by tests/fuzz/fuzz_config.c) ---- */

/* cfg_parse_int() and cfg_parse_bool(), the grammar of integer and boolean
 * values shared with the plugins' options, live in contract.h. */
/* "host:port", "[v6]:port", ":port" or "port" -> host (malloc'd, "" = any)
 * and port 1..65535; returns 0 or -1. */
int cfg_parse_listen(const char *s, char **host, int *port, const char **why);
/* Expand ${VAR} from the environment into a malloc'd string; "$$" is a
 * literal '$'. Returns NULL with *why set when a VAR is unset or the
 * syntax is bad. */
char *cfg_expand_env(const char *s, const char **why);
/* Split a list on commas and whitespace into a NULL-terminated malloc'd
 * array (each item malloc'd); *n gets the count. */
char **cfg_split_list(const char *s, size_t *n);

#endif
