/*
 * test_config.c — unit tests of core/config.c: the value parsers, loading
 * good files, every class of error with its exact line, -o overrides,
 * ${VAR} expansion, plugin option checks against a fake option spec,
 * channel routing, the --check-config dump, and the agreement between the
 * [server] key table and conf/fanout.ini.
 *
 * Reads its data from $FANOUT_SRCDIR (tests/unit/data/config/, conf/);
 * writes temporary files under $TMPDIR (removed again). Errors are captured
 * through open_memstream().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

/* ---- helpers ---------------------------------------------------------- */

static char *srcpath(const char *rel)
{
	const char *top = getenv("FANOUT_SRCDIR");
	char *p;

	if (!top)
		top = "."; /* run by hand from the source tree */
	assert_true(asprintf(&p, "%s/%s", top, rel) > 0);
	return p;
}

/* Write text to a fresh temp file; returns its malloc'd path. */
static char *tmpini(const char *text)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	assert_true(asprintf(&path, "%s/test_config.XXXXXX", dir) > 0);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

struct res {
	int n;
	char *errs; /* everything written to errf */
	size_t len;
	char *path;
};

/* Load text (through a temp file) with overrides; keeps the error text. */
static struct res load_text(struct config *c, const char *text, const char *const *ov, size_t nov)
{
	struct res r = {0};
	FILE *ef = open_memstream(&r.errs, &r.len);
	assert_non_null(ef);
	r.path = text ? tmpini(text) : NULL;
	r.n = config_load(c, r.path, ov, nov, ef);
	fclose(ef);
	return r;
}

static void res_free(struct res *r)
{
	if (r->path) {
		unlink(r->path);
		free(r->path);
	}
	free(r->errs);
}

/* Assert the error text contains "PATH:suffix" exactly once. */
static void has_err(const struct res *r, const char *fmt, ...)
{
	char want[512], full[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	if (want[0] == '-') /* an override error: no file prefix */
		snprintf(full, sizeof(full), "%s\n", want);
	else
		snprintf(full, sizeof(full), "%s:%s\n", r->path ? r->path : "(no file)", want);
	const char *hit = strstr(r->errs, full);
	if (!hit || strstr(hit + 1, full))
		fail_msg("expected once: %s\ngot:\n%s", full, r->errs);
}

static const char *BACKEND = "\n[backend b]\nplugin = loopback\n";

/* ---- parsers ----------------------------------------------------------- */

static void t_parse_int(void **state)
{
	long long v = -1;
	const char *why = NULL;

	assert_int_equal(cfg_parse_int("42", 0, 100, 0, &v, &why), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cfg_parse_int("-5", -10, 10, 0, &v, &why), 0);
	assert_int_equal(v, -5);
	assert_int_equal(cfg_parse_int("16k", 0, 1LL << 40, 1, &v, &why), 0);
	assert_int_equal(v, 16384);
	assert_int_equal(cfg_parse_int("3M", 0, 1LL << 40, 1, &v, &why), 0);
	assert_int_equal(v, 3 * 1024 * 1024);
	assert_int_equal(cfg_parse_int("2g", 0, 1LL << 40, 1, &v, &why), 0);
	assert_int_equal(v, 2LL << 30);
	v = 7;
	assert_int_equal(cfg_parse_int("16k", 0, 1LL << 40, 0, &v, &why), -1);
	assert_string_equal(why, "not an integer");
	assert_int_equal(v, 7);
	assert_int_equal(cfg_parse_int("", 0, 1, 0, &v, &why), -1);
	assert_int_equal(cfg_parse_int("12x", 0, 100, 1, &v, &why), -1);
	assert_int_equal(cfg_parse_int("1kk", 0, 1LL << 40, 1, &v, &why), -1);
	assert_int_equal(cfg_parse_int(" 1", 0, 100, 0, &v, &why), -1);
	assert_int_equal(cfg_parse_int("101", 0, 100, 0, &v, &why), -1);
	assert_string_equal(why, "out of range");
	assert_int_equal(cfg_parse_int("99999999999999999999", 0, 100, 0, &v, &why), -1);
	assert_int_equal(cfg_parse_int("9000000000g", 0, LLONG_MAX, 1, &v, &why), -1);
	assert_string_equal(why, "out of range");
}

static void t_parse_bool(void **state)
{
	const char *t[] = {"true", "YES", "on", "1"}, *f[] = {"false", "No", "OFF", "0"};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(cfg_parse_bool(t[i]), 1);
		assert_int_equal(cfg_parse_bool(f[i]), 0);
	}
	assert_int_equal(cfg_parse_bool("maybe"), -1);
	assert_int_equal(cfg_parse_bool(""), -1);
	assert_int_equal(cfg_parse_bool("2"), -1);
}

static void t_parse_listen(void **state)
{
	static const struct {
		const char *in, *host;
		int port;
	} ok[] = {
	    {"0.0.0.0:8080", "0.0.0.0", 8080},
	    {"127.0.0.1:1", "127.0.0.1", 1},
	    {"[::]:443", "::", 443},
	    {"[::1]:65535", "::1", 65535},
	    {":9000", "", 9000},
	    {"9000", "", 9000},
	    {"*:80", "", 80},
	};
	static const char *const bad[] = {"",
					  ":",
					  "host:",
					  "1.2.3.4:0",
					  "1.2.3.4:65536",
					  "::1:8080",
					  "[::1]8080",
					  "[]:80",
					  "[zz]:80",
					  "a b:80",
					  "x:+80",
					  "x:080000",
					  "localhost:8080",
					  "1.2.3:80",
					  "[1.2.3.4]:80",
					  "256.1.1.1:80"};
	char *host;
	int port;
	const char *why;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(cfg_parse_listen(ok[i].in, &host, &port, &why), 0);
		assert_string_equal(host, ok[i].host);
		assert_int_equal(port, ok[i].port);
		free(host);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (cfg_parse_listen(bad[i], &host, &port, &why) == 0)
			fail_msg("accepted bad listen \"%s\"", bad[i]);
		assert_non_null(why);
		assert_null(host);
	}
}

