/*
 * mockhost.c — a fake fanoutd host for plugin tests (see mockhost.h).
 *
 * Owns: a poll()-based loop over the plugin's fd watches plus a self-pipe,
 * a list of one-shot timers, a mutex-protected queue of post()ed callbacks,
 * and growable arrays recording every call the plugin makes into the host.
 * Thread: everything runs on the test's thread; only host_post() may be
 * called from other threads (it takes the mutex and writes to the pipe).
 * Memory: watches and timers are freed lazily (after the loop turn that
 * removed them) so removal inside their own callback is safe; recorded
 * strings are heap copies freed by mockhost_reset_records()/mockhost_free().
 */
#include "mockhost.h"
#include "contract.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fanout_backend {
	struct mockhost *m;
};

struct fanout_watch {
	struct mockhost *m;
	int fd;
	unsigned events;
	fanout_fd_cb cb;
	void *arg;
	int dead;
	struct fanout_watch *next;
};

struct fanout_timer {
	struct mockhost *m;
	fanout_timer_cb cb;
	void *arg;
	int armed;
	uint64_t due;
	uint64_t seq; /* arm order: equal deadlines fire in arm order */
	int dead;
	struct fanout_timer *next;
};

struct post_item {
	fanout_post_cb cb;
	void *arg;
	struct post_item *next;
};

struct counter {
	char *event;
	uint64_t value;
};

#define ARRAY(T)                                                                                   \
	struct {                                                                                   \
		T *v;                                                                              \
		size_t n, cap;                                                                     \
	}

struct mockhost {
	struct fanout_host host;
	struct fanout_backend backend;
	char instance[128];
	char name[64];
	int quiet;
	const char *const *channels; /* channels(): set by the test, default {"*"} */
	size_t n_channels;

	struct fanout_watch *watches;
	struct fanout_timer *timers;
	uint64_t timer_seq;

	pthread_mutex_t post_lock;
	struct post_item *post_head, *post_tail;
	int pipe_rd, pipe_wr;
	int stopped; /* after stop(): posts are dropped */

	const struct fanout_plugin *plugin;
	void *state;
	int started;

	ARRAY(struct mock_msg) delivered;
	ARRAY(struct mock_sub) subscribed;
	ARRAY(struct mock_pub) published;
	ARRAY(struct mock_state) states;
	ARRAY(struct mock_gap) gaps;
	ARRAY(struct mock_log) logs;
	ARRAY(struct mock_pos) tops;
	ARRAY(struct mock_item) items;
	ARRAY(struct mock_pos) histories;
	ARRAY(struct counter) counters;
};

#define PUSH(arr, item)                                                                            \
	do {                                                                                       \
		if ((arr).n == (arr).cap) {                                                        \
			size_t nc = (arr).cap ? (arr).cap * 2 : 64;                                \
			void *nv = realloc((arr).v, nc * sizeof(*(arr).v));                        \
			if (!nv)                                                                   \
				abort();                                                           \
			(arr).v = nv;                                                              \
			(arr).cap = nc;                                                            \
		}                                                                                  \
		(arr).v[(arr).n++] = (item);                                                       \
	} while (0)

static char *xstrdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		abort();
	return d;
}

uint64_t mockhost_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int mockhost_free_port(void)
{
	static unsigned char given[65536 / 8];
	static unsigned seed;
	int low = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%d", &low) != 1 || low <= 12000)
			low = 32768;
		fclose(f);
	}
	if (!seed)
		seed = (unsigned)getpid() ^ (unsigned)mockhost_now_ms();
	for (int i = 0; i < 200; i++) {
		int port = 10000 + (int)(rand_r(&seed) % (unsigned)(low - 10000));
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		int fd, ok;

		if (given[port / 8] & (1u << (port % 8)))
			continue;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		ok = !bind(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (ok) {
			given[port / 8] |= (unsigned char)(1u << (port % 8));
			return port;
		}
	}
	fail_msg("no free port below the ephemeral range");
	return -1;
}

/* ---- host services ---- */

static void host_log(struct fanout_backend *b, enum fanout_log_level level, const char *fmt, ...)
    FANOUT_PRINTF(3, 4);
