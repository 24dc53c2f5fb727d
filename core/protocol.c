/*
 * protocol.c — client protocol v1 and v1.1 (DESIGN.md, protocol.h): parses client
 * text frames into struct proto_request and writes every server frame.
 * Pure functions, no I/O; called on the loop thread by the ws sessions, but
 * usable from any thread.
 *
 * Parsing uses jansson (json_loadb with JSON_REJECT_DUPLICATES): the tree is
 * freed before proto_parse() returns; the only allocation handed out is a
 * publish request's req->data (compact JSON text of "data", freed by
 * proto_request_clear()). proto_query_channels() allocates one scratch copy
 * of the query and frees it. Server frames are written by hand into the
 * caller's struct buf (no jansson on the send path), strings escaped by
 * json_append_string(); the field order is always type, id (when present),
 * then the rest.
 *
 * Decisions: the frame is checked for UTF-8 before JSON, so invalid UTF-8
 * is reported as such; an "id" is echoed as its compact JSON text (strings
 * re-escaped by json_append_string(), integers in decimal, reals in the
 * shortest form that reads back to the same double, so 1e5 comes back as
 * 100000 and 0.1 as 0.1); "id": null is a bad_request. jansson rejects lone
 * surrogates in \u escapes (bad_json) and integers beyond 64 bits (valid
 * JSON, so a bad_request "number out of range"). "\u0000" in strings is
 * accepted (JSON_ALLOW_NUL) and can only reach the backend inside "data".
 * v1.1: "since" on subscribe (parse_since), positions on subscribed,
 * published, message and gap frames (put_pos).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <fanout/plugin.h>

#include "protocol.h"

static void set_err(struct proto_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct proto_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	/* jansson quotes input near the error and the message may be cut short:
	 * cut back to whole UTF-8 characters so the error frame carries no U+FFFD. */
	size_t n = strlen(err->message);
	while (n && !utf8_valid(err->message, n))
		n--;
	err->message[n] = '\0';
}

int proto_epoch_valid(const char *s, size_t len)
{
	/* [A-Za-z0-9_-] */
	static const unsigned char ok[256] = {
	    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['0' ... '9'] = 1, ['_'] = 1, ['-'] = 1,
	};

	if (!s || len < 1 || len > PROTO_EPOCH_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!ok[(unsigned char)s[i]])
			return 0;
	return 1;
}

