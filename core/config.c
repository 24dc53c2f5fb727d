/*
 * config.c — owns fanoutd's configuration: the [server] key table, the ini
 * reader, ${VAR} expansion, -o overrides, the checks of [backend NAME]
 * sections against a plugin's option specs, channel routing and the
 * --check-config dump.
 *
 * One static table, server_keys[], drives parsing, defaults, bounds and
 * config_dump(); tests/unit/test_config.c checks it against conf/fanout.ini.
 * inih parses the `key = value` lines; a reader callback feeds it one line
 * at a time and counts them, so every error carries its line number and
 * every error is reported, not just the first:
 *   FILE:LINE: [section] key: reason        (a line of the file)
 *   -o section.key: reason                   (a command line override)
 * Lines may be CONFIG_MAX_LINE bytes long; `;` starts a comment at the start
 * of a line or after whitespace, `#` only at the start of a line; an
 * indented key line is an error (inih would have merged it into the
 * previous value).
 *
 * Runs once on the main thread at start-up (and in --check-config). Every
 * string in struct config is malloc'd and freed by config_free();
 * config_backend_values() returns one calloc'd array for the caller to free.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "origin.h"
#include "protocol.h"
#include "tls_files.h"
#include "trpc_proto.h"

#ifndef FANOUT_WEB_ROOT
#define FANOUT_WEB_ROOT "/usr/local/share/fanout/web"
#endif
#ifndef FANOUT_PLUGIN_DIR
#define FANOUT_PLUGIN_DIR "/usr/local/lib/fanout"
#endif

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)

/* ---- the [server] key table ------------------------------------------ */

enum ktype {
	K_STR,	    /* char * */
	K_INT,	    /* long long within [min, max]; k/m/g suffix for _bytes keys */
	K_BOOL,	    /* int 0/1 */
	K_LIST,	    /* char ** + size_t count, split on commas and whitespace */
	K_LISTEN,   /* listen + listen_host + listen_port */
	K_WORKERS,  /* int 1..64, or "auto" = 0 */
	K_LOGLEVEL, /* int, enum log_level */
};

#define KF_NONEMPTY 1u	/* K_STR/K_LIST: may not be empty */
#define KF_SLASH    2u	/* K_STR: must start with '/' (when not empty) */
#define KF_SUFFIX   4u	/* K_INT: accepts k/m/g (x1024) */
#define KF_SECRET   8u	/* K_STR: printed as *** by config_dump() */
#define KF_AUTH	    16u /* in section [auth], not [server] */
#define KF_AUTO	    32u /* K_INT: "auto" is also a value, stored as -1 */
#define KF_LIVE	    64u /* a reload (SIGHUP) applies a change to new requests */

struct skey {
	const char *name;
	enum ktype type;
	const char *def; /* default as text; NULL: computed (instance) */
	long long min, max;
	size_t off;   /* field in struct config */
	size_t off_n; /* K_LIST: the count field */
	unsigned flags;
	const char *help;
	/* optional: check one value (K_STR) or each item (K_LIST); 0 or -1
	 * with *why */
	int (*check)(const char *v, const char **why);
};

static int check_origin(const char *v, const char **why);
static int check_cidr(const char *v, const char **why);
static int check_admin_listen(const char *v, const char **why);
static int check_instance(const char *v, const char **why);
static int check_api_key(const char *v, const char **why);

#define OFF(f) offsetof(struct config, f)