static void host_log(struct fanout_backend *b, enum fanout_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"err", "warn", "info", "debug"};
	struct mock_log l;
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	l.level = level;
	l.text = xstrdup(buf);
	PUSH(b->m->logs, l);
	if (!b->m->quiet)
		fprintf(stderr, "# [mock %s] %s: %s\n", b->m->name,
			(unsigned)level < 4 ? names[level] : "?", buf);
}

static void host_deliver(struct fanout_backend *b, const char *channel, const void *data,
			 size_t len)
{
	struct mock_msg msg;

	msg.channel = xstrdup(channel);
	msg.data = malloc(len + 1);
	if (!msg.data)
		abort();
	if (len)
		memcpy(msg.data, data, len);
	msg.data[len] = 0;
	msg.len = len;
	msg.epoch = NULL;
	msg.offset = 0;
	PUSH(b->m->delivered, msg);
}

static void host_subscribed(struct fanout_backend *b, const char *channel, int ok)
{
	struct mock_sub s = {xstrdup(channel), ok, NULL, 0, 0};

	PUSH(b->m->subscribed, s);
}

static void host_published(struct fanout_backend *b, uint64_t token, int ok)
{
	struct mock_pub p = {token, ok, NULL, 0};

	PUSH(b->m->published, p);
}

/* ---- positions (ABI 1.1) ---- */

static void host_subscribed_at(struct fanout_backend *b, const char *channel, int ok,
			       const char *epoch, uint64_t top, unsigned flags)
{
	struct mock_sub s = {xstrdup(channel), ok, xstrdup(epoch), top, flags};

	PUSH(b->m->subscribed, s);
}

static void host_deliver_at(struct fanout_backend *b, const char *channel, const char *epoch,
			    uint64_t offset, const void *data, size_t len)
{
	host_deliver(b, channel, data, len);
	struct mock_msg *msg = &b->m->delivered.v[b->m->delivered.n - 1];
	msg->epoch = xstrdup(epoch ? epoch : "");
	msg->offset = offset;
}

static void host_published_at(struct fanout_backend *b, uint64_t token, int ok, const char *epoch,
			      uint64_t offset)
{
	struct mock_pub p = {token, ok, xstrdup(epoch), offset};

	PUSH(b->m->published, p);
}

static void host_top_done(struct fanout_backend *b, uint64_t token, int status, const char *epoch,
			  uint64_t top)
{
	struct mock_pos t = {token, status, xstrdup(epoch), top};

	PUSH(b->m->tops, t);
}

static void host_history_item(struct fanout_backend *b, uint64_t token, uint64_t offset,
			      const void *data, size_t len)
{
	struct mock_item it = {token, offset, malloc(len + 1), len};

	if (!it.data)
		abort();
	if (len)
		memcpy(it.data, data, len);
	it.data[len] = 0;
	PUSH(b->m->items, it);
}

static void host_history_done(struct fanout_backend *b, uint64_t token, int status,
			      const char *epoch, uint64_t top)
{
	struct mock_pos h = {token, status, xstrdup(epoch), top};

	PUSH(b->m->histories, h);
}

static void host_backend_state(struct fanout_backend *b, enum fanout_state state,
			       const char *reason)
{
	struct mock_state s = {state, xstrdup(reason ? reason : "")};

	PUSH(b->m->states, s);
}

static void host_gap(struct fanout_backend *b, const char *channel, const char *reason)
{
	struct mock_gap g = {xstrdup(channel), xstrdup(reason ? reason : "")};

	PUSH(b->m->gaps, g);
}

static struct fanout_watch *host_watch_add(struct fanout_backend *b, int fd, unsigned events,
					   fanout_fd_cb cb, void *arg)
{
	struct fanout_watch *w;

	if (fd < 0 || !cb)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->m = b->m;
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	w->next = b->m->watches;
	b->m->watches = w;
	return w;
}

static int host_watch_set(struct fanout_watch *w, unsigned events)
{
	if (!w || w->dead)
		return FANOUT_EINVAL;
	w->events = events;
	return 0;
}

static void host_watch_remove(struct fanout_watch *w)
{
	if (w)
		w->dead = 1;
}

