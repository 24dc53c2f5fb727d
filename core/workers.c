/*
 * workers.c — placeholder for `workers = N` (issue: performance). Until it
 * lands, workers != 1 runs a single process and says so.
 */
#define LOG_TAG "workers"
#include "log.h"
#include "plugin_host.h"
#include "server.h"
#include "workers.h"

int workers_run(const struct config *c)
{
	log_warn("workers = %d is not supported yet: running one process", c->workers);
	int fd = server_listen_socket(c, 0);
	return fd < 0 ? EXIT_RUNTIME : run_server(c, fd, 0);
}