static const struct skey server_keys[] = {
    {"listen", K_LISTEN, "0.0.0.0:8080", 0, 0, OFF(listen), 0, 0,
     "address:port to listen on (\"[::]:8080\", \":8080\" = every address)"},
    {"instance", K_STR, NULL, 0, 0, OFF(instance), 0, KF_NONEMPTY,
     "instance id sent to clients; default: the host name", check_instance},
    {"ws_path", K_STR, "/ws", 0, 0, OFF(ws_path), 0, KF_NONEMPTY | KF_SLASH,
     "URL path of the WebSocket endpoint"},
    {"trpc_path", K_STR, "/trpc", 0, 0, OFF(trpc_path), 0, KF_SLASH,
     "URL path of the tRPC WebSocket endpoint; empty: off"},
    {"sse_path", K_STR, "/sse", 0, 0, OFF(sse_path), 0, KF_SLASH,
     "URL path of the Server-Sent Events endpoint; empty: off"},
    {"web_root", K_STR, FANOUT_WEB_ROOT, 0, 0, OFF(web_root), 0, 0,
     "directory of static files; empty: serve none"},
    {"plugin_dir", K_STR, FANOUT_PLUGIN_DIR, 0, 0, OFF(plugin_dir), 0, KF_NONEMPTY | KF_LIVE,
     "where backend plugins are found by name"},
    {"workers", K_WORKERS, "1", 1, 64, OFF(workers), 0, 0,
     "worker processes sharing the port; auto: one per CPU"},
    {"max_clients", K_INT, "10000", 1, 1000000, OFF(max_clients), 0, 0,
     "connected clients per process; more: close 1013"},
    {"max_message_bytes", K_INT, "65536", 16, 16 * MIB, OFF(max_message_bytes), 0,
     KF_SUFFIX | KF_LIVE, "largest inbound frame; bigger: close 1009"},
    {"max_payload_bytes", K_INT, "1048576", 16, 64 * MIB, OFF(max_payload_bytes), 0,
     KF_SUFFIX | KF_LIVE, "largest backend payload; bigger: dropped, counted, logged"},
    {"max_subscriptions", K_INT, "128", 1, 100000, OFF(max_subscriptions), 0, KF_LIVE,
     "channels per client"},
    {"max_channels", K_INT, "100000", 1, 10000000, OFF(max_channels), 0, KF_LIVE,
     "distinct channels per process"},
    {"client_queue_bytes", K_INT, "4194304", 32, 16 * GIB, OFF(client_queue_bytes), 0,
     KF_SUFFIX | KF_LIVE, "per-client send queue, >= 2 x max_payload_bytes; over: close 4001"},
    {"shutdown_grace_ms", K_INT, "5000", 0, 600000, OFF(shutdown_grace_ms), 0, KF_LIVE,
     "how long SIGTERM waits for queues to drain"},
    {"ping_interval_s", K_INT, "30", 0, 3600, OFF(ping_interval_s), 0, 0,
     "WebSocket ping interval; 0: off"},
    {"allow_publish", K_BOOL, "false", 0, 1, OFF(allow_publish), 0, KF_LIVE,
     "whether clients may publish"},
    {"allowed_origins", K_LIST, "*", 0, 0, OFF(allowed_origins), OFF(n_allowed_origins),
     KF_NONEMPTY | KF_LIVE, "Origin headers accepted at upgrade; * = any", check_origin},
    {"trusted_proxies", K_LIST, "", 0, 0, OFF(trusted_proxies), OFF(n_trusted_proxies), KF_LIVE,
     "proxies (addresses or CIDR networks) whose X-Forwarded-For is believed", check_cidr},
    {"admin_listen", K_STR, "", 0, 0, OFF(admin_listen), 0, 0,
     "address:port for /metrics (then 404 on listen), /healthz, /readyz; empty: off",
     check_admin_listen},
    {"publish_api_key", K_STR, "", 0, 0, OFF(publish_api_key), 0, KF_SECRET | KF_LIVE,
     "key of POST /api/publish (Authorization: apikey KEY), >= 16 bytes; empty: off",
     check_api_key},
    {"tls_cert", K_STR, "", 0, 0, OFF(tls_cert), 0, KF_LIVE,
     "PEM certificate chain: the listener speaks TLS only (wss/https); empty: plain"},
    {"tls_key", K_STR, "", 0, 0, OFF(tls_key), 0, KF_LIVE, "PEM private key of tls_cert"},
    {"handshake_timeout_s", K_INT, "10", 1, 600, OFF(handshake_timeout_s), 0, 0,
     "a connection's first request (TLS handshake included) must be complete within this"},
    {"idle_timeout_s", K_INT, "600", 0, 86400, OFF(idle_timeout_s), 0, 0,
     "a WebSocket client that sends nothing (no frame, no pong) this long is closed 1001; 0: off"},
    {"max_connections_per_ip", K_INT, "0", 0, 1000000, OFF(max_connections_per_ip), 0, KF_LIVE,
     "open connections per client address; over: closed (429 behind a proxy); 0: off"},
    {"channels", K_LIST, "*", 0, 0, OFF(channels), OFF(n_channels), KF_NONEMPTY | KF_LIVE,
     "globs of channel names clients may use"},
    {"permessage_deflate", K_BOOL, "false", 0, 1, OFF(permessage_deflate), 0, KF_LIVE,
     "accept permessage-deflate (each message compressed once, shared)"},
    {"recovery_max_messages", K_INT, "1000", 0, 1000000, OFF(recovery_max_messages), 0, 0,
     "a resume this many messages behind at most is replayed; more: recovered false"},
    {"recovery_buffer_messages", K_INT, "1000", 1, 1000000, OFF(recovery_buffer_messages), 0, 0,
     "live messages held per waiting resume or hole repair; more: it gives up"},
    {"recovery_ring_messages", K_INT, "256", 0, 1000000, OFF(recovery_ring_messages), 0, 0,
     "recent messages kept in memory per positioned channel; 0: off"},
    {"recovery_ring_bytes", K_INT, "67108864", 0, 64 * GIB, OFF(recovery_ring_bytes), 0, KF_SUFFIX,
     "payload bytes kept in all rings together"},
    {"recovery_max_requests", K_INT, "64", 1, 100000, OFF(recovery_max_requests), 0, 0,
     "history/top requests in flight to backends; more wait their turn"},
    {"recovery_timeout_ms", K_INT, "5000", 100, 600000, OFF(recovery_timeout_ms), 0, 0,
     "a resume or repair not answered by then fails (recovered false / gap)"},
    {"position_probe_s", K_INT, "30", 0, 86400, OFF(position_probe_s), 0, 0,
     "check the top of a positioned channel quiet this long; 0: off"},
    {"log_level", K_LOGLEVEL, "info", 0, 0, OFF(log_level), 0, KF_LIVE, "error|warn|info|debug"},
    {"max_requests_per_s", K_INT, "0", 0, 1000000, OFF(max_requests_per_s), 0, KF_LIVE,
     "requests per client per second (burst 2x); over: error rate_limited; 0: off"},
    {"max_queued_bytes", K_INT, "auto", 64 * KIB, 64 * GIB, OFF(max_queued_bytes), 0,
     KF_SUFFIX | KF_AUTO | KF_LIVE,
     "memory all send queues may pin; over: the clients furthest behind close 4001"},
    {"max_channels_per_ip", K_INT, "0", 0, 10000000, OFF(max_channels_per_ip), 0, KF_LIVE,
     "distinct channels one client address may bring into the hub; 0: off"},
    /* [auth]: access tokens (auth.h) */
    {"jwt_secret", K_STR, "", 0, 0, OFF(jwt_secret), 0, KF_AUTH | KF_SECRET | KF_LIVE,
     "HS256 secret (at least 32 bytes); every client then needs a token"},
    {"jwt_public_key", K_STR, "", 0, 0, OFF(jwt_public_key), 0, KF_AUTH | KF_LIVE,
     "PEM public key file (RSA: RS256, EC P-256: ES256); every client then needs a token"},
    {"jwt_audience", K_STR, "", 0, 0, OFF(jwt_audience), 0, KF_AUTH | KF_LIVE,
     "when set, a token's aud claim must name it"},
    {"jwt_leeway_s", K_INT, "0", 0, 300, OFF(jwt_leeway_s), 0, KF_AUTH | KF_LIVE,
     "clock skew allowed on a token's exp and nbf"},
};

#define N_KEYS (sizeof(server_keys) / sizeof(server_keys[0]))

const char *config_server_key(size_t i)
{
	return i < N_KEYS ? server_keys[i].name : NULL;
}

const char *config_server_key_help(size_t i)
{
	return i < N_KEYS ? server_keys[i].help : NULL;
}

const char *config_server_key_section(size_t i)
{
	return i >= N_KEYS ? NULL : server_keys[i].flags & KF_AUTH ? "auth" : "server";
}

/* ---- pure value parsers ----------------------------------------------- */

/* The reason of the last cfg_expand_env() failure that names a variable. */
static char why_buf[320];

static int parse_port(const char *s, int *port)
{
	long long v;
	const char *why;

	if (!*s || strlen(s) > 5 || cfg_parse_int(s, 1, 65535, 0, &v, &why) || *s == '+' ||
	    *s == '-')
		return -1;
	*port = (int)v;
	return 0;
}

/* A listen host must be a numeric address: start-up resolves nothing (no
 * DNS before the loop runs), so a name would only fail there. */
static bool host_ok(const char *h, size_t n)
{
	struct netaddr a;
	return n == 0 || !netaddr_parse(h, n, &a);
}

int cfg_parse_listen(const char *s, char **host, int *port, const char **why)
{
	const char *h = "", *p;
	size_t hn = 0;

	*host = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			*why = "expected [IPv6]:port";
			return -1;
		}
		h = s + 1;
		hn = (size_t)(close - h);
		p = close + 2;
		if (hn == 0 || !memchr(h, ':', hn) || !host_ok(h, hn)) {
			*why = "bad IPv6 address";
			return -1;
		}
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			p = s;
		} else {
			h = s;
			hn = (size_t)(colon - s);
			p = colon + 1;
			if (memchr(h, ':', hn)) {
				*why = "an IPv6 address needs brackets: [addr]:port";
				return -1;
			}
			if (hn == 1 && h[0] == '*')
				hn = 0;
			if (!host_ok(h, hn)) {
				*why = "not a numeric IPv4 address (names are not resolved; use "
				       "[IPv6]:port for IPv6)";
				return -1;
			}
		}
	}
	if (parse_port(p, port)) {
		*why = "port must be a number 1..65535";
		return -1;
	}
	*host = strndup(h, hn);
	if (!*host) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

