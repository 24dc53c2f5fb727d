/*
 * bad_plugin.c — deliberately broken backends for the loader tests. One
 * source, several .so files: BAD_KIND selects what is wrong with each.
 * Every one of them must be refused by fanoutd with one clear line and the
 * documented exit code — before any of its code runs (except init_fails,
 * which is refused when its init() fails, and not at all by --check-config).
 */
#include <fanout/plugin.h>
#include <stdlib.h>

#define KIND_MAJOR     1
#define KIND_MINOR     2
#define KIND_NOSYM     3
#define KIND_NULLOP    4
#define KIND_INITFAIL  5
#define KIND_STARTFAIL 6

static int p_init(const struct fanout_host *host, struct fanout_backend *b,
		  const struct fanout_value *values, void **state)
{
#if BAD_KIND == KIND_INITFAIL
	host->log(b, FANOUT_LOG_ERR, "init refuses on purpose");
	return FANOUT_EINVAL;
#else
	*state = NULL;
	return 0;
#endif
}

static int p_start(void *state)
{
#if BAD_KIND == KIND_STARTFAIL
	return FANOUT_EIO;
#else
	return 0;
#endif
}

static int p_subscribe(void *state, const char *channel)
{
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
#else
    FANOUT_PLUGIN_HEADER,
#endif
    .name = "bad",
    .version = "0",
    .init = p_init,
    .start = p_start,
#if BAD_KIND != KIND_NULLOP
    .subscribe = p_subscribe,
#endif
    .destroy = p_destroy,
};
