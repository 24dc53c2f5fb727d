/*
 * loop.h — the event-loop layer: fd watches, one-shot timers and a
 * thread-safe post(), on top of libwebsockets' own loop.
 *
 * Everything else in the core and every plugin uses only this interface,
 * never lws's fd or timer calls, so the loop underneath can change (an
 * epoll-class loop for many connections) without touching them. The watch
 * and timer types are the plugin ABI's opaque handles themselves.
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

/* Nonzero while a watch, timer or post callback runs. When the outermost
 * one returns, the loop calls the hook set here (the core flushes the
 * frames that callback queued: see session_flush_pending()). */
int loop_in_dispatch(void);
void loop_set_after_dispatch(void (*hook)(void));

/* Run until loop_quit(). Returns 0. */
int loop_run(void);
void loop_quit(void);

#endif
