/*
 * sub.c — `fanout-cli sub` and `fanout-cli pub`: one WebSocket connection
 * speaking client protocol v1.1 (DESIGN.md). sub subscribes and prints every
 * message frame (as received, or as a filetail record with --jsonl),
 * optionally reconnecting with full-jitter backoff; on positioned channels
 * it remembers the last epoch/offset of each channel and resubscribes with
 * "since" after every reconnect (CHANNEL@EPOCH:OFFSET starts from a given
 * position), so nothing is missed or printed twice; a resume the server
 * cannot recover is reported on stderr. pub sends one publish and waits for
 * its answer. Single-threaded, driven by wsc_run_one(); each
 * server frame is parsed with jansson into a json_t freed before the next.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ---- shared ---- */

struct target {
	struct wsc_url url;
	struct sockaddr_storage ss;
	socklen_t sslen;
};

static int target_init(struct target *t, const char *cmd, const char *url)
{
	char err[256];

	if (wsc_url_parse(url, &t->url, err, sizeof(err)) ||
	    wsc_resolve(&t->url, &t->ss, &t->sslen, err, sizeof(err))) {
		warnx_("%s: %s", cmd, err);
		return -1;
	}
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* "EPOCH:OFFSET" (epoch [A-Za-z0-9_-]{1,64}, offset decimal < 2^53). */
static int parse_position(const char *txt, char *epoch, size_t esize, uint64_t *offset)
{
	const char *colon = strchr(txt, ':');
	size_t n = colon ? (size_t)(colon - txt) : 0;
	int64_t v;
	if (!n || n >= esize || n > 64 ||
	    strspn(txt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n ||
	    parse_i64(colon + 1, 0, 9007199254740991LL, &v))
		return -1;
	memcpy(epoch, txt, n);
	epoch[n] = '\0';
	*offset = (uint64_t)v;
	return 0;
}

/* Sleep ms, waking early on a stop signal. */
static void nap_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (!stop_requested && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Send a close frame and wait (briefly) for the server's answer. */
static void close_gracefully(struct wsc *c, wsc_cb cb, void *arg)
{
	volatile int never = 0;

	if (c->state == WSC_OPEN) {
		wsc_close(c, 1000);
		stop_requested = 0;
		wsc_run_one(c, now_ms_mono() + 1000, cb, arg, &never);
	}
	wsc_free(c);
}

/* ---- sub ---- */

/* The last position seen on one channel (positioned channels only). */
struct chpos {
	int known;
	char epoch[65];
	uint64_t offset;
	int since_sent; /* the last subscribe carried since */
};

struct sub {
	char **channels;
	struct chpos *pos; /* one per channel */
	int nch;
	int64_t duplicates, not_recovered;
	int jsonl, verbose;
	int64_t count, got;
	int acked;
	int ready, done, failed;
	volatile int wake; /* ready || done */
	int attempt;
};

static int reconnectable(int code)
{
	return code == 1001 || code == 1006 || code == 1011 || code == 1013 || code == 4001;
}

static void print_message(struct sub *s, const char *data, size_t len)
{
	int ok;

	if (s->jsonl) {
		const char *ch = NULL, *d = NULL;
		size_t chl = 0, dl = 0;
		if (json_span(data, len, "channel", &ch, &chl)) {
			ch = "null";
			chl = 4;
		}
		if (json_span(data, len, "data", &d, &dl)) {
			d = "null";
			dl = 4;
		}
		ok = printf("{\"channel\":%.*s,\"data\":%.*s,\"ts\":%" PRId64 "}\n", (int)chl, ch,
			    (int)dl, d, now_ms_real()) > 0;
	} else if (memchr(data, '\n', len)) {
		/* not compact (not what fanoutd sends): re-encode on one line */
		json_t *o = json_loadb(data, len, 0, NULL);
		char *txt = o ? json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		ok = txt && printf("%s\n", txt) > 0;
		free(txt);
		json_decref(o);
	} else {
		ok = fwrite(data, 1, len, stdout) == len && putchar('\n') != EOF;
	}
	if (!ok || fflush(stdout) == EOF) {
		/* stdout went away (e.g. `| head -1`): stop quietly */
		s->failed = 1;
		s->done = s->wake = 1;
	}
}

static int channel_index(const struct sub *s, const char *name)
{
	for (int i = 0; name && i < s->nch; i++)
		if (!strcmp(s->channels[i], name))
			return i;
	return -1;
}

/* Remember epoch/offset of a frame that carries them (subscribed, gap). */
static void set_pos(struct chpos *p, json_t *o)
{
	const char *e = jstr(o, "epoch");
	json_t *off = json_object_get(o, "offset");
	if (!e || !json_is_integer(off) || json_integer_value(off) < 0)
		return;
	snprintf(p->epoch, sizeof(p->epoch), "%s", e);
	p->offset = (uint64_t)json_integer_value(off);
	p->known = 1;
}

/* A message: 1 to print it, 0 when its offset was seen already. */
static int take_message(struct sub *s, json_t *o)
{
	int i = channel_index(s, jstr(o, "channel"));
	json_t *off = json_object_get(o, "offset");
	if (i < 0 || !json_is_integer(off))
		return 1; /* unpositioned: nothing to check */
	struct chpos *p = &s->pos[i];
	uint64_t n = (uint64_t)json_integer_value(off);
	if (p->known && n <= p->offset) {
		s->duplicates++;
		if (s->verbose)
			fprintf(stderr, "fanout-cli: sub: %s: offset %" PRIu64 " seen already\n",
				s->channels[i], n);
		return 0;
	}
	if (p->known)
		p->offset = n;
	return 1;
}

static void sub_cb(struct wsc *c, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct sub *s = arg;
	json_t *o;
	const char *type;

	if (ev == WSC_EV_OPEN) {
		for (int i = 0; i < s->nch; i++) {
			struct chpos *p = &s->pos[i];
			json_t *req = json_pack("{s:s,s:i,s:s}", "type", "subscribe", "id", i,
						"channel", s->channels[i]);
			p->since_sent = p->known;
			if (p->known)
				json_object_set_new(req, "since",
						    json_pack("{s:s,s:I}", "epoch", p->epoch,
							      "offset", (json_int_t)p->offset));
			char *txt = json_dumps(req, JSON_COMPACT);
			if (txt)
				wsc_send_text(c, txt, strlen(txt));
			free(txt);
			json_decref(req);
		}
		return;
	}
	if (ev != WSC_EV_TEXT)
		return;
	o = json_loadb(data, len, 0, NULL);
	type = o ? jstr(o, "type") : NULL;
	if (!type) {
		warnx_("sub: ignoring a frame that is not a protocol object: %.200s", data);
	} else if (!strcmp(type, "message")) {
		if (!s->done && take_message(s, o)) {
			print_message(s, data, len);
			s->got++;
			if (s->count && s->got >= s->count)
				s->done = s->wake = 1;
		}
	} else if (!strcmp(type, "subscribed")) {
		json_t *id = json_object_get(o, "id");
		json_t *rec = json_object_get(o, "recovered");
		int i = json_is_integer(id) && json_integer_value(id) >= 0 &&
				json_integer_value(id) < s->nch
			    ? (int)json_integer_value(id)
			    : channel_index(s, jstr(o, "channel"));
		if (i >= 0) {
			struct chpos *p = &s->pos[i];
			/* recovered: the replay follows, our position holds; else
			 * (fresh, or not recoverable) we stand where it says. */
			if (!json_is_true(rec))
				set_pos(p, o);
			if (p->since_sent && !json_is_true(rec)) {
				s->not_recovered++;
				fprintf(
				    stderr,
				    "fanout-cli: sub: %s: not recovered: messages may have been "
				    "missed; continuing from %s:%" PRIu64 "\n",
				    s->channels[i], p->known ? p->epoch : "?", p->offset);
			}
			p->since_sent = 0;
		}
		if (++s->acked == s->nch) {
			s->ready = s->wake = 1;
			s->attempt = 0;
		}
		if (s->verbose)
			fprintf(stderr, "fanout-cli: sub: subscribed to %s\n",
				jstr(o, "channel") ? jstr(o, "channel") : "?");
	} else if (!strcmp(type, "gap")) {
		int i = channel_index(s, jstr(o, "channel"));
		if (i >= 0)
			set_pos(&s->pos[i], o);
		fprintf(stderr, "fanout-cli: sub: gap: %s\n", data);
	} else if (!strcmp(type, "error")) {
		json_t *id = json_object_get(o, "id");
		fprintf(stderr, "fanout-cli: sub: error: %s\n", data);
		if (json_is_integer(id) && json_integer_value(id) >= 0 &&
		    json_integer_value(id) < s->nch) {
			/* our subscribe was refused: nothing sensible to wait for */
			s->failed = 1;
			s->done = s->wake = 1;
		}
	} else if (s->verbose) {
		fprintf(stderr, "fanout-cli: sub: %s\n", data);
	}
	json_decref(o);
}

static void sub_help(void)
{
	fputs("Usage: fanout-cli sub [OPTIONS] URL CHANNEL[@EPOCH:OFFSET]...\n"
	      "\n"
	      "Connect to fanoutd at URL (ws://host:port/ws), subscribe to each CHANNEL and\n"
	      "print one line per message frame on stdout, as received (compact JSON),\n"
	      "flushed per line. gap and error frames go to stderr.\n"
	      "On positioned channels the last epoch and offset are kept: a reconnect\n"
	      "resubscribes with them (\"since\"), so the messages published meanwhile\n"
	      "arrive, each once; when the server cannot recover them, a line on stderr\n"
	      "says so. CHANNEL@EPOCH:OFFSET starts after that position.\n"
	      "\n"
	      "Options:\n"
	      "  --jsonl               print records {\"channel\":C,\"data\":D,\"ts\":MS} instead\n"
	      "                        (ts: ms since the epoch at receipt; the filetail format)\n"
	      "  -n, --count N         exit 0 after N messages\n"
	      "  -t, --timeout-ms MS   give up after MS ms: exit 1 if --count was not reached,\n"
	      "                        else exit 0\n"
	      "  --connect-timeout-ms MS  connect + subscribe must finish within MS (10000)\n"
	      "  -r, --reconnect       on close codes 1001/1006/1011/1013/4001 (and failed\n"
	      "                        connects) reconnect with exponential backoff and full\n"
	      "                        jitter, then subscribe again; never on 1008\n"
	      "  --backoff-min-ms MS   first backoff cap (100)\n"
	      "  --backoff-max-ms MS   largest backoff cap (10000)\n"
	      "  -v, --verbose         report subscriptions, other frames and, at exit, each\n"
	      "                        channel's last position (CHANNEL@EPOCH:OFFSET) on stderr\n"
	      "  -h, --help            this text\n",
	      stdout);
}

int cmd_sub(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"jsonl", no_argument, NULL, 'j'},
	    {"count", required_argument, NULL, 'n'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"connect-timeout-ms", required_argument, NULL, 'C'},
	    {"reconnect", no_argument, NULL, 'r'},
	    {"backoff-min-ms", required_argument, NULL, 'b'},
	    {"backoff-max-ms", required_argument, NULL, 'B'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sub s = {0};
	struct target t;
	struct wsc c;
	int64_t timeout_ms = 0, conn_timeout_ms = 10000, bmin = 100, bmax = 10000, deadline = 0;
	int reconnect = 0, opt, rc = EXIT_FAIL;

	while ((opt = getopt_long(argc, argv, "n:t:rvh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			s.jsonl = 1;
			break;
		case 'n':
			if (parse_i64(optarg, 1, INT64_MAX, &s.count))
				return usage_error("sub", "--count: a positive integer, not '%s'",
						   optarg);
			break;
		case 't':
			if (parse_i64(optarg, 1, INT64_MAX / 2, &timeout_ms))
				return usage_error("sub", "--timeout-ms: a positive integer");
			break;
		case 'C':
			if (parse_i64(optarg, 1, INT64_MAX / 2, &conn_timeout_ms))
				return usage_error("sub",
						   "--connect-timeout-ms: a positive integer");
			break;
		case 'r':
			reconnect = 1;
			break;
		case 'b':
			if (parse_i64(optarg, 1, 3600000, &bmin))
				return usage_error("sub", "--backoff-min-ms: 1..3600000");
			break;
		case 'B':
			if (parse_i64(optarg, 1, 3600000, &bmax))
				return usage_error("sub", "--backoff-max-ms: 1..3600000");
			break;
		case 'v':
			s.verbose = 1;
			break;
		case 'h':
			sub_help();
			return EXIT_OK;
		default:
			return usage_error("sub", "unknown option");
		}
	}
	if (argc - optind < 2)
		return usage_error("sub", "expected URL and at least one CHANNEL");
	if (bmax < bmin)
		bmax = bmin;
	s.channels = argv + optind + 1;
	s.nch = argc - optind - 1;
	s.pos = calloc((size_t)s.nch, sizeof(*s.pos));
	if (!s.pos)
		return EXIT_FAIL;
	for (int i = 0; i < s.nch; i++) {
		char *at = strchr(s.channels[i], '@');
		if (!at)
			continue;
		*at = '\0';
		if (parse_position(at + 1, s.pos[i].epoch, sizeof(s.pos[i].epoch),
				   &s.pos[i].offset)) {
			free(s.pos);
			return usage_error("sub", "%s@%s: the position must be EPOCH:OFFSET",
					   s.channels[i], at + 1);
		}
		s.pos[i].known = 1;
	}
	if (target_init(&t, "sub", argv[optind]))
		goto out; /* rc is EXIT_FAIL */
	install_stop_signals();
	if (timeout_ms)
		deadline = now_ms_mono() + timeout_ms;
	wsc_init(&c);
	for (;;) {
		int64_t phase = now_ms_mono() + conn_timeout_ms;
		int timed_out;
		const char *why;

		s.acked = 0;
		s.ready = 0;
		s.wake = s.done;
		if (wsc_start(&c, (struct sockaddr *)&t.ss, t.sslen, t.url.hostport, t.url.path) ==
		    0) {
			/* connect + subscribe within the connect timeout, then stream */
			timed_out = wsc_run_one(&c, deadline && deadline < phase ? deadline : phase,
						sub_cb, &s, &s.wake);
			if (!timed_out && s.ready && !s.done)
				timed_out = wsc_run_one(&c, deadline, sub_cb, &s, &s.done);
		} else {
			timed_out = 0;
		}
		if (stop_requested) {
			close_gracefully(&c, sub_cb, &s);
			rc = EXIT_OK;
			goto out;
		}
		if (s.done) {
			close_gracefully(&c, sub_cb, &s);
			rc = s.failed ? EXIT_FAIL : EXIT_OK;
			goto out;
		}
		if (timed_out) {
			int overall = deadline && now_ms_mono() >= deadline;
			if (overall && !s.count) {
				close_gracefully(&c, sub_cb, &s);
				rc = EXIT_OK;
				goto out;
			}
			if (overall)
				warnx_("sub: timed out after %" PRId64 " ms with %" PRId64
				       " of %" PRId64 " messages",
				       timeout_ms, s.got, s.count);
			else
				warnx_("sub: %s: no %s within %" PRId64 " ms", t.url.hostport,
				       c.state == WSC_OPEN ? "subscription confirmed"
							   : "connection",
				       conn_timeout_ms);
			wsc_free(&c);
			if (overall || !reconnect) {
				rc = EXIT_FAIL;
				goto out;
			}
			c.close_code = WSC_CLOSE_ABNORMAL;
		}
		why = c.err[0] ? c.err : c.close_reason;
		if (!reconnect || !reconnectable(c.close_code) ||
		    strstr(c.err, "handshake refused: HTTP/1.1 4")) {
			warnx_("sub: %s: connection closed (code %d)%s%s", t.url.hostport,
			       c.close_code, why[0] ? ": " : "", why);
			break;
		}
		{
			int64_t wait = backoff_ms(s.attempt++, bmin, bmax);
			if (deadline && now_ms_mono() + wait >= deadline) {
				warnx_("sub: timed out while reconnecting, %" PRId64 " of %" PRId64
				       " messages",
				       s.got, s.count);
				break;
			}
			warnx_("sub: connection closed (code %d)%s%s; reconnecting in %" PRId64
			       " ms",
			       c.close_code, why[0] ? ": " : "", why, wait);
			wsc_free(&c);
			nap_ms(wait);
			if (stop_requested) {
				rc = EXIT_OK;
				goto out;
			}
		}
	}
	wsc_free(&c);
out:
	if (s.verbose)
		for (int i = 0; i < s.nch; i++)
			if (s.pos[i].known)
				fprintf(stderr, "fanout-cli: sub: position %s@%s:%" PRIu64 "\n",
					s.channels[i], s.pos[i].epoch, s.pos[i].offset);
	if (s.duplicates)
		warnx_("sub: %" PRId64 " duplicate message(s) dropped", s.duplicates);
	free(s.pos);
	return rc;
}

/* ---- pub ---- */

struct pub {
	const char *frame;
	int done, failed;
};

static void pub_cb(struct wsc *c, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct pub *p = arg;
	json_t *o, *id;
	const char *type;

	if (ev == WSC_EV_OPEN) {
		if (wsc_send_text(c, p->frame, strlen(p->frame))) {
			warnx_("pub: cannot send the publish frame");
			p->failed = p->done = 1;
		}
		return;
	}
	if (ev != WSC_EV_TEXT || p->done)
		return;
	o = json_loadb(data, len, 0, NULL);
	type = o ? jstr(o, "type") : NULL;
	id = o ? json_object_get(o, "id") : NULL;
	if (type && !strcmp(type, "published") && json_is_integer(id) &&
	    json_integer_value(id) == 1) {
		p->done = 1;
	} else if (type && !strcmp(type, "error") &&
		   (!id || (json_is_integer(id) && json_integer_value(id) == 1))) {
		fprintf(stderr, "fanout-cli: pub: error: %s\n", data);
		p->failed = p->done = 1;
	}
	json_decref(o);
}

static void pub_help(void)
{
	fputs("Usage: fanout-cli pub [OPTIONS] URL CHANNEL DATA\n"
	      "\n"
	      "Publish DATA on CHANNEL through fanoutd's WebSocket protocol (the server\n"
	      "must allow it: allow_publish = true) and wait for the answer: exit 0 on\n"
	      "\"published\", print the error frame and exit 1 otherwise. DATA is sent as\n"
	      "JSON when it parses as JSON (42, true, {\"a\":1}, \"quoted\"), else as a JSON\n"
	      "string; '-' reads DATA from stdin.\n"
	      "\n"
	      "Options:\n"
	      "  -t, --timeout-ms MS   give up after MS ms (10000)\n"
	      "  -h, --help            this text\n",
	      stdout);
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *p = malloc(cap), *q;
	size_t r;

	if (!p)
		return NULL;
	while ((r = fread(p + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			q = realloc(p, cap * 2);
			if (!q) {
				free(p);
				return NULL;
			}
			p = q;
			cap *= 2;
		}
	}
	p[n] = '\0';
	*len = n;
	return p;
}

int cmd_pub(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct target t;
	struct wsc c;
	struct pub p = {0};
	int64_t timeout_ms = 10000;
	int opt, rc = EXIT_FAIL, timed_out;
	const char *channel;
	char *data = NULL, *chjson = NULL, *frame = NULL, *datajson = NULL;
	size_t dlen;
	json_t *j = NULL;

	while ((opt = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_i64(optarg, 1, INT64_MAX / 2, &timeout_ms))
				return usage_error("pub", "--timeout-ms: a positive integer");
			break;
		case 'h':
			pub_help();
			return EXIT_OK;
		default:
			return usage_error("pub", "unknown option");
		}
	}
	if (argc - optind != 3)
		return usage_error("pub", "expected URL CHANNEL DATA");
	channel = argv[optind + 1];
	if (!strcmp(argv[optind + 2], "-")) {
		data = read_all(stdin, &dlen);
		if (!data) {
			warnx_("pub: cannot read stdin");
			return EXIT_FAIL;
		}
		while (dlen && (data[dlen - 1] == '\n' || data[dlen - 1] == '\r'))
			data[--dlen] = '\0';
	} else {
		data = strdup(argv[optind + 2]);
		dlen = strlen(data);
	}
	if (target_init(&t, "pub", argv[optind]))
		goto out;
	j = json_loadb(data, dlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!j) {
		/* not JSON: send it as a string */
		j = json_stringn(data, dlen);
		if (!j) {
			warnx_("pub: DATA is neither JSON nor valid UTF-8 text");
			goto out;
		}
		datajson = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	}
	json_decref(j);
	j = json_string(channel);
	chjson = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	if (!chjson) {
		warnx_("pub: CHANNEL is not valid UTF-8");
		goto out;
	}
	if (asprintf(&frame, "{\"type\":\"publish\",\"id\":1,\"channel\":%s,\"data\":%s}", chjson,
		     datajson ? datajson : data) < 0) {
		frame = NULL;
		goto out;
	}
	p.frame = frame;
	install_stop_signals();
	wsc_init(&c);
	if (wsc_start(&c, (struct sockaddr *)&t.ss, t.sslen, t.url.hostport, t.url.path)) {
		warnx_("pub: %s: %s", t.url.hostport, c.err);
		goto out;
	}
	timed_out = wsc_run_one(&c, now_ms_mono() + timeout_ms, pub_cb, &p, &p.done);
	if (p.done) {
		rc = p.failed ? EXIT_FAIL : EXIT_OK;
	} else if (stop_requested) {
		rc = EXIT_FAIL;
	} else if (timed_out) {
		warnx_("pub: %s: no answer within %" PRId64 " ms", t.url.hostport, timeout_ms);
	} else {
		warnx_("pub: %s: connection closed (code %d)%s%s", t.url.hostport, c.close_code,
		       c.err[0] || c.close_reason[0] ? ": " : "",
		       c.err[0] ? c.err : c.close_reason);
	}
	close_gracefully(&c, pub_cb, &p);
out:
	json_decref(j);
	free(data);
	free(chjson);
	free(datajson);
	free(frame);
	return rc;
}
