/*
 * loop.c — owns the event-loop glue on libwebsockets' own loop (poll):
 *
 *   fd watches  each watched fd is dup()ed and adopted by lws as a raw file
 *               (lws closes what it adopts, the owner keeps its own fd);
 *               read interest is switched with rx flow control, write
 *               interest with lws_callback_on_writable() re-armed after
 *               each callback (level-triggered like poll()).
 *   timers      lws_sul (sorted µs list) entries embedded in our handle.
 *   post()      a mutex-protected FIFO plus lws_cancel_service(), drained
 *               on LWS_CALLBACK_EVENT_WAIT_CANCELLED — the only code here
 *               that runs on other threads is loop_post().
 *   io          one epoll set (level-triggered) for the descriptors the
 *               core drives itself, watched like any fd: when it is
 *               readable, epoll_wait(0) hands over the ready ones.
 *   passes      loop_run() calls lws_service() — one poll() and its
 *               callbacks — then the pass-end hooks; a timer callback is
 *               followed by them too (lws runs timers before it polls).
 *
 * Loop thread except loop_post(). Allocates one struct per watch, timer and
 * queued post; frees them on remove (deferred while lws still holds a
 * watch's wsi) and at shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOG_TAG "loop"
#include "log.h"
#include "loop.h"

struct fanout_watch {
	int fd;		 /* the owner's fd (reported to the callback) */
	unsigned events; /* FANOUT_FD_READ | FANOUT_FD_WRITE */
	fanout_fd_cb cb;
	void *arg;
	struct lws *wsi; /* lws's wsi over dup(fd); NULL once lws closed it */
};

struct fanout_timer {
	lws_sorted_usec_list_t sul; /* first: container_of by cast */
	fanout_timer_cb cb;
	void *arg;
	int armed;
};

struct post_item {
	fanout_post_cb cb;
	void *arg;
	struct post_item *next;
};

static struct lws_context *ctx;
static struct lws_vhost *vhost;
static int epfd = -1; /* the io set */
static struct fanout_watch *ep_watch;
static void (*pass_hooks[4])(void);
static int n_pass_hooks;
static long long *pass_count; /* loop_count_passes() */
static int quitting;

static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static struct post_item *post_head, *post_tail;
static int post_closed;

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int loop_init(struct lws_context *c, struct lws_vhost *vh)
{
	ctx = c;
	vhost = vh;
	quitting = 0;
	return 0;
}

/* ---- fd watches ---- */

static int watch_adopt(struct fanout_watch *w)
{
	int fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		log_err("dup(%d): %s", w->fd, strerror(errno));
		return -1;
	}
	lws_adopt_desc_t info;
	memset(&info, 0, sizeof(info));
	info.vh = vhost;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = fd;
	info.vh_prot_name = loop_protocol.name;
	info.opaque = w;
	w->wsi = lws_adopt_descriptor_vhost_via_info(&info);
	if (!w->wsi) {
		log_err("cannot watch fd %d", w->fd);
		return -1; /* lws closed fd */
	}
	if (!(w->events & FANOUT_FD_READ))
		lws_rx_flow_control(w->wsi, 0);
	if (w->events & FANOUT_FD_WRITE)
		lws_callback_on_writable(w->wsi);
	return 0;
}

struct fanout_watch *loop_watch_add(int fd, unsigned events, fanout_fd_cb cb, void *arg)
{
	struct fanout_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	if (watch_adopt(w)) {
		free(w);
		return NULL;
	}
	return w;
}

int loop_watch_set(struct fanout_watch *w, unsigned events)
{
	unsigned old = w->events;
	w->events = events;
	if (!w->wsi)
		return watch_adopt(w);
	if ((old ^ events) & FANOUT_FD_READ)
		lws_rx_flow_control(w->wsi, (events & FANOUT_FD_READ) ? 1 : 0);
	if (events & FANOUT_FD_WRITE)
		lws_callback_on_writable(w->wsi);
	return 0;
}

