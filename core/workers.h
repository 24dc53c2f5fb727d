/*
 * workers.h — `workers = N|auto`: N processes sharing the listen port.
 */
#ifndef FANOUT_WORKERS_H
#define FANOUT_WORKERS_H

#include "config.h"

/* Fork the workers and supervise them until SIGTERM/SIGINT; exit code. */
int workers_run(const struct config *c);
/* One worker/single process: serve on listen_fd until shutdown. */
int run_server(const struct config *c, int listen_fd, int worker_id);

#endif
