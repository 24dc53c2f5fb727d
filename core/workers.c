/*
 * workers.c — owns `workers = N|auto`.
 *
 * The parent forks N workers and then only supervises: a dead worker is
 * restarted (after 1 s if it died young, so a crash loop cannot spin),
 * SIGTERM/SIGINT are forwarded and the parent waits for every worker to
 * drain, then exits 0. A worker that fails at start-up with a config or
 * plugin exit code stops the whole group with that code. Each worker opens
 * its own SO_REUSEPORT listener (the kernel spreads connections), runs its
 * own loop and backend connections, and dies with the parent
 * (PR_SET_PDEATHSIG).
 *
 * Shared state: one MAP_SHARED anonymous mapping created before the fork,
 * one slot per worker. Each worker copies its counters, backend states and
 * readiness into its slot every 250 ms and before it answers /metrics or
 * /readyz (a sequence counter makes readers retry a torn copy), so either
 * endpoint speaks for the whole group whichever worker the request reached.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOG_TAG "workers"
#include "clients.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "msg.h"
#include "notify.h"
#include "plugin_host.h"
#include "reload.h"
#include "workers.h"

#define WORKERS_MAX   64
#define SLOT_BACKENDS 8
#define SLOT_EVENTS   16

struct slot_backend {
	char name[48];
	int up;
	long long pending, state_changes, messages_in;
	int n_events;
	struct {
		char name[40];
		unsigned long long value;
	} ev[SLOT_EVENTS];
};

struct slot {
	int pid;      /* 0: no worker */
	uint64_t seq; /* odd while being written */
	uint64_t updated_ms;
	int ready, draining;
	struct metrics m;
	long long shared_frames;
	int n_backends;
	struct slot_backend b[SLOT_BACKENDS];
};

struct shm {
	int n;
	struct slot slot[WORKERS_MAX];
};

static struct shm *shm;
static int my_id = -1;
static struct fanout_timer *publish_timer;

int workers_active(void)
{
	return shm && my_id >= 0;
}

void workers_publish(void)
{
	if (!workers_active())
		return;
	struct slot *s = &shm->slot[my_id];
	struct buf why;
	buf_init(&why, 0);
	int ready = plugin_host_ready(&why) && !clients_draining();
	buf_free(&why);

	__atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
	s->pid = (int)getpid();
	s->updated_ms = loop_now_ms();
	s->ready = ready;
	s->draining = clients_draining();
	s->m = metrics;
	s->shared_frames = msg_live_count;
	size_t nb = plugin_host_count();
	s->n_backends = nb > SLOT_BACKENDS ? SLOT_BACKENDS : (int)nb;
	for (int i = 0; i < s->n_backends; i++) {
		struct fanout_backend *b = plugin_host_get((size_t)i);
		struct slot_backend *sb = &s->b[i];
		snprintf(sb->name, sizeof(sb->name), "%s", b->cfg->name);
		sb->up = b->up == FANOUT_UP;
		sb->pending = b->pending_subs;
		sb->state_changes = b->state_changes;
		sb->messages_in = b->messages_in;
		sb->n_events = b->n_events > SLOT_EVENTS ? SLOT_EVENTS : b->n_events;
		for (int e = 0; e < sb->n_events; e++) {
			snprintf(sb->ev[e].name, sizeof(sb->ev[e].name), "%s", b->events[e].name);
			sb->ev[e].value = b->events[e].value;
		}
	}
	__atomic_add_fetch(&s->seq, 1, __ATOMIC_ACQ_REL);
}

static void publish_tick(struct fanout_timer *t, void *arg)
{
	workers_publish();
	loop_timer_arm(t, 250);
}

void workers_child_start(void)
{
	if (!workers_active())
		return;
	publish_timer = loop_timer_add(publish_tick, NULL);
	loop_timer_arm(publish_timer, 0);
}

