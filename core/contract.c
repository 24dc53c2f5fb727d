/*
 * contract.c — owns the plugin contract's checks, in one place for fanoutd
 * and the mock host of the plugin tests: the exported table's ABI version,
 * size and mandatory fields; the well-formedness of its option table; the
 * value grammar (integers with k/m/g on _bytes keys, booleans, enum words)
 * with the error text config errors print; the check of a section's keys
 * against the options; secrets; the option help as roff.
 *
 * Pure: called on whatever thread calls it (fanoutd: the main thread at
 * start-up), no globals, no logging. contract_values() calloc's the values
 * array its caller frees; nothing else allocates.
 */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contract.h"

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

/* ---- the value grammar ------------------------------------------------ */

int cfg_parse_int(const char *s, long long min, long long max, int allow_suffix, long long *out,
		  const char **why)
{
	const char *p = s;
	bool neg = false;
	unsigned long long v = 0;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!isdigit((unsigned char)*p)) {
		*why = "not an integer";
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (ULLONG_MAX - 9) / 10) {
			*why = "out of range";
			return -1;
		}
		v = v * 10 + (unsigned)(*p - '0');
	}
	unsigned long long mul = 1;
	if (*p && allow_suffix && !p[1]) {
		switch (*p) {
		case 'k':
		case 'K':
			mul = KIB;
			break;
		case 'm':
		case 'M':
			mul = MIB;
			break;
		case 'g':
		case 'G':
			mul = GIB;
			break;
		default:
			break;
		}
		if (mul != 1)
			p++;
	}
	if (*p) {
		*why =
		    allow_suffix ? "not an integer (optional suffix k, m or g)" : "not an integer";
		return -1;
	}
	if (v > (unsigned long long)LLONG_MAX / mul) {
		*why = "out of range";
		return -1;
	}
	long long n = (long long)(v * mul);
	if (neg)
		n = -n;
	if (n < min || n > max) {
		*why = "out of range";
		return -1;
	}
	*out = n;
	return 0;
}

int cfg_parse_bool(const char *s)
{
	static const char *const t[] = {"true", "yes", "on", "1"};
	static const char *const f[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(s, t[i]))
			return 1;
		if (!strcasecmp(s, f[i]))
			return 0;
	}
	return -1;
}

int contract_parse_int(const char *s, long long min, long long max, int allow_suffix,
		       long long *out, char *why, size_t whyn)
{
	const char *r;

	if (!cfg_parse_int(s, min, max, allow_suffix, out, &r))
		return 0;
	snprintf(why, whyn, "%s: \"%.40s\" (allowed %lld..%lld)", r, s, min, max);
	return -1;
}

