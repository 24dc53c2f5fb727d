/*
 * trpc_proto.c — the tRPC v11 WebSocket wire protocol (trpc_proto.h):
 * client messages parsed with jansson (JSON_REJECT_DUPLICATES; the tree is
 * kept in the batch so inputs stay borrowed until trpc_batch_free()), the
 * [trpc] channel templates, and the server frames written by hand into the
 * caller's struct buf (strings escaped by json_append_string()). Pure
 * functions, usable from any thread; allocates only the batch (tree and
 * request array) and connectionParams' token copy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "trpc_proto.h"

static int fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copy a JSON string of at most max bytes into out (max + 1 bytes). */
static int copy_str(const json_t *v, char *out, size_t max)
{
	size_t n = json_string_length(v);
	if (n > max || memchr(json_string_value(v), 0, n))
		return -1;
	memcpy(out, json_string_value(v), n);
	out[n] = 0;
	return 0;
}

static int parse_one(json_t *o, struct trpc_req *r, char *why, size_t wn)
{
	if (!json_is_object(o))
		return fail(why, wn, "a request must be an object");
	memset(r, 0, sizeof(*r));
	json_t *id = json_object_get(o, "id");
	if (!id || json_is_null(id))
		r->id_null = 1;
	else if (proto_id_text(id, r->id))
		return fail(why, wn, "\"id\" must be null, a string or a number (at most %d bytes)",
			    PROTO_ID_MAX);
	json_t *jr = json_object_get(o, "jsonrpc");
	if (jr) {
		if (!json_is_string(jr) || strcmp(json_string_value(jr), "2.0"))
			return fail(why, wn, "\"jsonrpc\" must be \"2.0\"");
		r->jsonrpc = 1;
	}
	json_t *m = json_object_get(o, "method");
	const char *method = json_is_string(m) ? json_string_value(m) : "";
	if (!strcmp(method, "subscription.stop")) {
		r->method = TRPC_STOP;
		return 0;
	}
	if (!strcmp(method, "subscription"))
		r->method = TRPC_SUBSCRIPTION;
	else if (!strcmp(method, "query"))
		r->method = TRPC_QUERY;
	else if (!strcmp(method, "mutation"))
		r->method = TRPC_MUTATION;
	else
		return fail(why, wn,
			    "\"method\" must be subscription, subscription.stop, query or "
			    "mutation");
	json_t *params = json_object_get(o, "params");
	if (!json_is_object(params))
		return fail(why, wn, "\"params\" must be an object");
	json_t *path = json_object_get(params, "path");
	if (!json_is_string(path) || copy_str(path, r->path, TRPC_PATH_MAX))
		return fail(why, wn, "\"params.path\" must be a string of at most %d bytes",
			    TRPC_PATH_MAX);
	r->input = json_object_get(params, "input");
	json_t *last = json_object_get(params, "lastEventId");
	if (last && !json_is_null(last)) {
		if (!json_is_string(last) || copy_str(last, r->last_event_id, TRPC_EVENT_ID_MAX))
			return fail(why, wn,
				    "\"params.lastEventId\" must be a string of at most %d bytes",
				    TRPC_EVENT_ID_MAX);
	} else if (json_is_object(r->input)) {
		/* @trpc/server merges lastEventId into the input: a client may
		 * also resume by putting it there itself. */
		json_t *il = json_object_get(r->input, "lastEventId");
		if (json_is_string(il))
			copy_str(il, r->last_event_id, TRPC_EVENT_ID_MAX);
	}
	return 0;
}

int trpc_parse(const char *p, size_t len, struct trpc_batch *b, char *why, size_t wn)
{
	json_error_t je;
	memset(b, 0, sizeof(*b));
	json_t *root = json_loadb(p, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return fail(why, wn, "not JSON: %s", je.text);
	size_t n = json_is_array(root) ? json_array_size(root) : 1;
	if (!json_is_array(root) && !json_is_object(root)) {
		json_decref(root);
		return fail(why, wn, "a message must be an object or an array of objects");
	}
	if (n == 0 || n > TRPC_BATCH_MAX) {
		json_decref(root);
		return fail(why, wn, "a batch holds 1 to %d requests", TRPC_BATCH_MAX);
	}
	b->reqs = calloc(n, sizeof(*b->reqs));
	if (!b->reqs) {
		json_decref(root);
		return fail(why, wn, "out of memory");
	}
	b->root = root;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_is_array(root) ? json_array_get(root, i) : root;
		if (parse_one(o, &b->reqs[i], why, wn)) {
			trpc_batch_free(b);
			return -1;
		}
	}
	b->n = n;
	return 0;
}

void trpc_batch_free(struct trpc_batch *b)
{
	json_decref(b->root);
	free(b->reqs);
	memset(b, 0, sizeof(*b));
}

