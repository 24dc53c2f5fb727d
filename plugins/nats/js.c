/*
 * js.c — the nats backend's JetStream side (jetstream = yes): create or
 * check the backend's stream, and read positions and history from it, all
 * with plain requests to the JetStream API ($JS.API.*, JSON) through the
 * worker's natsConnection.
 *
 * The stream: subjects derived from the backend's channels globs
 * (names.c), limits from history_size / history_ttl_s / history_bytes,
 * direct get allowed, and a republish of every stored message to
 * <republish_prefix><subject> with its stream sequence (Nats-Sequence) and
 * the subject's previous one (Nats-Last-Sequence) in headers: fanoutd
 * subscribes to those copies, so every stored message reaches it with its
 * position, whoever published it.
 *
 * Positions: the epoch is the stream's creation time (a stream deleted and
 * created again is a new epoch); offsets are stream sequences, strictly
 * increasing per channel but not contiguous (other channels share the
 * sequence). The top of a channel is the sequence of its newest kept
 * message, 0 when it has none. The stream
 * only loses its oldest messages (limits by count, bytes and age apply to
 * the whole stream), so history after offset A is complete exactly when A
 * + 1 >= the stream's first sequence.
 *
 * Thread: the worker thread only. Allocates jansson values and libnats
 * replies, freed before each function returns; history items are queued
 * as events for the loop.
 */
#include "nt.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct js_info {
	char epoch[NT_EPOCH_MAX];
	uint64_t first, last;
};

/*
 * One JetStream API request. *out: the parsed reply (caller decrefs). An
 * API error is returned as FANOUT_EIO with *api_code set (e.g. 404) and its
 * description in why; transport errors as FANOUT_EUNAVAIL.
 */
static int js_req(struct nt *nt, natsConnection *nc, const char *subj, const char *body,
		  json_t **out, int *api_code, char *why, size_t whylen)
{
	natsMsg *reply = NULL;
	natsStatus s;
	json_error_t je;
	json_t *root, *err;

	*out = NULL;
	if (api_code)
		*api_code = 0;
	s = natsConnection_Request(&reply, nc, subj, body, body ? (int)strlen(body) : 0,
				   nt->request_timeout_ms);
	if (s == NATS_NO_RESPONDERS) {
		snprintf(why, whylen,
			 "JetStream is not enabled on the NATS server (nobody answers %s): "
			 "start nats-server with -js, or set jetstream = no",
			 subj);
		return FANOUT_EUNAVAIL;
	}
	if (s == NATS_TIMEOUT) {
		snprintf(why, whylen, "JetStream request %s timed out (request_timeout_ms %u)",
			 subj, nt->request_timeout_ms);
		return FANOUT_EUNAVAIL;
	}
	if (s != NATS_OK) {
		snprintf(why, whylen, "JetStream request %s: %s", subj, natsStatus_GetText(s));
		return FANOUT_EUNAVAIL;
	}
	root = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &je);
	natsMsg_Destroy(reply);
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(why, whylen, "JetStream request %s: the reply is not a JSON object", subj);
		return FANOUT_EIO;
	}
	err = json_object_get(root, "error");
	if (err) {
		json_t *d = json_object_get(err, "description");
		if (api_code)
			*api_code = (int)json_integer_value(json_object_get(err, "code"));
		snprintf(why, whylen, "%s", json_is_string(d) ? json_string_value(d) : "error");
		json_decref(root);
		return FANOUT_EIO;
	}
	*out = root;
	return 0;
}

static void info_from(json_t *root, struct js_info *in)
{
	json_t *st = json_object_get(root, "state");
	const char *created = json_string_value(json_object_get(root, "created"));

	memset(in, 0, sizeof(*in));
	if (created)
		nn_epoch(created, in->epoch, sizeof(in->epoch));
	in->first = (uint64_t)json_integer_value(json_object_get(st, "first_seq"));
	in->last = (uint64_t)json_integer_value(json_object_get(st, "last_seq"));
}

