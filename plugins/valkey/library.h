/*
 * library.h — the "fanout" Redis Functions library (library.lua, compiled in
 * by library.c): fanout_publish, fanout_top and fanout_history, documented
 * in fanout-valkey(5). Channel C lives in the hash fanout:{C}.
 */
#ifndef FANOUT_VALKEY_LIBRARY_H
#define FANOUT_VALKEY_LIBRARY_H

/* Defaults of the backend's history options, also the library's defaults
 * when fanout-cli push has to load it. */
#define VK_HISTORY_SIZE_DEFAULT 1000
#define VK_HISTORY_TTL_DEFAULT	300

/*
 * The library's text (malloc'd; NULL when out of memory) for FUNCTION LOAD
 * REPLACE. pub_cmd: "PUBLISH", or "SPUBLISH" for a cluster. size and ttl_s
 * are the defaults of a call that does not pass them.
 */
char *vk_library_text(const char *pub_cmd, long long size, long long ttl_s);

#endif /* FANOUT_VALKEY_LIBRARY_H */