static void t_expand_env(void **state)
{
	const char *why = NULL;
	char *s;

	setenv("FANOUT_T_A", "alpha", 1);
	setenv("FANOUT_T_EMPTY", "", 1);
	unsetenv("FANOUT_T_UNSET");
	s = cfg_expand_env("x${FANOUT_T_A}y${FANOUT_T_EMPTY}z$$w", &why);
	assert_string_equal(s, "xalphayz$w");
	free(s);
	s = cfg_expand_env("", &why);
	assert_string_equal(s, "");
	free(s);
	/* the value of a variable is not expanded again */
	setenv("FANOUT_T_DOLLAR", "${FANOUT_T_A}", 1);
	s = cfg_expand_env("${FANOUT_T_DOLLAR}", &why);
	assert_string_equal(s, "${FANOUT_T_A}");
	free(s);

	assert_null(cfg_expand_env("a${FANOUT_T_UNSET}b", &why));
	assert_string_equal(why, "environment variable FANOUT_T_UNSET is not set");
	assert_null(cfg_expand_env("${FANOUT_T_A", &why));
	assert_string_equal(why, "unterminated ${");
	assert_null(cfg_expand_env("${}", &why));
	assert_null(cfg_expand_env("${1A}", &why));
	assert_null(cfg_expand_env("cost $5", &why));
	assert_null(cfg_expand_env("end$", &why));
}

static void t_split_list(void **state)
{
	size_t n = 99;
	char **v = cfg_split_list(" a, b,,c\td  ,", &n);
	assert_int_equal(n, 4);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_string_equal(v[2], "c");
	assert_string_equal(v[3], "d");
	assert_null(v[4]);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	v = cfg_split_list(" , ", &n);
	assert_non_null(v);
	assert_int_equal(n, 0);
	assert_null(v[0]);
	free(v);
}

/* ---- good files -------------------------------------------------------- */

static void t_defaults(void **state)
{
	struct config c;
	const char *ov[] = {"backend.mem.plugin=loopback"};
	struct res r = load_text(&c, NULL, ov, 1);
	char host[256] = "";

	assert_int_equal(r.n, 0);
	assert_string_equal(r.errs, "");
	assert_null(c.path);
	assert_string_equal(c.listen, "0.0.0.0:8080");
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 8080);
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(c.instance, host[0] ? host : "localhost");
	assert_string_equal(c.ws_path, "/ws");
	assert_string_equal(c.web_root, FANOUT_WEB_ROOT);
	assert_string_equal(c.plugin_dir, FANOUT_PLUGIN_DIR);
	assert_int_equal(c.workers, 1);
	assert_int_equal(c.max_clients, 10000);
	assert_int_equal(c.max_message_bytes, 65536);
	assert_int_equal(c.max_payload_bytes, 1048576);
	assert_int_equal(c.max_subscriptions, 128);
	assert_int_equal(c.max_channels, 100000);
	assert_int_equal(c.client_queue_bytes, 4194304);
	assert_int_equal(c.shutdown_grace_ms, 5000);
	assert_int_equal(c.ping_interval_s, 30);
	assert_int_equal(c.allow_publish, 0);
	assert_int_equal(c.n_allowed_origins, 1);
	assert_string_equal(c.allowed_origins[0], "*");
	assert_int_equal(c.n_channels, 1);
	assert_string_equal(c.channels[0], "*");
	assert_int_equal(c.permessage_deflate, 0);
	assert_int_equal(c.log_level, LOG_LVL_INFO);
	assert_int_equal(c.n_backends, 1);
	assert_string_equal(c.backends[0].name, "mem");
	assert_string_equal(c.backends[0].plugin, "loopback");
	assert_int_equal(c.backends[0].line, 0);
	assert_int_equal(c.backends[0].n_channels, 1);
	assert_string_equal(c.backends[0].channels[0], "*");
	assert_int_equal(c.backends[0].n_kv, 0);
	config_free(&c);
	res_free(&r);
}