static int js_info(struct nt *nt, natsConnection *nc, struct js_info *in, char *why, size_t whylen)
{
	char subj[300];
	json_t *root;
	int code, r;

	snprintf(subj, sizeof(subj), "$JS.API.STREAM.INFO.%s", nt->stream);
	r = js_req(nt, nc, subj, NULL, &root, &code, why, whylen);
	if (r)
		return r;
	info_from(root, in);
	json_decref(root);
	if (!in->epoch[0]) {
		snprintf(why, whylen, "stream %s: no creation time in its info", nt->stream);
		return FANOUT_EIO;
	}
	return 0;
}

static json_t *desired_config(struct nt *nt)
{
	json_t *cfg = json_object(), *subjects = json_array(), *rp = json_object();
	char dest[NN_SUBJECT_MAX];

	for (size_t i = 0; i < nt->n_stream_subjects; i++)
		json_array_append_new(subjects, json_string(nt->stream_subjects[i]));
	snprintf(dest, sizeof(dest), "%s>", nt->rp_prefix);
	json_object_set_new(rp, "src", json_string(">"));
	json_object_set_new(rp, "dest", json_string(dest));
	json_object_set_new(cfg, "name", json_string(nt->stream));
	json_object_set_new(cfg, "subjects", subjects);
	json_object_set_new(cfg, "retention", json_string("limits"));
	json_object_set_new(cfg, "max_consumers", json_integer(-1));
	json_object_set_new(cfg, "max_msgs",
			    json_integer(nt->history_size ? nt->history_size : -1));
	json_object_set_new(cfg, "max_bytes",
			    json_integer(nt->history_bytes ? nt->history_bytes : -1));
	json_object_set_new(cfg, "max_age", json_integer(nt->history_ttl_s * 1000000000LL));
	json_object_set_new(cfg, "max_msgs_per_subject", json_integer(-1));
	json_object_set_new(cfg, "max_msg_size", json_integer(-1));
	json_object_set_new(cfg, "discard", json_string("old"));
	json_object_set_new(cfg, "storage", json_string(nt->memory_storage ? "memory" : "file"));
	json_object_set_new(cfg, "num_replicas", json_integer(nt->replicas));
	json_object_set_new(cfg, "allow_direct", json_true());
	json_object_set_new(cfg, "republish", rp);
	return cfg;
}

static void js_log(struct nt *nt, enum fanout_log_level level, const char *text)
{
	struct ev *e = nt_ev_new(EV_LOG, NULL, NULL, text, strlen(text));

	if (e)
		e->status = (int)level;
	nt_ev_push(nt, e);
}

/* Is subject s covered by one of the json array's subjects? */
static int covered(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		const char *a = json_string_value(v);
		size_t la = a ? strlen(a) : 0;
		if (!a)
			continue;
		if (!strcmp(a, s))
			return 1;
		if (la && a[la - 1] == '>' && (la == 1 || a[la - 2] == '.') &&
		    !strncmp(a, s, la - 1) && strlen(s) >= la)
			return 1;
	}
	return 0;
}

/* The existing stream's config against ours: fail on what cannot change,
 * update what can. */
