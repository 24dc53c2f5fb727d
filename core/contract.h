/*
 * contract.h — the plugin contract as one pure module: the checks of an
 * exported struct fanout_plugin (ABI version, table size, mandatory
 * fields, a well-formed option table), the value grammar of config keys
 * (integers with k/m/g suffixes on _bytes keys, booleans, enum words), the
 * check of a backend section's keys against the plugin's options, and the
 * rendering of an option table as help (ini comments, roff).
 *
 * fanoutd (core/config.c, core/plugin_host.c) and the plugin tests' mock
 * host (tests/plugin/mockhost.c) both use it, so a plugin is accepted or
 * refused the same way in both. It depends on libc and <fanout/plugin.h>
 * only: no logging, no globals, no allocation except the values array.
 */
#ifndef FANOUT_CONTRACT_H
#define FANOUT_CONTRACT_H

#include <stddef.h>
#include <stdio.h>

#include <fanout/plugin.h>

/* The end of the mandatory part of struct fanout_plugin (ABI 1.0). */
#define CONTRACT_PLUGIN_MIN_SIZE                                                                   \
	(offsetof(struct fanout_plugin, destroy) + sizeof(void (*)(void *)))

/*
 * Check an exported table before any of the plugin's code runs: ABI major
 * equal and minor not newer than the host's, struct_size covering the 1.0
 * part, name/version/init/start/subscribe/destroy present, and an option
 * table whose every entry is well formed (a name of [a-z0-9_], not
 * `plugin` or `channels`, unique; a known type; INT min <= max; ENUM
 * choices; a default that parses). Returns 0, or -1 with one sentence in
 * why (e.g. "built for plugin ABI 2.0, this fanoutd speaks 1.1 (...)").
 */
int contract_check_plugin(const struct fanout_plugin *p, char *why, size_t whyn);

/* ---- the value grammar (pure; fuzzed by tests/fuzz/fuzz_config.c) ---- */

/* Decimal integer with optional k/m/g (x1024) suffix when allow_suffix;
 * returns 0 or -1 with a static reason in *why ("not an integer", "out of
 * range", ...). */
int cfg_parse_int(const char *s, long long min, long long max, int allow_suffix, long long *out,
		  const char **why);
/* true/false/yes/no/on/off/1/0 (any case) -> 1/0; -1 if none. */
int cfg_parse_bool(const char *s);

/* The same, with the error text config errors print: for integers
 * `REASON: "TEXT" (allowed MIN..MAX)`, for booleans the accepted words.
 * Return 0 or -1 with the reason in why. */
int contract_parse_int(const char *s, long long min, long long max, int allow_suffix,
		       long long *out, char *why, size_t whyn);
int contract_parse_bool(const char *s, int *out, char *why, size_t whyn);

/* Whether an option's key takes k/m/g suffixes: its name ends in _bytes. */
int contract_has_suffix(const char *name);

/* Parse text for option o into *num (INT: the number; BOOL: 0/1; ENUM: the
 * index into choices; STRING: 0). Returns 0 or -1 with the reason in why. */
int contract_parse_option(const struct fanout_option *o, const char *text, long long *num,
			  char *why, size_t whyn);

/* ---- a backend section against the plugin's options ---- */

/* One key = value of a section; line > 0 a file line, 0 a -o override or
 * a test's key list. */
struct contract_kv {
	const char *key;
	const char *value;
	int line;
};

/* Called once per error: kv is the key it is about, NULL when it is about
 * the section as a whole (a required key missing: key names it). */
typedef void (*contract_err_fn)(void *arg, const struct contract_kv *kv, const char *key,
				const char *reason);

/*
 * Check kv (n of them) against opts (ended by FANOUT_OPTION_END; NULL: no
 * options): unknown keys, values that do not parse, REQUIRED keys missing.
 * plugin_name names the plugin in "unknown key for plugin NAME". On
 * success returns 0 and *values = a calloc'd array, one struct
 * fanout_value per option in order (strings point into kv or opts; free
 * the array with free()). Otherwise calls err for each problem and returns
 * their count (*values NULL). A key given twice: the later one wins.
 */
int contract_values(const struct fanout_option *opts, const char *plugin_name,
		    const struct contract_kv *kv, size_t n, struct fanout_value **values,
		    contract_err_fn err, void *arg);

/* 1 when a key's value must never be printed: its option o (may be NULL)
 * is flagged FANOUT_OPT_SECRET, whatever its name; or, as a safety net,
 * the key's name ends in password, secret or token. */
int contract_is_secret(const struct fanout_option *o, const char *key);

/* The option named key in opts, or NULL. */
const struct fanout_option *contract_find_option(const struct fanout_option *opts, const char *key);

/* ---- help ---- */

/* One line describing an option's type, default and bounds, e.g.
 * "integer 0..15, default 0" or "one of jsonl|raw, default jsonl". */
void contract_describe(const struct fanout_option *o, char *buf, size_t n);

/* Print a plugin's option table as roff (.TP entries: key, description,
 * help, "required", "secret"), for the generated section of its man page. */
void contract_print_roff(const struct fanout_plugin *p, FILE *out);

#endif