void loop_watch_remove(struct fanout_watch *w)
{
	if (!w)
		return;
	if (w->wsi) {
		/* lws owns the wsi: detach and have it closed on its next turn. */
		lws_set_opaque_user_data(w->wsi, NULL);
		lws_rx_flow_control(w->wsi, 0);
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
	free(w);
}

/* ---- timers ---- */

void loop_count_passes(long long *counter)
{
	pass_count = counter;
}

static void pass_end(void);

static void timer_fire(lws_sorted_usec_list_t *sul)
{
	struct fanout_timer *t = (struct fanout_timer *)sul;
	t->armed = 0;
	t->cb(t, t->arg); /* may free t */
	/* lws runs timers before it polls, so the pass this timer belongs to
	 * could block before it ends: end it here for what the timer did. */
	pass_end();
}

struct fanout_timer *loop_timer_add(fanout_timer_cb cb, void *arg)
{
	struct fanout_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	return t;
}

void loop_timer_arm(struct fanout_timer *t, uint64_t ms)
{
	if (!t)
		return;
	if (t->armed)
		lws_sul_cancel(&t->sul);
	t->armed = 1;
	/* 0 ms still goes through the timer list: it fires on the next turn. */
	lws_sul_schedule(ctx, 0, &t->sul, timer_fire, (lws_usec_t)(ms ? ms * 1000 : 1));
}

void loop_timer_disarm(struct fanout_timer *t)
{
	if (t && t->armed) {
		lws_sul_cancel(&t->sul);
		t->armed = 0;
	}
}

void loop_timer_remove(struct fanout_timer *t)
{
	if (!t)
		return;
	loop_timer_disarm(t);
	free(t);
}

/* ---- post ---- */

int loop_post(fanout_post_cb cb, void *arg)
{
	struct post_item *p = malloc(sizeof(*p));
	if (!p)
		return FANOUT_ENOMEM;
	p->cb = cb;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&post_lock);
	if (post_closed) {
		pthread_mutex_unlock(&post_lock);
		free(p);
		return FANOUT_EUNAVAIL;
	}
	if (post_tail)
		post_tail->next = p;
	else
		post_head = p;
	post_tail = p;
	pthread_mutex_unlock(&post_lock);
	lws_cancel_service(ctx);
	return 0;
}

static void post_drain(void)
{
	pthread_mutex_lock(&post_lock);
	struct post_item *p = post_head;
	post_head = post_tail = NULL;
	pthread_mutex_unlock(&post_lock);
	while (p) {
		struct post_item *next = p->next;
		p->cb(p->arg);
		free(p);
		p = next;
	}
}

void loop_shutdown(void)
{
	if (ep_watch) {
		loop_watch_remove(ep_watch);
		ep_watch = NULL;
	}
	if (epfd >= 0) {
		close(epfd);
		epfd = -1;
	}
	n_pass_hooks = 0;
	pass_count = NULL;
	pthread_mutex_lock(&post_lock);
	struct post_item *p = post_head;
	post_head = post_tail = NULL;
	post_closed = 1;
	pthread_mutex_unlock(&post_lock);
	while (p) {
		struct post_item *next = p->next;
		free(p);
		p = next;
	}
}