int trpc_parse_params(const char *p, size_t len, char **token, char *why, size_t wn)
{
	json_error_t je;
	*token = NULL;
	json_t *o = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return fail(why, wn, "connectionParams: not a JSON object: %s", je.text);
	json_t *m = json_object_get(o, "method");
	json_t *data = json_object_get(o, "data");
	int rc = 0;
	if (!json_is_string(m) || strcmp(json_string_value(m), "connectionParams"))
		rc = fail(why, wn, "expected {\"method\":\"connectionParams\",\"data\":{…}} first");
	else if (!json_is_object(data) && !json_is_null(data))
		rc = fail(why, wn,
			  "Invalid connection params shape: \"data\" must be an object or null");
	else if (json_is_object(data)) {
		/* @trpc/server's parseConnectionParamsFromUnknown: string values only */
		const char *k;
		json_t *v;
		json_object_foreach(data, k, v)
		{
			if (!json_is_string(v)) {
				rc = fail(why, wn,
					  "Invalid connection params shape: %.64s is not a string",
					  k);
				break;
			}
		}
	}
	if (!rc && json_is_object(data) && json_is_string(json_object_get(data, "token"))) {
		json_t *t = json_object_get(data, "token");
		*token = strndup(json_string_value(t), json_string_length(t));
		if (!*token)
			rc = fail(why, wn, "out of memory");
	}
	json_decref(o);
	return rc;
}

/* ---- templates ---- */

static int channel_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '/' || c == '-';
}

static int name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* tpl[i] is '{': the length of a valid {input.A.B} placeholder, or 0. */
static size_t placeholder(const char *tpl, size_t i)
{
	static const char pre[] = "{input.";
	if (strncmp(tpl + i, pre, sizeof(pre) - 1))
		return 0;
	size_t j = i + sizeof(pre) - 1, start = j;
	while (name_char(tpl[j]) || (tpl[j] == '.' && j > start && tpl[j - 1] != '.'))
		j++;
	if (tpl[j] != '}' || j == start || tpl[j - 1] == '.')
		return 0;
	return j + 1 - i;
}

int trpc_template_check(const char *tpl, const char **why)
{
	size_t fixed = 0;
	if (!*tpl) {
		*why = "empty channel template";
		return -1;
	}
	for (size_t i = 0; tpl[i];) {
		if (tpl[i] == '{') {
			size_t n = placeholder(tpl, i);
			if (!n) {
				*why = "bad placeholder (expected {input.FIELD}, FIELD: names of "
				       "[A-Za-z0-9_-] joined by '.')";
				return -1;
			}
			i += n;
			continue;
		}
		if (!channel_char(tpl[i])) {
			*why = "a channel template holds [A-Za-z0-9_.:/-] and {input.FIELD}";
			return -1;
		}
		fixed++;
		i++;
	}
	if (fixed > PROTO_CHANNEL_MAX) {
		*why = "channel template longer than a channel name (200 bytes)";
		return -1;
	}
	return 0;
}

/* The value of input at the dotted path f[0..n), or NULL. */
static const json_t *field(const json_t *input, const char *f, size_t n)
{
	char name[PROTO_CHANNEL_MAX + 1];
	const json_t *v = input;
	while (n) {
		const char *dot = memchr(f, '.', n);
		size_t k = dot ? (size_t)(dot - f) : n;
		if (!json_is_object(v) || k >= sizeof(name))
			return NULL;
		memcpy(name, f, k);
		name[k] = 0;
		v = json_object_get(v, name);
		f += k;
		n -= k;
		if (dot) {
			f++;
			n--;
		}
	}
	return v;
}

int trpc_template_expand(const char *tpl, const struct json_t *input, char *out, char *why,
			 size_t wn)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; tpl[i];) {
		size_t n = tpl[i] == '{' ? placeholder(tpl, i) : 0;
		if (!n) {
			buf_putc(&b, tpl[i++]);
			continue;
		}
		const char *f = tpl + i + 7; /* after "{input." */
		size_t fn = n - 8;
		const json_t *v = field(input, f, fn);
		if (json_is_string(v)) {
			buf_append(&b, json_string_value(v), json_string_length(v));
		} else if (json_is_integer(v)) {
			buf_printf(&b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		} else {
			buf_free(&b);
			return fail(why, wn, "input.%.*s must be a string or an integer", (int)fn,
				    f);
		}
		i += n;
	}
	int rc = 0;
	if (b.oom)
		rc = fail(why, wn, "out of memory");
	else if (!proto_channel_valid(buf_data(&b), b.len))
		rc = fail(why, wn,
			  "the channel from this input is not a valid channel name (1-200 bytes "
			  "of [A-Za-z0-9_.:/-])");
	else {
		memcpy(out, buf_data(&b), b.len);
		out[b.len] = 0;
	}
	buf_free(&b);
	return rc;
}

