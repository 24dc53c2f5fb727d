/*
 * bench.c — `fanout-cli bench`, the load generator of issue 7. One thread,
 * one epoll set: N wsc clients spread round-robin over M channels, a
 * publisher (non-blocking hiredis PUBLISH to Valkey — or, --positioned, the
 * valkey backend's FCALL fanout_publish, as fanoutd's own publishes — or
 * publish frames over one more WebSocket), pacing from the loop's own clock. Each payload
 * carries its channel sequence number and CLOCK_MONOTONIC send time, so
 * receivers (in this same process) measure publish→receipt latency and
 * gaps. Per step it samples the server's /proc CPU and RSS and its own
 * rusage; then it measures the bare-write floor in a forked process (floor.c
 * style, below: a listener, N loopback sockets, a reader process, 140-byte
 * write()s at the same delivery rate). Allocations: the client array, one
 * payload buffer, the hiredis context, the latency histogram; all freed on
 * return. Everything is bounded by step durations, drain and connect
 * timeouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "envelope.h"

#define MAX_STEPS    32
#define MAX_PIDS     16
#define HIST_SUB     32 /* sub-buckets per power of two: ~3% resolution */
#define HIST_BUCKETS (HIST_SUB * 40)
#define FLOOR_FRAME  140

enum cstate { C_IDLE, C_CONNECTING, C_READY, C_DEAD };

struct client {
	struct wsc ws; /* first: a struct wsc * is a struct client * */
	uint32_t ch;
	uint8_t state;
	uint8_t out_armed; /* EPOLLOUT registered */
	uint64_t last_seq;
};

struct hist {
	uint64_t b[HIST_BUCKETS];
	uint64_t n, max_ns;
};

struct step_result {
	double rate; /* messages/s asked */
	double secs; /* publishing time */
	uint64_t published, pub_acks, pub_errors;
	uint64_t expected, received, gaps, dups, foreign;
	uint64_t disconnected;
	double deliveries_per_s;
	double p50_ms, p90_ms, p99_ms, max_ms;
	double server_cpu_s, server_cpu_pct, server_us_per_delivery;
	long server_rss_kib;
	double bench_cpu_s, bench_cpu_pct, bench_us_per_frame;
	int bench_bottleneck;
	int floor_ok;
	double floor_rate, floor_us_per_write, floor_sys_us, floor_user_us;
	uint64_t floor_writes, floor_eagain;
	double vs_floor;
	double rx_bytes_per_delivery; /* bytes the clients read per delivery */
	uint64_t hop_n;
	double hop_p50_ms, hop_p99_ms;
};

struct bench {
	/* options */
	struct wsc_url url;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int nclients, nch;
	const char *chprefix;
	double ramp;
	int max_pending;
	int via_ws;
	int positioned; /* --positioned: FCALL fanout_publish instead of PUBLISH */
	struct redis_addr redis;
	const char *redis_prefix;
	double rates[MAX_STEPS];
	int nsteps;
	double step_s;
	int64_t messages; /* per step, 0 = by time */
	int payload_bytes;
	int64_t drain_ms, connect_timeout_ms;
	int pids[MAX_PIDS];
	int npids;
	int json, no_floor, floor_only, allow_loss;
	int deflate;	  /* clients offer permessage-deflate */
	int payload_json; /* realistic JSON records instead of padding */
	int broker_hop;	  /* also time the broker alone (a direct SUBSCRIBE) */
	double floor_s;
	double idle_s;
	/* runtime */
	int ep;
	struct client *cl;
	int *ready_per_ch;
	uint64_t *chseq;
	struct wsc pubws;
	volatile int pub_open;
	int pub_out_armed;
	redisContext *rc;
	int rc_out_armed;
	char *payload;
	/* counters of the current step */
	int in_step;
	uint64_t step_base_seq; /* per-channel seqs below this belong to earlier steps */
	uint64_t received, gaps, dups, foreign, disconnected, pub_acks, pub_errors;
	int64_t last_rx_ns;
	int64_t rx_now; /* clock at the current socket read */
	struct hist h;
	struct hist hop;      /* --broker-hop: publish -> direct subscriber */
	redisContext *hop_rc; /* that subscriber */
	/* connect phase */
	int connected, failed, dead_total;
	char first_error[200];
};

/* ---- histogram ---- */

static int hist_index(uint64_t us)
{
	int msb, shift;

	if (us < HIST_SUB)
		return (int)us;
	msb = 63 - __builtin_clzll(us);
	shift = msb - 5; /* log2(HIST_SUB) = 5 */
	{
		int idx = (shift + 1) * HIST_SUB + (int)((us >> shift) - HIST_SUB);
		return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
	}
}

static double hist_value_us(int idx)
{
	int shift;

	if (idx < HIST_SUB)
		return idx + 0.5;
	shift = idx / HIST_SUB - 1;
	return ((double)(idx % HIST_SUB + HIST_SUB) + 0.5) * (double)(1ull << shift);
}

static void hist_add(struct hist *h, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	h->b[hist_index((uint64_t)ns / 1000)]++;
	h->n++;
	if ((uint64_t)ns > h->max_ns)
		h->max_ns = (uint64_t)ns;
}

static double hist_pct_ms(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->n)
		return 0;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			double v = hist_value_us(i) / 1000.0;
			double mx = (double)h->max_ns / 1e6;
			return v > mx ? mx : v;
		}
	}
	return (double)h->max_ns / 1e6;
}

/* ---- /proc and rusage ---- */

static double servers_cpu_s(const struct bench *b)
{
	double sum = 0;

	for (int i = 0; i < b->npids; i++) {
		double v = proc_cpu_s(b->pids[i]);
		if (v < 0)
			return -1;
		sum += v;
	}
	return b->npids ? sum : -1;
}

static long servers_rss_kib(const struct bench *b)
{
	long sum = 0;

	for (int i = 0; i < b->npids; i++) {
		long v = proc_rss_kib(b->pids[i]);
		if (v < 0)
			return -1;
		sum += v;
	}
	return b->npids ? sum : -1;
}

/* ---- epoll plumbing ---- */

#define IDX_PUBWS ((uint64_t)1 << 40)
#define IDX_REDIS ((uint64_t)1 << 41)
#define IDX_HOP	  ((uint64_t)1 << 42)

static void arm(struct bench *b, int fd, uint64_t key, uint8_t *armed, int want_out, int add)
{
	struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u64 = key};

	if (add) {
		epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev);
		*armed = (uint8_t)want_out;
	} else if (*armed != (want_out ? 1 : 0)) {
		epoll_ctl(b->ep, EPOLL_CTL_MOD, fd, &ev);
		*armed = (uint8_t)want_out;
	}
}

/* ---- payloads ---- */