int contract_parse_bool(const char *s, int *out, char *why, size_t whyn)
{
	int b = cfg_parse_bool(s);

	if (b < 0) {
		snprintf(why, whyn, "not a boolean (true/false, yes/no, on/off, 1/0)");
		return -1;
	}
	*out = b;
	return 0;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

int contract_has_suffix(const char *name)
{
	return ends_with(name, "_bytes");
}

/* Index of word in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *word)
{
	size_t wl = strlen(word);
	int i = 0;

	for (const char *p = choices; p; i++) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == wl && !strncmp(p, word, n))
			return i;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

int contract_parse_option(const struct fanout_option *o, const char *text, long long *num,
			  char *why, size_t whyn)
{
	switch (o->type) {
	case FANOUT_OPT_STRING:
		*num = 0;
		return 0;
	case FANOUT_OPT_INT:
		return contract_parse_int(text, o->min, o->max, contract_has_suffix(o->name), num,
					  why, whyn);
	case FANOUT_OPT_BOOL: {
		int b;
		if (contract_parse_bool(text, &b, why, whyn))
			return -1;
		*num = b;
		return 0;
	}
	case FANOUT_OPT_ENUM: {
		int i = o->choices ? enum_index(o->choices, text) : -1;
		if (i < 0) {
			snprintf(why, whyn, "\"%.40s\" is not one of %s", text,
				 o->choices ? o->choices : "(none)");
			return -1;
		}
		*num = i;
		return 0;
	}
	}
	snprintf(why, whyn, "unknown option type %d in plugin", (int)o->type);
	return -1;
}

/* ---- the exported table ------------------------------------------------ */

static bool key_chars_ok(const char *s)
{
	return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* One option entry; 0 or -1 with why. */
static int check_option(const struct fanout_option *opts, size_t i, char *why, size_t whyn)
{
	const struct fanout_option *o = &opts[i];
	char r[200];
	long long num;

	if (!key_chars_ok(o->name)) {
		snprintf(why, whyn, "option %zu: bad name \"%.40s\" (a-z, 0-9, '_')", i, o->name);
		return -1;
	}
	if (!strcmp(o->name, "plugin") || !strcmp(o->name, "channels")) {
		snprintf(why, whyn, "option %s: the name belongs to the host", o->name);
		return -1;
	}
	for (size_t j = 0; j < i; j++)
		if (!strcmp(opts[j].name, o->name)) {
			snprintf(why, whyn, "option %s: declared twice", o->name);
			return -1;
		}
	switch (o->type) {
	case FANOUT_OPT_STRING:
	case FANOUT_OPT_BOOL:
		break;
	case FANOUT_OPT_INT:
		if (o->min > o->max) {
			snprintf(why, whyn, "option %s: min %lld > max %lld", o->name, o->min,
				 o->max);
			return -1;
		}
		break;
	case FANOUT_OPT_ENUM:
		if (!o->choices || !*o->choices) {
			snprintf(why, whyn, "option %s: an enum without choices", o->name);
			return -1;
		}
		break;
	default:
		snprintf(why, whyn, "option %s: unknown type %d", o->name, (int)o->type);
		return -1;
	}
	if (o->def && contract_parse_option(o, o->def, &num, r, sizeof(r))) {
		snprintf(why, whyn, "option %s: bad default: %s", o->name, r);
		return -1;
	}
	return 0;
}

int contract_check_plugin(const struct fanout_plugin *p, char *why, size_t whyn)
{
	if (p->abi_major != FANOUT_ABI_MAJOR || p->abi_minor > FANOUT_ABI_MINOR) {
		snprintf(why, whyn,
			 "built for plugin ABI %u.%u, this fanoutd speaks %u.%u (needs major %u, "
			 "minor <= %u)",
			 p->abi_major, p->abi_minor, FANOUT_ABI_MAJOR, FANOUT_ABI_MINOR,
			 FANOUT_ABI_MAJOR, FANOUT_ABI_MINOR);
		return -1;
	}
	if (p->struct_size < CONTRACT_PLUGIN_MIN_SIZE) {
		snprintf(why, whyn, "plugin table too small (%u bytes, need %zu)", p->struct_size,
			 (size_t)CONTRACT_PLUGIN_MIN_SIZE);
		return -1;
	}
	const char *missing = !p->name	      ? "name"
			      : !p->version   ? "version"
			      : !p->init      ? "init"
			      : !p->start     ? "start"
			      : !p->subscribe ? "subscribe"
			      : !p->destroy   ? "destroy"
					      : NULL;
	if (missing) {
		snprintf(why, whyn, "mandatory field '%s' is NULL", missing);
		return -1;
	}
	for (size_t i = 0; p->options && p->options[i].name; i++)
		if (check_option(p->options, i, why, whyn))
			return -1;
	return 0;
}

/* ---- a section's keys -------------------------------------------------- */

const struct fanout_option *contract_find_option(const struct fanout_option *opts, const char *key)
{
	for (size_t i = 0; opts && opts[i].name; i++)
		if (!strcmp(opts[i].name, key))
			return &opts[i];
	return NULL;
}

int contract_values(const struct fanout_option *opts, const char *plugin_name,
		    const struct contract_kv *kv, size_t n, struct fanout_value **values,
		    contract_err_fn err, void *arg)
{
	size_t nopt = 0;
	int nerr = 0;
	char why[300];

	*values = NULL;
	while (opts && opts[nopt].name)
		nopt++;
	struct fanout_value *v = calloc(nopt + 1, sizeof(*v));
	if (!v) {
		err(arg, NULL, NULL, "out of memory");
		return 1;
	}
	for (size_t i = 0; i < nopt; i++) {
		v[i].str = opts[i].def;
		if (opts[i].def &&
		    contract_parse_option(&opts[i], opts[i].def, &v[i].num, why, sizeof(why))) {
			/* contract_check_plugin() refuses this before we get here */
			char msg[340];
			snprintf(msg, sizeof(msg), "plugin default: %s", why);
			err(arg, NULL, opts[i].name, msg);
			nerr++;
		}
	}
	for (size_t k = 0; k < n; k++) {
		const struct fanout_option *o = contract_find_option(opts, kv[k].key);
		if (!o) {
			snprintf(why, sizeof(why), "unknown key for plugin %s",
				 plugin_name ? plugin_name : "?");
			err(arg, &kv[k], kv[k].key, why);
			nerr++;
			continue;
		}
		size_t i = (size_t)(o - opts);
		if (contract_parse_option(o, kv[k].value, &v[i].num, why, sizeof(why))) {
			err(arg, &kv[k], kv[k].key, why);
			nerr++;
			continue;
		}
		v[i].str = kv[k].value;
		v[i].set = 1;
	}
	for (size_t i = 0; i < nopt; i++)
		if ((opts[i].flags & FANOUT_OPT_REQUIRED) && !v[i].set) {
			err(arg, NULL, opts[i].name, "required key missing");
			nerr++;
		}
	if (nerr) {
		free(v);
		return nerr;
	}
	*values = v;
	return 0;
}

int contract_is_secret(const struct fanout_option *o, const char *key)
{
	if (o && (o->flags & FANOUT_OPT_SECRET))
		return 1;
	return ends_with(key, "password") || ends_with(key, "secret") || ends_with(key, "token");
}

/* ---- help -------------------------------------------------------------- */

void contract_describe(const struct fanout_option *o, char *buf, size_t n)
{
	int w = 0;

	switch (o->type) {
	case FANOUT_OPT_STRING:
		w = snprintf(buf, n, "string");
		break;
	case FANOUT_OPT_INT:
		w = snprintf(buf, n, "integer %lld..%lld%s", o->min, o->max,
			     contract_has_suffix(o->name) ? " (k, m, g suffixes)" : "");
		break;
	case FANOUT_OPT_BOOL:
		w = snprintf(buf, n, "boolean");
		break;
	case FANOUT_OPT_ENUM:
		w = snprintf(buf, n, "one of %s", o->choices ? o->choices : "");
		break;
	default:
		w = snprintf(buf, n, "?");
		break;
	}
	if (w < 0 || (size_t)w >= n)
		return;
	if (o->flags & FANOUT_OPT_REQUIRED)
		snprintf(buf + w, n - (size_t)w, ", required");
	else if (o->def && *o->def)
		snprintf(buf + w, n - (size_t)w, ", default %s",
			 (o->flags & FANOUT_OPT_SECRET) ? "***" : o->def);
	else if (o->def)
		snprintf(buf + w, n - (size_t)w, ", default empty");
	else
		snprintf(buf + w, n - (size_t)w, ", no default");
}

/* Write s for roff: a leading '.' or '\'' escaped, '\\' and '-' escaped. */
static void roff_text(FILE *out, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", out);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
}

void contract_print_roff(const struct fanout_plugin *p, FILE *out)
{
	char d[300];

	if (!p->options || !p->options[0].name) {
		fputs("This backend has no options.\n", out);
		return;
	}
	for (const struct fanout_option *o = p->options; o->name; o++) {
		fputs(".TP\n.B ", out);
		roff_text(out, o->name);
		fputc('\n', out);
		contract_describe(o, d, sizeof(d));
		roff_text(out, d);
		fputs(".\n", out);
		if (o->help && *o->help) {
			fputs(".br\n", out);
			roff_text(out, o->help);
			fputc('\n', out);
		}
		if (o->flags & FANOUT_OPT_SECRET)
			fputs(".br\nSecret: never printed by\n.BR \"fanoutd \\-\\-check\\-config\" "
			      ".\n",
			      out);
	}
}