char *cfg_expand_env(const char *s, const char **why)
{
	struct {
		char *p;
		size_t n, cap;
	} o = {NULL, 0, 0};

#define PUT(src, len)                                                                              \
	do {                                                                                       \
		size_t l_ = (len);                                                                 \
		if (o.n + l_ + 1 > o.cap) {                                                        \
			size_t c_ = (o.n + l_ + 1) * 2;                                            \
			char *q_ = realloc(o.p, c_);                                               \
			if (!q_) {                                                                 \
				*why = "out of memory";                                            \
				goto fail;                                                         \
			}                                                                          \
			o.p = q_;                                                                  \
			o.cap = c_;                                                                \
		}                                                                                  \
		memcpy(o.p + o.n, (src), l_);                                                      \
		o.n += l_;                                                                         \
		o.p[o.n] = 0;                                                                      \
	} while (0)

	PUT("", 0);
	while (*s) {
		const char *d = strchr(s, '$');
		if (!d) {
			PUT(s, strlen(s));
			break;
		}
		PUT(s, (size_t)(d - s));
		if (d[1] == '$') {
			PUT("$", 1);
			s = d + 2;
			continue;
		}
		if (d[1] != '{') {
			*why = "a '$' must start ${VAR} (write $$ for a literal $)";
			goto fail;
		}
		const char *name = d + 2, *end = strchr(name, '}');
		if (!end) {
			*why = "unterminated ${";
			goto fail;
		}
		size_t nl = (size_t)(end - name);
		if (nl == 0 || !(isalpha((unsigned char)name[0]) || name[0] == '_') ||
		    strspn(name,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") <
			nl) {
			snprintf(why_buf, sizeof(why_buf), "bad variable name in ${%.*s}",
				 (int)(nl > 64 ? 64 : nl), name);
			*why = why_buf;
			goto fail;
		}
		char var[128];
		if (nl >= sizeof(var)) {
			*why = "variable name too long";
			goto fail;
		}
		memcpy(var, name, nl);
		var[nl] = 0;
		const char *val = getenv(var);
		if (!val) {
			snprintf(why_buf, sizeof(why_buf), "environment variable %s is not set",
				 var);
			*why = why_buf;
			goto fail;
		}
		PUT(val, strlen(val));
		s = end + 1;
	}
#undef PUT
	return o.p;
fail:
	free(o.p);
	return NULL;
}

static void free_list(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **cfg_split_list(const char *s, size_t *n)
{
	size_t cap = 4, cnt = 0;
	char **v = calloc(cap + 1, sizeof(*v));

	if (!v)
		return NULL;
	while (*s) {
		s += strspn(s, ", \t\r\n");
		size_t l = strcspn(s, ", \t\r\n");
		if (!l)
			break;
		if (cnt == cap) {
			char **q = realloc(v, (cap * 2 + 1) * sizeof(*v));
			if (!q)
				goto fail;
			v = q;
			cap *= 2;
		}
		v[cnt] = strndup(s, l);
		if (!v[cnt])
			goto fail;
		v[++cnt] = NULL;
		s += l;
	}
	*n = cnt;
	return v;
fail:
	free_list(v);
	return NULL;
}

/* ---- loader state and error reporting ---------------------------------- */

enum sect { SEC_NONE, SEC_SERVER, SEC_AUTH, SEC_BACKEND, SEC_SKIP, SEC_TRPC };

/* Where a key was set: > 0 a file line, 0 nowhere, -1 a -o override. */
#define SET_BY_OVERRIDE (-1)

struct bextra {
	int plugin_line, channels_line;
};

struct ld {
	struct config *c;
	const char *file; /* for messages */
	FILE *errf;
	int nerr;
	int key_line[N_KEYS];
	struct bextra *bx; /* parallel to c->backends */
};

/*
 * One error. line > 0: FILE:LINE: [sect] key: ...; line == 0: -o sect.key:
 * (sect "backend NAME" is written backend.NAME); line < 0: FILE: ...
 */
__attribute__((format(printf, 6, 7))) static void err(struct ld *l, int line, const char *sect,
						      const char *key, const char *bname,
						      const char *fmt, ...)
{
	va_list ap;

	l->nerr++;
	if (!l->errf)
		return;
	if (line > 0) {
		fprintf(l->errf, "%s:%d: ", l->file, line);
		if (sect && bname)
			fprintf(l->errf, "[%s %s]%s", sect, bname, key ? " " : ": ");
		else if (sect)
			fprintf(l->errf, "[%s]%s", sect, key ? " " : ": ");
		if (key)
			fprintf(l->errf, "%s: ", key);
	} else if (line == 0) {
		fprintf(l->errf, "-o %s%s%s%s%s: ", sect ? sect : "", bname ? "." : "",
			bname ? bname : "", key ? "." : "", key ? key : "");
	} else {
		fprintf(l->errf, "%s: ", l->file);
	}
	va_start(ap, fmt);
	vfprintf(l->errf, fmt, ap);
	va_end(ap);
	fputc('\n', l->errf);
}

/* Line where a key was set, mapped for err(): override -> 0. */
static int where(int set_by)
{
	return set_by == SET_BY_OVERRIDE ? 0 : set_by;
}

/* ---- setting [server] keys --------------------------------------------- */

static void *field(struct config *c, size_t off)
{
	return (char *)c + off;
}

/* Integer and boolean values, with the error text the plugins' options
 * use too (contract.c). */
static int parse_int_checked(const char *v, long long min, long long max, int suffix,
			     long long *out, const char **why)
{
	if (!contract_parse_int(v, min, max, suffix, out, why_buf, sizeof(why_buf)))
		return 0;
	*why = why_buf;
	return -1;
}

static int parse_bool_checked(const char *v, int *out, const char **why)
{
	if (!contract_parse_bool(v, out, why_buf, sizeof(why_buf)))
		return 0;
	*why = why_buf;
	return -1;
}

/* Set one server key from text. Returns 0, or -1 with *why (a static
 * string, or why_buf). */
static int check_origin(const char *v, const char **why)
{
	struct origin o;
	return strcmp(v, "*") ? origin_pattern_parse(v, &o, why) : 0;
}

static int check_admin_listen(const char *v, const char **why)
{
	char *host;
	int port;
	if (!*v)
		return 0;
	if (cfg_parse_listen(v, &host, &port, why))
		return -1;
	free(host);
	return 0;
}

/* The instance id goes into every hello frame and log line: printable
 * UTF-8, no control characters (a newline would forge log lines). */
static int check_instance(const char *v, const char **why)
{
	size_t n = strlen(v);
	if (n > 128) {
		*why = "longer than 128 bytes";
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			*why = "control characters are not allowed";
			return -1;
		}
	if (!utf8_valid(v, n)) {
		*why = "not valid UTF-8";
		return -1;
	}
	return 0;
}

static int check_api_key(const char *v, const char **why)
{
	size_t n = strlen(v);
	if (!n)
		return 0;
	if (n < 16) {
		*why = "shorter than 16 bytes (use a long random key)";
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f) {
			*why = "spaces and control characters are not allowed";
			return -1;
		}
	return 0;
}

static int check_cidr(const char *v, const char **why)
{
	struct cidr c;
	return cidr_parse(v, &c, why);
}

static int set_server(struct config *c, const struct skey *k, const char *v, const char **why)
{
	long long n;

	switch (k->type) {
	case K_STR: {
		if ((k->flags & KF_NONEMPTY) && !*v) {
			*why = "may not be empty";
			return -1;
		}
		if ((k->flags & KF_SLASH) && *v && v[0] != '/') {
			*why = "must start with '/'";
			return -1;
		}
		if (k->check && k->check(v, why))
			return -1;
		char *s = strdup(v);
		if (!s)
			goto oom;
		char **dst = field(c, k->off);
		free(*dst);
		*dst = s;
		return 0;
	}
	case K_INT:
		if ((k->flags & KF_AUTO) && !strcasecmp(v, "auto")) {
			*(long long *)field(c, k->off) = -1;
			return 0;
		}
		if (parse_int_checked(v, k->min, k->max, !!(k->flags & KF_SUFFIX), &n, why))
			return -1;
		*(long long *)field(c, k->off) = n;
		return 0;
	case K_BOOL:
		return parse_bool_checked(v, (int *)field(c, k->off), why);
	case K_WORKERS:
		if (!strcasecmp(v, "auto")) {
			*(int *)field(c, k->off) = 0;
			return 0;
		}
		if (cfg_parse_int(v, k->min, k->max, 0, &n, why)) {
			snprintf(why_buf, sizeof(why_buf),
				 "%s: \"%.40s\" (allowed %lld..%lld or auto)", *why, v, k->min,
				 k->max);
			*why = why_buf;
			return -1;
		}
		*(int *)field(c, k->off) = (int)n;
		return 0;
	case K_LOGLEVEL: {
		int lv = log_level_parse(v);
		if (lv < 0) {
			*why = "must be one of error, warn, info, debug";
			return -1;
		}
		*(int *)field(c, k->off) = lv;
		return 0;
	}
	case K_LIST: {
		size_t cnt;
		char **list = cfg_split_list(v, &cnt);
		if (!list)
			goto oom;
		if ((k->flags & KF_NONEMPTY) && !cnt) {
			free_list(list);
			*why = "empty list";
			return -1;
		}
		for (size_t i = 0; k->check && i < cnt; i++)
			if (k->check(list[i], why)) {
				snprintf(why_buf, sizeof(why_buf), "\"%.80s\": %s", list[i], *why);
				*why = why_buf;
				free_list(list);
				return -1;
			}
		char ***dst = field(c, k->off);
		free_list(*dst);
		*dst = list;
		*(size_t *)field(c, k->off_n) = cnt;
		return 0;
	}
	case K_LISTEN: {
		char *host, *copy;
		int port;
		if (cfg_parse_listen(v, &host, &port, why))
			return -1;
		copy = strdup(v);
		if (!copy) {
			free(host);
			goto oom;
		}
		free(c->listen);
		free(c->listen_host);
		c->listen = copy;
		c->listen_host = host;
		c->listen_port = port;
		return 0;
	}
	}
	*why = "internal: bad key type";
	return -1;
oom:
	*why = "out of memory";
	return -1;
}

/* The key of section sect ("server" or "auth") named name. */
static const struct skey *find_key(const char *sect, const char *name, size_t *idx)
{
	unsigned want = strcmp(sect, "auth") ? 0 : KF_AUTH;
	for (size_t i = 0; i < N_KEYS; i++)
		if ((server_keys[i].flags & KF_AUTH) == want &&
		    !strcmp(server_keys[i].name, name)) {
			*idx = i;
			return &server_keys[i];
		}
	return NULL;
}

static int set_defaults(struct ld *l)
{
	const char *why;
	char host[256];

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct skey *k = &server_keys[i];
		const char *def = k->def;
		if (!def) { /* instance */
			if (gethostname(host, sizeof(host)) || !host[0])
				snprintf(host, sizeof(host), "localhost");
			host[sizeof(host) - 1] = 0;
			def = host;
		}
		if (set_server(l->c, k, def, &why)) {
			err(l, -1, NULL, NULL, NULL, "default of %s: %s", k->name, why);
			return -1;
		}
	}
	return 0;
}

/* ---- backends ----------------------------------------------------------- */

static bool name_ok(const char *s)
{
	return *s &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
		   strlen(s);
}

static struct cfg_backend *find_backend(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_backends; i++)
		if (!strcmp(c->backends[i].name, name))
			return &c->backends[i];
	return NULL;
}