/* Parse {"bseq":S,"bch":C,"bt":T,...} inside a message frame. */
static int parse_payload(const char *p, size_t n, uint64_t *seq, uint32_t *ch, int64_t *t)
{
	const char *q = memmem(p, n, "\"bseq\":", 7), *end = p + n;
	uint64_t v;

	if (!q)
		return -1;
	q += 7;
	for (v = 0; q < end && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (uint64_t)(*q - '0');
	*seq = v;
	if (end - q < 7 || memcmp(q, ",\"bch\":", 7))
		return -1;
	q += 7;
	for (v = 0; q < end && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (uint64_t)(*q - '0');
	*ch = (uint32_t)v;
	if (end - q < 6 || memcmp(q, ",\"bt\":", 6))
		return -1;
	q += 6;
	for (v = 0; q < end && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (uint64_t)(*q - '0');
	*t = (int64_t)v;
	return 0;
}

/* Build the payload for channel ch into b->payload; returns its length. */
static size_t make_payload(struct bench *b, uint32_t ch, uint64_t seq)
{
	int n = snprintf(b->payload, (size_t)b->payload_bytes + 64,
			 "{\"bseq\":%" PRIu64 ",\"bch\":%u,\"bt\":%" PRId64 ",%s", seq, ch,
			 now_ns_mono(), b->payload_json ? "\"items\":[" : "\"pad\":\"");
	size_t len = (size_t)n;

	if (b->payload_json) {
		/* a list update as an application sends it: records with
		 * consecutive ids, codes derived from them, prices and
		 * quantities that vary (compresses about 3-4x per message on
		 * its own; the padding compresses 50x) */
		uint32_t x = (uint32_t)seq * 2654435761u + ch, id = 100000 + (x >> 16 & 0xffff);
		for (int i = 0; (int)len < b->payload_bytes - 90; i++) {
			x = x * 1103515245u + 12345u;
			len += (size_t)snprintf(b->payload + len, 96,
						"%s{\"id\":%u,\"sku\":\"SKU-%u\",\"price\":%u.%02u,"
						"\"qty\":%u,\"open\":%s}",
						i ? "," : "", id + (uint32_t)i, id + (uint32_t)i,
						x >> 20 & 0x3ff, (x >> 3) % 100, x >> 24 & 0x3f,
						x & 1 ? "true" : "false");
		}
		b->payload[len++] = ']';
		b->payload[len++] = '}';
		b->payload[len] = '\0';
		return len;
	}
	while ((int)len < b->payload_bytes - 2)
		b->payload[len++] = 'x';
	b->payload[len++] = '"';
	b->payload[len++] = '}';
	b->payload[len] = '\0';
	return len;
}

/* ---- client events ---- */

static void client_cb(struct wsc *c, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct bench *b = arg;
	struct client *cl = (struct client *)c;

	switch (ev) {
	case WSC_EV_OPEN: {
		char req[320];
		int n = snprintf(req, sizeof(req), "{\"type\":\"subscribe\",\"channel\":\"%s%u\"}",
				 b->chprefix, cl->ch);
		wsc_send_text(c, req, (size_t)n);
		break;
	}
	case WSC_EV_TEXT:
		if (len > 17 && !memcmp(data, "{\"type\":\"message\"", 17)) {
			uint64_t seq;
			uint32_t ch;
			int64_t t;
			if (parse_payload(data, len, &seq, &ch, &t) || ch != cl->ch) {
				b->foreign++;
				break;
			}
			if (seq < b->step_base_seq || !b->in_step) {
				b->foreign++; /* late frame of an earlier step */
				break;
			}
			if (seq <= cl->last_seq)
				b->dups++;
			else if (cl->last_seq >= b->step_base_seq && seq != cl->last_seq + 1)
				b->gaps++;
			if (seq > cl->last_seq)
				cl->last_seq = seq;
			b->received++;
			b->last_rx_ns = b->rx_now;
			hist_add(&b->h, b->rx_now - t);
		} else if (memmem(data, len, "\"type\":\"subscribed\"", 19)) {
			if (cl->state == C_CONNECTING) {
				cl->state = C_READY;
				b->connected++;
				b->ready_per_ch[cl->ch]++;
			}
		} else if (memmem(data, len, "\"type\":\"error\"", 14)) {
			if (!b->first_error[0])
				snprintf(b->first_error, sizeof(b->first_error), "%.*s",
					 (int)(len < 190 ? len : 190), data);
			if (cl->state == C_CONNECTING) {
				wsc_close(c, 1000);
			}
		}
		break;
	case WSC_EV_CLOSE:
		if (cl->state == C_READY) {
			b->ready_per_ch[cl->ch]--;
			b->disconnected++;
			b->dead_total++;
		} else if (cl->state == C_CONNECTING) {
			b->failed++;
		}
		if (!b->first_error[0] && (c->err[0] || c->close_code != 1000))
			snprintf(b->first_error, sizeof(b->first_error), "close %d %s",
				 c->close_code, c->err[0] ? c->err : c->close_reason);
		cl->state = C_DEAD;
		break;
	default:
		break;
	}
}

static void pub_cb(struct wsc *c, enum wsc_event ev, char *data, size_t len, void *arg)
{
	struct bench *b = arg;

	if (ev == WSC_EV_OPEN) {
		b->pub_open = 1;
	} else if (ev == WSC_EV_TEXT) {
		if (memmem(data, len, "\"type\":\"published\"", 18))
			b->pub_acks++;
		else if (memmem(data, len, "\"type\":\"error\"", 14)) {
			b->pub_errors++;
			if (!b->first_error[0])
				snprintf(b->first_error, sizeof(b->first_error), "publisher: %.*s",
					 (int)(len < 180 ? len : 180), data);
		}
	} else if (ev == WSC_EV_CLOSE) {
		if (!b->first_error[0])
			snprintf(b->first_error, sizeof(b->first_error),
				 "publisher connection closed (%d) %s", c->close_code, c->err);
	}
}

static void redis_read(struct bench *b)
{
	void *reply;

	if (redisBufferRead(b->rc) != REDIS_OK) {
		if (!b->first_error[0])
			snprintf(b->first_error, sizeof(b->first_error), "valkey: %s",
				 b->rc->errstr);
		b->pub_errors++;
		return;
	}
	while (redisGetReplyFromReader(b->rc, &reply) == REDIS_OK && reply) {
		redisReply *r = reply;
		if (r->type == REDIS_REPLY_ERROR) {
			b->pub_errors++;
			if (!b->first_error[0])
				snprintf(b->first_error, sizeof(b->first_error), "valkey: %s",
					 r->str);
		} else {
			b->pub_acks++;
		}
		freeReplyObject(reply);
	}
}

/* --broker-hop: the direct subscriber's pushes, timed like deliveries. */
static void hop_read(struct bench *b)
{
	void *reply;
	if (redisBufferRead(b->hop_rc) != REDIS_OK)
		return;
	while (redisGetReplyFromReader(b->hop_rc, &reply) == REDIS_OK && reply) {
		redisReply *r = reply;
		uint64_t seq;
		uint32_t ch;
		int64_t t;
		struct vk_pos pos;
		const char *data;
		size_t len;
		/* A positioned publish arrives in its position envelope. */
		if (b->in_step && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
		    r->element[3]->type == REDIS_REPLY_STRING &&
		    vk_envelope_parse(r->element[3]->str, r->element[3]->len, &pos, &data, &len) !=
			VK_ENV_BAD &&
		    !parse_payload(data, len, &seq, &ch, &t) && seq >= b->step_base_seq)
			hist_add(&b->hop, now_ns_mono() - t);
		freeReplyObject(reply);
	}
}

static void redis_flush(struct bench *b)
{
	int done = 0;

	if (redisBufferWrite(b->rc, &done) != REDIS_OK) {
		b->pub_errors++;
		if (!b->first_error[0])
			snprintf(b->first_error, sizeof(b->first_error), "valkey: %s",
				 b->rc->errstr);
		done = 1;
	}
	arm(b, b->rc->fd, IDX_REDIS, (uint8_t *)&b->rc_out_armed, !done, 0);
}

/* One epoll_wait round; handles every ready fd. */
static void poll_once(struct bench *b, int timeout_ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(b->ep, evs, 512, timeout_ms);

	for (int i = 0; i < n; i++) {
		uint64_t k = evs[i].data.u64;
		uint32_t e = evs[i].events;
		if (k == IDX_HOP) {
			hop_read(b);
		} else if (k == IDX_REDIS) {
			if (e & EPOLLIN)
				redis_read(b);
			if (e & EPOLLOUT)
				redis_flush(b);
		} else if (k == IDX_PUBWS) {
			if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				wsc_handle_write(&b->pubws);
			if (b->pubws.state != WSC_CONNECTING &&
			    (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				wsc_handle_read(&b->pubws, pub_cb, b);
			wsc_notify_closed(&b->pubws, pub_cb, b);
			if (b->pubws.state != WSC_CLOSED)
				arm(b, b->pubws.fd, IDX_PUBWS, (uint8_t *)&b->pub_out_armed,
				    wsc_want_write(&b->pubws), 0);
		} else {
			struct client *cl = &b->cl[k];
			/* one clock read per socket read, not per frame: every frame
			 * of one read() arrived at the same moment */
			b->rx_now = now_ns_mono();
			if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				wsc_handle_write(&cl->ws);
			if (cl->ws.state != WSC_CONNECTING && (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				wsc_handle_read(&cl->ws, client_cb, b);
			wsc_notify_closed(&cl->ws, client_cb, b);
			if (cl->ws.state != WSC_CLOSED)
				arm(b, cl->ws.fd, k, &cl->out_armed, wsc_want_write(&cl->ws), 0);
		}
	}
}

/* ---- phases ---- */

static int connect_clients(struct bench *b)
{
	int64_t t0 = now_ns_mono(), deadline = t0 + b->connect_timeout_ms * 1000000;
	int started = 0;

	while (b->connected + b->failed < b->nclients && !stop_requested) {
		int64_t now = now_ns_mono();
		int64_t allowed = (int64_t)((double)(now - t0) / 1e9 * b->ramp) + 1;
		int pending = started - b->connected - b->failed;

		if (now > deadline)
			break;
		while (started < b->nclients && started < allowed && pending < b->max_pending) {
			struct client *cl = &b->cl[started];
			cl->ch = (uint32_t)(started % b->nch);
			cl->state = C_CONNECTING;
			if (wsc_start(&cl->ws, (struct sockaddr *)&b->ss, b->sslen, b->url.hostport,
				      b->url.path)) {
				b->failed++;
				cl->state = C_DEAD;
				if (!b->first_error[0])
					snprintf(b->first_error, sizeof(b->first_error), "%s",
						 cl->ws.err);
			} else {
				arm(b, cl->ws.fd, (uint64_t)started, &cl->out_armed, 1, 1);
				pending++;
			}
			started++;
		}
		poll_once(b, 2);
	}
	return b->connected;
}

/* --broker-hop: a subscriber of our own on the broker, so the report can
 * say how much of the latency is the broker's hop alone. */
static int hop_open(struct bench *b)
{
	struct timeval tv = {.tv_sec = 3};
	redisReply *r;
	if (b->redis.unix_path[0])
		b->hop_rc = redisConnectUnixWithTimeout(b->redis.unix_path, tv);
	else
		b->hop_rc = redisConnectWithTimeout(b->redis.host, b->redis.port, tv);
	if (!b->hop_rc || b->hop_rc->err) {
		warnx_("bench: --broker-hop: %s", b->hop_rc ? b->hop_rc->errstr : "out of memory");
		return -1;
	}
	if (b->redis.password[0]) {
		r = b->redis.user[0]
			? redisCommand(b->hop_rc, "AUTH %s %s", b->redis.user, b->redis.password)
			: redisCommand(b->hop_rc, "AUTH %s", b->redis.password);
		freeReplyObject(r);
	}
	r = redisCommand(b->hop_rc, "PSUBSCRIBE %s%s*", b->redis_prefix, b->chprefix);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		warnx_("bench: --broker-hop: PSUBSCRIBE failed");
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);
	fcntl(b->hop_rc->fd, F_SETFL, fcntl(b->hop_rc->fd, F_GETFL) | O_NONBLOCK);
	b->hop_rc->flags &= ~REDIS_BLOCK;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = IDX_HOP};
	epoll_ctl(b->ep, EPOLL_CTL_ADD, b->hop_rc->fd, &ev);
	return 0;
}

/* --positioned: the broker needs the fanout functions (fanoutd's valkey
 * backend loads them; with history_size = 0 it does not): load them if
 * missing, as fanout-cli push does. */
static int library_check(struct bench *b)
{
	redisReply *r = redisCommand(b->rc, "FUNCTION LIST LIBRARYNAME fanout");
	int rc = 0;

	if (!r || r->type == REDIS_REPLY_ERROR) {
		warnx_("bench: --positioned: FUNCTION LIST: %s (Redis/Valkey 7 needed)",
		       r ? r->str : b->rc->errstr);
		rc = -1;
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
		rc = push_load_library(b->rc, b->json, "bench");
	}
	freeReplyObject(r);
	return rc;
}

static int publisher_open(struct bench *b)
{
	if (b->via_ws) {
		wsc_init(&b->pubws);
		if (wsc_start(&b->pubws, (struct sockaddr *)&b->ss, b->sslen, b->url.hostport,
			      b->url.path))
			goto ws_fail;
		/* wait for the upgrade with the one-connection loop, then hand it to epoll */
		wsc_run_one(&b->pubws, now_ms_mono() + 5000, pub_cb, b, &b->pub_open);
		if (b->pubws.state != WSC_OPEN)
			goto ws_fail;
		arm(b, b->pubws.fd, IDX_PUBWS, (uint8_t *)&b->pub_out_armed, 0, 1);
		return 0;
	ws_fail:
		warnx_("bench: publisher: %s: %s", b->url.hostport,
		       b->pubws.err[0] ? b->pubws.err : "no upgrade");
		return -1;
	} else {
		struct timeval tv = {.tv_sec = 3};
		redisReply *r;
		if (b->redis.unix_path[0])
			b->rc = redisConnectUnixWithTimeout(b->redis.unix_path, tv);
		else
			b->rc = redisConnectWithTimeout(b->redis.host, b->redis.port, tv);
		if (!b->rc || b->rc->err) {
			warnx_("bench: valkey %s:%d: %s", b->redis.host, b->redis.port,
			       b->rc ? b->rc->errstr : "out of memory");
			return -1;
		}
		if (b->redis.password[0]) {
			r = b->redis.user[0] ? redisCommand(b->rc, "AUTH %s %s", b->redis.user,
							    b->redis.password)
					     : redisCommand(b->rc, "AUTH %s", b->redis.password);
			if (!r || r->type == REDIS_REPLY_ERROR) {
				warnx_("bench: valkey AUTH: %s", r ? r->str : b->rc->errstr);
				freeReplyObject(r);
				return -1;
			}
			freeReplyObject(r);
		}
		if (b->redis.db) {
			r = redisCommand(b->rc, "SELECT %d", b->redis.db);
			if (!r || r->type == REDIS_REPLY_ERROR) {
				warnx_("bench: valkey SELECT: %s", r ? r->str : b->rc->errstr);
				freeReplyObject(r);
				return -1;
			}
			freeReplyObject(r);
		}
		if (b->positioned && library_check(b))
			return -1;
		/* From here on: non-blocking, replies read from the epoll loop. */
		fcntl(b->rc->fd, F_SETFL, fcntl(b->rc->fd, F_GETFL) | O_NONBLOCK);
		b->rc->flags &= ~REDIS_BLOCK;
		arm(b, b->rc->fd, IDX_REDIS, (uint8_t *)&b->rc_out_armed, 0, 1);
		if (b->broker_hop && hop_open(b))
			return -1;
		return 0;
	}
}

static void publish_one(struct bench *b, struct step_result *sr, uint64_t i)
{
	uint32_t ch = (uint32_t)(i % (uint64_t)b->nch);
	uint64_t seq = ++b->chseq[ch];
	size_t len = make_payload(b, ch, seq);

	if (b->via_ws) {
		char *frame;
		int n = asprintf(&frame, "{\"type\":\"publish\",\"channel\":\"%s%u\",\"data\":%s}",
				 b->chprefix, ch, b->payload);
		if (n < 0)
			return;
		wsc_send_text(&b->pubws, frame, (size_t)n);
		free(frame);
		if (b->pubws.state != WSC_CLOSED)
			arm(b, b->pubws.fd, IDX_PUBWS, (uint8_t *)&b->pub_out_armed,
			    wsc_want_write(&b->pubws), 0);
	} else if (b->positioned) {
		redisAppendCommand(b->rc, "FCALL fanout_publish 1 fanout:{%s%s%u} %b",
				   b->redis_prefix, b->chprefix, ch, b->payload, len);
	} else {
		redisAppendCommand(b->rc, "PUBLISH %s%s%u %b", b->redis_prefix, b->chprefix, ch,
				   b->payload, len);
	}
	sr->published++;
	sr->expected += (uint64_t)b->ready_per_ch[ch];
}

static void run_step(struct bench *b, struct step_result *sr)
{
	int64_t t0, end_ns, now, drain_end, last_pub_ns;
	double cpu0, self0, cpu1, self1, wall;
	uint64_t sent = 0;

	memset(&b->h, 0, sizeof(b->h));
	memset(&b->hop, 0, sizeof(b->hop));
	uint64_t rx0 = 0;
	for (int i = 0; i < b->nclients; i++)
		rx0 += b->cl[i].ws.rx_bytes;
	b->received = b->gaps = b->dups = b->foreign = b->disconnected = 0;
	b->pub_acks = b->pub_errors = 0;
	/* sequence numbers restart above everything sent so far */
	{
		uint64_t mx = 0;
		for (int i = 0; i < b->nch; i++)
			if (b->chseq[i] > mx)
				mx = b->chseq[i];
		for (int i = 0; i < b->nch; i++)
			b->chseq[i] = mx;
		b->step_base_seq = mx + 1;
	}
	b->in_step = 1;
	cpu0 = servers_cpu_s(b);
	self0 = self_cpu_s();
	t0 = now_ns_mono();
	end_ns = b->messages ? INT64_MAX : t0 + (int64_t)(b->step_s * 1e9);
	last_pub_ns = t0;
	while (!stop_requested) {
		uint64_t due;
		now = now_ns_mono();
		if (now >= end_ns || (b->messages && sent >= (uint64_t)b->messages))
			break;
		due = (uint64_t)((double)(now - t0) / 1e9 * sr->rate) + 1;
		if (b->messages && due > (uint64_t)b->messages)
			due = (uint64_t)b->messages;
		if (due > sent) {
			while (sent < due)
				publish_one(b, sr, sent++);
			if (!b->via_ws)
				redis_flush(b);
			last_pub_ns = now;
		}
		{
			/* sleep until the next message is due, rounded up to the
			 * millisecond (at most 2 ms to stay responsive): rounding
			 * down would spin in epoll_wait(0) and take the CPU the
			 * receiving side needs; messages due meanwhile go out
			 * together, each stamped when it is actually sent */
			double next = (double)(sent) / sr->rate * 1e9 + (double)t0;
			int64_t wait_us = (int64_t)((next - (double)now_ns_mono()) / 1e3);
			poll_once(b, wait_us <= 0      ? 0
				     : wait_us >= 2000 ? 2
						       : (int)((wait_us + 999) / 1000));
		}
	}
	sr->secs = (double)(last_pub_ns - t0) / 1e9;
	if (sr->secs <= 0 || !b->messages)
		sr->secs = (double)(now_ns_mono() - t0) / 1e9;
	/* drain: until every expected delivery arrived or drain_ms passed */
	drain_end = now_ns_mono() + b->drain_ms * 1000000;
	while (!stop_requested && b->received + b->dups < sr->expected && now_ns_mono() < drain_end)
		poll_once(b, 5);
	/* late publish acks */
	drain_end = now_ns_mono() + 1000000000;
	while (!stop_requested && b->pub_acks + b->pub_errors < sr->published &&
	       now_ns_mono() < drain_end)
		poll_once(b, 5);
	wall = (double)(now_ns_mono() - t0) / 1e9;
	cpu1 = servers_cpu_s(b);
	self1 = self_cpu_s();
	b->in_step = 0;

	sr->received = b->received;
	sr->gaps = b->gaps;
	sr->dups = b->dups;
	sr->foreign = b->foreign;
	sr->disconnected = b->disconnected;
	sr->pub_acks = b->pub_acks;
	sr->pub_errors = b->pub_errors;
	{
		double span = b->last_rx_ns > t0 ? (double)(b->last_rx_ns - t0) / 1e9 : sr->secs;
		if (span < sr->secs)
			span = sr->secs;
		sr->deliveries_per_s = span > 0 ? (double)sr->received / span : 0;
	}
	{
		uint64_t rx1 = 0;
		for (int i = 0; i < b->nclients; i++)
			rx1 += b->cl[i].ws.rx_bytes;
		sr->rx_bytes_per_delivery =
		    sr->received ? (double)(rx1 - rx0) / (double)sr->received : 0;
	}
	sr->hop_n = b->hop.n;
	sr->hop_p50_ms = hist_pct_ms(&b->hop, 0.50);
	sr->hop_p99_ms = hist_pct_ms(&b->hop, 0.99);
	sr->p50_ms = hist_pct_ms(&b->h, 0.50);
	sr->p90_ms = hist_pct_ms(&b->h, 0.90);
	sr->p99_ms = hist_pct_ms(&b->h, 0.99);
	sr->max_ms = (double)b->h.max_ns / 1e6;
	sr->server_cpu_s = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	sr->server_cpu_pct = sr->server_cpu_s >= 0 ? 100.0 * sr->server_cpu_s / wall : -1;
	sr->server_us_per_delivery = sr->server_cpu_s >= 0 && sr->received
					 ? sr->server_cpu_s * 1e6 / (double)sr->received
					 : -1;
	sr->server_rss_kib = servers_rss_kib(b);
	sr->bench_cpu_s = self1 - self0;
	sr->bench_cpu_pct = 100.0 * sr->bench_cpu_s / wall;
	sr->bench_us_per_frame = sr->received ? sr->bench_cpu_s * 1e6 / (double)sr->received : 0;
	sr->bench_bottleneck =
	    sr->bench_cpu_pct > 90.0 ||
	    (sr->server_us_per_delivery > 0 && sr->bench_us_per_frame > sr->server_us_per_delivery);
}

/* ---- the bare-write floor ---- */

struct floor_result {
	int ok;
	double rate, secs, user_s, sys_s;
	uint64_t writes, eagain, read_bytes;
	char err[120];
};

/* The reader side: connect n sockets to port, read until every one ends. */
static void floor_reader(int port, int n, int report_fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int ep = epoll_create1(0), open_ = 0;
	uint64_t total = 0;
	static char buf[65536];

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(1);
		fcntl(fd, F_SETFL, O_NONBLOCK);
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		open_++;
	}
	while (open_ > 0) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < k; i++) {
			ssize_t r;
			while ((r = read(evs[i].data.fd, buf, sizeof(buf))) > 0)
				total += (uint64_t)r;
			if (r == 0) {
				close(evs[i].data.fd);
				open_--;
			}
		}
	}
	if (write(report_fd, &total, sizeof(total)) < 0)
		_exit(1);
	_exit(0);
}

/* The writer side, in its own process (so its rusage is only this loop). */
static void floor_writer(int nsock, int nch, double delivery_rate, double secs, int out_fd)
{
	struct floor_result fr = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	int lfd, *fds, pipefd[2], per_ch, one = 1;
	pid_t reader;
	char frame[FLOOR_FRAME];
	struct rusage r0, r1;
	int64_t t0, end;
	double msg_rate;
	uint64_t sent_msgs = 0;

	memset(frame, 'x', sizeof(frame));
	fds = calloc((size_t)nsock, sizeof(*fds));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!fds || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4096) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0 ||
	    pipe(pipefd) < 0) {
		snprintf(fr.err, sizeof(fr.err), "listener: %s", strerror(errno));
		goto out;
	}
	reader = fork();
	if (reader == 0) {
		close(pipefd[0]);
		floor_reader(ntohs(sa.sin_port), nsock, pipefd[1]);
	}
	close(pipefd[1]);
	for (int i = 0; i < nsock; i++) {
		fds[i] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fds[i] < 0) {
			snprintf(fr.err, sizeof(fr.err), "accept: %s", strerror(errno));
			goto out;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	per_ch = nsock / nch > 0 ? nsock / nch : 1;
	msg_rate = delivery_rate / per_ch;
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns_mono();
	end = t0 + (int64_t)(secs * 1e9);
	for (;;) {
		int64_t now = now_ns_mono();
		uint64_t due;
		struct timespec ts = {0, 1000000};
		if (now >= end)
			break;
		due = (uint64_t)((double)(now - t0) / 1e9 * msg_rate) + 1;
		while (sent_msgs < due) {
			/* message k goes to the sockets of channel k % nch, as in the bench */
			uint32_t ch = (uint32_t)(sent_msgs % (uint64_t)nch);
			for (int i = (int)ch; i < nsock; i += nch) {
				if (write(fds[i], frame, sizeof(frame)) < 0)
					fr.eagain++;
				else
					fr.writes++;
			}
			sent_msgs++;
		}
		nanosleep(&ts, NULL);
	}
	getrusage(RUSAGE_SELF, &r1);
	fr.secs = (double)(now_ns_mono() - t0) / 1e9;
	fr.user_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		    (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6;
	fr.sys_s = (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		   (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	fr.rate = (double)fr.writes / fr.secs;
	for (int i = 0; i < nsock; i++)
		close(fds[i]);
	if (read(pipefd[0], &fr.read_bytes, sizeof(fr.read_bytes)) != sizeof(fr.read_bytes))
		snprintf(fr.err, sizeof(fr.err), "reader did not report");
	else
		fr.ok = 1;
	waitpid(reader, NULL, 0);
out:
	free(fds);
	if (write(out_fd, &fr, sizeof(fr)) < 0)
		_exit(1);
	_exit(0);
}

static int run_floor(int nsock, int nch, double delivery_rate, double secs, struct floor_result *fr)
{
	int p[2];
	pid_t pid;

	memset(fr, 0, sizeof(*fr));
	if (delivery_rate <= 0)
		delivery_rate = 1;
	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* drop the bench's sockets: the floor needs the fd room */
		if (p[1] != 3) {
			dup2(p[1], 3);
		}
		close_range(4, ~0u, 0);
		floor_writer(nsock, nch, delivery_rate, secs, 3);
	}
	close(p[1]);
	if (read(p[0], fr, sizeof(*fr)) != (ssize_t)sizeof(*fr)) {
		snprintf(fr->err, sizeof(fr->err), "floor process failed");
		fr->ok = 0;
	}
	close(p[0]);
	waitpid(pid, NULL, 0);
	return fr->ok ? 0 : -1;
}

static void floor_into(struct step_result *sr, const struct floor_result *fr)
{
	sr->floor_ok = fr->ok;
	if (!fr->ok)
		return;
	sr->floor_rate = fr->rate;
	sr->floor_writes = fr->writes;
	sr->floor_eagain = fr->eagain;
	sr->floor_user_us = fr->writes ? fr->user_s * 1e6 / (double)fr->writes : 0;
	sr->floor_sys_us = fr->writes ? fr->sys_s * 1e6 / (double)fr->writes : 0;
	sr->floor_us_per_write = sr->floor_user_us + sr->floor_sys_us;
	if (sr->server_us_per_delivery > 0 && sr->floor_us_per_write > 0)
		sr->vs_floor = sr->server_us_per_delivery / sr->floor_us_per_write;
}

/* ---- report ---- */

static void print_step_text(const struct bench *b, int i, const struct step_result *s)
{
	uint64_t loss = s->expected > s->received ? s->expected - s->received : 0;

	printf("step %d: %.0f msg/s for %.2f s\n", i + 1, s->rate, s->secs);
	printf("  published %" PRIu64 " (acked %" PRIu64 ", errors %" PRIu64 "), expected %" PRIu64
	       " deliveries, received %" PRIu64 ", loss %" PRIu64 " (%.3f%%), gaps %" PRIu64
	       ", dups %" PRIu64 ", disconnected %" PRIu64 "\n",
	       s->published, s->pub_acks, s->pub_errors, s->expected, s->received, loss,
	       s->expected ? 100.0 * (double)loss / (double)s->expected : 0.0, s->gaps, s->dups,
	       s->disconnected);
	printf("  deliveries/s %.0f   latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f\n",
	       s->deliveries_per_s, s->p50_ms, s->p90_ms, s->p99_ms, s->max_ms);
	printf("  clients read %.1f bytes per delivery%s\n", s->rx_bytes_per_delivery,
	       b->deflate ? " (permessage-deflate offered)" : "");
	if (s->hop_n)
		printf("  the broker hop alone (publish -> a direct subscriber): ms p50 %.3f p99 "
		       "%.3f\n",
		       s->hop_p50_ms, s->hop_p99_ms);
	if (s->server_cpu_s >= 0)
		printf("  server CPU %.3f s (%.1f%% of a core), %.2f us/delivery, RSS %.1f MiB\n",
		       s->server_cpu_s, s->server_cpu_pct, s->server_us_per_delivery,
		       (double)s->server_rss_kib / 1024.0);
	else
		printf("  server CPU/RSS: not measured (give --server-pid)\n");
	printf("  bench CPU %.3f s (%.1f%% of a core), %.2f us/frame%s\n", s->bench_cpu_s,
	       s->bench_cpu_pct, s->bench_us_per_frame,
	       s->bench_bottleneck ? "  ** the bench, not the server, may be the bottleneck **"
				   : "");
	if (s->floor_ok)
		printf("  floor: %.0f writes/s of %d B to %d sockets: %.2f us/write (sys %.2f, "
		       "user %.2f)%s",
		       s->floor_rate, FLOOR_FRAME, b->nclients, s->floor_us_per_write,
		       s->floor_sys_us, s->floor_user_us,
		       s->floor_eagain ? " (some writes would block)" : "");
	if (s->floor_ok && s->vs_floor > 0)
		printf("; server = %.2fx the floor\n", s->vs_floor);
	else if (s->floor_ok)
		printf("\n");
}

static void print_step_json(const struct step_result *s, int last)
{
	printf("{\"rate\":%.3f,\"secs\":%.3f,\"published\":%" PRIu64 ",\"pub_acks\":%" PRIu64
	       ",\"pub_errors\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"received\":%" PRIu64
	       ",\"loss\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64
	       ",\"disconnected\":%" PRIu64 ",\"deliveries_per_s\":%.1f,"
	       "\"latency_ms\":{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f},",
	       s->rate, s->secs, s->published, s->pub_acks, s->pub_errors, s->expected, s->received,
	       s->expected > s->received ? s->expected - s->received : 0, s->gaps, s->dups,
	       s->disconnected, s->deliveries_per_s, s->p50_ms, s->p90_ms, s->p99_ms, s->max_ms);
	printf("\"rx_bytes_per_delivery\":%.2f,", s->rx_bytes_per_delivery);
	if (s->hop_n)
		printf("\"broker_hop_ms\":{\"n\":%" PRIu64 ",\"p50\":%.4f,\"p99\":%.4f},", s->hop_n,
		       s->hop_p50_ms, s->hop_p99_ms);
	if (s->server_cpu_s >= 0)
		printf("\"server\":{\"cpu_s\":%.4f,\"cpu_pct\":%.2f,\"us_per_delivery\":%.3f,"
		       "\"rss_kib\":%ld},",
		       s->server_cpu_s, s->server_cpu_pct, s->server_us_per_delivery,
		       s->server_rss_kib);
	else
		printf("\"server\":null,");
	printf("\"bench\":{\"cpu_s\":%.4f,\"cpu_pct\":%.2f,\"us_per_frame\":%.3f,"
	       "\"bottleneck\":%s},",
	       s->bench_cpu_s, s->bench_cpu_pct, s->bench_us_per_frame,
	       s->bench_bottleneck ? "true" : "false");
	if (s->floor_ok)
		printf("\"floor\":{\"writes_per_s\":%.1f,\"us_per_write\":%.3f,\"sys_us\":%.3f,"
		       "\"user_us\":%.3f,\"would_block\":%" PRIu64 "},\"vs_floor\":%.3f}%s",
		       s->floor_rate, s->floor_us_per_write, s->floor_sys_us, s->floor_user_us,
		       s->floor_eagain, s->vs_floor, last ? "" : ",");
	else
		printf("\"floor\":null,\"vs_floor\":null}%s", last ? "" : ",");
}

static void bench_help(void)
{
	fputs("Usage: fanout-cli bench [OPTIONS]\n"
	      "       fanout-cli bench --floor [--clients N] [--rate DELIVERIES/S]\n"
	      "\n"
	      "Load generator for fanoutd (single thread, epoll). Connects N clients over M\n"
	      "channels (bench.0 .. bench.M-1), publishes at a fixed rate or at stepped\n"
	      "rates with a send timestamp (CLOCK_MONOTONIC ns) in each payload, and reports\n"
	      "per step: expected vs received deliveries (loss), deliveries/s, latency\n"
	      "p50/p90/p99/max, server CPU and RSS (--server-pid), CPU per delivery, its own\n"
	      "CPU per frame, and the bare-write floor measured right after the step.\n"
	      "\n"
	      "Options:\n"
	      "  -u, --url URL           fanoutd's ws:// URL (required unless --floor)\n"
	      "  -c, --clients N         clients (100)\n"
	      "  -m, --channels M        channels; client i joins channel i %% M (1)\n"
	      "  --channel-prefix P      channel names P0..P(M-1) (bench.)\n"
	      "  --ramp N/s              connects per second (5000)\n"
	      "  --max-pending N         connects in flight at once (256)\n"
	      "  --via valkey|ws         publish with PUBLISH to Valkey (default) or with\n"
	      "                          publish frames (the server needs allow_publish)\n"
	      "  --positioned            with --via valkey: publish with the valkey backend's\n"
	      "                          FCALL fanout_publish (positions and history, like\n"
	      "                          fanoutd's own publishes; loaded if missing) instead\n"
	      "                          of PUBLISH: compare a fanoutd with history_size > 0\n"
	      "                          and this against history_size = 0 and plain PUBLISH\n"
	      "  --redis URL             Valkey for --via valkey (redis://127.0.0.1:6379/0)\n"
	      "  --prefix P              Valkey channel prefix (the backend's channel_prefix)\n"
	      "  -r, --rate R[,R2,...]   messages/s published in total, one step per value (100)\n"
	      "  -d, --duration-s S      length of each step (5)\n"
	      "  -n, --messages N        publish N messages per step (at the rate) instead\n"
	      "  -s, --payload-bytes B   payload size (128, at least 64)\n"
	      "  --drain-ms MS           wait this long for late deliveries after a step (3000)\n"
	      "  --connect-timeout-s S   every client connected and subscribed within S (60)\n"
	      "  --idle-s S              after connecting, wait S s before sampling the server's\n"
	      "                          RSS per connection (1)\n"
	      "  -p, --server-pid PID    server process(es) to sample; repeat or comma-separate\n"
	      "  --floor                 only measure the bare-write floor: --clients sockets,\n"
	      "                          --rate deliveries/s (writes/s), --floor-s seconds\n"
	      "  --floor-s S             floor measurement per step (2)\n"
	      "  --no-floor              skip the floor\n"
	      "  --allow-loss            exit 0 even when deliveries were lost\n"
	      "  --deflate               clients offer permessage-deflate (and inflate)\n"
	      "  --payload-json          payloads of JSON records (compress like real data)\n"
	      "                          instead of padding\n"
	      "  --broker-hop            also time publish -> a direct Valkey subscriber, to\n"
	      "                          tell the broker's share of the latency\n"
	      "  --json                  print the report as one JSON object\n"
	      "  -h, --help              this text\n"
	      "\n"
	      "Exit status: 0 when every client connected and nothing was lost, 1 otherwise.\n",
	      stdout);
}

static int parse_rates(struct bench *b, const char *s)
{
	char tmp[512], *save = NULL, *tok;

	if (strlen(s) >= sizeof(tmp))
		return -1;
	strcpy(tmp, s);
	b->nsteps = 0;
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (b->nsteps >= MAX_STEPS || parse_rate(tok, &b->rates[b->nsteps]))
			return -1;
		b->nsteps++;
	}
	return b->nsteps ? 0 : -1;
}

static int parse_pids(struct bench *b, const char *s)
{
	char tmp[256], *save = NULL, *tok;

	if (strlen(s) >= sizeof(tmp))
		return -1;
	strcpy(tmp, s);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int64_t v;
		if (b->npids >= MAX_PIDS || parse_i64(tok, 1, INT32_MAX, &v))
			return -1;
		b->pids[b->npids++] = (int)v;
	}
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	enum {
		O_CHPREFIX = 256,
		O_RAMP,
		O_MAXPEND,
		O_VIA,
		O_REDIS,
		O_PREFIX,
		O_DRAIN,
		O_CTIMEOUT,
		O_IDLE,
		O_FLOOR,
		O_FLOOR_S,
		O_NOFLOOR,
		O_ALLOWLOSS,
		O_JSON,
		O_DEFLATE,
		O_PAYLOAD_JSON,
		O_HOP,
		O_POSITIONED,
	};
	static const struct option opts[] = {
	    {"url", required_argument, NULL, 'u'},
	    {"clients", required_argument, NULL, 'c'},
	    {"channels", required_argument, NULL, 'm'},
	    {"channel-prefix", required_argument, NULL, O_CHPREFIX},
	    {"ramp", required_argument, NULL, O_RAMP},
	    {"max-pending", required_argument, NULL, O_MAXPEND},
	    {"via", required_argument, NULL, O_VIA},
	    {"redis", required_argument, NULL, O_REDIS},
	    {"prefix", required_argument, NULL, O_PREFIX},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration-s", required_argument, NULL, 'd'},
	    {"messages", required_argument, NULL, 'n'},
	    {"payload-bytes", required_argument, NULL, 's'},
	    {"drain-ms", required_argument, NULL, O_DRAIN},
	    {"connect-timeout-s", required_argument, NULL, O_CTIMEOUT},
	    {"idle-s", required_argument, NULL, O_IDLE},
	    {"server-pid", required_argument, NULL, 'p'},
	    {"floor", no_argument, NULL, O_FLOOR},
	    {"floor-s", required_argument, NULL, O_FLOOR_S},
	    {"no-floor", no_argument, NULL, O_NOFLOOR},
	    {"allow-loss", no_argument, NULL, O_ALLOWLOSS},
	    {"json", no_argument, NULL, O_JSON},
	    {"deflate", no_argument, NULL, O_DEFLATE},
	    {"payload-json", no_argument, NULL, O_PAYLOAD_JSON},
	    {"broker-hop", no_argument, NULL, O_HOP},
	    {"positioned", no_argument, NULL, O_POSITIONED},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench bb = {0}, *b = &bb;
	struct step_result res[MAX_STEPS];
	const char *url = NULL, *redis_url = "redis://127.0.0.1:6379/0";
	char err[256];
	int opt, rc = EXIT_FAIL;
	int64_t v;
	double d;
	long rss_before = -1, rss_after = -1;
	double connect_secs = 0;
	struct rlimit rl;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--storm"))
			return cmd_bench_storm(argc, argv);
		if (!strcmp(argv[i], "--recovery"))
			return cmd_bench_recovery(argc, argv);
	}
	b->nclients = 100;
	b->nch = 1;
	b->chprefix = "bench.";
	b->ramp = 5000;
	b->max_pending = 256;
	b->redis_prefix = "";
	b->rates[0] = 100;
	b->nsteps = 1;
	b->step_s = 5;
	b->payload_bytes = 128;
	b->drain_ms = 3000;
	b->connect_timeout_ms = 60000;
	b->floor_s = 2;
	b->idle_s = 1;
	b->ep = -1;
	memset(res, 0, sizeof(res));

	while ((opt = getopt_long(argc, argv, "u:c:m:r:d:n:s:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'c':
			if (parse_i64(optarg, 1, 200000, &v))
				return usage_error("bench", "--clients: 1..200000");
			b->nclients = (int)v;
			break;
		case 'm':
			if (parse_i64(optarg, 1, 100000, &v))
				return usage_error("bench", "--channels: 1..100000");
			b->nch = (int)v;
			break;
		case O_CHPREFIX:
			if (strlen(optarg) > 180)
				return usage_error("bench", "--channel-prefix: too long");
			b->chprefix = optarg;
			break;
		case O_RAMP:
			if (parse_rate(optarg, &b->ramp))
				return usage_error("bench", "--ramp: N or N/s");
			break;
		case O_MAXPEND:
			if (parse_i64(optarg, 1, 100000, &v))
				return usage_error("bench", "--max-pending: 1..100000");
			b->max_pending = (int)v;
			break;
		case O_VIA:
			if (!strcmp(optarg, "ws"))
				b->via_ws = 1;
			else if (!strcmp(optarg, "valkey") || !strcmp(optarg, "redis"))
				b->via_ws = 0;
			else
				return usage_error("bench", "--via: valkey or ws");
			break;
		case O_REDIS:
			redis_url = optarg;
			break;
		case O_PREFIX:
			b->redis_prefix = optarg;
			break;
		case 'r':
			if (parse_rates(b, optarg))
				return usage_error("bench", "--rate: R or R1,R2,... (at most %d)",
						   MAX_STEPS);
			break;
		case 'd':
			if (parse_double(optarg, 0.01, 86400, &b->step_s))
				return usage_error("bench", "--duration-s: 0.01..86400");
			break;
		case 'n':
			if (parse_i64(optarg, 1, INT64_MAX / 2, &b->messages))
				return usage_error("bench", "--messages: a positive integer");
			break;
		case 's':
			if (parse_i64(optarg, 64, 16 << 20, &v))
				return usage_error("bench", "--payload-bytes: 64..16777216");
			b->payload_bytes = (int)v;
			break;
		case O_DRAIN:
			if (parse_i64(optarg, 0, 3600000, &b->drain_ms))
				return usage_error("bench", "--drain-ms: 0..3600000");
			break;
		case O_CTIMEOUT:
			if (parse_double(optarg, 0.1, 3600, &d))
				return usage_error("bench", "--connect-timeout-s: 0.1..3600");
			b->connect_timeout_ms = (int64_t)(d * 1000);
			break;
		case O_IDLE:
			if (parse_double(optarg, 0, 3600, &b->idle_s))
				return usage_error("bench", "--idle-s: 0..3600");
			break;
		case 'p':
			if (parse_pids(b, optarg))
				return usage_error(
				    "bench", "--server-pid: PID[,PID...] (at most %d)", MAX_PIDS);
			break;
		case O_FLOOR:
			b->floor_only = 1;
			break;
		case O_FLOOR_S:
			if (parse_double(optarg, 0.1, 3600, &b->floor_s))
				return usage_error("bench", "--floor-s: 0.1..3600");
			break;
		case O_NOFLOOR:
			b->no_floor = 1;
			break;
		case O_ALLOWLOSS:
			b->allow_loss = 1;
			break;
		case O_JSON:
			b->json = 1;
			break;
		case O_DEFLATE:
			b->deflate = 1;
			break;
		case O_PAYLOAD_JSON:
			b->payload_json = 1;
			break;
		case O_POSITIONED:
			b->positioned = 1;
			break;
		case O_HOP:
			b->broker_hop = 1;
			break;
		case 'h':
			bench_help();
			return EXIT_OK;
		default:
			return usage_error("bench", "unknown option");
		}
	}
	if (optind != argc)
		return usage_error("bench", "unexpected argument '%s'", argv[optind]);
	for (int i = 0; i < b->npids; i++)
		if (proc_cpu_s(b->pids[i]) < 0)
			return usage_error("bench", "--server-pid %d: no such process", b->pids[i]);

	/* fds: every client, plus the floor's own sockets in a child; raise the soft limit */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)b->nclients + 32 > rl.rlim_cur)
		return usage_error("bench",
				   "--clients %d needs more file descriptors than RLIMIT_NOFILE "
				   "(%lu); run several bench processes",
				   b->nclients, (unsigned long)rl.rlim_cur);

	if (b->floor_only) {
		struct floor_result fr;
		struct step_result s = {0};
		if (run_floor(b->nclients, b->nch, b->rates[0], b->floor_s, &fr)) {
			warnx_("bench: floor: %s", fr.err);
			return EXIT_FAIL;
		}
		floor_into(&s, &fr);
		if (b->json)
			printf("{\"floor\":{\"sockets\":%d,\"frame_bytes\":%d,\"writes\":%" PRIu64
			       ",\"writes_per_s\":%.1f,\"us_per_write\":%.3f,\"sys_us\":%.3f,"
			       "\"user_us\":%.3f,\"would_block\":%" PRIu64
			       ",\"read_bytes\":%" PRIu64 "}}\n",
			       b->nclients, FLOOR_FRAME, fr.writes, s.floor_rate,
			       s.floor_us_per_write, s.floor_sys_us, s.floor_user_us, fr.eagain,
			       fr.read_bytes);
		else
			printf("floor: %" PRIu64 " writes of %d B to %d loopback sockets in %.2f s "
			       "(%.0f/s): %.2f us CPU per write (sys %.2f, user %.2f); reader got "
			       "%" PRIu64 " bytes\n",
			       fr.writes, FLOOR_FRAME, b->nclients, fr.secs, s.floor_rate,
			       s.floor_us_per_write, s.floor_sys_us, s.floor_user_us,
			       fr.read_bytes);
		return fr.read_bytes == fr.writes * FLOOR_FRAME ? EXIT_OK : EXIT_FAIL;
	}

	if (!url)
		return usage_error("bench", "--url is required (or --floor)");
	if (wsc_url_parse(url, &b->url, err, sizeof(err)) ||
	    wsc_resolve(&b->url, &b->ss, &b->sslen, err, sizeof(err)))
		return usage_error("bench", "%s", err);
	if (!b->via_ws && redis_addr_parse(redis_url, &b->redis, err, sizeof(err)))
		return usage_error("bench", "--redis: %s", err);
	if (b->positioned && b->via_ws)
		return usage_error("bench", "--positioned: with --via valkey only (publishes "
					    "through fanoutd are positioned on their own)");

	install_stop_signals();
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	b->cl = calloc((size_t)b->nclients, sizeof(*b->cl));
	b->ready_per_ch = calloc((size_t)b->nch, sizeof(int));
	b->chseq = calloc((size_t)b->nch, sizeof(uint64_t));
	b->payload = malloc((size_t)b->payload_bytes + 128);
	if (b->ep < 0 || !b->cl || !b->ready_per_ch || !b->chseq || !b->payload) {
		warnx_("bench: out of memory");
		goto out;
	}
	for (int i = 0; i < b->nclients; i++) {
		wsc_init(&b->cl[i].ws);
		b->cl[i].ws.deflate = (uint8_t)b->deflate;
	}
	wsc_init(&b->pubws);

	rss_before = servers_rss_kib(b);
	{
		int64_t t0 = now_ns_mono();
		connect_clients(b);
		connect_secs = (double)(now_ns_mono() - t0) / 1e9;
	}
	if (b->idle_s > 0 && b->npids) {
		int64_t end = now_ns_mono() + (int64_t)(b->idle_s * 1e9);
		while (now_ns_mono() < end && !stop_requested)
			poll_once(b, 10);
	}
	rss_after = servers_rss_kib(b);
	if (!b->json) {
		printf("fanout-cli bench: %d clients on %d channel(s) via %s, payload %d B, %s\n",
		       b->nclients, b->nch,
		       b->via_ws       ? "ws publish"
		       : b->positioned ? "valkey FCALL fanout_publish (positioned)"
				       : "valkey PUBLISH",
		       b->payload_bytes, url);
		printf("connect: %d connected and subscribed, %d failed, in %.2f s%s%s\n",
		       b->connected, b->nclients - b->connected, connect_secs,
		       b->first_error[0] ? "; first error: " : "", b->first_error);
		if (rss_before >= 0 && rss_after >= 0 && b->connected)
			printf("server RSS %.1f MiB -> %.1f MiB: %.2f KiB per connection\n",
			       (double)rss_before / 1024, (double)rss_after / 1024,
			       (double)(rss_after - rss_before) / b->connected);
		fflush(stdout);
	}
	if (b->connected == 0) {
		warnx_("bench: no client connected%s%s", b->first_error[0] ? ": " : "",
		       b->first_error);
		goto out;
	}
	if (publisher_open(b))
		goto out;
	for (int i = 0; i < b->nsteps && !stop_requested; i++) {
		res[i].rate = b->rates[i];
		run_step(b, &res[i]);
		if (!b->no_floor && !stop_requested) {
			struct floor_result fr;
			double rate =
			    res[i].deliveries_per_s > 0 ? res[i].deliveries_per_s : res[i].rate;
			if (run_floor(b->connected, b->nch, rate, b->floor_s, &fr) == 0)
				floor_into(&res[i], &fr);
			else if (!b->json)
				warnx_("bench: floor: %s", fr.err);
		}
		if (!b->json) {
			print_step_text(b, i, &res[i]);
			fflush(stdout);
		}
	}
	rc = EXIT_OK;
	if (b->connected < b->nclients)
		rc = EXIT_FAIL;
	for (int i = 0; i < b->nsteps; i++)
		if (!b->allow_loss && (res[i].received < res[i].expected || res[i].pub_errors))
			rc = EXIT_FAIL;
	if (stop_requested)
		rc = EXIT_FAIL;
	if (b->json) {
		printf("{\"url\":\"%s\",\"clients\":%d,\"channels\":%d,\"via\":\"%s\","
		       "\"payload_bytes\":%d,\"connect\":{\"connected\":%d,\"failed\":%d,"
		       "\"secs\":%.3f,\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld,"
		       "\"server_kib_per_connection\":%.3f},\"steps\":[",
		       url, b->nclients, b->nch,
		       b->via_ws       ? "ws"
		       : b->positioned ? "valkey-positioned"
				       : "valkey",
		       b->payload_bytes, b->connected, b->nclients - b->connected, connect_secs,
		       rss_before, rss_after,
		       rss_before >= 0 && rss_after >= 0
			   ? (double)(rss_after - rss_before) / b->connected
			   : -1.0);
		for (int i = 0; i < b->nsteps; i++)
			print_step_json(&res[i], i == b->nsteps - 1);
		printf("],\"ok\":%s}\n", rc == EXIT_OK ? "true" : "false");
	} else if (rc != EXIT_OK) {
		printf("result: FAILED (%s)\n",
		       b->connected < b->nclients ? "clients failed to connect"
		       : stop_requested		  ? "interrupted"
						  : "deliveries lost or publish errors");
	} else {
		printf("result: ok\n");
	}
out:
	if (b->cl) {
		for (int i = 0; i < b->nclients; i++)
			wsc_free(&b->cl[i].ws);
		free(b->cl);
	}
	wsc_free(&b->pubws);
	if (b->rc)
		redisFree(b->rc);
	if (b->hop_rc)
		redisFree(b->hop_rc);
	free(b->ready_per_ch);
	free(b->chseq);
	free(b->payload);
	if (b->ep >= 0)
		close(b->ep);
	return rc;
}
