/*
 * names.c — the nats backend's pure text functions (see names.h): subjects
 * from channels, the subject_prefix and url checks, JetStream stream
 * subjects from channel globs, epochs, a permissions-violation error and a
 * JetStream publish acknowledgement.
 *
 * Any thread; no state. nn_stream_subjects() allocates the list it returns
 * (nn_free_list frees it); nothing else here allocates except jansson's
 * parse of an acknowledgement, freed before returning.
 */
#include "names.h"

#include <fanout/plugin.h>

#include <jansson.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A byte allowed inside a subject token. */
static int subj_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '.';
}

int nn_subject_valid(const char *s, size_t len)
{
	size_t tok = 0; /* bytes in the current token */

	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (tok == 0)
				return 0;
			tok = 0;
			continue;
		}
		if (!subj_byte(c))
			return 0;
		/* A token that is exactly '*' or '>' is a wildcard. */
		if ((c == '*' || c == '>') && tok == 0 && (i + 1 == len || s[i + 1] == '.'))
			return 0;
		tok++;
	}
	return tok > 0;
}

int nn_check_prefix(const char *prefix, char *err, size_t errlen)
{
	size_t n = strlen(prefix);

	if (n == 0)
		return 0;
	/* A trailing '.' is the usual form ("app."); the rest must be a subject. */
	if (!nn_subject_valid(prefix, prefix[n - 1] == '.' ? n - 1 : n)) {
		snprintf(err, errlen,
			 "subject_prefix \"%s\": not a NATS subject prefix (tokens of printable "
			 "characters, no spaces, no '*' or '>' tokens, no empty token)",
			 prefix);
		return FANOUT_EINVAL;
	}
	return 0;
}

int nn_subject(const char *prefix, const char *channel, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", prefix, channel);

	if (n < 0 || (size_t)n >= cap || !nn_subject_valid(out, (size_t)n))
		return FANOUT_EINVAL;
	return 0;
}

const char *nn_channel(const char *prefix, size_t prefix_len, const char *subject)
{
	if (strncmp(subject, prefix, prefix_len) != 0 || subject[prefix_len] == 0)
		return NULL;
	return subject + prefix_len;
}

/* One server of the url list: [scheme://][userinfo@]host[:port]. */
static int check_server(const char *s, size_t n, int *tls, char *err, size_t errlen)
{
	const char *p = s, *end = s + n, *at, *host, *hend, *colon = NULL;
	const char *sep = NULL;

	for (const char *q = s; q + 2 < end; q++)
		if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
			sep = q;
			break;
		}
	if (sep) {
		size_t sl = (size_t)(sep - s);
		if (sl == 4 && strncasecmp(s, "nats", 4) == 0) {
		} else if (sl == 3 && strncasecmp(s, "tls", 3) == 0) {
			*tls = 1;
		} else {
			snprintf(err, errlen, "url \"%.*s\": scheme must be nats:// or tls://",
				 (int)n, s);
			return FANOUT_EINVAL;
		}
		p = sep + 3;
	}
	at = NULL;
	for (const char *q = p; q < end; q++) {
		if (*q == '/' || *q == '?' || *q == '#') {
			snprintf(err, errlen, "url \"%.*s\": no path or query after host:port",
				 (int)n, s);
			return FANOUT_EINVAL;
		}
		if (*q == '@')
			at = q;
	}
	host = at ? at + 1 : p;
	if (host == end) {
		snprintf(err, errlen, "url \"%.*s\": no host", (int)n, s);
		return FANOUT_EINVAL;
	}
	if (*host == '[') {
		hend = memchr(host, ']', (size_t)(end - host));
		if (!hend || hend == host + 1) {
			snprintf(err, errlen, "url \"%.*s\": unterminated [IPv6] host", (int)n, s);
			return FANOUT_EINVAL;
		}
		for (const char *q = host + 1; q < hend; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') {
				snprintf(err, errlen, "url \"%.*s\": bad IPv6 address", (int)n, s);
				return FANOUT_EINVAL;
			}
		hend++;
		if (hend < end && *hend != ':') {
			snprintf(err, errlen, "url \"%.*s\": junk after ]", (int)n, s);
			return FANOUT_EINVAL;
		}
		colon = hend < end ? hend : NULL;
	} else {
		for (hend = host; hend < end && *hend != ':'; hend++)
			if (!isalnum((unsigned char)*hend) && *hend != '.' && *hend != '-' &&
			    *hend != '_') {
				snprintf(err, errlen, "url \"%.*s\": bad character '%c' in host",
					 (int)n, s, isprint((unsigned char)*hend) ? *hend : '?');
				return FANOUT_EINVAL;
			}
		if (hend == host) {
			snprintf(err, errlen, "url \"%.*s\": no host", (int)n, s);
			return FANOUT_EINVAL;
		}
		colon = hend < end ? hend : NULL;
	}
	if (colon) {
		long port = 0;
		const char *q = colon + 1;
		if (q == end) {
			snprintf(err, errlen, "url \"%.*s\": empty port", (int)n, s);
			return FANOUT_EINVAL;
		}
		for (; q < end; q++) {
			if (!isdigit((unsigned char)*q) || port > 65535) {
				port = -1;
				break;
			}
			port = port * 10 + (*q - '0');
		}
		if (port < 1 || port > 65535) {
			snprintf(err, errlen, "url \"%.*s\": port must be 1-65535", (int)n, s);
			return FANOUT_EINVAL;
		}
	}
	return 0;
}