/* Append a backend section (channels default {"*"}); NULL on OOM. */
static struct cfg_backend *add_backend(struct ld *l, const char *name, int line)
{
	struct config *c = l->c;
	struct cfg_backend *nb = realloc(c->backends, (c->n_backends + 1) * sizeof(*nb));
	if (!nb)
		return NULL;
	c->backends = nb;
	struct bextra *nx = realloc(l->bx, (c->n_backends + 1) * sizeof(*nx));
	if (!nx)
		return NULL;
	l->bx = nx;

	struct cfg_backend *b = &c->backends[c->n_backends];
	memset(b, 0, sizeof(*b));
	memset(&l->bx[c->n_backends], 0, sizeof(*nx));
	b->line = line;
	b->name = strdup(name);
	b->channels = cfg_split_list("*", &b->n_channels);
	if (!b->name || !b->channels) {
		free(b->name);
		free_list(b->channels);
		return NULL;
	}
	c->n_backends++;
	return b;
}

/*
 * key = val in a list of key = value lines (*kv, *n; file order): replaced
 * when the key is there, appended otherwise. A second file line for one key
 * is a duplicate: returns 1 with *first the line that set it. 0, or -1 when
 * out of memory.
 */
static int kv_set(struct cfg_kv **kv, size_t *n, const char *key, const char *val, int line,
		  int set_by, int *first)
{
	for (size_t i = 0; i < *n; i++) {
		struct cfg_kv *e = &(*kv)[i];
		if (strcmp(e->key, key))
			continue;
		if (set_by > 0 && e->line > 0) {
			*first = e->line;
			return 1;
		}
		char *s = strdup(val);
		if (!s)
			return -1;
		free(e->value);
		e->value = s;
		e->line = line;
		return 0;
	}
	struct cfg_kv *nkv = realloc(*kv, (*n + 1) * sizeof(*nkv));
	if (!nkv)
		return -1;
	*kv = nkv;
	nkv[*n].key = strdup(key);
	nkv[*n].value = strdup(val);
	nkv[*n].line = line;
	if (!nkv[*n].key || !nkv[*n].value) {
		free(nkv[*n].key);
		free(nkv[*n].value);
		return -1;
	}
	(*n)++;
	return 0;
}

/* Set key = value in backend b; set_by as in key_line[]. */
static void set_backend_key(struct ld *l, struct cfg_backend *b, const char *key, const char *val,
			    int set_by)
{
	struct bextra *x = &l->bx[b - l->c->backends];
	int line = where(set_by);

	if (!strcmp(key, "plugin") || !strcmp(key, "channels")) {
		bool is_plugin = key[0] == 'p';
		int *seen = is_plugin ? &x->plugin_line : &x->channels_line;
		if (*seen > 0 && set_by > 0) {
			err(l, line, "backend", key, b->name,
			    "duplicate key (first set on line %d)", *seen);
			return;
		}
		if (is_plugin) {
			if (!*val) {
				err(l, line, "backend", key, b->name, "may not be empty");
				return;
			}
			char *s = strdup(val);
			if (!s)
				goto oom;
			free(b->plugin);
			b->plugin = s;
		} else {
			size_t n;
			char **v = cfg_split_list(val, &n);
			if (!v)
				goto oom;
			if (!n) {
				free_list(v);
				err(l, line, "backend", key, b->name, "empty list");
				return;
			}
			free_list(b->channels);
			b->channels = v;
			b->n_channels = n;
		}
		*seen = set_by;
		return;
	}
	int first;
	int r = kv_set(&b->kv, &b->n_kv, key, val, line, set_by, &first);
	if (r > 0)
		err(l, line, "backend", key, b->name, "duplicate key (first set on line %d)",
		    first);
	if (r >= 0)
		return;
oom:
	err(l, line, "backend", key, b->name, "out of memory");
}

/* [trpc] path = template: a tRPC procedure path (names of [A-Za-z0-9_$-]
 * joined by '.', as tRPC routers nest) and its channel template. */