/* A consistent copy of slot i; 0 when it holds no live worker. */
static int read_slot(int i, struct slot *out)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t a = __atomic_load_n(&shm->slot[i].seq, __ATOMIC_ACQUIRE);
		if (a & 1)
			continue;
		memcpy(out, &shm->slot[i], sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&shm->slot[i].seq, __ATOMIC_ACQUIRE) == a)
			return out->pid != 0;
	}
	return 0;
}

static int fresh(const struct slot *s)
{
	return loop_now_ms() - s->updated_ms < 2000;
}

void workers_render_metrics(struct buf *o)
{
	struct slot s, sum;
	const size_t nf = sizeof(struct metrics) / sizeof(long long);
	workers_publish();
	memset(&sum, 0, sizeof(sum));
	int live = 0;
	for (int i = 0; i < shm->n; i++) {
		if (!read_slot(i, &s) || !fresh(&s))
			continue;
		live++;
		long long *d = (long long *)&sum.m;
		const long long *x = (const long long *)&s.m;
		for (size_t f = 0; f < nf; f++)
			d[f] += x[f];
		sum.shared_frames += s.shared_frames;
	}
	/* Render the summed counters with the single-process renderer. */
	struct metrics own = metrics;
	long long own_frames = msg_live_count;
	metrics = sum.m;
	msg_live_count = sum.shared_frames;
	metrics_render_core(o);
	metrics = own;
	msg_live_count = own_frames;

	buf_printf(o,
		   "# HELP fanout_workers Worker processes alive (workers = %d).\n"
		   "# TYPE fanout_workers gauge\nfanout_workers %d\n",
		   shm->n, live);
	buf_puts(o, "# HELP fanout_worker_clients Connected clients per worker.\n"
		    "# TYPE fanout_worker_clients gauge\n");
	for (int i = 0; i < shm->n; i++)
		if (read_slot(i, &s) && fresh(&s))
			buf_printf(o, "fanout_worker_clients{worker=\"%d\"} %lld\n", i,
				   s.m.clients);

	/* Backends: up only when up in every worker; counters summed. */
	static const char *const heads[] = {
	    "# HELP fanout_backend_up 1 when the backend is up in every worker.\n"
	    "# TYPE fanout_backend_up gauge\n",
	    "# HELP fanout_backend_state_changes_total Backend up/down transitions (all "
	    "workers).\n# TYPE fanout_backend_state_changes_total counter\n",
	    "# HELP fanout_backend_messages_total Messages delivered by each backend (all "
	    "workers).\n# TYPE fanout_backend_messages_total counter\n",
	    "# HELP fanout_backend_events_total Events counted by backends (all workers).\n"
	    "# TYPE fanout_backend_events_total counter\n"};
	size_t nb = plugin_host_count();
	if (nb > SLOT_BACKENDS)
		nb = SLOT_BACKENDS;
	for (int h = 0; h < 4; h++) {
		buf_puts(o, heads[h]);
		for (size_t b = 0; b < nb; b++) {
			const char *name = plugin_host_get(b)->cfg->name;
			long long up = 1, changes = 0, msgs = 0;
			struct slot_backend evsum;
			memset(&evsum, 0, sizeof(evsum));
			for (int i = 0; i < shm->n; i++) {
				if (!read_slot(i, &s) || !fresh(&s) || (int)b >= s.n_backends)
					continue;
				const struct slot_backend *sb = &s.b[b];
				up &= sb->up;
				changes += sb->state_changes;
				msgs += sb->messages_in;
				for (int e = 0; e < sb->n_events; e++) {
					int k = 0;
					while (k < evsum.n_events &&
					       strcmp(evsum.ev[k].name, sb->ev[e].name))
						k++;
					if (k == evsum.n_events && evsum.n_events < SLOT_EVENTS)
						snprintf(evsum.ev[evsum.n_events++].name,
							 sizeof(evsum.ev[0].name), "%s",
							 sb->ev[e].name);
					if (k < SLOT_EVENTS)
						evsum.ev[k].value += sb->ev[e].value;
				}
			}
			if (h == 0)
				buf_printf(o, "fanout_backend_up{backend=\"%s\"} %lld\n", name, up);
			else if (h == 1)
				buf_printf(
				    o, "fanout_backend_state_changes_total{backend=\"%s\"} %lld\n",
				    name, changes);
			else if (h == 2)
				buf_printf(o,
					   "fanout_backend_messages_total{backend=\"%s\"} %lld\n",
					   name, msgs);
			else
				for (int k = 0; k < evsum.n_events; k++)
					buf_printf(o,
						   "fanout_backend_events_total{backend=\"%s\","
						   "event=\"%s\"} "
						   "%llu\n",
						   name, evsum.ev[k].name, evsum.ev[k].value);
		}
	}
	buf_printf(o,
		   "# HELP fanout_draining 1 while shutting down.\n# TYPE fanout_draining gauge\n"
		   "fanout_draining %d\n",
		   clients_draining());
}

