/*
 * test_contract.c — unit tests of core/contract.c, the plugin contract
 * shared by fanoutd and the mock host: the checks of an exported table
 * (ABI version, size, mandatory fields, option table), the values of a
 * section against the options, secrets, fanout_strerror(), the roff help;
 * and that the mock host (tests/plugin/mockhost.c) and fanoutd's config
 * (core/config.c) accept and refuse exactly the same option values.
 *
 * Plugin tables are static data here; no .so is loaded. Writes temporary
 * ini files under $TMPDIR (removed again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "contract.h"
#include "mockhost.h"

/* ---- a plugin table to test with --------------------------------------- */

static const struct fanout_option opts[] = {
    FANOUT_OPTION_STRING("url", "redis://127.0.0.1:6379/0", "broker url"),
    FANOUT_OPTION_INT("db", "0", 0, 15, "database"),
    FANOUT_OPTION_INT("max_pending_bytes", "1k", 16, 1 << 20, "queued bytes - at most"),
    FANOUT_OPTION_BOOL("tls", "false", "use TLS"),
    FANOUT_OPTION_ENUM("mode", "fast", "slow|fast|auto", "mode"),
    {"credential", FANOUT_OPT_STRING, "dflt-cred", 0, 0, NULL, "API credential", FANOUT_OPT_SECRET},
    {"region", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "where", FANOUT_OPT_REQUIRED},
    FANOUT_OPTION_END,
};

/* What init() received, copied (values are borrowed for the call). */
static long long seen_num[8];
static char seen_str[8][64];
static int inits;

static int p_init(const struct fanout_host *host, struct fanout_backend *b,
		  const struct fanout_value *v, void **state)
{
	for (size_t i = 0; opts[i].name; i++) {
		seen_num[i] = v[i].num;
		snprintf(seen_str[i], sizeof(seen_str[i]), "%s", v[i].str ? v[i].str : "(null)");
	}
	inits++;
	*state = NULL;
	return 0;
}
static int p_start(void *s)
{
	return 0;
}
static int p_subscribe(void *s, const char *ch)
{
	return 0;
}
static void p_destroy(void *s)
{
}

static const struct fanout_plugin good = {
    FANOUT_PLUGIN_HEADER, .name = "fake",   .version = "1",	      .options = opts,
    .init = p_init,	  .start = p_start, .subscribe = p_subscribe, .destroy = p_destroy,
};

/* ---- the exported table ------------------------------------------------ */

static void refused(const struct fanout_plugin *p, const char *want)
{
	char why[300] = "";
	assert_int_equal(contract_check_plugin(p, why, sizeof(why)), -1);
	if (!strstr(why, want))
		fail_msg("want \"%s\" in \"%s\"", want, why);
}

static void t_check_plugin(void **state)
{
	char why[300] = "";
	struct fanout_plugin p = good;

	assert_int_equal(contract_check_plugin(&good, why, sizeof(why)), 0);

	p.abi_major = FANOUT_ABI_MAJOR + 1;
	refused(&p, "built for plugin ABI 2.2, this fanoutd speaks 1.2");
	p = good;
	p.abi_minor = FANOUT_ABI_MINOR + 1;
	refused(&p, "built for plugin ABI 1.3");
	p = good;
	p.abi_minor = 0; /* older minors load */
	p.struct_size = CONTRACT_PLUGIN_MIN_SIZE;
	assert_int_equal(contract_check_plugin(&p, why, sizeof(why)), 0);
	p.struct_size = CONTRACT_PLUGIN_MIN_SIZE - 1;
	refused(&p, "plugin table too small");
	p = good;
	p.version = NULL;
	refused(&p, "mandatory field 'version' is NULL");
	p = good;
	p.subscribe = NULL;
	refused(&p, "mandatory field 'subscribe' is NULL");
	p = good;
	p.options = NULL; /* no options is fine */
	assert_int_equal(contract_check_plugin(&p, why, sizeof(why)), 0);
}