static struct fanout_timer *host_timer_add(struct fanout_backend *b, fanout_timer_cb cb, void *arg)
{
	struct fanout_timer *t;

	if (!cb)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->m = b->m;
	t->cb = cb;
	t->arg = arg;
	t->next = b->m->timers;
	b->m->timers = t;
	return t;
}

static void host_timer_arm(struct fanout_timer *t, uint64_t ms)
{
	if (!t || t->dead)
		return;
	t->armed = 1;
	t->due = mockhost_now_ms() + ms;
	t->seq = ++t->m->timer_seq;
}

static void host_timer_disarm(struct fanout_timer *t)
{
	if (t)
		t->armed = 0;
}

static void host_timer_remove(struct fanout_timer *t)
{
	if (t) {
		t->armed = 0;
		t->dead = 1;
	}
}

static int host_post(struct fanout_backend *b, fanout_post_cb cb, void *arg)
{
	struct mockhost *m = b->m;
	struct post_item *it = calloc(1, sizeof(*it));
	char c = 1;

	if (!it)
		return FANOUT_ENOMEM;
	it->cb = cb;
	it->arg = arg;
	pthread_mutex_lock(&m->post_lock);
	if (m->post_tail)
		m->post_tail->next = it;
	else
		m->post_head = it;
	m->post_tail = it;
	pthread_mutex_unlock(&m->post_lock);
	/* The pipe is non-blocking: a full pipe already means "wake up". */
	if (write(m->pipe_wr, &c, 1) < 0 && errno != EAGAIN)
		return FANOUT_EIO;
	return 0;
}

static const char *host_instance(struct fanout_backend *b)
{
	return b->m->instance;
}

static const char *host_name(struct fanout_backend *b)
{
	return b->m->name;
}

static const char *const *host_channels(struct fanout_backend *b, size_t *n)
{
	static const char *const all[] = {"*"};

	if (b->m->channels) {
		*n = b->m->n_channels;
		return b->m->channels;
	}
	*n = 1;
	return all;
}

static uint64_t host_now_ms(struct fanout_backend *b)
{
	(void)b;
	return mockhost_now_ms();
}

static void host_count(struct fanout_backend *b, const char *event, uint64_t delta)
{
	struct mockhost *m = b->m;
	struct counter c;

	for (size_t i = 0; i < m->counters.n; i++) {
		if (strcmp(m->counters.v[i].event, event) == 0) {
			m->counters.v[i].value += delta;
			return;
		}
	}
	if (m->counters.n >= 32)
		return; /* the real host ignores names past 32 too */
	c.event = xstrdup(event);
	c.value = delta;
	PUSH(m->counters, c);
}

/* ---- lifecycle ---- */

struct mockhost *mockhost_new(void)
{
	struct mockhost *m = calloc(1, sizeof(*m));
	int fds[2];

	if (!m)
		return NULL;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(m);
		return NULL;
	}
	m->pipe_rd = fds[0];
	m->pipe_wr = fds[1];
	pthread_mutex_init(&m->post_lock, NULL);
	m->backend.m = m;
	snprintf(m->instance, sizeof(m->instance), "mock");
	snprintf(m->name, sizeof(m->name), "test");
	m->host = (struct fanout_host){
	    .abi_major = FANOUT_ABI_MAJOR,
	    .abi_minor = FANOUT_ABI_MINOR,
	    .struct_size = sizeof(struct fanout_host),
	    .log = host_log,
	    .deliver = host_deliver,
	    .subscribed = host_subscribed,
	    .published = host_published,
	    .backend_state = host_backend_state,
	    .gap = host_gap,
	    .watch_add = host_watch_add,
	    .watch_set = host_watch_set,
	    .watch_remove = host_watch_remove,
	    .timer_add = host_timer_add,
	    .timer_arm = host_timer_arm,
	    .timer_disarm = host_timer_disarm,
	    .timer_remove = host_timer_remove,
	    .post = host_post,
	    .instance = host_instance,
	    .name = host_name,
	    .now_ms = host_now_ms,
	    .count = host_count,
	    .subscribed_at = host_subscribed_at,
	    .deliver_at = host_deliver_at,
	    .published_at = host_published_at,
	    .top_done = host_top_done,
	    .history_item = host_history_item,
	    .history_done = host_history_done,
	    .channels = host_channels,
	};
	return m;
}