static void t_good_file(void **state)
{
	struct config c;
	char *path = srcpath("tests/unit/data/config/good.ini");
	char *errs = NULL;
	size_t len;
	FILE *ef = open_memstream(&errs, &len);

	setenv("FANOUT_TEST_INSTANCE", "7", 1);
	int n = config_load(&c, path, NULL, 0, ef);
	fclose(ef);
	if (n)
		fail_msg("%s", errs);
	assert_string_equal(c.path, path);
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 9001);
	assert_string_equal(c.instance, "unit-7");
	assert_string_equal(c.ws_path, "/stream");
	assert_string_equal(c.web_root, "");
	assert_string_equal(c.plugin_dir, "/opt/fanout/plugins");
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.max_clients, 500);
	assert_int_equal(c.max_message_bytes, 16384);
	assert_int_equal(c.max_payload_bytes, 1048576);
	assert_int_equal(c.max_subscriptions, 7);
	assert_int_equal(c.max_channels, 9);
	assert_int_equal(c.client_queue_bytes, 2097152);
	assert_int_equal(c.shutdown_grace_ms, 0);
	assert_int_equal(c.ping_interval_s, 0);
	assert_int_equal(c.allow_publish, 1);
	assert_int_equal(c.n_allowed_origins, 2);
	assert_string_equal(c.allowed_origins[1], "https://b.example");
	assert_int_equal(c.n_channels, 3);
	assert_string_equal(c.channels[0], "news.*");
	assert_string_equal(c.channels[2], "updates");
	assert_int_equal(c.permessage_deflate, 1);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);

	assert_int_equal(c.n_backends, 2);
	const struct cfg_backend *b = &c.backends[0];
	assert_string_equal(b->name, "news");
	assert_int_equal(b->line, 24);
	assert_string_equal(b->plugin, "/usr/lib/fanout/valkey.so");
	assert_int_equal(b->n_channels, 1);
	assert_string_equal(b->channels[0], "news.*");
	assert_int_equal(b->n_kv, 3);
	assert_string_equal(b->kv[0].key, "url");
	assert_int_equal(b->kv[0].line, 27);
	assert_string_equal(b->kv[1].value, "pa$word;not-a-comment");
	assert_string_equal(b->kv[2].key, "db");
	assert_string_equal(b->kv[2].value, "3");
	assert_int_equal(b->kv[2].line, 29);
	assert_string_equal(c.backends[1].name, "rest");
	assert_string_equal(c.backends[1].channels[0], "*");
	config_free(&c);
	free(errs);
	free(path);
}

static void load_clean(const char *rel, const char *const *ov, size_t nov)
{
	struct config c;
	char *path = srcpath(rel), *errs = NULL;
	size_t len;
	FILE *ef = open_memstream(&errs, &len);
	int n = config_load(&c, path, ov, nov, ef);
	fclose(ef);
	if (n)
		fail_msg("%s: %d errors:\n%s", rel, n, errs);
	assert_true(c.n_backends >= 1);
	config_free(&c);
	free(errs);
	free(path);
}

static void t_shipped_configs(void **state)
{
	setenv("FANOUT_INSTANCE", "c1", 1);
	setenv("VALKEY_PASSWORD", "pw", 1);
	load_clean("conf/fanout.ini", NULL, 0);
	load_clean("conf/examples/loopback.ini", NULL, 0);
	load_clean("conf/examples/cluster.ini", NULL, 0);
	load_clean("conf/examples/routing.ini", NULL, 0);
	load_clean("conf/examples/valkey-cluster.ini", NULL, 0);

	/* the default config's backend is what the docs say it is */
	struct config c;
	char *path = srcpath("conf/fanout.ini");
	assert_int_equal(config_load(&c, path, NULL, 0, NULL), 0);
	assert_int_equal(c.n_backends, 1);
	assert_string_equal(c.backends[0].name, "valkey");
	assert_string_equal(c.backends[0].plugin, "valkey");
	assert_int_equal(c.backends[0].n_kv, 1);
	assert_string_equal(c.backends[0].kv[0].key, "url");
	assert_string_equal(c.backends[0].kv[0].value, "redis://127.0.0.1:6379/0");
	config_free(&c);
	free(path);
}

/* Every key of the table appears in conf/fanout.ini's section of that key
 * ([server] or [auth]) as `key = ` or `; key = ` at the start of a line, and
 * nothing else does. */
static void t_table_matches_fanout_ini(void **state)
{
	char *path = srcpath("conf/fanout.ini");
	FILE *f = fopen(path, "r");
	char line[1024];
	int seen[128] = {0};
	size_t nkeys = 0;
	const char *sect = NULL; /* "server", "auth" or NULL (another section) */

	assert_non_null(f);
	while (config_server_key(nkeys))
		nkeys++;
	assert_true(nkeys > 10 && nkeys < 128);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '[') {
			sect = !strncmp(line, "[server]", 8) ? "server"
			       : !strncmp(line, "[auth]", 6) ? "auth"
							     : NULL;
			continue;
		}
		if (!sect)
			continue;
		char *p = line;
		if (p[0] == ';')
			p += 1 + (p[1] == ' ');
		size_t kl = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		if (!kl || strncmp(p + kl, " =", 2))
			continue; /* prose, indented comment or blank */
		p[kl] = 0;
		size_t i;
		for (i = 0; i < nkeys && (strcmp(config_server_key(i), p) ||
					  strcmp(config_server_key_section(i), sect));
		     i++)
			;
		if (i == nkeys)
			fail_msg("conf/fanout.ini documents \"%s\", which is not a [%s] key", p,
				 sect);
		seen[i]++;
	}
	fclose(f);
	for (size_t i = 0; i < nkeys; i++) {
		if (seen[i] != 1)
			fail_msg("server key %s appears %d times in conf/fanout.ini (want 1)",
				 config_server_key(i), seen[i]);
		assert_non_null(config_server_key_help(i));
	}
	free(path);
}

/* ---- errors ------------------------------------------------------------- */