static int check_existing(struct nt *nt, natsConnection *nc, json_t *info, char *epoch,
			  size_t epoch_cap, struct js_info *out, char *why, size_t whylen)
{
	json_t *cfg = json_object_get(info, "config"), *rp, *subjects, *up = NULL, *reply = NULL;
	const char *dest, *src, *storage;
	char want[NN_SUBJECT_MAX], subj[300], msg[600];
	bool change = false;
	int r, code;
	struct js_info in;

	if (!json_is_object(cfg)) {
		snprintf(why, whylen, "stream %s: no config in its info", nt->stream);
		return FANOUT_EIO;
	}
	rp = json_object_get(cfg, "republish");
	dest = json_string_value(json_object_get(rp, "dest"));
	src = json_string_value(json_object_get(rp, "src"));
	snprintf(want, sizeof(want), "%s>", nt->rp_prefix);
	if (!dest || strcmp(dest, want) || (src && strcmp(src, ">")) ||
	    json_is_true(json_object_get(rp, "headers_only"))) {
		snprintf(why, whylen,
			 "stream %s exists without the republish fanout needs (src \">\", dest "
			 "\"%s\"; it has %s -> %s), which JetStream cannot add to a stream: delete "
			 "the stream or set `stream` to another name",
			 nt->stream, want, src ? src : ">", dest ? dest : "none");
		return FANOUT_EINVAL;
	}
	storage = json_string_value(json_object_get(cfg, "storage"));
	if (storage && strcmp(storage, nt->memory_storage ? "memory" : "file")) {
		snprintf(msg, sizeof(msg),
			 "stream %s keeps its %s storage (stream_storage = %s is ignored: "
			 "JetStream cannot change it)",
			 nt->stream, storage, nt->memory_storage ? "memory" : "file");
		js_log(nt, FANOUT_LOG_WARN, msg);
	}
	up = json_deep_copy(cfg);
	if (!up)
		return FANOUT_ENOMEM;
	subjects = json_object_get(up, "subjects");
	if (!json_is_array(subjects)) {
		subjects = json_array();
		json_object_set_new(up, "subjects", subjects);
	}
	for (size_t i = 0; i < nt->n_stream_subjects; i++)
		if (!covered(subjects, nt->stream_subjects[i])) {
			json_array_append_new(subjects, json_string(nt->stream_subjects[i]));
			change = true;
		}
#define SET_INT(key, val)                                                                          \
	do {                                                                                       \
		json_int_t v_ = (val);                                                             \
		if (json_integer_value(json_object_get(up, key)) != v_) {                          \
			json_object_set_new(up, key, json_integer(v_));                            \
			change = true;                                                             \
		}                                                                                  \
	} while (0)
	SET_INT("max_msgs", nt->history_size ? nt->history_size : -1);
	SET_INT("max_bytes", nt->history_bytes ? nt->history_bytes : -1);
	SET_INT("max_age", nt->history_ttl_s * 1000000000LL);
#undef SET_INT
	if (!json_is_true(json_object_get(up, "allow_direct"))) {
		json_object_set_new(up, "allow_direct", json_true());
		change = true;
	}
	if (change) {
		char *body = json_dumps(up, JSON_COMPACT);
		snprintf(subj, sizeof(subj), "$JS.API.STREAM.UPDATE.%s", nt->stream);
		r = body ? js_req(nt, nc, subj, body, &reply, &code, why, whylen) : FANOUT_ENOMEM;
		free(body);
		if (r) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), "%s", why);
			snprintf(why, whylen, "stream %s: update (subjects, limits) refused: %s",
				 nt->stream, tmp);
			json_decref(up);
			return r;
		}
		snprintf(msg, sizeof(msg), "stream %s updated (subjects, limits)", nt->stream);
		js_log(nt, FANOUT_LOG_INFO, msg);
		info = reply;
	}
	info_from(info, &in);
	snprintf(epoch, epoch_cap, "%s", in.epoch);
	*out = in;
	json_decref(reply);
	json_decref(up);
	if (!epoch[0]) {
		snprintf(why, whylen, "stream %s: no creation time in its info", nt->stream);
		return FANOUT_EIO;
	}
	return 0;
}