const struct fanout_host *mockhost_host(struct mockhost *m)
{
	return &m->host;
}

struct fanout_backend *mockhost_backend(struct mockhost *m)
{
	return &m->backend;
}

void mockhost_set_instance(struct mockhost *m, const char *instance)
{
	snprintf(m->instance, sizeof(m->instance), "%s", instance);
}

void mockhost_set_name(struct mockhost *m, const char *name)
{
	snprintf(m->name, sizeof(m->name), "%s", name);
}

void mockhost_set_channels(struct mockhost *m, const char *const *globs, size_t n)
{
	m->channels = n ? globs : NULL;
	m->n_channels = n;
}

void mockhost_set_quiet(struct mockhost *m, int quiet)
{
	m->quiet = quiet;
}

const struct fanout_plugin *mockhost_dlopen(const char *path)
{
	void *h;
	const struct fanout_plugin *p;

	if (!path) {
		fprintf(stderr, "# mockhost_dlopen: no path\n");
		return NULL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "# mockhost_dlopen: %s\n", dlerror());
		return NULL;
	}
	p = dlsym(h, FANOUT_PLUGIN_SYMBOL_NAME);
	if (!p) {
		fprintf(stderr, "# mockhost_dlopen: %s: no symbol %s\n", path,
			FANOUT_PLUGIN_SYMBOL_NAME);
		return NULL;
	}
	char why[300];
	if (contract_check_plugin(p, why, sizeof(why))) {
		fprintf(stderr, "# mockhost_dlopen: %s: %s\n", path, why);
		return NULL;
	}
	return p;
}

static void shut(struct mockhost *m, int call_stop);

static void start_err(void *arg, const struct contract_kv *kv, const char *key, const char *why)
{
	fprintf(stderr, "# mockhost_start: %s: %s\n", key ? key : "", why);
}

int mockhost_start(struct mockhost *m, const struct fanout_plugin *p, const char *const *kv,
		   void **state)
{
	struct fanout_value *vals = NULL;
	struct contract_kv *ckv;
	char why[300];
	size_t n;
	int rc;

	*state = NULL;
	if (!p)
		return -1;
	if (contract_check_plugin(p, why, sizeof(why))) {
		fprintf(stderr, "# mockhost_start: %s\n", why);
		return -1;
	}
	for (n = 0; kv && kv[2 * n]; n++)
		if (!kv[2 * n + 1]) {
			fprintf(stderr, "# mockhost_start: key %s has no value\n", kv[2 * n]);
			return -1;
		}
	ckv = calloc(n + 1, sizeof(*ckv));
	if (!ckv)
		return FANOUT_ENOMEM;
	for (size_t k = 0; k < n; k++)
		ckv[k] = (struct contract_kv){kv[2 * k], kv[2 * k + 1], 0};
	rc = contract_values(p->options, p->name, ckv, n, &vals, start_err, NULL);
	free(ckv);
	if (rc) {
		rc = -1;
		goto fail;
	}
	rc = p->init(&m->host, &m->backend, vals, state);
	if (rc < 0)
		goto fail;
	m->plugin = p;
	m->state = *state;
	m->started = 1;
	m->stopped = 0;
	rc = p->start(*state);
	if (rc < 0) { /* as fanoutd does: destroy() without stop() */
		shut(m, 0);
		*state = NULL;
		goto fail;
	}
	free(vals);
	return 0;
fail:
	free(vals);
	return rc;
}

static void drop_posts(struct mockhost *m)
{
	struct post_item *it;

	pthread_mutex_lock(&m->post_lock);
	it = m->post_head;
	m->post_head = m->post_tail = NULL;
	pthread_mutex_unlock(&m->post_lock);
	while (it) {
		struct post_item *n = it->next;
		free(it);
		it = n;
	}
}

