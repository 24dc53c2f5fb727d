/*
 * main.c — fanoutd's entry point: the command line, the start-up order
 * (config → plugins checked → fd limit → listen → lws → backends started →
 * loop) and the exit codes of fanoutd(8). Runs in the foreground, logs to
 * stderr. With workers > 1 it hands over to workers.c, which forks.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define LOG_TAG "main"
#include "auth.h"
#include "config.h"
#include "hub.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "plugin_host.h"
#include "protocol.h"
#include "reload.h"
#include "server.h"
#include "workers.h"

#ifndef FANOUT_SYSCONF_DIR
#define FANOUT_SYSCONF_DIR "/etc/fanout"
#endif

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: fanoutd [-c FILE] [-o section.key=value]... [--check-config [-v]] [--version]\n"
	    "\n"
	    "  -c, --config FILE     config file (default " FANOUT_SYSCONF_DIR "/fanout.ini)\n"
	    "  -o, --option S.K=V    override a key: server.KEY=V or backend.NAME.KEY=V\n"
	    "      --check-config    check the config and every backend's keys, print the\n"
	    "                        effective config, exit 0 (valid) or non-zero\n"
	    "  -v, --verbose         with --check-config: each key's help, and every\n"
	    "                        backend option the section leaves at its default\n"
	    "  -V, --version         print the version and plugin ABI, exit\n"
	    "  -h, --help            this text\n"
	    "\n"
	    "Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 config error, 4 plugin refused,\n"
	    "5 plugin init/start failed. See fanoutd(8) and fanout.ini(5).\n");
}

/*
 * Size the process's fd limit to what this server needs: max_clients plus
 * 256 for backends, the listener, logs and lws itself, clamped to the hard
 * limit (max_clients shrinks with a warning when the hard limit is lower).
 * lws sizes its fd -> connection table from the soft limit: setting it here,
 * rather than lws's fd_limit_per_thread (which switches lws to a linear
 * fd lookup: 43 % of the CPU at 10,000 clients), keeps lookups O(1) and the
 * table no bigger than needed even where containers hand out 1M+ fds.
 */
static long long fd_budget(const struct config *c)
{
	struct rlimit rl;
	long long max = c->max_clients;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = (rlim_t)max + 256;
		if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
			long long avail = (long long)rl.rlim_max - 256;
			if (avail < 1)
				avail = 1;
			log_warn("max_clients %lld clamped to %lld by the open-file limit (%llu)",
				 max, avail, (unsigned long long)rl.rlim_max);
			max = avail;
			want = rl.rlim_max;
		}
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)want,
				 strerror(errno));
	}
	return max;
}

/* Serve on listen_fd until shutdown (the single process, or one worker:
 * workers_run() calls it in each). Returns the exit code. */
static int run_server(const struct config *c, int listen_fd, int worker_id)
{
	int rc = 0;
	srv.worker_id = worker_id;
	long long max_clients = fd_budget(c);
	if (hub_init(c) || server_init(c, listen_fd, max_clients)) {
		rc = EXIT_RUNTIME;
		goto out;
	}
	rc = plugin_host_start();
	if (rc)
		goto out;
	workers_child_start();
	notify_loop_start(); /* READY=1 once every backend is up (not in a worker) */
	log_info("fanoutd %s listening on %s (ws %s, instance %s%s)", PROTO_VERSION, c->listen,
		 c->ws_path, c->instance, worker_id ? ", worker" : "");
	server_run();
	log_info("stopped");
out:
	notify_loop_stop();
	plugin_host_stop();
	hub_stop();
	loop_shutdown();
	server_free();
	plugin_host_unload();
	hub_free();
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"option", required_argument, NULL, 'o'},
					     {"check-config", no_argument, NULL, 'C'},
					     {"version", no_argument, NULL, 'V'},
					     {"help", no_argument, NULL, 'h'},
					     {"verbose", no_argument, NULL, 'v'},
					     {NULL, 0, NULL, 0}};
	const char *file = FANOUT_SYSCONF_DIR "/fanout.ini";
	const char **overrides = calloc((size_t)argc + 1, sizeof(char *));
	size_t n_overrides = 0;
	int check = 0, verbose = 0, ch;

	if (!overrides)
		return EXIT_RUNTIME;
	while ((ch = getopt_long(argc, argv, "c:o:Vhv", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'o':
			overrides[n_overrides++] = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'V':
			printf("fanoutd %s (plugin ABI %d.%d)\n", PROTO_VERSION, FANOUT_ABI_MAJOR,
			       FANOUT_ABI_MINOR);
			free(overrides);
			return 0;
		case 'h':
			usage(stdout);
			free(overrides);
			return 0;
		default:
			usage(stderr);
			free(overrides);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fanoutd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		free(overrides);
		return EXIT_USAGE;
	}

	struct config cfg;
	if (config_load(&cfg, file, overrides, n_overrides, stderr)) {
		free(overrides);
		return EXIT_CONFIG;
	}
	/* SIGHUP reads the same file with the same overrides again. */
	if (reload_init(&cfg, file, overrides, n_overrides)) {
		free(overrides);
		config_free(&cfg);
		return EXIT_RUNTIME;
	}
	free(overrides);
	log_set_level((enum log_level)cfg.log_level);
	log_set_instance(cfg.instance);

	/* The token key is read once here (workers inherit it). */
	struct auth_opts ao = {cfg.jwt_secret, cfg.jwt_public_key, cfg.jwt_audience,
			       cfg.jwt_leeway_s};
	char why[256];
	struct auth_key *key;
	if (auth_key_load(&ao, &key, why, sizeof(why))) {
		fprintf(stderr, "%s: [auth] %s: %s\n", cfg.path ? cfg.path : file,
			*cfg.jwt_public_key ? "jwt_public_key" : "jwt_secret", why);
		reload_free();
		config_free(&cfg);
		return EXIT_CONFIG;
	}
	int rc = plugin_host_load(&cfg);
	if (!rc && check)
		rc = plugin_host_check();
	if (rc || check) {
		if (!rc) {
			const struct fanout_plugin **p = calloc(cfg.n_backends + 1, sizeof(*p));
			for (size_t i = 0; p && i < cfg.n_backends; i++)
				p[i] = plugin_host_get(i)->p;
			config_dump_full(&cfg, p, verbose, stdout);
			free(p);
			fprintf(stderr, "%s: configuration OK\n", cfg.path ? cfg.path : file);
		}
		plugin_host_unload();
		auth_key_free(key);
		reload_free();
		config_free(&cfg);
		return rc;
	}
	auth_set_process_key(key);
	if (key)
		log_info("tokens required: %s (%s)", auth_key_alg(key),
			 *cfg.jwt_public_key ? cfg.jwt_public_key : "jwt_secret");

	notify_init();
	if (cfg.workers != 1) {
		rc = workers_run(&cfg, run_server);
	} else {
		int fd = listen_socket(&cfg, 0);
		rc = fd < 0 ? EXIT_RUNTIME : run_server(&cfg, fd, 0);
	}
	/* a reload may have replaced the key: free the one in use */
	auth_key_free(auth_swap_process_key(NULL));
	reload_free();
	config_free(&cfg);
	return rc;
}