/* ---- frames ---- */

static int done(struct buf *out)
{
	return out->oom ? -1 : 0;
}

int trpc_head(struct buf *out, const char *id, int id_null, int jsonrpc)
{
	buf_puts(out, "{\"id\":");
	buf_puts(out, id_null || !id || !*id ? "null" : id);
	buf_puts(out, jsonrpc ? ",\"jsonrpc\":\"2.0\"," : ",");
	return done(out);
}

int trpc_started_body(struct buf *out)
{
	buf_puts(out, "\"result\":{\"type\":\"started\"}}");
	return done(out);
}

int trpc_stopped_body(struct buf *out)
{
	buf_puts(out, "\"result\":{\"type\":\"stopped\"}}");
	return done(out);
}

int trpc_data_body(struct buf *out, const char *epoch, uint64_t offset, const char *json,
		   size_t len)
{
	buf_reserve(out, len + 64 + (epoch ? 2 * strlen(epoch) : 0));
	if (epoch) {
		char id[128]; /* an epoch is at most 64 bytes of [A-Za-z0-9_-] */
		int n = snprintf(id, sizeof(id), "%s:%llu", epoch, (unsigned long long)offset);
		size_t idn = n < 0 ? 0 : (size_t)n < sizeof(id) ? (size_t)n : sizeof(id) - 1;
		buf_puts(out, "\"result\":{\"type\":\"data\",\"id\":");
		json_append_string(out, id, idn, NULL);
		buf_puts(out, ",\"data\":{\"id\":");
		json_append_string(out, id, idn, NULL);
		buf_puts(out, ",\"data\":");
		buf_append(out, json, len);
		buf_puts(out, "}}}");
	} else {
		buf_puts(out, "\"result\":{\"type\":\"data\",\"data\":");
		buf_append(out, json, len);
		buf_puts(out, "}}");
	}
	return done(out);
}

static const struct {
	const char *name;
	int code, http;
} codes[TRPC__CODES] = {
    [TRPC_PARSE_ERROR] = {"PARSE_ERROR", -32700, 400},
    [TRPC_BAD_REQUEST] = {"BAD_REQUEST", -32600, 400},
    [TRPC_UNAUTHORIZED] = {"UNAUTHORIZED", -32001, 401},
    [TRPC_FORBIDDEN] = {"FORBIDDEN", -32003, 403},
    [TRPC_NOT_FOUND] = {"NOT_FOUND", -32004, 404},
    [TRPC_PRECONDITION_FAILED] = {"PRECONDITION_FAILED", -32012, 412},
    [TRPC_TOO_MANY_REQUESTS] = {"TOO_MANY_REQUESTS", -32029, 429},
    [TRPC_INTERNAL_SERVER_ERROR] = {"INTERNAL_SERVER_ERROR", -32603, 500},
    [TRPC_SERVICE_UNAVAILABLE] = {"SERVICE_UNAVAILABLE", -32603, 503},
};

const char *trpc_code_name(enum trpc_code c)
{
	return codes[c].name;
}

enum trpc_code trpc_code_from_proto(const char *c)
{
	if (!strcmp(c, PROTO_E_FORBIDDEN))
		return TRPC_FORBIDDEN;
	if (!strcmp(c, PROTO_E_NO_BACKEND))
		return TRPC_NOT_FOUND;
	if (!strcmp(c, PROTO_E_TOO_MANY_SUBS) || !strcmp(c, "rate_limited"))
		return TRPC_TOO_MANY_REQUESTS;
	if (!strcmp(c, PROTO_E_BACKEND_UNAVAIL))
		return TRPC_SERVICE_UNAVAILABLE;
	if (!strcmp(c, PROTO_E_BAD_JSON))
		return TRPC_PARSE_ERROR;
	return TRPC_BAD_REQUEST; /* bad_request, bad_channel, unknown_type */
}

int trpc_error_body(struct buf *out, enum trpc_code c, const char *message, const char *path)
{
	buf_puts(out, "\"error\":{\"message\":");
	json_append_string(out, message, strlen(message), NULL);
	buf_printf(out, ",\"code\":%d,\"data\":{\"code\":\"%s\",\"httpStatus\":%d", codes[c].code,
		   codes[c].name, codes[c].http);
	if (path) {
		buf_puts(out, ",\"path\":");
		json_append_string(out, path, strlen(path), NULL);
	}
	buf_puts(out, "}}}");
	return done(out);
}

int trpc_reconnect(struct buf *out)
{
	buf_puts(out, "{\"id\":null,\"method\":\"reconnect\"}");
	return done(out);
}
