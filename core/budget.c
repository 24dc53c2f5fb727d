/*
 * budget.c — owns max_queued_bytes (budget.h): the budget of the memory the
 * send queues of all clients pin (counted exactly and O(1) per entry by
 * outq.c: distinct frames once, plus one reference pair per entry) and the
 * cut of the clients furthest behind when a new frame would take the count
 * past the budget. Choosing whom to cut walks the client list and
 * sorts the ones with something queued (O(n log n)), which happens only at
 * the budget; cutting down to 7/8 of it leaves room for the next burst.
 *
 * The automatic budget reads the process's memory limit once at start-up:
 * physical RAM (sysconf) and, under cgroup v2 (systemd units, containers),
 * the memory.max of the process's own cgroup.
 *
 * Loop thread only. Allocates a scratch array of client pointers for one
 * cut, freed before returning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_TAG "budget"
#include "budget.h"
#include "clients.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "outq.h"

#define GIB (1024LL * 1024 * 1024)

static long long limit = GIB;

/* The memory.max of this process's cgroup (v2), or 0 when none is set. */
static long long cgroup_limit(void)
{
	char line[512], path[600];
	long long v = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return 0;
	path[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", line + 3);
		}
	fclose(f);
	if (!path[0] || !(f = fopen(path, "r")))
		return 0;
	if (fgets(line, sizeof(line), f) && strncmp(line, "max", 3))
		v = strtoll(line, NULL, 10);
	fclose(f);
	return v > 0 ? v : 0;
}

long long budget_init(const struct config *c)
{
	if (c->max_queued_bytes >= 0) {
		limit = c->max_queued_bytes;
		return limit;
	}
	long long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	long long mem = pages > 0 && psz > 0 ? pages * psz : 4 * GIB;
	long long cg = cgroup_limit();
	if (cg && cg < mem)
		mem = cg;
	limit = mem / 4 < GIB ? mem / 4 : GIB;
	if (c->workers > 1)
		limit /= c->workers;
	else if (c->workers == 0) { /* auto: one per CPU */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		if (cpus > 1)
			limit /= cpus;
	}
	if (limit < 2 * c->client_queue_bytes)
		log_warn("max_queued_bytes auto: %lld bytes (memory %lld) holds fewer than two "
			 "full client queues",
			 limit, mem);
	return limit;
}

long long budget_limit(void)
{
	return limit;
}

static int by_queued_desc(const void *a, const void *b)
{
	size_t x = (*(struct client *const *)a)->q->bytes;
	size_t y = (*(struct client *const *)b)->q->bytes;
	return x < y ? 1 : x > y ? -1 : 0;
}

int budget_admit(struct client *self, struct msg *head, struct msg *body)
{
	long long need = outq_cost(head, body);
	if (outq_pinned() + need <= limit)
		return 0;

	/* Over: the clients with the most queued go first, until the count
	 * is back under 7/8 of the budget (with room for this frame). */
	long long target = limit - limit / 8 - need;
	size_t n = 0, cap = 0;
	for (struct client *c = clients_head(); c; c = c->next)
		cap++;
	struct client **v = malloc((cap ? cap : 1) * sizeof(*v));
	if (!v)
		return -1;
	for (struct client *c = clients_head(); c; c = c->next)
		if (c->q && c->slow && c->q->len)
			v[n++] = c;
	qsort(v, n, sizeof(*v), by_queued_desc);
	int rc = 0;
	size_t cut = 0;
	for (size_t i = 0; i < n && outq_pinned() > target; i++) {
		if (v[i] == self) {
			rc = -1; /* the caller closes itself: its queue goes then */
			break;
		}
		if (v[i]->slow(v[i])) { /* drops its queue at once */
			metrics.budget_disconnects++;
			cut++;
		}
	}
	free(v);
	if (cut || rc)
		log_info("max_queued_bytes (%lld) reached: closed %zu client(s) furthest behind%s; "
			 "%lld bytes pinned now",
			 limit, cut, rc ? " (and the one being queued to)" : "", outq_pinned());
	if (rc)
		metrics.budget_disconnects++;
	return rc;
}
