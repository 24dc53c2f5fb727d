/*
 * fuzz_config.c — libFuzzer harness for core/config.c: the value parsers
 * (cfg_parse_int/bool/listen, cfg_expand_env, cfg_split_list) on the input
 * as one string, then config_load() of the input as a whole ini file (through
 * a memfd, read back by path) with the input's first line also applied as a
 * -o override, then config_backend_values(), config_route() and
 * config_dump() on whatever loaded.
 *
 * Single-threaded. Allocates per input and frees everything before it
 * returns (leaks show under -fsanitize=address). Never exits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const struct fanout_option opts[] = {
    FANOUT_OPTION_STRING("url", "redis://127.0.0.1:6379/0", "url"),
    FANOUT_OPTION_INT("db", "0", 0, 15, "db"),
    FANOUT_OPTION_INT("max_line_bytes", "1k", 16, 1 << 20, "bytes"),
    FANOUT_OPTION_BOOL("follow", "true", "bool"),
    FANOUT_OPTION_ENUM("mode", "b", "a|b|c", "enum"),
    {"password", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "secret", FANOUT_OPT_SECRET},
    FANOUT_OPTION_END,
};

static FILE *sink(void)
{
	static FILE *devnull;
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	return devnull;
}

static void parsers(const char *s)
{
	long long v;
	const char *why;
	char *host = NULL, *e;
	int port;
	size_t cnt;
	char **list;

	(void)cfg_parse_int(s, -1000, 1LL << 40, 1, &v, &why);
	(void)cfg_parse_int(s, 0, 65535, 0, &v, &why);
	(void)cfg_parse_bool(s);
	if (cfg_parse_listen(s, &host, &port, &why) == 0) {
		if (port < 1 || port > 65535)
			abort();
		free(host);
	}
	e = cfg_expand_env(s, &why);
	free(e);
	list = cfg_split_list(s, &cnt);
	if (list) {
		for (size_t i = 0; i < cnt; i++) {
			if (!list[i] || !*list[i])
				abort();
			free(list[i]);
		}
		if (list[cnt])
			abort();
		free(list);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1), path[64], *ov = NULL;
	struct config c;
	int fd = -1;

	if (!s)
		return 0;
	memcpy(s, d, n);
	s[n] = 0; /* parsers see the input up to its first NUL */
	parsers(s);

	/* The first line doubles as an -o override. */
	ov = strndup(s, strcspn(s, "\n"));
	const char *ovs[1] = {ov};

	fd = memfd_create("fuzz_config", 0);
	if (fd < 0 || write(fd, d, n) != (ssize_t)n)
		goto done;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (config_load(&c, path, ovs, ov ? 1 : 0, sink()) == 0) {
		for (size_t i = 0; i < c.n_backends; i++) {
			struct fanout_value *vals = NULL;
			if (config_backend_values(&c, &c.backends[i], opts, &vals, sink()) == 0)
				free(vals);
		}
		(void)config_route(&c, "updates");
		(void)config_route(&c, ov ? ov : "");
		config_dump(&c, sink());
		config_free(&c);
	}
done:
	if (fd >= 0)
		close(fd);
	free(ov);
	free(s);
	return 0;
}