static void t_check_option_table(void **state)
{
	static const struct {
		struct fanout_option o[3];
		const char *want;
	} bad[] = {
	    {{FANOUT_OPTION_STRING("channels", NULL, "x"), FANOUT_OPTION_END},
	     "option channels: the name belongs to the host"},
	    {{FANOUT_OPTION_STRING("plugin", NULL, "x"), FANOUT_OPTION_END},
	     "option plugin: the name belongs to the host"},
	    {{FANOUT_OPTION_STRING("Url", NULL, "x"), FANOUT_OPTION_END}, "bad name \"Url\""},
	    {{FANOUT_OPTION_STRING("a", NULL, "x"), FANOUT_OPTION_INT("a", "1", 0, 9, "y"),
	      FANOUT_OPTION_END},
	     "option a: declared twice"},
	    {{FANOUT_OPTION_INT("n", NULL, 10, 1, "x"), FANOUT_OPTION_END},
	     "option n: min 10 > max 1"},
	    {{FANOUT_OPTION_ENUM("e", NULL, NULL, "x"), FANOUT_OPTION_END},
	     "option e: an enum without choices"},
	    {{FANOUT_OPTION_INT("n", "99", 0, 9, "x"), FANOUT_OPTION_END},
	     "option n: bad default: out of range: \"99\" (allowed 0..9)"},
	    {{FANOUT_OPTION_BOOL("b", "maybe", "x"), FANOUT_OPTION_END},
	     "option b: bad default: not a boolean"},
	    {{{"t", (enum fanout_opt_type)7, NULL, 0, 0, NULL, "x", 0}, FANOUT_OPTION_END},
	     "option t: unknown type 7"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fanout_plugin p = good;
		p.options = bad[i].o;
		refused(&p, bad[i].want);
	}
}

/* ---- values ------------------------------------------------------------ */

struct errs {
	char text[2048];
	int n;
};

static void collect(void *arg, const struct contract_kv *kv, const char *key, const char *why)
{
	struct errs *e = arg;
	size_t l = strlen(e->text);
	snprintf(e->text + l, sizeof(e->text) - l, "%d:%s: %s\n", kv ? kv->line : -1,
		 key ? key : "", why);
	e->n++;
}

static void t_values(void **state)
{
	const struct contract_kv kv[] = {
	    {"db", "3", 4},	 {"max_pending_bytes", "4k", 5},
	    {"tls", "ON", 6},	 {"mode", "auto", 7},
	    {"region", "eu", 8},
	};
	struct fanout_value *v;
	struct errs e = {"", 0};

	assert_int_equal(contract_values(opts, "fake", kv, 5, &v, collect, &e), 0);
	assert_int_equal(v[1].num, 3);
	assert_int_equal(v[1].set, 1);
	assert_int_equal(v[2].num, 4096);
	assert_int_equal(v[3].num, 1);
	assert_int_equal(v[4].num, 2);
	assert_string_equal(v[5].str, "dflt-cred");
	assert_int_equal(v[5].set, 0);
	assert_string_equal(v[6].str, "eu");
	free(v);

	const struct contract_kv bad[] = {
	    {"colour", "red", 3}, {"db", "4k", 4},	{"max_pending_bytes", "2t", 5},
	    {"tls", "maybe", 6},  {"mode", "turbo", 7},
	};
	v = (struct fanout_value *)1;
	assert_int_equal(contract_values(opts, "fake", bad, 5, &v, collect, &e), 6);
	assert_null(v);
	assert_string_equal(
	    e.text, "3:colour: unknown key for plugin fake\n"
		    "4:db: not an integer: \"4k\" (allowed 0..15)\n"
		    "5:max_pending_bytes: not an integer (optional suffix k, m or g): \"2t\" "
		    "(allowed 16..1048576)\n"
		    "6:tls: not a boolean (true/false, yes/no, on/off, 1/0)\n"
		    "7:mode: \"turbo\" is not one of slow|fast|auto\n"
		    "-1:region: required key missing\n");
}

static void t_secret(void **state)
{
	assert_true(contract_is_secret(&opts[5], "credential")); /* flagged, plain name */
	assert_false(contract_is_secret(&opts[0], "url"));
	assert_true(contract_is_secret(NULL, "db_password")); /* no spec: by name */
	assert_true(contract_is_secret(NULL, "auth_token"));
	assert_false(contract_is_secret(NULL, "db"));

	char d[200];
	contract_describe(&opts[5], d, sizeof(d));
	assert_string_equal(d, "string, default ***");
	contract_describe(&opts[2], d, sizeof(d));
	assert_string_equal(d, "integer 16..1048576 (k, m, g suffixes), default 1k");
	contract_describe(&opts[6], d, sizeof(d));
	assert_string_equal(d, "string, required");
	contract_describe(&opts[4], d, sizeof(d));
	assert_string_equal(d, "one of slow|fast|auto, default fast");
}

static void t_strerror(void **state)
{
	for (int e = 0; e >= FANOUT_ETRUNCATED; e--) {
		const char *s = fanout_strerror(e);
		assert_string_not_equal(s, "unknown error");
		for (int f = 0; f > e; f--)
			assert_string_not_equal(s, fanout_strerror(f));
	}
	assert_string_equal(fanout_strerror(FANOUT_EIO), "I/O or connection failure");
	assert_string_equal(fanout_strerror(-1000), "unknown error");
	assert_string_equal(fanout_strerror(7), "unknown error");
}

static void t_roff(void **state)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	contract_print_roff(&good, f);
	fclose(f);
	assert_non_null(strstr(buf, ".TP\n.B max_pending_bytes\ninteger 16..1048576 (k, m, g "
				    "suffixes), default 1k.\n.br\nqueued bytes \\- at most\n"));
	assert_non_null(strstr(buf, ".B credential\nstring, default ***.\n"));
	assert_null(strstr(buf, "dflt-cred"));
	assert_non_null(strstr(buf, ".B region\nstring, required.\n"));
	free(buf);
}

