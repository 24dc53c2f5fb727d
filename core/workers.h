/*
 * workers.h — `workers = N|auto`: N processes sharing the listen port
 * (each its own SO_REUSEPORT listener and backend connections), a parent
 * that only supervises, and a shared-memory page through which /metrics and
 * /readyz answered by any worker speak for all of them.
 */
#ifndef FANOUT_WORKERS_H
#define FANOUT_WORKERS_H

#include <stdint.h>

#include "buf.h"
#include "config.h"

/* The server entry each worker runs: serve on listen_fd until shutdown,
 * return the process's exit code (main.c's run_server). */
typedef int (*workers_serve_fn)(const struct config *c, int listen_fd, int worker_id);

/* Fork the workers, each running serve(c, its own SO_REUSEPORT listener,
 * 1..N), and supervise them until SIGTERM/SIGINT; exit code. */
int workers_run(const struct config *c, workers_serve_fn serve);

/* 1 in a worker of a multi-process group. */
int workers_active(void);
/* Worker: start publishing this worker's state to the shared page. */
void workers_child_start(void);
/* Worker: copy this worker's counters and readiness into its slot now. */
void workers_publish(void);
/* Render /metrics summed over every live worker (plus per-worker series). */
void workers_render_metrics(struct buf *o);
/* /readyz for the group: 1 when every worker is alive, fresh and ready;
 * appends a JSON array of the workers' states to o. */
int workers_ready(struct buf *o);

#endif