int nn_check_url(const char *url, int *tls, char *err, size_t errlen)
{
	const char *p = url;
	int servers = 0;

	*tls = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end == p) {
			snprintf(err, errlen, "url \"%s\": empty server in the list", url);
			return FANOUT_EINVAL;
		}
		for (const char *q = p; q < end; q++)
			if (isspace((unsigned char)*q) || !isprint((unsigned char)*q)) {
				snprintf(err, errlen, "url \"%s\": space or control character",
					 url);
				return FANOUT_EINVAL;
			}
		if (check_server(p, (size_t)(end - p), tls, err, errlen))
			return FANOUT_EINVAL;
		servers++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return servers ? 0 : FANOUT_EINVAL;
}

void nn_free_list(char **list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* The stream subject for one prefixed glob, into out; 0 or FANOUT_EINVAL. */
static int glob_subject(const char *full, char *out, size_t cap)
{
	size_t w = strcspn(full, "*?[\\");
	size_t n = strlen(full);

	if (w == n) {
		if (n >= cap || !nn_subject_valid(full, n))
			return FANOUT_EINVAL;
		memcpy(out, full, n + 1);
		return 0;
	}
	/* Keep the literal tokens before the first wildcard's token. */
	while (w > 0 && full[w - 1] != '.')
		w--;
	/* full[0, w - 1) must be whole tokens: "" or ".x" are not. */
	if (w < 2 || w + 2 > cap || !nn_subject_valid(full, w - 1))
		return FANOUT_EINVAL;
	memcpy(out, full, w);
	out[w] = '>';
	out[w + 1] = 0;
	return 0;
}

/* Does subject a (maybe ending in ".>") cover subject b? */
static int covers(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (strcmp(a, b) == 0)
		return 1;
	if (la >= 1 && a[la - 1] == '>' && (la == 1 || a[la - 2] == '.'))
		return strncmp(a, b, la - 1) == 0 && strlen(b) > la - 1;
	return 0;
}

int nn_stream_subjects(const char *prefix, const char *const *globs, size_t n, char ***out,
		       size_t *nout, char *err, size_t errlen)
{
	char **list = calloc(n ? n : 1, sizeof(*list));
	size_t k = 0;
	char full[NN_SUBJECT_MAX], subj[NN_SUBJECT_MAX];

	*out = NULL;
	*nout = 0;
	if (!list)
		return FANOUT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(full, sizeof(full), "%s%s", prefix, globs[i]);
		if (len < 0 || (size_t)len >= sizeof(full) ||
		    glob_subject(full, subj, sizeof(subj))) {
			snprintf(
			    err, errlen,
			    "channels glob \"%s\" cannot be a JetStream stream subject (with "
			    "subject_prefix \"%s\"): use exact names or globs like \"news.*\", "
			    "or set subject_prefix",
			    globs[i], prefix);
			nn_free_list(list, k);
			return FANOUT_EINVAL;
		}
		list[k] = strdup(subj);
		if (!list[k]) {
			nn_free_list(list, k);
			return FANOUT_ENOMEM;
		}
		k++;
	}
	/* Drop every subject another one covers (JetStream refuses overlaps). */
	for (size_t i = 0; i < k;) {
		int drop = 0;
		for (size_t j = 0; j < k && !drop; j++)
			if (j != i && covers(list[j], list[i]) &&
			    (strcmp(list[i], list[j]) != 0 || j < i))
				drop = 1;
		if (drop) {
			free(list[i]);
			list[i] = list[--k];
		} else {
			i++;
		}
	}
	*out = list;
	*nout = k;
	return 0;
}

int nn_sub_violation(const char *text, char *out, size_t cap)
{
	static const char key[] = "subscription to ";
	const char *p = NULL, *e;
	size_t n;

	if (!text || !strcasestr(text, "permissions violation"))
		return 0;
	for (const char *q = text; *q; q++)
		if (strncasecmp(q, key, sizeof(key) - 1) == 0) {
			p = q + sizeof(key) - 1;
			break;
		}
	if (!p)
		return 0;
	while (*p == ' ')
		p++;
	if (*p == '"' || *p == '\'') {
		char quote = *p++;
		e = strchr(p, quote);
		if (!e)
			e = p + strlen(p);
	} else {
		e = p;
		while (*e && !isspace((unsigned char)*e))
			e++;
	}
	n = (size_t)(e - p);
	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, p, n);
	out[n] = 0;
	return 1;
}

int nn_epoch(const char *created, char *out, size_t cap)
{
	size_t k = 0;

	for (const char *p = created; *p && k + 1 < cap && k < 64; p++)
		if (isalnum((unsigned char)*p))
			out[k++] = *p;
	if (cap)
		out[k < cap ? k : cap - 1] = 0;
	return k ? 0 : FANOUT_EINVAL;
}

int nn_u64(const char *s, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	if (len == 0 || len > 20)
		return FANOUT_EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return FANOUT_EINVAL;
		d = (unsigned)(s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return FANOUT_EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int nn_parse_puback(const char *json, size_t len, uint64_t *seq, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je), *e, *s;
	int rc = FANOUT_EINVAL;

	if (!root || !json_is_object(root)) {
		snprintf(err, errlen, "not a JetStream acknowledgement");
		goto out;
	}
	e = json_object_get(root, "error");
	if (e) {
		json_t *d = json_object_get(e, "description");
		snprintf(err, errlen, "JetStream refused the message: %s",
			 json_is_string(d) ? json_string_value(d) : "(no description)");
		rc = FANOUT_EIO;
		goto out;
	}
	s = json_object_get(root, "seq");
	if (!json_is_integer(s) || json_integer_value(s) <= 0 ||
	    !json_is_string(json_object_get(root, "stream"))) {
		snprintf(err, errlen, "JetStream acknowledgement without stream and seq");
		goto out;
	}
	*seq = (uint64_t)json_integer_value(s);
	rc = 0;
out:
	json_decref(root);
	return rc;
}