static void set_trpc_key(struct ld *l, const char *key, const char *val, int set_by)
{
	struct config *c = l->c;
	int line = where(set_by);
	const char *why;
	size_t n = strlen(key);

	if (!n || n > TRPC_PATH_MAX ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$-.") !=
		n ||
	    key[0] == '.' || key[n - 1] == '.' || strstr(key, "..")) {
		err(l, line, "trpc", key, NULL,
		    "a procedure path is names of [A-Za-z0-9_$-] joined by '.' (at most %d bytes)",
		    TRPC_PATH_MAX);
		return;
	}
	if (trpc_template_check(val, &why)) {
		err(l, line, "trpc", key, NULL, "%s", why);
		return;
	}
	int first;
	int r = kv_set(&c->trpc, &c->n_trpc, key, val, line, set_by, &first);
	if (r > 0)
		err(l, line, "trpc", key, NULL, "duplicate key (first set on line %d)", first);
	else if (r < 0)
		err(l, line, "trpc", key, NULL, "out of memory");
}

const char *config_trpc_channel(const struct config *c, const char *path)
{
	for (size_t i = 0; i < c->n_trpc; i++)
		if (!strcmp(c->trpc[i].key, path))
			return c->trpc[i].value;
	return NULL;
}

/* A key of [server] or [auth] (sect). */
static void set_server_key(struct ld *l, const char *sect, const char *key, const char *val,
			   int set_by)
{
	size_t i;
	const char *why;
	int line = where(set_by);
	const struct skey *k = find_key(sect, key, &i);

	if (!k) {
		err(l, line, sect, key, NULL, "unknown key");
		return;
	}
	if (set_by > 0 && l->key_line[i] > 0) {
		err(l, line, sect, key, NULL, "duplicate key (first set on line %d)",
		    l->key_line[i]);
		return;
	}
	/* Remember the line even when the value is bad, so a second line
	 * setting the same key is still reported as a duplicate. */
	l->key_line[i] = set_by;
	if (set_server(l->c, k, val, &why))
		err(l, line, sect, key, NULL, "%s", why);
}

/* ---- the file ----------------------------------------------------------- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = 0;
	return s;
}

/* Cut an inline `;` comment: one that follows whitespace. */
static void cut_comment(char *s)
{
	for (char *p = s; (p = strchr(p, ';')); p++)
		if (p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = 0;
			return;
		}
}

struct cur {
	enum sect sect;
	struct cfg_backend *b; /* SEC_BACKEND; re-found by index after realloc */
	size_t bi;
};

static void do_section(struct ld *l, struct cur *cur, char *s, int line)
{
	char *body, *end = strchr(s, ']');

	cur->sect = SEC_SKIP;
	if (!end || *trim(end + 1)) {
		err(l, line, NULL, NULL, NULL,
		    "bad section header (expected [server] or "
		    "[backend NAME])");
		return;
	}
	*end = 0;
	body = trim(s + 1);
	if (!strcmp(body, "trpc")) {
		cur->sect = SEC_TRPC;
		return;
	}
	if (!strcmp(body, "server")) {
		cur->sect = SEC_SERVER;
		return;
	}
	if (!strcmp(body, "auth")) {
		cur->sect = SEC_AUTH;
		return;
	}
	if (!strncmp(body, "backend", 7) && (body[7] == ' ' || body[7] == '\t')) {
		char *name = trim(body + 8);
		size_t n = strlen(name);
		if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
			name[n - 1] = 0;
			name++;
		}
		if (!name_ok(name)) {
			err(l, line, NULL, NULL, NULL,
			    "[%s]: bad backend name (letters, digits, '_' and '-')", body);
			return;
		}
		struct cfg_backend *b = find_backend(l->c, name);
		if (b) {
			err(l, line, "backend", NULL, name, "duplicate section (first on line %d)",
			    b->line);
			return;
		}
		b = add_backend(l, name, line);
		if (!b) {
			err(l, line, "backend", NULL, name, "out of memory");
			return;
		}
		cur->sect = SEC_BACKEND;
		cur->bi = (size_t)(b - l->c->backends);
		return;
	}
	if (!strcmp(body, "backend"))
		err(l, line, "backend", NULL, NULL,
		    "a backend section needs a name: [backend NAME]");
	else
		err(l, line, body, NULL, NULL,
		    "unknown section (expected [server], [auth] or [backend NAME])");
}

/*
 * inih parses each `key = value` line: it splits at the first '=' (or ':',
 * its concession to Python's configparser), cuts a `;` comment that follows
 * whitespace, trims both sides and calls handler(). The lines reach it
 * through reader(), which inih calls once per line just before parsing that
 * line, so reader's line counter is the line handler() is called for. The
 * reader frames the lines; it reports what inih would silently accept or
 * report only as "the first bad line": a NUL byte, a line longer than
 * CONFIG_MAX_LINE, an indented line (inih's multiline mode would merge it
 * into the previous value), and section headers (inih tells neither a
 * header's line nor about a section without keys, and cuts names at 49
 * bytes). Each of those reaches inih as an empty line.
 */
struct rd {
	struct ld *l;
	FILE *f;
	int line;	/* lines read so far = the line inih is parsing */
	struct cur cur; /* the section the reader last saw */
};

/* Read one line into str (num bytes, ini_max_line) the way fgets() does,
 * but never more than one line, counting it and checking it. */
static char *reader(char *str, int num, void *stream)
{
	struct rd *r = stream;
	size_t n = 0, len;
	bool nul = false, over = false;
	int ch;

	while ((ch = getc(r->f)) != EOF) {
		if (n < (size_t)num - 1)
			str[n++] = (char)ch;
		else
			over = true; /* read on: the rest of the line goes too */
		nul |= ch == 0;
		if (ch == '\n')
			break;
	}
	if (!n && !over)
		return NULL;
	str[n] = 0;
	r->line++;
	len = n - (str[n - 1] == '\n');
	len -= len && str[len - 1] == '\r';
	if (over || len > CONFIG_MAX_LINE) {
		err(r->l, r->line, NULL, NULL, NULL, "line longer than %d bytes", CONFIG_MAX_LINE);
		goto blank;
	}
	if (nul) {
		err(r->l, r->line, NULL, NULL, NULL, "NUL byte in line");
		goto blank;
	}
	char *s = str;
	if (r->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	bool indented = s[0] == ' ' || s[0] == '\t';
	char *t = trim(s);
	if (!*t || *t == ';' || *t == '#')
		goto blank;
	if (indented) {
		err(r->l, r->line, NULL, NULL, NULL,
		    "indented line: continuation lines are not supported");
		goto blank;
	}
	if (*t == '[') {
		cut_comment(t);
		do_section(r->l, &r->cur, trim(t), r->line);
		goto blank;
	}
	if (s != str)
		memmove(str, s, strlen(s) + 1);
	return str;
blank:
	str[0] = '\n';
	str[1] = 0;
	return str;
}

/* One `name = value` line (value NULL: a line without '='). */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct rd *r = user;
	struct ld *l = r->l;
	int line = r->line;

	(void)section; /* r->cur is the section, with its line */
	if (!value) {
		err(l, line, NULL, NULL, NULL, "expected key = value");
		return 1;
	}
	if (!*name) {
		err(l, line, NULL, NULL, NULL, "missing key before '='");
		return 1;
	}
	if (r->cur.sect == SEC_SKIP)
		return 1; /* the section header was already reported */
	if (r->cur.sect == SEC_NONE) {
		err(l, line, NULL, name, NULL, "key outside a section");
		return 1;
	}
	const char *why;
	char *v = cfg_expand_env(value, &why);
	struct cfg_backend *b = r->cur.sect == SEC_BACKEND ? &l->c->backends[r->cur.bi] : NULL;
	const char *sect = r->cur.sect == SEC_AUTH ? "auth" : "server";
	if (!v) {
		if (b)
			err(l, line, "backend", name, b->name, "%s", why);
		else
			err(l, line, sect, name, NULL, "%s", why);
		return 1;
	}
	if (b)
		set_backend_key(l, b, name, v, line);
	else if (r->cur.sect == SEC_TRPC)
		set_trpc_key(l, name, v, line);
	else
		set_server_key(l, sect, name, v, line);
	free(v);
	return 1;
}

