/*
 * bad_plugin.c — deliberately broken backends for the loader tests. One
 * source, several .so files: BAD_KIND selects what is wrong with each.
 * Every one of them must be refused by fanoutd with one clear line and the
 * documented exit code — before any of its code runs (except init_fails,
 * which is refused when its init() fails, and not at all by --check-config).
 */
#include <fanout/plugin.h>
#include <stddef.h>
#include <stdlib.h>

#define KIND_MAJOR     1
#define KIND_MINOR     2
#define KIND_NOSYM     3
#define KIND_NULLOP    4
#define KIND_INITFAIL  5
#define KIND_STARTFAIL 6
#define KIND_OLDMINOR  7 /* not broken: built for ABI 1.0, must load and serve */
#define KIND_BADOPTS   8 /* its option table is malformed (min > max) */
#define KIND_OPTIONS   9 /* not broken: options with a secret and a _bytes key */

#if BAD_KIND == KIND_BADOPTS
static const struct fanout_option opts[] = {
    FANOUT_OPTION_INT("window", "5", 10, 1, "min above max"),
    FANOUT_OPTION_END,
};
#elif BAD_KIND == KIND_OPTIONS
static const struct fanout_option opts[] = {
    /* a secret whose name gives nothing away: only the flag hides it */
    {"credential", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "API credential for the broker",
     FANOUT_OPT_SECRET},
    FANOUT_OPTION_INT("window_bytes", "64k", 1024, 1 << 30, "receive window"),
    FANOUT_OPTION_ENUM("mode", "fast", "slow|fast", "how hard to try"),
    FANOUT_OPTION_END,
};
#endif

/* The one loadable kind (oldminor) answers like a minimal backend. */
static const struct fanout_host *g_host;
static struct fanout_backend *g_b;

static int p_init(const struct fanout_host *host, struct fanout_backend *b,
		  const struct fanout_value *values, void **state)
{
#if BAD_KIND == KIND_INITFAIL
	host->log(b, FANOUT_LOG_ERR, "init refuses on purpose");
	return FANOUT_EINVAL;
#else
	g_host = host;
	g_b = b;
	*state = NULL;
	return 0;
#endif
}

static int p_start(void *state)
{
#if BAD_KIND == KIND_STARTFAIL
	return FANOUT_EIO;
#else
	if (g_host)
		g_host->backend_state(g_b, FANOUT_UP, "ready");
	return 0;
#endif
}

static int p_subscribe(void *state, const char *channel)
{
	if (g_host)
		g_host->subscribed(g_b, channel, 1);
	return 0;
}

static void p_destroy(void *state)
{
}

#if BAD_KIND == KIND_NOSYM
#define SYMBOL fanout_plugin_wrong_name
#else
#define SYMBOL FANOUT_PLUGIN_SYMBOL
#endif

FANOUT_PLUGIN_EXPORT const struct fanout_plugin SYMBOL = {
#if BAD_KIND == KIND_MAJOR
    .abi_major = FANOUT_ABI_MAJOR + 98,
    .abi_minor = 0,
    .struct_size = sizeof(struct fanout_plugin),
#elif BAD_KIND == KIND_MINOR
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = FANOUT_ABI_MINOR + 1,
    .struct_size = sizeof(struct fanout_plugin),
#elif BAD_KIND == KIND_OLDMINOR
    /* What a plugin compiled against the ABI 1.0 header carries: minor 0
     * and a table that ends after destroy (no position ops). */
    .abi_major = FANOUT_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = offsetof(struct fanout_plugin, destroy) + sizeof(void (*)(void *)),
#else
    FANOUT_PLUGIN_HEADER,
#endif
    .name = "bad",
    .version = "0",
#if BAD_KIND == KIND_BADOPTS || BAD_KIND == KIND_OPTIONS
    .description = "a loader test plugin",
    .options = opts,
#endif
    .init = p_init,
    .start = p_start,
#if BAD_KIND != KIND_NULLOP
    .subscribe = p_subscribe,
#endif
    .destroy = p_destroy,
};