/* Drop the started plugin: stop() when call_stop, then destroy(). */
static void shut(struct mockhost *m, int call_stop)
{
	if (!m->started)
		return;
	m->started = 0;
	if (call_stop && m->plugin->stop)
		m->plugin->stop(m->state);
	/* The ABI: callbacks still queued or posted after stop() are dropped. */
	pthread_mutex_lock(&m->post_lock);
	m->stopped = 1;
	pthread_mutex_unlock(&m->post_lock);
	drop_posts(m);
	m->plugin->destroy(m->state);
	m->state = NULL;
	drop_posts(m);
}

void mockhost_stop(struct mockhost *m)
{
	shut(m, 1);
}

/* ---- the loop ---- */

static void reap(struct mockhost *m)
{
	for (struct fanout_watch **pw = &m->watches; *pw;) {
		if ((*pw)->dead) {
			struct fanout_watch *d = *pw;
			*pw = d->next;
			free(d);
		} else {
			pw = &(*pw)->next;
		}
	}
	for (struct fanout_timer **pt = &m->timers; *pt;) {
		if ((*pt)->dead) {
			struct fanout_timer *d = *pt;
			*pt = d->next;
			free(d);
		} else {
			pt = &(*pt)->next;
		}
	}
}

static void run_posts(struct mockhost *m)
{
	struct post_item *it;
	char buf[256];
	int stopped;

	while (read(m->pipe_rd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&m->post_lock);
	it = m->post_head;
	m->post_head = m->post_tail = NULL;
	stopped = m->stopped;
	pthread_mutex_unlock(&m->post_lock);
	while (it) {
		struct post_item *n = it->next;
		if (!stopped)
			it->cb(it->arg);
		free(it);
		it = n;
	}
}

/* Fire every due timer once, earliest deadline first. */
static void run_timers(struct mockhost *m)
{
	uint64_t now = mockhost_now_ms();
	uint64_t limit = m->timer_seq; /* timers re-armed by a callback wait for the next turn */

	for (;;) {
		struct fanout_timer *best = NULL;

		for (struct fanout_timer *t = m->timers; t; t = t->next) {
			if (t->dead || !t->armed || t->due > now || t->seq > limit)
				continue;
			if (!best || t->due < best->due ||
			    (t->due == best->due && t->seq < best->seq))
				best = t;
		}
		if (!best)
			return;
		best->armed = 0;
		best->cb(best, best->arg);
	}
}

static void turn(struct mockhost *m, int max_wait_ms)
{
	struct pollfd pfd[256];
	struct fanout_watch *wl[256];
	nfds_t n = 0;
	uint64_t now = mockhost_now_ms();
	int wait = max_wait_ms;

	for (struct fanout_timer *t = m->timers; t; t = t->next) {
		if (t->dead || !t->armed)
			continue;
		int d = t->due <= now ? 0 : (int)(t->due - now);
		if (d < wait)
			wait = d;
	}
	pfd[n].fd = m->pipe_rd;
	pfd[n].events = POLLIN;
	wl[n++] = NULL;
	for (struct fanout_watch *w = m->watches; w && n < 256; w = w->next) {
		if (w->dead || !w->events)
			continue;
		pfd[n].fd = w->fd;
		pfd[n].events = (short)(((w->events & FANOUT_FD_READ) ? POLLIN : 0) |
					((w->events & FANOUT_FD_WRITE) ? POLLOUT : 0));
		wl[n++] = w;
	}
	if (wait < 0)
		wait = 0;
	int rc = poll(pfd, n, wait);
	if (rc > 0) {
		if (pfd[0].revents)
			run_posts(m);
		for (nfds_t i = 1; i < n; i++) {
			struct fanout_watch *w = wl[i];
			unsigned ev = 0;

			if (!pfd[i].revents || w->dead)
				continue;
			if ((pfd[i].revents & POLLIN && w->events & FANOUT_FD_READ) ||
			    pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				ev |= FANOUT_FD_READ;
			if (pfd[i].revents & POLLOUT && w->events & FANOUT_FD_WRITE)
				ev |= FANOUT_FD_WRITE;
			if (ev)
				w->cb(w, w->fd, ev, w->arg);
		}
	}
	run_timers(m);
	reap(m);
}

void mockhost_run(struct mockhost *m, int ms)
{
	uint64_t end = mockhost_now_ms() + (uint64_t)(ms > 0 ? ms : 0);

	do {
		uint64_t now = mockhost_now_ms();
		turn(m, now >= end ? 0 : (int)(end - now));
	} while (mockhost_now_ms() < end);
}

int mockhost_run_until(struct mockhost *m, int (*pred)(struct mockhost *, void *), void *arg,
		       int timeout_ms)
{
	uint64_t end = mockhost_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	if (pred(m, arg))
		return 1;
	for (;;) {
		uint64_t now = mockhost_now_ms();
		if (now >= end)
			return pred(m, arg);
		/* Wake at least every 50 ms so predicates on state that changed outside
		 * the loop (e.g. an external process) are seen promptly. */
		turn(m, (int)(end - now) < 50 ? (int)(end - now) : 50);
		if (pred(m, arg))
			return 1;
	}
}

/* ---- records ---- */

#define ACCESSORS(name, field, type)                                                               \
	size_t mockhost_n_##name(struct mockhost *m)                                               \
	{                                                                                          \
		return m->field.n;                                                                 \
	}                                                                                          \
	const type *mockhost_##field##_at(struct mockhost *m, size_t i);                           \
	const type *mockhost_##field##_at(struct mockhost *m, size_t i)                            \
	{                                                                                          \
		return i < m->field.n ? &m->field.v[i] : NULL;                                     \
	}

ACCESSORS(delivered, delivered, struct mock_msg)
ACCESSORS(subscribed, subscribed, struct mock_sub)
ACCESSORS(published, published, struct mock_pub)
ACCESSORS(states, states, struct mock_state)
ACCESSORS(gaps, gaps, struct mock_gap)
ACCESSORS(logs, logs, struct mock_log)
ACCESSORS(tops, tops, struct mock_pos)
ACCESSORS(items, items, struct mock_item)
ACCESSORS(histories, histories, struct mock_pos)

const struct mock_pos *mockhost_top(struct mockhost *m, size_t i)
{
	return mockhost_tops_at(m, i);
}
const struct mock_item *mockhost_item(struct mockhost *m, size_t i)
{
	return mockhost_items_at(m, i);
}
const struct mock_pos *mockhost_history(struct mockhost *m, size_t i)
{
	return mockhost_histories_at(m, i);
}

const struct mock_msg *mockhost_delivered(struct mockhost *m, size_t i)
{
	return mockhost_delivered_at(m, i);
}
const struct mock_sub *mockhost_subscribed(struct mockhost *m, size_t i)
{
	return mockhost_subscribed_at(m, i);
}
const struct mock_pub *mockhost_published(struct mockhost *m, size_t i)
{
	return mockhost_published_at(m, i);
}
const struct mock_state *mockhost_state(struct mockhost *m, size_t i)
{
	return mockhost_states_at(m, i);
}
const struct mock_gap *mockhost_gap(struct mockhost *m, size_t i)
{
	return mockhost_gaps_at(m, i);
}
const struct mock_log *mockhost_log(struct mockhost *m, size_t i)
{
	return mockhost_logs_at(m, i);
}

uint64_t mockhost_count(struct mockhost *m, const char *event)
{
	for (size_t i = 0; i < m->counters.n; i++)
		if (strcmp(m->counters.v[i].event, event) == 0)
			return m->counters.v[i].value;
	return 0;
}

enum fanout_state mockhost_last_state(struct mockhost *m, const char **reason)
{
	if (!m->states.n) {
		if (reason)
			*reason = NULL;
		return FANOUT_DOWN;
	}
	if (reason)
		*reason = m->states.v[m->states.n - 1].reason;
	return m->states.v[m->states.n - 1].state;
}

size_t mockhost_n_watches(struct mockhost *m)
{
	size_t n = 0;

	for (struct fanout_watch *w = m->watches; w; w = w->next)
		n += !w->dead;
	return n;
}

size_t mockhost_n_timers(struct mockhost *m)
{
	size_t n = 0;

	for (struct fanout_timer *t = m->timers; t; t = t->next)
		n += !t->dead;
	return n;
}

int mockhost_log_contains(struct mockhost *m, const char *needle)
{
	for (size_t i = 0; i < m->logs.n; i++)
		if (strstr(m->logs.v[i].text, needle))
			return 1;
	return 0;
}

size_t mockhost_n_subscribed_for(struct mockhost *m, const char *channel, int ok)
{
	size_t n = 0;

	for (size_t i = 0; i < m->subscribed.n; i++)
		if (strcmp(m->subscribed.v[i].channel, channel) == 0 &&
		    (ok < 0 || !m->subscribed.v[i].ok == !ok))
			n++;
	return n;
}

void mockhost_reset_records(struct mockhost *m)
{
	for (size_t i = 0; i < m->delivered.n; i++) {
		free(m->delivered.v[i].channel);
		free(m->delivered.v[i].data);
		free(m->delivered.v[i].epoch);
	}
	for (size_t i = 0; i < m->subscribed.n; i++) {
		free(m->subscribed.v[i].channel);
		free(m->subscribed.v[i].epoch);
	}
	for (size_t i = 0; i < m->published.n; i++)
		free(m->published.v[i].epoch);
	for (size_t i = 0; i < m->tops.n; i++)
		free(m->tops.v[i].epoch);
	for (size_t i = 0; i < m->items.n; i++)
		free(m->items.v[i].data);
	for (size_t i = 0; i < m->histories.n; i++)
		free(m->histories.v[i].epoch);
	m->tops.n = m->items.n = m->histories.n = 0;
	for (size_t i = 0; i < m->states.n; i++)
		free(m->states.v[i].reason);
	for (size_t i = 0; i < m->gaps.n; i++) {
		free(m->gaps.v[i].channel);
		free(m->gaps.v[i].reason);
	}
	for (size_t i = 0; i < m->logs.n; i++)
		free(m->logs.v[i].text);
	for (size_t i = 0; i < m->counters.n; i++)
		free(m->counters.v[i].event);
	m->delivered.n = m->subscribed.n = m->published.n = 0;
	m->states.n = m->gaps.n = m->logs.n = m->counters.n = 0;
}

void mockhost_free(struct mockhost *m)
{
	if (!m)
		return;
	mockhost_stop(m);
	for (struct fanout_watch *w = m->watches; w; w = w->next)
		w->dead = 1;
	for (struct fanout_timer *t = m->timers; t; t = t->next)
		t->dead = 1;
	reap(m);
	drop_posts(m);
	mockhost_reset_records(m);
	free(m->delivered.v);
	free(m->subscribed.v);
	free(m->published.v);
	free(m->states.v);
	free(m->gaps.v);
	free(m->logs.v);
	free(m->counters.v);
	free(m->tops.v);
	free(m->items.v);
	free(m->histories.v);
	close(m->pipe_rd);
	close(m->pipe_wr);
	pthread_mutex_destroy(&m->post_lock);
	free(m);
}

/* ---- predicates ---- */

int mockhost_pred_up(struct mockhost *m, void *unused)
{
	(void)unused;
	return m->states.n && mockhost_last_state(m, NULL) == FANOUT_UP;
}

int mockhost_pred_down(struct mockhost *m, void *unused)
{
	(void)unused;
	return m->states.n && mockhost_last_state(m, NULL) == FANOUT_DOWN;
}

int mockhost_pred_subscribed(struct mockhost *m, void *channel)
{
	return mockhost_n_subscribed_for(m, channel, 1) > 0;
}

int mockhost_pred_n_delivered(struct mockhost *m, void *size_t_p)
{
	return m->delivered.n >= *(size_t *)size_t_p;
}

int mockhost_pred_n_published(struct mockhost *m, void *size_t_p)
{
	return m->published.n >= *(size_t *)size_t_p;
}

int mockhost_pred_n_gaps(struct mockhost *m, void *size_t_p)
{
	return m->gaps.n >= *(size_t *)size_t_p;
}

int mockhost_pred_n_tops(struct mockhost *m, void *size_t_p)
{
	return m->tops.n >= *(size_t *)size_t_p;
}

int mockhost_pred_n_histories(struct mockhost *m, void *size_t_p)
{
	return m->histories.n >= *(size_t *)size_t_p;
}
