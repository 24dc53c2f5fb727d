/*
 * plugin_options.c — build-time helper (not installed): writes a backend's
 * man page with its generated option list.
 *
 *   plugin-options PLUGIN.so TEMPLATE > PAGE
 *
 * Copies TEMPLATE (a man page whose paths are already substituted) to
 * stdout, replacing the line @PLUGIN_OPTIONS@ with the option table the
 * built plugin exports, as roff (core/contract.c), so the man page lists
 * exactly the keys, types, defaults, bounds and help that fanoutd checks.
 * The plugin is opened and checked as fanoutd would (none of its code
 * runs). Exit 0, or 1 with a reason on stderr (plugin refused, no marker).
 *
 * Single-threaded; nothing is freed before exit.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "contract.h"

#define MARKER "@PLUGIN_OPTIONS@"

int main(int argc, char **argv)
{
	char line[4096], why[300];
	int found = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: plugin-options PLUGIN.so TEMPLATE > PAGE\n");
		return 1;
	}
	void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		fprintf(stderr, "plugin-options: %s\n", dlerror());
		return 1;
	}
	const struct fanout_plugin *p = dlsym(dl, FANOUT_PLUGIN_SYMBOL_NAME);
	if (!p) {
		fprintf(stderr, "plugin-options: %s: no symbol %s\n", argv[1],
			FANOUT_PLUGIN_SYMBOL_NAME);
		return 1;
	}
	if (contract_check_plugin(p, why, sizeof(why))) {
		fprintf(stderr, "plugin-options: %s: %s\n", argv[1], why);
		return 1;
	}
	FILE *in = fopen(argv[2], "r");
	if (!in) {
		perror(argv[2]);
		return 1;
	}
	while (fgets(line, sizeof(line), in)) {
		if (!strncmp(line, MARKER, strlen(MARKER))) {
			contract_print_roff(p, stdout);
			found = 1;
		} else {
			fputs(line, stdout);
		}
	}
	if (!found) {
		fprintf(stderr, "plugin-options: %s: no line %s\n", argv[2], MARKER);
		return 1;
	}
	return fflush(stdout) ? 1 : 0;
}