static void read_file(struct ld *l, FILE *f)
{
	struct rd r = {.l = l, .f = f, .cur = {SEC_NONE, NULL, 0}};
	int nerr = l->nerr;

	/* Debian's inih turns its compile-time options into these globals. One
	 * heap buffer of the longest line (+ '\r', '\n', NUL, as inih counts),
	 * never grown; no multiline values (the reader refuses indented lines
	 * anyway); `name` without '=' reaches handler() to be reported there. */
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = CONFIG_MAX_LINE + 3;
	ini_initial_alloc = CONFIG_MAX_LINE + 3;
	ini_allow_multiline = false;
	ini_allow_no_value = true;
	ini_allow_bom = false; /* the reader removes it */
	ini_stop_on_first_error = false;

	int rc = ini_parse_stream(reader, &r, handler, &r);
	if (ferror(f))
		err(l, -1, NULL, NULL, NULL, "read error: %s", strerror(errno));
	else if (rc == -2)
		err(l, -1, NULL, NULL, NULL, "out of memory");
	else if (rc > 0 && l->nerr == nerr)
		/* inih refused a line the reader passed and handler() never saw */
		err(l, rc, NULL, NULL, NULL, "syntax error");
}

/* ---- overrides ---------------------------------------------------------- */

static void do_override(struct ld *l, const char *arg)
{
	char *copy = strdup(arg), *v = NULL;
	const char *why;

	if (!copy) {
		l->nerr++;
		return;
	}
	char *eq = strchr(copy, '='), *dot = strchr(copy, '.');
	if (!eq || !dot || dot > eq) {
		if (l->errf)
			fprintf(l->errf,
				"-o %s: expected section.key=value (server.KEY=V or "
				"backend.NAME.KEY=V)\n",
				arg);
		l->nerr++;
		goto done;
	}
	*eq = 0;
	*dot = 0;
	char *sect = trim(copy), *key = trim(dot + 1);
	v = cfg_expand_env(trim(eq + 1), &why);
	if (!strcmp(sect, "server") || !strcmp(sect, "auth")) {
		if (!v)
			err(l, 0, sect, key, NULL, "%s", why);
		else
			set_server_key(l, sect, key, v, SET_BY_OVERRIDE);
	} else if (!strcmp(sect, "trpc")) {
		if (!v)
			err(l, 0, "trpc", key, NULL, "%s", why);
		else
			set_trpc_key(l, key, v, SET_BY_OVERRIDE);
	} else if (!strcmp(sect, "backend")) {
		char *name = key;
		key = strchr(name, '.');
		if (!key || !key[1] || (*key = 0, !name_ok(name))) {
			if (l->errf)
				fprintf(l->errf,
					"-o %s: expected backend.NAME.KEY=V (NAME: letters, "
					"digits, '_', '-')\n",
					arg);
			l->nerr++;
			goto done;
		}
		key++;
		if (!name_ok(key)) {
			if (l->errf)
				fprintf(l->errf,
					"-o %s: expected backend.NAME.KEY=V (NAME: letters, "
					"digits, '_', '-')\n",
					arg);
			l->nerr++;
			goto done;
		}
		if (!v) {
			err(l, 0, "backend", key, name, "%s", why);
			goto done;
		}
		struct cfg_backend *b = find_backend(l->c, name);
		if (!b)
			b = add_backend(l, name, 0);
		if (!b)
			err(l, 0, "backend", key, name, "out of memory");
		else
			set_backend_key(l, b, key, v, SET_BY_OVERRIDE);
	} else {
		err(l, 0, sect, key, NULL, "unknown section (server, auth or backend.NAME)");
	}
done:
	free(v);
	free(copy);
}

/* ---- final checks ------------------------------------------------------- */

static void validate(struct ld *l)
{
	struct config *c = l->c;
	size_t iq = 0, ip = 0;

	find_key("server", "client_queue_bytes", &iq);
	find_key("server", "max_payload_bytes", &ip);
	if (c->client_queue_bytes < 2 * c->max_payload_bytes) {
		/* Blame the key the user set (client_queue_bytes first). */
		int by = l->key_line[iq] ? l->key_line[iq] : l->key_line[ip];
		err(l, by ? where(by) : -1, "server", "client_queue_bytes", NULL,
		    "%lld is less than 2 x max_payload_bytes (%lld)", c->client_queue_bytes,
		    2 * c->max_payload_bytes);
	}
	/* The endpoints' paths: at most 200 bytes, and different (an empty
	 * one is off). */
	const char *paths[] = {"ws_path", "trpc_path", "sse_path"};
	const char *val[3];
	size_t kidx[3];
	for (int i = 0; i < 3; i++) {
		const struct skey *k = find_key("server", paths[i], &kidx[i]);
		val[i] = *(char **)field(c, k->off);
		int by = l->key_line[kidx[i]];
		if (val[i] && strlen(val[i]) > 200)
			err(l, by ? where(by) : -1, "server", paths[i], NULL,
			    "longer than 200 bytes");
		for (int j = 0; j < i; j++)
			if (val[i] && val[j] && *val[i] && !strcmp(val[i], val[j])) {
				by = by ? by : l->key_line[kidx[j]];
				err(l, by ? where(by) : -1, "server", paths[i], NULL,
				    "\"%s\" is also %s", val[i], paths[j]);
			}
	}
	size_t is = 0, ik = 0;
	find_key("auth", "jwt_secret", &is);
	find_key("auth", "jwt_public_key", &ik);
	if (*c->jwt_secret && *c->jwt_public_key)
		err(l, where(l->key_line[ik]), "auth", "jwt_public_key", NULL,
		    "set jwt_secret or jwt_public_key, not both");
	if (*c->jwt_secret && strlen(c->jwt_secret) < AUTH_SECRET_MIN)
		err(l, where(l->key_line[is]), "auth", "jwt_secret", NULL,
		    "must be at least %d bytes (it has %zu)", AUTH_SECRET_MIN,
		    strlen(c->jwt_secret));
	size_t tc = 0, tk = 0;
	find_key("server", "tls_cert", &tc);
	find_key("server", "tls_key", &tk);
	if (!*c->tls_cert != !*c->tls_key) {
		int cert_set = *c->tls_cert != 0;
		int by = cert_set ? l->key_line[tc] : l->key_line[tk];
		err(l, by ? where(by) : -1, "server", cert_set ? "tls_cert" : "tls_key", NULL,
		    "tls_cert and tls_key go together");
	} else if (*c->tls_cert) {
		char why[512];
		if (tls_check_files(c->tls_cert, c->tls_key, why, sizeof(why))) {
			int by = l->key_line[tc] ? l->key_line[tc] : l->key_line[tk];
			err(l, by ? where(by) : -1, "server", "tls_cert", NULL, "%s", why);
		}
	}
	if (!c->n_backends)
		err(l, -1, NULL, NULL, NULL,
		    "no [backend] section (at least one [backend NAME] with a plugin is required)");
	for (size_t i = 0; i < c->n_backends; i++) {
		struct cfg_backend *b = &c->backends[i];
		if (!b->plugin)
			err(l, b->line, "backend", "plugin", b->name,
			    "missing (every backend needs plugin = NAME or a path)");
	}
}