static void t_errors_file(void **state)
{
	struct config c;
	char *path = srcpath("tests/unit/data/config/errors.ini");
	struct res r = {0};
	FILE *ef = open_memstream(&r.errs, &r.len);

	unsetenv("FANOUT_TEST_UNSET_VAR");
	r.n = config_load(&c, path, NULL, 0, ef);
	fclose(ef);
	r.path = path;
	has_err(&r, "3: [server] max_clients: out of range: \"0\" (allowed 1..1000000)");
	has_err(&r, "4: [server] max_clients: duplicate key (first set on line 3)");
	has_err(&r, "5: [server] workers: not an integer: \"many\" (allowed 1..64 or auto)");
	has_err(&r, "6: indented line: continuation lines are not supported");
	has_err(&r, "7: [server] ws_path: must start with '/'");
	has_err(&r, "8: [server] colour: unknown key");
	has_err(&r, "9: [server] allow_publish: not a boolean (true/false, yes/no, on/off, 1/0)");
	has_err(&r, "10: [server] log_level: must be one of error, warn, info, debug");
	has_err(&r, "11: [server] instance: environment variable FANOUT_TEST_UNSET_VAR is not set");
	has_err(&r, "12: expected key = value");
	has_err(&r,
		"13: [nonsense]: unknown section (expected [server], [auth] or [backend NAME])");
	has_err(&r, "17: [backend a]: duplicate section (first on line 15)");
	has_err(&r,
		"15: [backend a] plugin: missing (every backend needs plugin = NAME or a path)");
	assert_int_equal(r.n, 13);
	/* one line per error, nothing else */
	int lines = 0;
	for (const char *p = r.errs; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 13);
	/* a failed load leaves nothing allocated behind */
	assert_null(c.listen);
	assert_null(c.backends);
	r.path = NULL;
	res_free(&r);
	free(path);
}

struct bad {
	const char *text;
	const char *err; /* after "PATH:" */
};

static void t_errors_inline(void **state)
{
	static const struct bad cases[] = {
	    {"x = 1\n[backend b]\nplugin = p\n", "1: x: key outside a section"},
	    {"[server]\n= 1\n[backend b]\nplugin = p\n", "2: missing key before '='"},
	    {"[server\n[backend b]\nplugin = p\n",
	     "1: bad section header (expected [server] or [backend NAME])"},
	    {"[backend]\n[backend b]\nplugin = p\n",
	     "1: [backend]: a backend section needs a name: [backend NAME]"},
	    {"[backend a.b]\n[backend b]\nplugin = p\n",
	     "1: [backend a.b]: bad backend name (letters, digits, '_' and '-')"},
	    {"[server]\nlisten = 1.2.3.4\n[backend b]\nplugin = p\n",
	     "2: [server] listen: port must be a number 1..65535"},
	    {"[server]\nlisten = ::1:80\n[backend b]\nplugin = p\n",
	     "2: [server] listen: an IPv6 address needs brackets: [addr]:port"},
	    {"[server]\ninstance =\n[backend b]\nplugin = p\n",
	     "2: [server] instance: may not be empty"},
	    {"[server]\nmax_message_bytes = 17m\n[backend b]\nplugin = p\n",
	     "2: [server] max_message_bytes: out of range: \"17m\" (allowed 16..16777216)"},
	    {"[server]\nmax_clients = 10k\n[backend b]\nplugin = p\n",
	     "2: [server] max_clients: not an integer: \"10k\" (allowed 1..1000000)"},
	    {"[server]\nchannels = ,\n[backend b]\nplugin = p\n",
	     "2: [server] channels: empty list"},
	    {"[server]\n\n\nmax_payload_bytes = 4m\n[backend b]\nplugin = p\n",
	     "4: [server] client_queue_bytes: 4194304 is less than 2 x max_payload_bytes "
	     "(8388608)"},
	    {"[server]\nclient_queue_bytes = 100\n[backend b]\nplugin = p\n",
	     "2: [server] client_queue_bytes: 100 is less than 2 x max_payload_bytes "
	     "(2097152)"},
	    {"[backend b]\nplugin = p\nchannels =\n", "3: [backend b] channels: empty list"},
	    {"[backend b]\nplugin = p\nplugin = q\n",
	     "3: [backend b] plugin: duplicate key (first set on line 2)"},
	    {"[backend b]\nplugin = p\nurl = a\n; c\nurl = b\n",
	     "5: [backend b] url: duplicate key (first set on line 3)"},
	    {"[backend b]\nplugin = p\nurl = ${FANOUT_TEST_UNSET_VAR}\n",
	     "3: [backend b] url: environment variable FANOUT_TEST_UNSET_VAR is not set"},
	    {"[backend b]\nplugin = p\nurl = a\n\turl2 = b\n",
	     "4: indented line: continuation lines are not supported"},
	    {"[server]\nlisten = 127.0.0.1:80\n", " no [backend] section (at least one [backend "
						  "NAME] with a plugin is required)"},
	};
	unsetenv("FANOUT_TEST_UNSET_VAR");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		struct res r = load_text(&c, cases[i].text, NULL, 0);
		if (r.n != 1)
			fail_msg("case %zu: %d errors, want 1:\n%s", i, r.n, r.errs);
		has_err(&r, "%s", cases[i].err);
		res_free(&r);
	}
}

