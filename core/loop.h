/*
 * loop.h — the event-loop layer: fd watches, one-shot timers and a
 * thread-safe post(), on top of libwebsockets' own loop; an epoll set for
 * the descriptors the core drives itself (WebSocket connections once
 * fanoutd took them over from lws); and the end of each loop pass, where
 * the core writes what the pass produced.
 *
 * Everything else in the core and every plugin uses only this interface,
 * never lws's fd or timer calls. The watch and timer types are the plugin
 * ABI's opaque handles themselves.
 *
 * One pass of the loop = one poll() of lws's few descriptors (listeners,
 * HTTP requests in progress, plugin fds, the epoll set's fd) and every
 * callback that results, then the pass-end hooks. lws's poll() never sees
 * a WebSocket connection, so its cost does not grow with the clients; the
 * clients' readiness comes from one epoll_wait() per pass.
 */
#ifndef FANOUT_LOOP_H
#define FANOUT_LOOP_H

#include <stdint.h>

#include <fanout/plugin.h>

struct lws_context;
struct lws_vhost;
struct lws_protocols;

/* The lws protocol that carries watches and post() wake-ups; put it in
 * the vhost's protocol list. */
extern const struct lws_protocols loop_protocol;

/* Bind the layer to a running context/vhost (call once, before use). */
int loop_init(struct lws_context *ctx, struct lws_vhost *vh);
/* Drop queued posts (they are not run) and refuse new ones. */
void loop_shutdown(void);

struct fanout_watch *loop_watch_add(int fd, unsigned events, fanout_fd_cb cb, void *arg);
int loop_watch_set(struct fanout_watch *w, unsigned events);
void loop_watch_remove(struct fanout_watch *w);

struct fanout_timer *loop_timer_add(fanout_timer_cb cb, void *arg);
void loop_timer_arm(struct fanout_timer *t, uint64_t ms);
void loop_timer_disarm(struct fanout_timer *t);
void loop_timer_remove(struct fanout_timer *t);

/* Thread-safe: run cb(arg) on the loop thread soon. 0 or FANOUT_ENOMEM/EUNAVAIL. */
int loop_post(fanout_post_cb cb, void *arg);

uint64_t loop_now_ms(void);

/* ---- descriptors in the epoll set ---- */

#define LOOP_IN	 1u /* readable */
#define LOOP_OUT 2u /* writable */
#define LOOP_ERR 4u /* error or hang-up (reported with LOOP_IN: read to see why) */

struct loop_io;
typedef void (*loop_io_cb)(struct loop_io *io, unsigned revents);

/* Embedded by the owner; fd is -1 once removed. */
struct loop_io {
	int fd;
	unsigned events; /* LOOP_IN | LOOP_OUT wanted (level-triggered) */
	loop_io_cb cb;
};

/* Add fd with the events wanted. 0 or -1 (errno set). */
int loop_io_add(struct loop_io *io, int fd, unsigned events, loop_io_cb cb);
/* Change the events wanted (no syscall when unchanged). 0 or -1. */
int loop_io_set(struct loop_io *io, unsigned events);
/* Remove it (the owner closes the fd). io's memory must stay valid until
 * the end of the current pass: events already fetched for it are skipped. */
void loop_io_del(struct loop_io *io);

/* Run hook at the end of every loop pass, after all of the pass's
 * callbacks (at most 4 hooks, run in the order added). */
void loop_on_pass_end(void (*hook)(void));

/* Count every loop pass in *counter (NULL: stop counting); the caller
 * keeps it (fanoutd: metrics.loop_passes, so the loop needs no metrics). */
void loop_count_passes(long long *counter);

/* Run until loop_quit(). Returns 0. */
int loop_run(void);
void loop_quit(void);

#endif