/* ---- public ------------------------------------------------------------- */

int config_load(struct config *c, const char *path, const char *const *overrides,
		size_t n_overrides, FILE *errf)
{
	struct ld l = {.c = c, .file = path ? path : "(no file)", .errf = errf};

	memset(c, 0, sizeof(*c));
	if (path && !(c->path = strdup(path))) {
		l.nerr++;
		goto done;
	}
	if (set_defaults(&l))
		goto done;
	if (path) {
		FILE *f = fopen(path, "r");
		if (!f) {
			err(&l, -1, NULL, NULL, NULL, "cannot open: %s", strerror(errno));
			goto done;
		}
		read_file(&l, f);
		fclose(f);
	}
	for (size_t i = 0; i < n_overrides; i++)
		do_override(&l, overrides[i]);
	validate(&l);
done:
	free(l.bx);
	if (l.nerr)
		config_free(c);
	return l.nerr;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->listen_host);
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct skey *k = &server_keys[i];
		if (k->type == K_STR || k->type == K_LISTEN)
			free(*(char **)field(c, k->off));
		else if (k->type == K_LIST)
			free_list(*(char ***)field(c, k->off));
	}
	for (size_t i = 0; i < c->n_backends; i++) {
		struct cfg_backend *b = &c->backends[i];
		free(b->name);
		free(b->plugin);
		free_list(b->channels);
		for (size_t j = 0; j < b->n_kv; j++) {
			free(b->kv[j].key);
			free(b->kv[j].value);
		}
		free(b->kv);
	}
	free(c->backends);
	for (size_t i = 0; i < c->n_trpc; i++) {
		free(c->trpc[i].key);
		free(c->trpc[i].value);
	}
	free(c->trpc);
	memset(c, 0, sizeof(*c));
}

/* ---- backend values ----------------------------------------------------- */

struct verr {
	struct ld *l;
	const struct cfg_backend *b;
};

static void value_err(void *arg, const struct contract_kv *kv, const char *key, const char *why)
{
	struct verr *e = arg;
	err(e->l, kv ? kv->line : e->b->line, "backend", key, e->b->name, "%s", why);
}

int config_backend_values(const struct config *c, const struct cfg_backend *b,
			  const struct fanout_option *opts, struct fanout_value **values,
			  FILE *errf)
{
	struct ld l = {
	    .c = (struct config *)c, .file = c->path ? c->path : "(no file)", .errf = errf};
	struct verr e = {&l, b};
	struct contract_kv *kv = calloc(b->n_kv + 1, sizeof(*kv));

	*values = NULL;
	if (!kv) {
		err(&l, b->line, "backend", NULL, b->name, "out of memory");
		return l.nerr;
	}
	for (size_t i = 0; i < b->n_kv; i++)
		kv[i] = (struct contract_kv){b->kv[i].key, b->kv[i].value, b->kv[i].line};
	contract_values(opts, b->plugin, kv, b->n_kv, values, value_err, &e);
	free(kv);
	return l.nerr;
}

const struct cfg_backend *config_route(const struct config *c, const char *channel)
{
	for (size_t i = 0; i < c->n_backends; i++)
		for (size_t j = 0; j < c->backends[i].n_channels; j++)
			if (!fnmatch(c->backends[i].channels[j], channel, 0))
				return &c->backends[i];
	return NULL;
}

/* ---- dump --------------------------------------------------------------- */

static void put_list(FILE *out, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", v[i]);
}

/* Print a value, hiding the password of a scheme://user:pass@host URL. */
static void put_value(FILE *out, const char *v)
{
	const char *scheme = strstr(v, "://");
	if (scheme) {
		const char *auth = scheme + 3;
		size_t alen = strcspn(auth, "/@");
		if (auth[alen] == '@') {
			const char *colon = memchr(auth, ':', alen);
			if (colon) {
				fprintf(out, "%.*s:***%s", (int)(colon - v), v, auth + alen);
				return;
			}
		}
	}
	fputs(v, out);
}

void config_dump(const struct config *c, FILE *out)
{
	config_dump_full(c, NULL, 0, out);
}

/* The backend part of the dump: host keys, then each key set in the
 * section; verbose: every option of the plugin with its help, unset ones
 * commented out with their default. */
static void dump_backend(const struct cfg_backend *b, const struct fanout_plugin *p, int verbose,
			 FILE *out)
{
	const struct fanout_option *opts = p ? p->options : NULL;
	char d[300];

	fprintf(out, "\n[backend %s]\n", b->name);
	if (verbose && p)
		fprintf(out, "; %s %s%s%s\n", p->name, p->version, p->description ? ": " : "",
			p->description ? p->description : "");
	fprintf(out, "plugin = %s\nchannels = ", b->plugin ? b->plugin : "");
	put_list(out, b->channels, b->n_channels);
	fputc('\n', out);
	for (size_t j = 0; j < b->n_kv; j++) {
		const struct fanout_option *o = contract_find_option(opts, b->kv[j].key);
		if (verbose && o) {
			contract_describe(o, d, sizeof(d));
			fprintf(out, "; %s (%s)\n", o->help ? o->help : "", d);
		}
		fprintf(out, "%s = ", b->kv[j].key);
		if (contract_is_secret(o, b->kv[j].key))
			fputs("***", out);
		else
			put_value(out, b->kv[j].value);
		fputc('\n', out);
	}
	if (!verbose)
		return;
	for (const struct fanout_option *o = opts; o && o->name; o++) {
		size_t j;
		for (j = 0; j < b->n_kv && strcmp(b->kv[j].key, o->name); j++)
			;
		if (j < b->n_kv)
			continue; /* printed above */
		contract_describe(o, d, sizeof(d));
		fprintf(out, "; %s (%s)\n; %s =%s%s\n", o->help ? o->help : "", d, o->name,
			o->def && *o->def ? " " : "",
			!o->def				 ? ""
			: (o->flags & FANOUT_OPT_SECRET) ? "***"
							 : o->def);
	}
}

/* The value of key k in c, as the config file would say it; mask: a
 * secret key's non-empty value as ***. */
static void put_key(FILE *out, const struct config *c, const struct skey *k, int mask)
{
	const void *f = (const char *)c + k->off;

	switch (k->type) {
	case K_STR:
	case K_LISTEN:
		if (mask && (k->flags & KF_SECRET) && *(char *const *)f && **(char *const *)f)
			fputs("***", out);
		else
			fputs(*(char *const *)f ? *(char *const *)f : "", out);
		break;
	case K_INT:
		if ((k->flags & KF_AUTO) && *(const long long *)f == -1)
			fputs("auto", out);
		else
			fprintf(out, "%lld", *(const long long *)f);
		break;
	case K_BOOL:
		fputs(*(const int *)f ? "true" : "false", out);
		break;
	case K_WORKERS:
		if (*(const int *)f)
			fprintf(out, "%d", *(const int *)f);
		else
			fputs("auto", out);
		break;
	case K_LOGLEVEL:
		fputs(log_level_name(*(const int *)f), out);
		break;
	case K_LIST:
		put_list(out, *(char **const *)f, *(const size_t *)((const char *)c + k->off_n));
		break;
	}
}