/* ---- the mock host and fanoutd agree ------------------------------------ */

/* fanoutd's answer: load "[backend b]\nplugin = fake\nKEY = VALUE\n" and
 * check it against opts; 0 accepted (values in *out, pointing into *c:
 * config_free() it after), else refused (nothing to free). */
static int fanoutd_accepts(const char *key, const char *value, struct config *c,
			   struct fanout_value **out)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[512];
	snprintf(path, sizeof(path), "%s/test_contract.XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "[backend b]\nplugin = fake\nregion = eu\n%s = %s\n", key, value);
	fclose(f);
	FILE *devnull = fopen("/dev/null", "w");
	int rc = config_load(c, path, NULL, 0, devnull);
	unlink(path);
	if (rc == 0) {
		rc = config_backend_values(c, &c->backends[0], opts, out, devnull);
		if (rc)
			config_free(c);
	}
	fclose(devnull);
	return rc;
}

static void t_mock_agrees(void **state)
{
	static const char *const cases[][2] = {
	    {"max_pending_bytes", "4k"}, /* the mock used to refuse suffixes */
	    {"max_pending_bytes", "1M"},
	    {"max_pending_bytes", "2g"},
	    {"max_pending_bytes", "15"},
	    {"db", "+7"},
	    {"db", "07"},
	    {"db", "1k"},
	    {"db", "0x3"},
	    {"db", "16"},
	    {"db", ""},
	    {"tls", "Yes"},
	    {"tls", "2"},
	    {"mode", "FAST"},
	    {"mode", "slow"},
	    {"nosuchkey", "1"},
	};
	struct mockhost *m = mockhost_new();
	mockhost_set_quiet(m, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *kv[] = {"region", "eu", cases[i][0], cases[i][1], NULL};
		struct fanout_value *v = NULL;
		struct config c;
		void *st;
		int host = fanoutd_accepts(cases[i][0], cases[i][1], &c, &v);
		int before = inits;
		int mock = mockhost_start(m, &good, kv, &st);
		if ((host == 0) != (mock == 0))
			fail_msg("%s = \"%s\": fanoutd %s, mock host %s", cases[i][0], cases[i][1],
				 host ? "refuses" : "accepts", mock ? "refuses" : "accepts");
		if (host == 0) {
			assert_int_equal(inits, before + 1);
			for (size_t j = 0; opts[j].name; j++) {
				assert_int_equal(seen_num[j], v[j].num);
				assert_string_equal(seen_str[j], v[j].str ? v[j].str : "(null)");
			}
			mockhost_stop(m);
			config_free(&c);
		}
		free(v);
	}
	mockhost_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_check_plugin), cmocka_unit_test(t_check_option_table),
	    cmocka_unit_test(t_values),	      cmocka_unit_test(t_secret),
	    cmocka_unit_test(t_strerror),     cmocka_unit_test(t_roff),
	    cmocka_unit_test(t_mock_agrees),
	};
	return cmocka_run_group_tests_name("contract", tests, NULL, NULL);
}