int workers_ready(struct buf *o)
{
	struct slot s;
	int ready = 1, live = 0;
	workers_publish();
	buf_puts(o, "\"workers\":[");
	for (int i = 0; i < shm->n; i++) {
		int ok = read_slot(i, &s) && fresh(&s);
		int r = ok && s.ready;
		live += ok;
		if (!r)
			ready = 0;
		buf_printf(o, "%s{\"worker\":%d,\"pid\":%d,\"alive\":%s,\"ready\":%s", i ? "," : "",
			   i, ok ? s.pid : 0, ok ? "true" : "false", r ? "true" : "false");
		if (ok) {
			buf_puts(o, ",\"backends\":{");
			for (int b = 0; b < s.n_backends; b++)
				buf_printf(
				    o, "%s\"%s\":{\"state\":\"%s\",\"pending_subscriptions\":%lld}",
				    b ? "," : "", s.b[b].name, s.b[b].up ? "up" : "down",
				    s.b[b].pending);
			buf_putc(o, '}');
		}
		buf_putc(o, '}');
	}
	buf_putc(o, ']');
	return ready && live == shm->n;
}

/* ---- the supervisor ---- */

/*
 * What the supervisor tells systemd for the group: READY=1 once every
 * worker is alive and ready, a STATUS= line, and WATCHDOG=1 only while
 * every worker's loop keeps its slot fresh (a worker restarted less than
 * 3 s ago is given time) — so a stuck worker loop stops the keep-alives.
 */
static void notify_group(const pid_t *pids, const uint64_t *started, uint64_t now)
{
	struct slot s;
	int ready = 1, turning = 1, waiting = -1;

	if (!notify_enabled())
		return;
	for (int i = 0; i < shm->n; i++) {
		int ok = pids[i] > 0 && read_slot(i, &s) && fresh(&s);
		if (!ok || !s.ready) {
			ready = 0;
			if (waiting < 0)
				waiting = i;
		}
		if (pids[i] > 0 && !ok && now - started[i] > 3000)
			turning = 0;
	}
	char status[96];
	if (ready)
		snprintf(status, sizeof(status), "serving (%d workers)", shm->n);
	else
		snprintf(status, sizeof(status), "waiting: worker %d not ready", waiting);
	notify_state(ready, status);
	if (turning)
		notify_watchdog();
}

static pid_t pids[WORKERS_MAX];
static uint64_t started_at[WORKERS_MAX];

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static pid_t spawn(const struct config *c, int id, workers_serve_fn serve)
{
	pid_t pid = fork();
	if (pid != 0) {
		if (pid > 0) {
			pids[id] = pid;
			started_at[id] = mono_ms();
		}
		return pid;
	}
	/* the worker */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	notify_disable(); /* the supervisor speaks to systemd for the group */
	my_id = id;
	memset(&shm->slot[id], 0, sizeof(shm->slot[id]));
	char inst[128];
	snprintf(inst, sizeof(inst), "%s/w%d", c->instance, id);
	log_set_instance(inst);
	int fd = listen_socket(c, 1);
	if (fd < 0)
		_exit(EXIT_RUNTIME);
	int rc = serve(c, fd, id + 1);
	_exit(rc);
}