void config_dump_full(const struct config *c, const struct fanout_plugin *const *plugins,
		      int verbose, FILE *out)
{
	fprintf(out, "; effective configuration%s%s\n", c->path ? " of " : "",
		c->path ? c->path : "");
	/* [server] keys, then [auth] keys, wherever they sit in the table */
	for (size_t j = 0; j < 2 * N_KEYS; j++) {
		size_t i = j % N_KEYS;
		const struct skey *k = &server_keys[i];
		if (j == 0 || j == N_KEYS)
			fprintf(out, "%s[%s]\n", j ? "\n" : "", j ? "auth" : "server");
		if ((j < N_KEYS) != !(k->flags & KF_AUTH))
			continue;
		if (verbose)
			fprintf(out, "; %s (%s)\n", k->help,
				(k->flags & KF_LIVE) ? "SIGHUP applies it"
						     : "a change needs a restart");
		fprintf(out, "%s = ", k->name);
		put_key(out, c, k, 1);
		fputc('\n', out);
	}
	for (size_t i = 0; i < c->n_backends; i++)
		dump_backend(&c->backends[i], plugins ? plugins[i] : NULL, verbose, out);
	if (c->n_trpc)
		fputs("\n[trpc]\n", out);
	for (size_t i = 0; i < c->n_trpc; i++)
		fprintf(out, "%s = %s\n", c->trpc[i].key, c->trpc[i].value);
}

/* ---- reload (reload.c) ----------------------------------------------------- */

int config_server_key_live(size_t i)
{
	return i < N_KEYS && (server_keys[i].flags & KF_LIVE);
}

/* Key k of c as text (mask: secrets as ***) into buf. */
static void key_text(const struct config *c, const struct skey *k, int mask, char *buf, size_t n)
{
	FILE *f = fmemopen(buf, n, "w");

	buf[0] = 0;
	if (!f)
		return;
	put_key(f, c, k, mask);
	fclose(f);
	buf[n - 1] = 0;
}

/* Exchange the value of key k between a and b. */
static void swap_key(struct config *a, struct config *b, const struct skey *k)
{
	char tmp[sizeof(long long) > sizeof(char *) ? sizeof(long long) : sizeof(char *)];
	size_t sz = k->type == K_INT			    ? sizeof(long long)
		    : k->type == K_STR || k->type == K_LIST ? sizeof(char *)
							    : sizeof(int);

	memcpy(tmp, field(a, k->off), sz);
	memcpy(field(a, k->off), field(b, k->off), sz);
	memcpy(field(b, k->off), tmp, sz);
	if (k->type == K_LIST) {
		size_t *na = field(a, k->off_n), *nb = field(b, k->off_n), t = *na;
		*na = *nb;
		*nb = t;
	}
}

int config_apply(struct config *run, struct config *next, config_note_fn note, void *arg)
{
	char a[512], b[512], ma[512], mb[512];
	int restart = 0;

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct skey *k = &server_keys[i];
		key_text(run, k, 0, a, sizeof(a));
		key_text(next, k, 0, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		key_text(run, k, 1, ma, sizeof(ma));
		key_text(next, k, 1, mb, sizeof(mb));
		int live = k->type != K_LISTEN && (k->flags & KF_LIVE);
		if (live)
			swap_key(run, next, k);
		else
			restart++;
		if (note)
			note(arg, k->name, live, ma, mb);
	}
	/* [backend NAME] sections (the plugin host re-points its backends and
	 * restarts the changed ones) and [trpc] procedures: all of them. */
	struct cfg_backend *bs = run->backends;
	size_t nb = run->n_backends;
	run->backends = next->backends;
	run->n_backends = next->n_backends;
	next->backends = bs;
	next->n_backends = nb;
	struct cfg_kv *tr = run->trpc;
	size_t nt = run->n_trpc;
	run->trpc = next->trpc;
	run->n_trpc = next->n_trpc;
	next->trpc = tr;
	next->n_trpc = nt;
	return restart;
}

int config_keep_key(struct config *next, const struct config *run, const char *name)
{
	const struct skey *k = NULL;
	char v[4096];

	for (size_t i = 0; i < N_KEYS && !k; i++)
		if (!strcmp(server_keys[i].name, name))
			k = &server_keys[i];
	if (!k)
		return -1;
	key_text(run, k, 0, v, sizeof(v));
	const char *why;
	return set_server(next, k, v, &why);
}

const struct cfg_backend *config_find_backend(const struct config *c, const char *name)
{
	return find_backend((struct config *)c, name);
}

int config_backend_equal(const struct cfg_backend *a, const struct cfg_backend *b)
{
	if (strcmp(a->name, b->name) ||
	    strcmp(a->plugin ? a->plugin : "", b->plugin ? b->plugin : "") ||
	    a->n_channels != b->n_channels || a->n_kv != b->n_kv)
		return 0;
	for (size_t i = 0; i < a->n_channels; i++)
		if (strcmp(a->channels[i], b->channels[i]))
			return 0;
	for (size_t i = 0; i < a->n_kv; i++) {
		size_t j;
		for (j = 0; j < b->n_kv && strcmp(a->kv[i].key, b->kv[j].key); j++)
			;
		if (j == b->n_kv || strcmp(a->kv[i].value, b->kv[j].value))
			return 0;
	}
	return 1;
}

int config_copy_backend(struct config *to, const struct cfg_backend *b)
{
	struct ld l = {.c = to, .file = "(reload)"};
	struct cfg_backend *nb = add_backend(&l, b->name, b->line);

	free(l.bx);
	if (!nb)
		return -1;
	free_list(nb->channels);
	nb->n_channels = 0;
	nb->channels = calloc(b->n_channels + 1, sizeof(char *));
	nb->plugin = b->plugin ? strdup(b->plugin) : NULL;
	nb->kv = calloc(b->n_kv + 1, sizeof(*nb->kv));
	if (!nb->channels || (b->plugin && !nb->plugin) || !nb->kv)
		return -1;
	for (size_t i = 0; i < b->n_channels; i++)
		if (!(nb->channels[nb->n_channels++] = strdup(b->channels[i])))
			return -1;
	for (size_t i = 0; i < b->n_kv; i++) {
		nb->kv[i].key = strdup(b->kv[i].key);
		nb->kv[i].value = strdup(b->kv[i].value);
		nb->kv[i].line = b->kv[i].line;
		nb->n_kv++;
		if (!nb->kv[i].key || !nb->kv[i].value)
			return -1;
	}
	return 0;
}

int config_move_backend(struct config *to, struct config *from, size_t i)
{
	struct cfg_backend *nb = realloc(to->backends, (to->n_backends + 1) * sizeof(*nb));

	if (!nb)
		return -1;
	to->backends = nb;
	to->backends[to->n_backends++] = from->backends[i];
	memmove(&from->backends[i], &from->backends[i + 1],
		(from->n_backends - i - 1) * sizeof(from->backends[0]));
	from->n_backends--;
	return 0;
}
