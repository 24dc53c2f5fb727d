/*
 * notify.h — fanoutd's side of the systemd service protocol (sd_notify(3)):
 * READY=1 once the listener is up and every backend is up with its
 * subscriptions confirmed (what /readyz answers 200 for), STATUS= lines
 * saying what it waits for, WATCHDOG=1 keep-alives from the running loop,
 * RELOADING=1 / STOPPING=1. Without NOTIFY_SOCKET in the environment (not
 * started by systemd with Type=notify), or when built without libsystemd,
 * every call does nothing.
 *
 * Only the main process talks to systemd: with workers the supervisor
 * (workers.c) sends READY/WATCHDOG for the whole group and each worker
 * calls notify_disable() after the fork.
 */
#ifndef FANOUT_NOTIFY_H
#define FANOUT_NOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET and WATCHDOG_USEC (main thread, at start-up). */
void notify_init(void);
/* This process never notifies (a forked worker). */
void notify_disable(void);
/* 1 when notifications go anywhere. */
int notify_enabled(void);
/* Half the watchdog interval systemd asked for, in ms; 0: no watchdog. */
uint64_t notify_watchdog_ms(void);
/* 1 when built with libsystemd (fanoutd --version says so). */
int notify_supported(void);

/* The readiness/status step of one check: ready != 0 sends READY=1 the
 * first time (and after a reload); status (may be NULL) is sent as STATUS=
 * when it changed. */
void notify_state(int ready, const char *status);
void notify_watchdog(void);
void notify_reloading(void);
void notify_stopping(void);

/* Single-process fanoutd: check readiness on the loop (every 100 ms until
 * ready, then every second) and send WATCHDOG=1 from it. */
void notify_loop_start(void);
void notify_loop_stop(void);

#endif