/* ---- the lws side ---- */

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct fanout_watch *w;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* never a WebSocket (the upgrade gate refuses first) */
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		post_drain();
		break;
	case LWS_CALLBACK_RAW_RX_FILE:
		w = lws_get_opaque_user_data(wsi);
		if (w && (w->events & FANOUT_FD_READ)) {
			w->cb(w, w->fd, FANOUT_FD_READ, w->arg);
		}
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		w = lws_get_opaque_user_data(wsi);
		if (w && (w->events & FANOUT_FD_WRITE)) {
			w->cb(w, w->fd, FANOUT_FD_WRITE, w->arg);
			/* The callback may have removed the watch. */
			w = lws_get_opaque_user_data(wsi);
			if (w && (w->events & FANOUT_FD_WRITE))
				lws_callback_on_writable(wsi);
		}
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		w = lws_get_opaque_user_data(wsi);
		if (w) {
			/* lws gave up on the fd (error/hang-up): let the owner
			 * see it as readable, so its read() finds out why. */
			w->wsi = NULL;
			lws_set_opaque_user_data(wsi, NULL);
			if (w->events & FANOUT_FD_READ)
				w->cb(w, w->fd, FANOUT_FD_READ, w->arg);
		}
		break;
	default:
		break;
	}
	return 0;
}

const struct lws_protocols loop_protocol = {
    .name = "fanout-loop",
    .callback = loop_callback,
    .per_session_data_size = 0,
    .rx_buffer_size = 0,
};

/* ---- the epoll set ---- */

static uint32_t ep_events(unsigned ev)
{
	return ((ev & LOOP_IN) ? EPOLLIN | EPOLLRDHUP : 0) | ((ev & LOOP_OUT) ? EPOLLOUT : 0);
}

static void on_epoll(struct fanout_watch *w, int fd, unsigned ev, void *arg)
{
	struct epoll_event evs[256];
	/* At most a few rounds per pass, so a flood of ready clients cannot
	 * starve the rest of the loop; level-triggered, so what is left is
	 * reported again next pass. */
	for (int round = 0; round < 8; round++) {
		int n = epoll_wait(epfd, evs, 256, 0);
		for (int i = 0; i < n; i++) {
			struct loop_io *io = evs[i].data.ptr;
			uint32_t e = evs[i].events;
			if (io->fd < 0)
				continue; /* removed earlier in this batch */
			unsigned r = 0;
			if (e & (EPOLLIN | EPOLLRDHUP))
				r |= LOOP_IN;
			if (e & EPOLLOUT)
				r |= LOOP_OUT;
			if (e & (EPOLLERR | EPOLLHUP))
				r |= LOOP_ERR | LOOP_IN;
			io->cb(io, r);
		}
		if (n < 256)
			break;
	}
}

static int ep_open(void)
{
	if (epfd >= 0)
		return 0;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		log_err("epoll_create1: %s", strerror(errno));
		return -1;
	}
	ep_watch = loop_watch_add(epfd, FANOUT_FD_READ, on_epoll, NULL);
	if (!ep_watch) {
		close(epfd);
		epfd = -1;
		return -1;
	}
	return 0;
}

int loop_io_add(struct loop_io *io, int fd, unsigned events, loop_io_cb cb)
{
	if (ep_open())
		return -1;
	struct epoll_event e = {.events = ep_events(events), .data.ptr = io};
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e)) {
		io->fd = -1;
		return -1;
	}
	return 0;
}

int loop_io_set(struct loop_io *io, unsigned events)
{
	if (io->fd < 0 || io->events == events)
		return 0;
	struct epoll_event e = {.events = ep_events(events), .data.ptr = io};
	io->events = events;
	return epoll_ctl(epfd, EPOLL_CTL_MOD, io->fd, &e);
}

void loop_io_del(struct loop_io *io)
{
	if (io->fd < 0)
		return;
	epoll_ctl(epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
}

/* ---- passes ---- */

void loop_on_pass_end(void (*hook)(void))
{
	if (n_pass_hooks < 4)
		pass_hooks[n_pass_hooks++] = hook;
}

static void pass_end(void)
{
	for (int i = 0; i < n_pass_hooks; i++)
		pass_hooks[i]();
}

int loop_run(void)
{
	while (!quitting) {
		if (lws_service(ctx, 0) < 0)
			break;
		if (pass_count)
			(*pass_count)++;
		pass_end();
	}
	return 0;
}

void loop_quit(void)
{
	quitting = 1;
	if (ctx)
		lws_cancel_service(ctx);
}