static void t_long_lines_and_comments(void **state)
{
	/* a line far longer than inih's 200 characters is read whole */
	size_t n = 5000;
	char *big = malloc(n + 200), *text;
	memset(big, 'a', n);
	big[n] = 0;
	assert_true(asprintf(&text,
			     "\xEF\xBB\xBF; BOM, then a comment\n"
			     "[server]\n"
			     "  ; an indented comment is fine\n"
			     "\n"
			     "instance = x#y ; the # stays, this comment goes\n"
			     "ws_path = /p;q\n"
			     "[backend b]\nplugin = p\nlong = %s\n",
			     big) > 0);
	struct config c;
	struct res r = load_text(&c, text, NULL, 0);
	if (r.n)
		fail_msg("%s", r.errs);
	assert_string_equal(c.instance, "x#y");
	assert_string_equal(c.ws_path, "/p;q");
	assert_int_equal(strlen(c.backends[0].kv[0].value), n);
	assert_int_equal(c.backends[0].kv[0].line, 9);
	config_free(&c);
	res_free(&r);
	free(text);
	free(big);

	/* a NUL byte inside a line is an error, not a silent cut */
	static const char nul[] = "[server]\nws_path = /a\0b\n[backend b]\nplugin = p\n";
	r = load_text(&c, "", NULL, 0);
	FILE *f = fopen(r.path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(nul, 1, sizeof(nul) - 1, f), sizeof(nul) - 1);
	fclose(f);
	free(r.errs);
	FILE *ef = open_memstream(&r.errs, &r.len);
	r.n = config_load(&c, r.path, NULL, 0, ef);
	fclose(ef);
	assert_int_equal(r.n, 1);
	has_err(&r, "2: NUL byte in line");
	res_free(&r);

	/* a missing file is one error naming it */
	char *errs = NULL;
	size_t len;
	ef = open_memstream(&errs, &len);
	assert_int_equal(config_load(&c, "/nonexistent/fanout.ini", NULL, 0, ef), 1);
	fclose(ef);
	assert_string_equal(errs,
			    "/nonexistent/fanout.ini: cannot open: No such file or directory\n");
	free(errs);
}

/* The line cap: CONFIG_MAX_LINE bytes are read, one more is an error that
 * names the line, and the lines after it keep their numbers. */
static void t_line_cap(void **state)
{
	char *at = malloc(CONFIG_MAX_LINE + 1), *over = malloc(CONFIG_MAX_LINE + 2), *text;
	memset(at, 'a', CONFIG_MAX_LINE);
	at[CONFIG_MAX_LINE - 6] = 0; /* "key = " + value = CONFIG_MAX_LINE bytes */
	memset(over, 'b', CONFIG_MAX_LINE + 1);
	over[CONFIG_MAX_LINE + 1] = 0;
	assert_true(asprintf(&text, "[backend b]\nplugin = p\nkey = %s\r\n%s\nurl: after\nnone\n",
			     at, over) > 0);
	struct config c;
	struct res r = load_text(&c, text, NULL, 0);
	has_err(&r, "4: line longer than %d bytes", CONFIG_MAX_LINE);
	/* inih's name:value form is accepted; a line with neither is an error */
	has_err(&r, "6: expected key = value");
	assert_int_equal(r.n, 2);
	res_free(&r);
	free(text);

	/* without the bad lines, the longest line loads whole */
	assert_true(asprintf(&text, "[backend b]\nplugin = p\nkey = %s\r\nurl: after\n", at) > 0);
	r = load_text(&c, text, NULL, 0);
	if (r.n)
		fail_msg("%s", r.errs);
	assert_int_equal(strlen(c.backends[0].kv[0].value), CONFIG_MAX_LINE - 6);
	assert_string_equal(c.backends[0].kv[1].key, "url");
	assert_string_equal(c.backends[0].kv[1].value, "after");
	assert_int_equal(c.backends[0].kv[1].line, 4);
	config_free(&c);
	res_free(&r);
	free(text);
	free(at);
	free(over);
}

/* ---- overrides ---------------------------------------------------------- */

static void t_overrides(void **state)
{
	setenv("FANOUT_T_PORT", "9100", 1);
	const char *ov[] = {
	    "server.max_clients=42",	   "server.listen=127.0.0.1:${FANOUT_T_PORT}",
	    "server.max_clients = 43", /* the last one wins, no duplicate error */
	    "backend.b.url=redis://x/1",   "backend.b.channels=a.*, b.*",
	    "backend.mem.plugin=loopback", "backend.mem.size=5",
	};
	struct config c;
	struct res r =
	    load_text(&c, "[server]\nmax_clients = 5\n[backend b]\nplugin = p\nurl = a\n", ov,
		      sizeof(ov) / sizeof(ov[0]));
	if (r.n)
		fail_msg("%s", r.errs);
	assert_int_equal(c.max_clients, 43);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 9100);
	assert_int_equal(c.n_backends, 2);
	assert_string_equal(c.backends[0].kv[0].value, "redis://x/1");
	assert_int_equal(c.backends[0].kv[0].line, 0);
	assert_int_equal(c.backends[0].n_channels, 2);
	assert_string_equal(c.backends[0].channels[1], "b.*");
	assert_string_equal(c.backends[1].name, "mem");
	assert_string_equal(c.backends[1].plugin, "loopback");
	assert_int_equal(c.backends[1].line, 0);
	assert_string_equal(c.backends[1].kv[0].key, "size");
	config_free(&c);
	res_free(&r);
}

static void t_override_errors(void **state)
{
	const char *ov[] = {
	    "server.max_clients=0",
	    "server.nope=1",
	    "server.instance=${FANOUT_TEST_UNSET_VAR}",
	    "max_clients=5",
	    "backend.x=1",
	    "backend.a.b.c=1",
	    "other.k=v",
	    "backend.new.url=x", /* creates a backend without a plugin */
	    "server.client_queue_bytes=64",
	};
	unsetenv("FANOUT_TEST_UNSET_VAR");
	struct config c;
	struct res r = load_text(&c, BACKEND, ov, sizeof(ov) / sizeof(ov[0]));
	has_err(&r, "-o server.max_clients: out of range: \"0\" (allowed 1..1000000)");
	has_err(&r, "-o server.nope: unknown key");
	has_err(&r, "-o server.instance: environment variable FANOUT_TEST_UNSET_VAR is not set");
	has_err(&r, "-o max_clients=5: expected section.key=value (server.KEY=V or "
		    "backend.NAME.KEY=V)");
	has_err(&r, "-o backend.x=1: expected backend.NAME.KEY=V (NAME: letters, digits, '_', "
		    "'-')");
	has_err(&r, "-o backend.a.b.c=1: expected backend.NAME.KEY=V (NAME: letters, digits, "
		    "'_', '-')");
	has_err(&r, "-o other.k: unknown section (server, auth or backend.NAME)");
	has_err(&r, "-o backend.new.plugin: missing (every backend needs plugin = NAME or a path)");
	has_err(&r, "-o server.client_queue_bytes: 64 is less than 2 x max_payload_bytes "
		    "(2097152)");
	assert_int_equal(r.n, 9);
	res_free(&r);
}