int nt_js_ensure(struct nt *nt, natsConnection *nc, char *epoch, size_t epoch_cap, uint64_t *first,
		 uint64_t *last, char *why, size_t whylen)
{
	char subj[300], msg[400];
	json_t *root = NULL, *cfg;
	int code = 0, r;
	char *body;
	struct js_info in;

	snprintf(subj, sizeof(subj), "$JS.API.STREAM.INFO.%s", nt->stream);
	r = js_req(nt, nc, subj, NULL, &root, &code, why, whylen);
	if (r == 0) {
		r = check_existing(nt, nc, root, epoch, epoch_cap, &in, why, whylen);
		json_decref(root);
		*first = r ? 0 : in.first;
		*last = r ? 0 : in.last;
		return r;
	}
	if (code != 404)
		return r;
	cfg = desired_config(nt);
	body = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
	json_decref(cfg);
	if (!body)
		return FANOUT_ENOMEM;
	snprintf(subj, sizeof(subj), "$JS.API.STREAM.CREATE.%s", nt->stream);
	r = js_req(nt, nc, subj, body, &root, &code, why, whylen);
	free(body);
	if (r) {
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", why);
		snprintf(why, whylen, "stream %s: create refused: %s", nt->stream, tmp);
		return r;
	}
	info_from(root, &in);
	json_decref(root);
	snprintf(epoch, epoch_cap, "%s", in.epoch);
	*first = in.first;
	*last = in.last;
	snprintf(msg, sizeof(msg), "stream %s created (epoch %s)", nt->stream, in.epoch);
	js_log(nt, FANOUT_LOG_INFO, msg);
	return epoch[0] ? 0 : FANOUT_EIO;
}

/*
 * A direct get: {"last_by_subj": subject} or {"seq": from, "next_by_subj":
 * subject}. 1 with *reply (caller destroys) when a message was found, 0
 * when none, negative FANOUT_E* on failure.
 */
static int direct_get(struct nt *nt, natsConnection *nc, const char *subject, uint64_t from,
		      natsMsg **reply, uint64_t *seq, char *why, size_t whylen)
{
	char subj[300];
	json_t *req = json_object();
	char *body;
	const char *st = NULL, *sq = NULL;
	natsStatus s;

	*reply = NULL;
	if (from) {
		json_object_set_new(req, "seq", json_integer((json_int_t)from));
		json_object_set_new(req, "next_by_subj", json_string(subject));
	} else {
		json_object_set_new(req, "last_by_subj", json_string(subject));
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body)
		return FANOUT_ENOMEM;
	snprintf(subj, sizeof(subj), "$JS.API.DIRECT.GET.%s", nt->stream);
	s = natsConnection_Request(reply, nc, subj, body, (int)strlen(body),
				   nt->request_timeout_ms);
	free(body);
	if (s != NATS_OK) {
		snprintf(why, whylen, "JetStream direct get: %s", natsStatus_GetText(s));
		*reply = NULL;
		return FANOUT_EUNAVAIL;
	}
	if (natsMsgHeader_Get(*reply, "Status", &st) == NATS_OK && st) {
		int notfound = !strcmp(st, "404");
		if (!notfound)
			snprintf(why, whylen, "JetStream direct get: status %s", st);
		natsMsg_Destroy(*reply);
		*reply = NULL;
		return notfound ? 0 : FANOUT_EIO;
	}
	if (natsMsgHeader_Get(*reply, "Nats-Sequence", &sq) != NATS_OK || !sq ||
	    nn_u64(sq, strlen(sq), seq)) {
		snprintf(why, whylen, "JetStream direct get: no Nats-Sequence in the reply");
		natsMsg_Destroy(*reply);
		*reply = NULL;
		return FANOUT_EIO;
	}
	return 1;
}

/* The channel's top: the sequence of its newest kept message. */
static int top_of(struct nt *nt, natsConnection *nc, const char *subject, uint64_t *top, char *why,
		  size_t whylen)
{
	natsMsg *m;
	uint64_t seq = 0;
	int r = direct_get(nt, nc, subject, 0, &m, &seq, why, whylen);

	if (r < 0)
		return r;
	natsMsg_Destroy(m);
	/* Nothing kept: 0, not the stream's last sequence. A top must be the
	 * offset of one of the channel's messages: the host repairs up to a
	 * top it has not reached, and history has no message to reach a
	 * sequence of another channel with (every quiet-channel probe would
	 * end in a false gap). */
	*top = r == 1 ? seq : 0;
	return 0;
}

