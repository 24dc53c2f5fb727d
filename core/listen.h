/*
 * listen.h — opening the TCP listen socket of a fanoutd process (the
 * single server and each worker open their own).
 */
#ifndef FANOUT_LISTEN_H
#define FANOUT_LISTEN_H

#include "config.h"

/* Open, bind and listen on c->listen (numeric address), non-blocking and
 * close-on-exec, SO_REUSEADDR, plus SO_REUSEPORT when reuseport is set.
 * Returns the fd, or -1 after logging why. */
int listen_socket(const struct config *c, int reuseport);
/* The same for c->admin_listen: the fd, -1 after logging why, or -2 when
 * admin_listen is not set. */
int listen_admin_socket(const struct config *c, int reuseport);

#endif