/* ---- backend values ----------------------------------------------------- */

static const struct fanout_option fake_opts[] = {
    FANOUT_OPTION_STRING("url", "redis://127.0.0.1:6379/0", "broker url"),
    FANOUT_OPTION_INT("db", "0", 0, 15, "database"),
    FANOUT_OPTION_INT("max_pending_bytes", "1k", 16, 1 << 20, "bytes"),
    FANOUT_OPTION_BOOL("tls", "false", "use TLS"),
    FANOUT_OPTION_ENUM("mode", "fast", "slow|fast|auto", "mode"),
    {"token", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "auth", FANOUT_OPT_REQUIRED | FANOUT_OPT_SECRET},
    FANOUT_OPTION_STRING("note", NULL, "no default"),
    FANOUT_OPTION_END,
};

static void t_backend_values(void **state)
{
	struct config c;
	struct res r = load_text(&c,
				 "[backend v]\nplugin = fake\nchannels = *\n"
				 "db = 3\nmax_pending_bytes = 2k\ntls = yes\nmode = auto\n"
				 "token = s3cret\n",
				 NULL, 0);
	if (r.n)
		fail_msg("%s", r.errs);
	struct fanout_value *v = NULL;
	assert_int_equal(config_backend_values(&c, &c.backends[0], fake_opts, &v, stderr), 0);
	assert_non_null(v);
	assert_string_equal(v[0].str, "redis://127.0.0.1:6379/0");
	assert_int_equal(v[0].set, 0);
	assert_string_equal(v[1].str, "3");
	assert_int_equal(v[1].num, 3);
	assert_int_equal(v[1].set, 1);
	assert_int_equal(v[2].num, 2048);
	assert_int_equal(v[3].num, 1);
	assert_int_equal(v[4].num, 2);
	assert_string_equal(v[4].str, "auto");
	assert_string_equal(v[5].str, "s3cret");
	assert_null(v[6].str);
	assert_int_equal(v[6].set, 0);
	free(v);

	/* defaults are parsed too: mode's default "fast" is index 1 */
	config_free(&c);
	res_free(&r);
	r = load_text(&c, "[backend v]\nplugin = fake\ntoken = t\n", NULL, 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(config_backend_values(&c, &c.backends[0], fake_opts, &v, stderr), 0);
	assert_int_equal(v[2].num, 1024);
	assert_int_equal(v[4].num, 1);
	assert_int_equal(v[3].num, 0);
	free(v);

	/* no options at all: an empty section is fine, any key is unknown */
	assert_int_equal(config_backend_values(&c, &c.backends[0], NULL, &v, NULL), 1);
	assert_null(v);
	config_free(&c);
	res_free(&r);
}

static void t_backend_value_errors(void **state)
{
	struct config c;
	const char *ov[] = {"backend.v.db=99"};
	struct res r = load_text(&c,
				 "[backend v]\nplugin = fake\n"
				 "colour = red\nmax_pending_bytes = 8\ntls = maybe\nmode = turbo\n"
				 "db = 1\n",
				 ov, 1);
	if (r.n)
		fail_msg("%s", r.errs);
	struct fanout_value *v = (struct fanout_value *)1;
	char *errs = NULL;
	size_t len;
	FILE *ef = open_memstream(&errs, &len);
	int n = config_backend_values(&c, &c.backends[0], fake_opts, &v, ef);
	fclose(ef);
	free(r.errs);
	r.errs = errs;
	has_err(&r, "3: [backend v] colour: unknown key for plugin fake");
	has_err(&r, "4: [backend v] max_pending_bytes: out of range: \"8\" (allowed 16..1048576)");
	has_err(&r, "5: [backend v] tls: not a boolean (true/false, yes/no, on/off, 1/0)");
	has_err(&r, "6: [backend v] mode: \"turbo\" is not one of slow|fast|auto");
	has_err(&r, "-o backend.v.db: out of range: \"99\" (allowed 0..15)");
	has_err(&r, "1: [backend v] token: required key missing");
	assert_int_equal(n, 6);
	assert_null(v);
	config_free(&c);
	res_free(&r);
}

/* ---- routing ------------------------------------------------------------ */

static void t_route(void **state)
{
	struct config c;
	struct res r = load_text(&c,
				 "[backend logs]\nplugin = filetail\nchannels = logs.*, audit\n"
				 "[backend chat]\nplugin = valkey\nchannels = chat.[a-m]*\n"
				 "[backend rest]\nplugin = valkey\nchannels = *\n",
				 NULL, 0);
	assert_int_equal(r.n, 0);
	assert_string_equal(config_route(&c, "logs.nginx")->name, "logs");
	assert_string_equal(config_route(&c, "audit")->name, "logs");
	assert_string_equal(config_route(&c, "chat.lobby")->name, "chat");
	assert_string_equal(config_route(&c, "chat.zoo")->name, "rest");
	assert_string_equal(config_route(&c, "audit2")->name, "rest");
	config_free(&c);
	res_free(&r);

	r = load_text(&c, "[backend a]\nplugin = p\nchannels = a.*\n", NULL, 0);
	assert_int_equal(r.n, 0);
	assert_null(config_route(&c, "b.x"));
	assert_null(config_route(&c, "a"));
	/* flags 0: '*' crosses '/' and a leading '.' */
	assert_non_null(config_route(&c, "a.x/y"));
	config_free(&c);
	res_free(&r);
}

/* ---- dump --------------------------------------------------------------- */

static char *dump(const struct config *c)
{
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	config_dump(c, f);
	fclose(f);
	return out;
}

static void t_dump(void **state)
{
	struct config c, c2;
	setenv("FANOUT_TEST_INSTANCE", "7", 1);
	char *path = srcpath("tests/unit/data/config/good.ini");
	assert_int_equal(config_load(&c, path, NULL, 0, stderr), 0);
	char *out = dump(&c);

	/* every server key, also the ones left at their default */
	for (size_t i = 0; config_server_key(i); i++) {
		char want[128];
		snprintf(want, sizeof(want), "\n%s = ", config_server_key(i));
		if (!strstr(out, want))
			fail_msg("dump lacks %s:\n%s", config_server_key(i), out);
	}
	assert_non_null(strstr(out, "\nworkers = auto\n"));
	assert_non_null(strstr(out, "\nmax_message_bytes = 16384\n"));
	assert_non_null(strstr(out, "\nallow_publish = true\n"));
	assert_non_null(strstr(out, "\nchannels = news.*, chat.*, updates\n"));
	assert_non_null(strstr(out, "\nlog_level = debug\n"));
	assert_non_null(strstr(out, "\nweb_root = \n"));
	assert_non_null(strstr(out, "\n[backend news]\nplugin = /usr/lib/fanout/valkey.so\n"
				    "channels = news.*\n"));
	assert_non_null(strstr(out, "\n[backend rest]\nplugin = loopback\nchannels = *\n"));
	/* secrets: password keys and the password part of a url */
	assert_non_null(strstr(out, "\npassword = ***\n"));
	assert_non_null(strstr(out, "\nurl = redis://user:***@127.0.0.1:6379/0\n"));
	assert_null(strstr(out, "hunter2"));
	assert_null(strstr(out, "pa$word"));
	config_free(&c);

	/* without secrets the dump loads back to the same dump */
	const char *ov[] = {"backend.mem.plugin=loopback", "backend.mem.size=3",
			    "server.workers=4"};
	assert_int_equal(config_load(&c, NULL, ov, 3, stderr), 0);
	free(out);
	out = dump(&c);
	struct res r = load_text(&c2, out, NULL, 0);
	if (r.n)
		fail_msg("%s", r.errs);
	char *out2 = dump(&c2);
	/* the first line names the file; compare the rest */
	assert_string_equal(strchr(out, '\n'), strchr(out2, '\n'));
	config_free(&c);
	config_free(&c2);
	res_free(&r);
	free(out);
	free(out2);
	free(path);
}

/* [auth]: its keys, their errors, overrides, and the secret never dumped. */
static void t_auth_section(void **state)
{
	struct config c;
	char text[512];
	snprintf(text, sizeof(text),
		 "[server]\nlisten = :1\n[auth]\njwt_secret = %s\njwt_audience = app\n"
		 "jwt_leeway_s = 10\n%s",
		 "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t", BACKEND);
	const char *ov[] = {"auth.jwt_leeway_s=20"};
	struct res r = load_text(&c, text, ov, 1);
	if (r.n)
		fail_msg("%s", r.errs);
	assert_string_equal(c.jwt_secret, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t");
	assert_string_equal(c.jwt_audience, "app");
	assert_string_equal(c.jwt_public_key, "");
	assert_int_equal(c.jwt_leeway_s, 20);
	char *out = dump(&c);
	assert_non_null(strstr(out, "\n[auth]\njwt_secret = ***\n"));
	assert_non_null(strstr(out, "\njwt_audience = app\n"));
	assert_null(strstr(out, "s3cr3t"));
	free(out);
	config_free(&c);
	res_free(&r);

	r = load_text(&c,
		      "[auth]\njwt_secret = short\njwt_public_key = /k.pem\nlisten = :1\n"
		      "jwt_leeway_s = 301\n"
		      "[server]\njwt_secret = 0123456789abcdef0123456789abcdef\n"
		      "[backend b]\nplugin = loopback\n",
		      NULL, 0);
	assert_int_equal(r.n, 5);
	has_err(&r, "4: [auth] listen: unknown key");
	has_err(&r, "5: [auth] jwt_leeway_s: out of range: \"301\" (allowed 0..300)");
	has_err(&r, "7: [server] jwt_secret: unknown key");
	has_err(&r, "3: [auth] jwt_public_key: set jwt_secret or jwt_public_key, not both");
	has_err(&r, "2: [auth] jwt_secret: must be at least 32 bytes (it has 5)");
	res_free(&r);
}

/* ---- reload ------------------------------------------------------------ */

struct notes {
	char text[4096];
};

static void note(void *arg, const char *key, int live, const char *old, const char *new)
{
	struct notes *n = arg;
	size_t l = strlen(n->text);
	snprintf(n->text + l, sizeof(n->text) - l, "%s %s: %s -> %s\n", live ? "live" : "restart",
		 key, old, new);
}

static void t_apply(void **state)
{
	struct config run, next;
	struct res r =
	    load_text(&run,
		      "[server]\nlisten = 127.0.0.1:80\nmax_subscriptions = 5\n"
		      "allowed_origins = https://a.example\npublish_api_key = 0123456789abcdef0\n"
		      "[backend a]\nplugin = p\n",
		      NULL, 0);
	if (r.n)
		fail_msg("%s", r.errs);
	struct res r2 = load_text(&next,
				  "[server]\nlisten = 127.0.0.1:81\nmax_subscriptions = 7\n"
				  "allowed_origins = https://a.example, https://b.example\n"
				  "publish_api_key = fedcba98765432100\n"
				  "[backend b]\nplugin = q\nurl = x\n",
				  NULL, 0);
	if (r2.n)
		fail_msg("%s", r2.errs);
	char **old_origins = run.allowed_origins;
	struct notes n = {""};
	assert_int_equal(config_apply(&run, &next, note, &n), 1);
	assert_string_equal(n.text, "restart listen: 127.0.0.1:80 -> 127.0.0.1:81\n"
				    "live max_subscriptions: 5 -> 7\n"
				    "live allowed_origins: https://a.example -> https://a.example, "
				    "https://b.example\n"
				    "live publish_api_key: *** -> ***\n");
	/* live keys changed in place, the others kept */
	assert_string_equal(run.listen, "127.0.0.1:80");
	assert_int_equal(run.listen_port, 80);
	assert_int_equal(run.max_subscriptions, 7);
	assert_int_equal(run.n_allowed_origins, 2);
	assert_string_equal(run.publish_api_key, "fedcba98765432100");
	/* next holds what was replaced, to be freed */
	assert_ptr_equal(next.allowed_origins, old_origins);
	assert_int_equal(next.max_subscriptions, 5);
	/* sections: next's */
	assert_int_equal(run.n_backends, 1);
	assert_string_equal(run.backends[0].name, "b");
	assert_string_equal(next.backends[0].name, "a");
	/* a second apply of the same file changes nothing but the restart key */
	memset(&n, 0, sizeof(n));
	config_free(&next);
	free(r2.errs);
	unlink(r2.path);
	free(r2.path);
	r2 = load_text(&next,
		       "[server]\nlisten = 127.0.0.1:81\nmax_subscriptions = 7\n"
		       "allowed_origins = https://a.example, https://b.example\n"
		       "publish_api_key = fedcba98765432100\n[backend b]\nplugin = q\nurl = x\n",
		       NULL, 0);
	assert_int_equal(config_apply(&run, &next, note, &n), 1);
	assert_string_equal(n.text, "restart listen: 127.0.0.1:80 -> 127.0.0.1:81\n");
	/* keep_key: next takes the running value */
	assert_int_equal(config_keep_key(&next, &run, "listen"), 0);
	assert_string_equal(next.listen, "127.0.0.1:80");
	/* sections compared in any key order; copied whole */
	assert_true(config_backend_equal(&run.backends[0], &next.backends[0]));
	assert_int_equal(config_copy_backend(&next, &run.backends[0]), 0);
	assert_true(config_backend_equal(&next.backends[0], &next.backends[1]));
	assert_non_null(config_find_backend(&next, "b"));
	assert_null(config_find_backend(&next, "a"));
	config_free(&run);
	config_free(&next);
	res_free(&r);
	res_free(&r2);
}

/* fanout.ini(5)'s RELOADING list names exactly the keys the table marks live. */
static void t_live_keys_documented(void **state)
{
	char *path = srcpath("man/fanout.ini.5.in");
	FILE *f = fopen(path, "r");
	char line[256], doc[2048] = " ", table[2048] = " ";
	int in = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, ".SH RELOADING", 13))
			in = 1;
		else if (!strncmp(line, ".SH ", 4))
			in = 0;
		else if (in == 1 && !strncmp(line, ".RS", 3))
			in = 2;
		else if (in == 2 && !strncmp(line, ".RE", 3))
			in = 3;
		else if (in == 2 && !strncmp(line, ".B ", 3)) {
			line[strcspn(line, "\n")] = 0;
			strcat(doc, line + 3);
			strcat(doc, " ");
		}
	}
	fclose(f);
	free(path);
	for (size_t i = 0; config_server_key(i); i++)
		if (config_server_key_live(i)) {
			strcat(table, config_server_key(i));
			strcat(table, " ");
		}
	assert_string_equal(doc, table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_parse_int),
	    cmocka_unit_test(t_parse_bool),
	    cmocka_unit_test(t_parse_listen),
	    cmocka_unit_test(t_expand_env),
	    cmocka_unit_test(t_split_list),
	    cmocka_unit_test(t_defaults),
	    cmocka_unit_test(t_good_file),
	    cmocka_unit_test(t_shipped_configs),
	    cmocka_unit_test(t_table_matches_fanout_ini),
	    cmocka_unit_test(t_errors_file),
	    cmocka_unit_test(t_errors_inline),
	    cmocka_unit_test(t_long_lines_and_comments),
	    cmocka_unit_test(t_line_cap),
	    cmocka_unit_test(t_overrides),
	    cmocka_unit_test(t_override_errors),
	    cmocka_unit_test(t_backend_values),
	    cmocka_unit_test(t_backend_value_errors),
	    cmocka_unit_test(t_route),
	    cmocka_unit_test(t_dump),
	    cmocka_unit_test(t_apply),
	    cmocka_unit_test(t_live_keys_documented),
	    cmocka_unit_test(t_auth_section),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