int proto_position_parse(const char *s, size_t len, struct proto_since *out)
{
	size_t colon = 0;
	uint64_t v = 0;

	while (colon < len && s[colon] != ':')
		colon++;
	if (colon == len || !proto_epoch_valid(s, colon))
		return -1;
	size_t nd = len - colon - 1;
	const char *d = s + colon + 1;
	if (nd < 1 || nd > 16 || (nd > 1 && d[0] == '0'))
		return -1;
	for (size_t i = 0; i < nd; i++) {
		if (d[i] < '0' || d[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(d[i] - '0');
	}
	if (v > PROTO_OFFSET_MAX)
		return -1;
	memset(out, 0, sizeof(*out));
	out->set = 1;
	memcpy(out->epoch, s, colon);
	out->epoch[colon] = '\0';
	out->offset = v;
	return 0;
}

int proto_channel_valid(const char *s, size_t len)
{
	/* [A-Za-z0-9_.:/-] */
	static const unsigned char ok[256] = {
	    ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['0' ... '9'] = 1, ['_'] = 1,
	    ['.'] = 1,	       [':'] = 1,	  ['/'] = 1,	     ['-'] = 1,
	};

	if (!s || len < 1 || len > PROTO_CHANNEL_MAX)
		return 0;
	if (len >= 2 && s[0] == '_' && s[1] == '_')
		return 0; /* reserved for backends' internal channels */
	for (size_t i = 0; i < len; i++)
		if (!ok[(unsigned char)s[i]])
			return 0;
	return 1;
}

int proto_id_text(const json_t *id, char *out)
{
	char tmp[64];
	int n = -1;

	if (json_is_integer(id)) {
		n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
	} else if (json_is_real(id)) {
		double v = json_real_value(id);
		/* Shortest of %.15g..%.17g that reads back as the same double. */
		for (int prec = 15; prec <= 17; prec++) {
			n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	} else if (json_is_string(id)) {
		struct buf b;
		buf_init(&b, 0);
		if (json_append_string(&b, json_string_value(id), json_string_length(id), NULL) ||
		    b.len > PROTO_ID_MAX) {
			buf_free(&b);
			return -1;
		}
		memcpy(out, buf_data(&b), b.len + 1);
		buf_free(&b);
		return 0;
	} else {
		return -1;
	}
	if (n < 0 || (size_t)n > PROTO_ID_MAX)
		return -1;
	memcpy(out, tmp, (size_t)n + 1);
	return 0;
}

static int dump_cb(const char *p, size_t n, void *arg)
{
	return buf_append(arg, p, n) ? -1 : 0;
}

static int str_is(const json_t *s, const char *lit)
{
	size_t n = strlen(lit);
	return json_string_length(s) == n && !memcmp(json_string_value(s), lit, n);
}

/* ---- the raw text of a top-level member ---- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* s[i] is '"': index after the closing quote. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i + 1;
	}
	return n;
}

static size_t skip_value(const char *s, size_t n, size_t i)
{
	if (i < n && s[i] == '"')
		return skip_string(s, n, i);
	if (i < n && (s[i] == '{' || s[i] == '[')) {
		int depth = 0;
		while (i < n) {
			char c = s[i];
			if (c == '"') {
				i = skip_string(s, n, i);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if (c == '}' || c == ']')
				if (--depth == 0)
					return i + 1;
			i++;
		}
		return n;
	}
	while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
	       s[i] != '\n' && s[i] != '\r')
		i++;
	return i;
}

/*
 * Find the raw JSON text of member `key` of the top-level object in s
 * (already checked by json_valid(), duplicates already refused). Returns 1
 * and the span, or 0 (absent, or the key is written with escapes — the
 * caller then falls back to re-encoding). Keeping the client's own bytes
 * means a publish reaches subscribers exactly as written (1.10 stays 1.10).
 */
static int raw_member(const char *s, size_t n, const char *key, size_t *off, size_t *len)
{
	size_t klen = strlen(key), i = skip_ws(s, n, 0);
	if (i >= n || s[i] != '{')
		return 0;
	i = skip_ws(s, n, i + 1);
	while (i < n && s[i] == '"') {
		size_t kend = skip_string(s, n, i);
		int match = kend - i - 2 == klen && !memcmp(s + i + 1, key, klen);
		i = skip_ws(s, n, kend);
		if (i >= n || s[i] != ':')
			return 0;
		i = skip_ws(s, n, i + 1);
		size_t vend = skip_value(s, n, i);
		if (match) {
			*off = i;
			*len = vend - i;
			return 1;
		}
		i = skip_ws(s, n, vend);
		if (i < n && s[i] == ',')
			i = skip_ws(s, n, i + 1);
		else
			break;
	}
	return 0;
}

#define MSG_OFFSET "since.offset must be an integer from 0 to 9007199254740991"

/* "since" of a subscribe: absent or null, or {"epoch":E,"offset":N}. */
static int parse_since(const json_t *since, struct proto_request *req, struct proto_error *err)
{
	if (!since || json_is_null(since))
		return 0;
	if (!json_is_object(since)) {
		set_err(err, PROTO_E_BAD_REQUEST,
			"since must be an object {\"epoch\":string,\"offset\":integer}");
		return -1;
	}
	json_t *e = json_object_get(since, "epoch"), *o = json_object_get(since, "offset");
	if (!json_is_string(e) || !proto_epoch_valid(json_string_value(e), json_string_length(e))) {
		set_err(err, PROTO_E_BAD_REQUEST,
			"since.epoch must be 1-64 bytes of [A-Za-z0-9_-]");
		return -1;
	}
	/* A real (41.0, 1e3) is refused like 41.5: offsets are integers. */
	if (!json_is_integer(o) || json_integer_value(o) < 0 ||
	    (uint64_t)json_integer_value(o) > PROTO_OFFSET_MAX) {
		set_err(err, PROTO_E_BAD_REQUEST, MSG_OFFSET);
		return -1;
	}
	req->since.set = 1;
	memcpy(req->since.epoch, json_string_value(e), json_string_length(e) + 1);
	req->since.offset = (uint64_t)json_integer_value(o);
	return 0;
}

/* implied: -1 to read "type" from the frame, else the request type of a
 * body that has none (the HTTP publish API). */
static int parse(const char *frame, size_t len, struct proto_request *req, struct proto_error *err,
		 int implied)
{
	json_t *root = NULL;
	json_error_t jerr;
	struct buf data;

	memset(req, 0, sizeof(*req));
	memset(err, 0, sizeof(*err));
	buf_init(&data, 0);

	if (!frame || !utf8_valid(frame, len)) {
		set_err(err, PROTO_E_BAD_JSON, "invalid UTF-8");
		goto fail;
	}
	/* json_valid() first: jansson alone lets a raw NUL byte end the text
	 * ("{...}\0" and even "[1\0]" load). */
	int valid = json_valid(frame, len);
	root = json_loadb(frame, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
			  &jerr);
	if (!root && valid && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* Valid JSON (RFC 8259 sets no limit) with a number jansson cannot
		 * hold: the request is wrong, not the JSON. */
		set_err(err, PROTO_E_BAD_REQUEST, "number out of range at byte %d", jerr.position);
		goto fail;
	}
	if (!root) {
		set_err(err, PROTO_E_BAD_JSON, "invalid JSON at byte %d: %.100s", jerr.position,
			jerr.text);
		goto fail;
	}
	if (!valid) {
		set_err(err, PROTO_E_BAD_JSON, "invalid JSON");
		goto fail;
	}
	if (!json_is_object(root)) {
		set_err(err, PROTO_E_BAD_JSON, "frame must be a JSON object");
		goto fail;
	}

	json_t *id = json_object_get(root, "id");
	if (id) {
		if (proto_id_text(id, req->id)) {
			set_err(err, PROTO_E_BAD_REQUEST,
				"id must be a string or number of at most %d bytes", PROTO_ID_MAX);
			goto fail;
		}
		memcpy(err->id, req->id, sizeof(err->id));
	}

	json_t *type = json_object_get(root, "type");
	if (implied >= 0) {
		req->type = (enum proto_type)implied;
	} else if (!json_is_string(type)) {
		set_err(err, PROTO_E_BAD_REQUEST, "type must be a string");
		goto fail;
	} else if (str_is(type, "subscribe")) {
		req->type = PROTO_SUBSCRIBE;
	} else if (str_is(type, "unsubscribe")) {
		req->type = PROTO_UNSUBSCRIBE;
	} else if (str_is(type, "publish")) {
		req->type = PROTO_PUBLISH;
	} else if (str_is(type, "ping")) {
		req->type = PROTO_PING;
	} else if (str_is(type, "auth")) {
		req->type = PROTO_AUTH;
	} else {
		set_err(err, PROTO_E_UNKNOWN_TYPE,
			"unknown type; expected subscribe, unsubscribe, publish, ping or auth");
		goto fail;
	}
	if (req->type == PROTO_PING)
		goto done;
	if (req->type == PROTO_AUTH) {
		json_t *tok = json_object_get(root, "token");
		size_t tl = json_is_string(tok) ? json_string_length(tok) : 0;
		if (!tl || tl > PROTO_TOKEN_MAX) {
			set_err(err, PROTO_E_BAD_REQUEST, "auth needs a token of 1-%d bytes",
				PROTO_TOKEN_MAX);
			goto fail;
		}
		if (!(req->token = strndup(json_string_value(tok), tl))) {
			set_err(err, PROTO_E_BAD_REQUEST, "out of memory");
			goto fail;
		}
		req->token_len = tl;
		goto done;
	}

	json_t *ch = json_object_get(root, "channel");
	if (!json_is_string(ch)) {
		set_err(err, PROTO_E_BAD_REQUEST, "channel must be a string");
		goto fail;
	}
	if (!proto_channel_valid(json_string_value(ch), json_string_length(ch))) {
		set_err(err, PROTO_E_BAD_CHANNEL, PROTO_CHANNEL_RULE);
		goto fail;
	}
	memcpy(req->channel, json_string_value(ch), json_string_length(ch));
	req->channel[json_string_length(ch)] = '\0';

	if (req->type == PROTO_SUBSCRIBE && parse_since(json_object_get(root, "since"), req, err))
		goto fail;

	if (req->type == PROTO_PUBLISH) {
		json_t *d = json_object_get(root, "data");
		if (!d) {
			set_err(err, PROTO_E_BAD_REQUEST, "publish needs data");
			goto fail;
		}
		size_t off, dlen;
		if (raw_member(frame, len, "data", &off, &dlen)) {
			if (buf_append(&data, frame + off, dlen)) {
				set_err(err, PROTO_E_BAD_REQUEST,
					"cannot copy data (out of memory)");
				goto fail;
			}
		} else if (json_dump_callback(d, dump_cb, &data, JSON_COMPACT | JSON_ENCODE_ANY) ||
			   buf_reserve(&data, 1)) {
			set_err(err, PROTO_E_BAD_REQUEST, "cannot encode data (out of memory)");
			goto fail;
		}
		req->data_len = data.len;
		req->data = buf_steal(&data);
	}
done:
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	buf_free(&data);
	proto_request_clear(req);
	return -1;
}

int proto_parse(const char *frame, size_t len, struct proto_request *req, struct proto_error *err)
{
	return parse(frame, len, req, err, -1);
}

int proto_parse_publish_body(const char *body, size_t len, struct proto_request *req,
			     struct proto_error *err)
{
	return parse(body, len, req, err, PROTO_PUBLISH);
}

void proto_request_clear(struct proto_request *req)
{
	free(req->data);
	req->data = NULL;
	req->data_len = 0;
	free(req->token);
	req->token = NULL;
	req->token_len = 0;
}

/* ---- ws upgrade query ---- */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode s[0..n) (%XX, '+') into out; returns the decoded length or -1. */
static long pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			out[o++] = (char)(h << 4 | l);
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (long)o;
}

int proto_query_channels(const char *query, size_t len,
			 int (*cb)(void *arg, const char *channel, size_t len), void *arg)
{
	char *scratch = NULL;
	int rc = 0;

	if (!query || !len)
		return 0;
	scratch = malloc(len + 1);
	if (!scratch)
		return FANOUT_ENOMEM;

	/* Two passes: nothing reaches cb unless the whole query decodes. */
	for (int pass = 0; pass < 2; pass++) {
		size_t i = 0;
		while (i <= len) {
			size_t j = i;
			while (j < len && query[j] != '&')
				j++;
			const char *part = query + i;
			size_t plen = j - i, klen = 0;
			while (klen < plen && part[klen] != '=')
				klen++;
			long kd = plen ? pct_decode(part, klen, scratch) : 0;
			if (kd < 0) {
				rc = -1;
				goto out;
			}
			int is_channel = kd == 7 && !memcmp(scratch, "channel", 7);
			const char *v = klen < plen ? part + klen + 1 : part + plen;
			size_t vlen = klen < plen ? plen - klen - 1 : 0;
			long vd = pct_decode(v, vlen, scratch);
			if (vd < 0) {
				rc = -1;
				goto out;
			}
			if (pass == 1 && plen && is_channel) {
				rc = cb(arg, scratch, (size_t)vd);
				if (rc)
					goto out;
			}
			i = j + 1;
		}
	}
out:
	free(scratch);
	return rc;
}

const char *proto_query_subscription(const char *v, size_t len, char *channel,
				     struct proto_since *since, const char **why)
{
	size_t at = 0;
	while (at < len && v[at] != '@')
		at++;
	memset(since, 0, sizeof(*since));
	if (!proto_channel_valid(v, at)) {
		*why = PROTO_CHANNEL_RULE;
		return PROTO_E_BAD_CHANNEL;
	}
	if (at < len && proto_position_parse(v + at + 1, len - at - 1, since)) {
		*why = "channel=NAME@EPOCH:OFFSET: the position must be an epoch of 1-64 "
		       "[A-Za-z0-9_-], ':' and an offset from 0 to 9007199254740991";
		return PROTO_E_BAD_REQUEST;
	}
	memcpy(channel, v, at);
	channel[at] = '\0';
	return NULL;
}

/* ---- server frames ---- */

static void put_str(struct buf *out, const char *s)
{
	json_append_string(out, s ? s : "", s ? strlen(s) : 0, NULL);
}

/* ,"id":ID when id is set. id is the compact JSON text from proto_parse();
 * anything else is written as a JSON string, so the frame stays valid. */
static void put_id(struct buf *out, const char *id)
{
	if (!id || !*id)
		return;
	buf_puts(out, ",\"id\":");
	size_t n = strlen(id);
	if (json_valid(id, n))
		buf_append(out, id, n);
	else
		json_append_string(out, id, n, NULL);
}

static int finish(struct buf *out)
{
	return out->oom ? FANOUT_ENOMEM : 0;
}

int proto_hello(struct buf *out, const char *instance, const char *version)
{
	buf_puts(out, "{\"type\":\"hello\",\"instance\":");
	put_str(out, instance);
	buf_puts(out, ",\"version\":");
	put_str(out, version ? version : PROTO_VERSION);
	buf_putc(out, '}');
	return finish(out);
}

int proto_ack(struct buf *out, const char *type, const char *id, const char *channel)
{
	buf_puts(out, "{\"type\":");
	put_str(out, type);
	put_id(out, id);
	if (channel) {
		buf_puts(out, ",\"channel\":");
		put_str(out, channel);
	}
	buf_putc(out, '}');
	return finish(out);
}

int proto_pong(struct buf *out, const char *id)
{
	buf_puts(out, "{\"type\":\"pong\"");
	put_id(out, id);
	buf_putc(out, '}');
	return finish(out);
}

int proto_error_frame(struct buf *out, const char *id, const char *code, const char *message)
{
	buf_puts(out, "{\"type\":\"error\"");
	put_id(out, id);
	buf_puts(out, ",\"code\":");
	put_str(out, code);
	buf_puts(out, ",\"message\":");
	put_str(out, message);
	buf_putc(out, '}');
	return finish(out);
}

int proto_gap(struct buf *out, const char *channel, const char *reason)
{
	buf_puts(out, "{\"type\":\"gap\",\"channel\":");
	put_str(out, channel);
	buf_puts(out, ",\"reason\":");
	put_str(out, reason);
	buf_putc(out, '}');
	return finish(out);
}

/* ,"epoch":E,"offset":N when epoch is set. */
static void put_pos(struct buf *out, const char *epoch, uint64_t offset)
{
	if (!epoch)
		return;
	buf_puts(out, ",\"epoch\":");
	put_str(out, epoch);
	buf_printf(out, ",\"offset\":%llu", (unsigned long long)offset);
}

int proto_subscribed(struct buf *out, const char *id, const char *channel, const char *epoch,
		     uint64_t offset, int recovered)
{
	buf_puts(out, "{\"type\":\"subscribed\"");
	put_id(out, id);
	buf_puts(out, ",\"channel\":");
	put_str(out, channel);
	put_pos(out, epoch, offset);
	if (recovered >= 0)
		buf_puts(out, recovered ? ",\"recovered\":true" : ",\"recovered\":false");
	buf_putc(out, '}');
	return finish(out);
}

int proto_published(struct buf *out, const char *id, const char *channel, const char *epoch,
		    uint64_t offset)
{
	buf_puts(out, "{\"type\":\"published\"");
	put_id(out, id);
	buf_puts(out, ",\"channel\":");
	put_str(out, channel);
	put_pos(out, epoch, offset);
	buf_putc(out, '}');
	return finish(out);
}

int proto_gap_at(struct buf *out, const char *channel, const char *reason, const char *epoch,
		 uint64_t offset)
{
	buf_puts(out, "{\"type\":\"gap\",\"channel\":");
	put_str(out, channel);
	buf_puts(out, ",\"reason\":");
	put_str(out, reason);
	put_pos(out, epoch, offset);
	buf_putc(out, '}');
	return finish(out);
}

int proto_message(struct buf *out, const char *channel, const char *instance, const char *payload,
		  size_t len, int *replaced)
{
	return proto_message_at(out, channel, instance, 0, 0, payload, len, replaced);
}

int proto_message_at(struct buf *out, const char *channel, const char *instance, int has_offset,
		     uint64_t offset, const char *payload, size_t len, int *replaced)
{
	if (replaced)
		*replaced = 0;
	/* One reservation for the whole frame in the common (raw JSON) case. */
	buf_reserve(out,
		    len + 64 + (channel ? strlen(channel) : 0) + (instance ? strlen(instance) : 0));
	buf_puts(out, "{\"type\":\"message\",\"channel\":");
	put_str(out, channel);
	buf_puts(out, ",\"instance\":");
	put_str(out, instance);
	if (has_offset)
		buf_printf(out, ",\"offset\":%llu", (unsigned long long)offset);
	buf_puts(out, ",\"data\":");
	if (len && json_valid(payload, len))
		buf_append(out, payload, len);
	else
		json_append_string(out, payload ? payload : "", payload ? len : 0, replaced);
	buf_putc(out, '}');
	return finish(out);
}

int proto_message_data(const char *f, size_t n, size_t *off, size_t *dlen, uint64_t *offset)
{
	static const char head[] = "{\"type\":\"message\"";
	size_t i = sizeof(head) - 1;

	*offset = 0;
	if (n < i + 2 || memcmp(f, head, i) || f[n - 1] != '}')
		return -1;
	/* Members as proto_message() writes them: no whitespace, "data" last. */
	while (i < n && f[i] == ',' && i + 1 < n && f[i + 1] == '"') {
		size_t k = i + 1, kend = skip_string(f, n, k);
		if (kend >= n || f[kend] != ':')
			return -1;
		size_t v = kend + 1, klen = kend - k - 2;
		if (klen == 4 && !memcmp(f + k + 1, "data", 4)) {
			if (v >= n - 1)
				return -1;
			*off = v;
			*dlen = n - 1 - v;
			return 0;
		}
		if (klen == 6 && !memcmp(f + k + 1, "offset", 6)) {
			uint64_t x = 0;
			size_t d = v;
			for (; d < n && f[d] >= '0' && f[d] <= '9' && d - v < 19; d++)
				x = x * 10 + (uint64_t)(f[d] - '0');
			if (d == v)
				return -1;
			*offset = x;
			i = d;
			continue;
		}
		if (v >= n || f[v] != '"')
			return -1; /* the other members are strings */
		i = skip_string(f, n, v);
	}
	return -1;
}

int proto_gap_position(const char *f, size_t n, struct proto_since *pos)
{
	json_t *o = json_loadb(f, n, 0, NULL);
	json_t *e = json_object_get(o, "epoch"), *off = json_object_get(o, "offset");
	int rc = -1;
	if (json_is_string(e) && json_is_integer(off) && json_integer_value(off) >= 0 &&
	    (uint64_t)json_integer_value(off) <= PROTO_OFFSET_MAX &&
	    proto_epoch_valid(json_string_value(e), json_string_length(e))) {
		pos->set = 1;
		memcpy(pos->epoch, json_string_value(e), json_string_length(e) + 1);
		pos->offset = (uint64_t)json_integer_value(off);
		rc = 0;
	}
	json_decref(o);
	return rc;
}