int workers_run(const struct config *c, workers_serve_fn serve)
{
	int n = c->workers;
	if (n <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus > 0 ? (int)cpus : 1;
	}
	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	/* Check the port before forking (and close it: a listener nobody
	 * accepts on would take a share of the connections). */
	int probe = listen_socket(c, 1);
	if (probe < 0)
		return EXIT_RUNTIME;
	close(probe);
	probe = listen_admin_socket(c, 1);
	if (probe == -1)
		return EXIT_RUNTIME;
	if (probe >= 0)
		close(probe);

	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		log_err("mmap: %s", strerror(errno));
		return EXIT_RUNTIME;
	}
	memset(shm, 0, sizeof(*shm));
	shm->n = n;

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);

	for (int i = 0; i < n; i++)
		if (spawn(c, i, serve) < 0) {
			log_err("fork: %s", strerror(errno));
			return EXIT_RUNTIME;
		}
	log_info("supervising %d workers on %s", n, c->listen);

	int stopping = 0, rc = 0, alive = n;
	uint64_t kill_at = 0;
	uint64_t restart_at[WORKERS_MAX] = {0};
	while (alive > 0 || !stopping) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping) {
				notify_stopping();
				log_info("%s: stopping %d workers",
					 sig == SIGTERM ? "SIGTERM" : "SIGINT", alive);
				stopping = 1;
				kill_at = mono_ms() + (uint64_t)c->shutdown_grace_ms + 5000;
			}
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], sig);
		} else if (sig == SIGHUP && !stopping) {
			/* The supervisor checks the file and keeps it for the
			 * workers it forks later; each worker reloads itself. A
			 * refused file is logged once, here, and not forwarded. */
			if (reload_run(0) == 0)
				for (int i = 0; i < n; i++)
					if (pids[i] > 0)
						kill(pids[i], SIGHUP);
		}
		/* Reap every dead worker. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < n; i++) {
				if (pids[i] != pid)
					continue;
				pids[i] = 0;
				alive--;
				__atomic_store_n(&shm->slot[i].pid, 0, __ATOMIC_RELEASE);
				int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
				if (stopping)
					break;
				uint64_t age = mono_ms() - started_at[i];
				if (code >= EXIT_CONFIG && code <= EXIT_PLUGIN_INIT && age < 5000) {
					log_err("worker %d failed at start-up (exit %d): stopping",
						i, code);
					rc = code;
					stopping = 1;
					kill_at = mono_ms() + (uint64_t)c->shutdown_grace_ms + 5000;
					for (int k = 0; k < n; k++)
						if (pids[k] > 0)
							kill(pids[k], SIGTERM);
					break;
				}
				if (WIFSIGNALED(status))
					log_err(
					    "worker %d (pid %d) killed by signal %d: restarting", i,
					    (int)pid, WTERMSIG(status));
				else
					log_err("worker %d (pid %d) exited %d: restarting", i,
						(int)pid, code);
				restart_at[i] = mono_ms() + (age < 1000 ? 1000 : 0);
			}
		}
		if (!stopping)
			for (int i = 0; i < n; i++)
				if (!pids[i] && restart_at[i] && mono_ms() >= restart_at[i]) {
					restart_at[i] = 0;
					if (spawn(c, i, serve) > 0)
						alive++;
				}
		if (!stopping)
			notify_group(pids, started_at, mono_ms());
		if (stopping && kill_at && mono_ms() > kill_at) {
			for (int i = 0; i < n; i++)
				if (pids[i] > 0) {
					log_warn("worker %d did not stop: SIGKILL", i);
					kill(pids[i], SIGKILL);
				}
			kill_at = 0;
		}
	}
	log_info("all workers stopped");
	munmap(shm, sizeof(*shm));
	shm = NULL;
	return rc;
}
