/*
 * reload.h — SIGHUP: re-read the config file and apply it without dropping
 * anyone (fanoutd(8), SIGNALS). reload.c says what is checked and applied.
 */
#ifndef FANOUT_RELOAD_H
#define FANOUT_RELOAD_H

#include <stddef.h>

struct config;
struct lws_context;

/* What a reload needs: the running config (main's, which every module
 * points at), the file and the command line's -o overrides (copied). */
int reload_init(struct config *run, const char *path, const char *const *overrides, size_t n);
void reload_free(void);
/* The lws context of a serving process (TLS files are re-read into it). */
void reload_set_context(struct lws_context *ctx);

/*
 * Reload now. serving: this process serves clients (a single fanoutd or a
 * worker): every change is applied to it. Not serving: the workers'
 * supervisor, which only keeps the config and plugin tables current for
 * the workers it forks later. Returns 0 when the new file was applied, -1
 * when it was refused (its errors logged; the running config stays).
 */
int reload_run(int serving);

#endif