int nt_js_top(struct nt *nt, natsConnection *nc, const char *subject, char *epoch, size_t epoch_cap,
	      uint64_t *top, char *why, size_t whylen)
{
	struct js_info in;
	int r = js_info(nt, nc, &in, why, whylen);

	if (r)
		return r;
	snprintf(epoch, epoch_cap, "%s", in.epoch);
	return top_of(nt, nc, subject, top, why, whylen);
}

static void push_done(struct nt *nt, uint64_t token, int status, const char *epoch, uint64_t top)
{
	struct ev *e = nt_ev_new(
	    EV_HISTORY, NULL,
	    status == 0 || status == FANOUT_EEPOCH || status == FANOUT_ETRUNCATED ? epoch : NULL,
	    NULL, 0);

	if (!e)
		return;
	e->token = token;
	e->status = status;
	e->seq = top;
	nt_ev_push(nt, e);
}

void nt_js_history(struct nt *nt, natsConnection *nc, const struct cmd *c, const char *subject)
{
	struct js_info in, in2;
	char why[512];
	uint64_t from, top = 0, seq;
	struct ev *items = NULL, **tail = &items, *e, *n;
	uint64_t got = 0;
	int r;

	r = js_info(nt, nc, &in, why, sizeof(why));
	if (r) {
		push_done(nt, c->token, r, NULL, 0);
		return;
	}
	if (strcmp(c->epoch, in.epoch)) {
		r = top_of(nt, nc, subject, &top, why, sizeof(why));
		push_done(nt, c->token, r ? r : FANOUT_EEPOCH, in.epoch, top);
		return;
	}
	/* Everything up to `after` the client has; the stream lost only its
	 * oldest messages, so it is complete from after + 1 on if it still
	 * starts there (or nothing newer exists at all). */
	if (c->after < in.last && c->after + 1 < in.first) {
		r = top_of(nt, nc, subject, &top, why, sizeof(why));
		push_done(nt, c->token, r ? r : FANOUT_ETRUNCATED, in.epoch, top);
		return;
	}
	from = c->after + 1;
	while (got < c->max) {
		natsMsg *m;
		r = direct_get(nt, nc, subject, from, &m, &seq, why, sizeof(why));
		if (r <= 0)
			break;
		e = nt_ev_new(EV_ITEM, NULL, NULL, natsMsg_GetData(m),
			      (size_t)natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		if (!e) {
			r = FANOUT_ENOMEM;
			break;
		}
		e->token = c->token;
		e->seq = seq;
		*tail = e;
		tail = &e->next;
		got++;
		from = seq + 1;
	}
	/* A trim while we read could have removed messages before the first
	 * item: check the stream again before answering. */
	if (r >= 0)
		r = js_info(nt, nc, &in2, why, sizeof(why));
	if (r >= 0 && strcmp(in2.epoch, in.epoch))
		r = FANOUT_EEPOCH;
	else if (r >= 0 && c->after < in2.last && c->after + 1 < in2.first)
		r = FANOUT_ETRUNCATED;
	if (r >= 0)
		r = top_of(nt, nc, subject, &top, why, sizeof(why));
	if (r < 0) {
		for (e = items; e; e = n) {
			n = e->next;
			free(e);
		}
		if (r == FANOUT_EEPOCH || r == FANOUT_ETRUNCATED)
			push_done(nt, c->token, r, in2.epoch, top);
		else
			push_done(nt, c->token, r, NULL, 0);
		return;
	}
	for (e = items; e; e = n) {
		n = e->next;
		e->next = NULL;
		nt_ev_push(nt, e);
	}
	push_done(nt, c->token, 0, in2.epoch, top);
}
