/*
 * log.h — fanoutd's one log sink: stderr lines of the form
 *   2026-11-27T21:50:01.123Z info  [c1] hub: text
 * (timestamp UTC, level, instance id, per-file tag). Each .c file defines
 * LOG_TAG before including this header. libwebsockets' own log is routed
 * here by loop.c; plugins log through the host table (plugin_host.c).
 */
#ifndef FANOUT_LOG_H
#define FANOUT_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* Set the threshold (messages above it are dropped) and the instance id. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_instance(const char *instance);
/* Parse "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level level, const char *tag, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#ifndef LOG_TAG
#define LOG_TAG "fanoutd"
#endif
#define log_err(...)   log_write(LOG_LVL_ERR, LOG_TAG, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_LVL_WARN, LOG_TAG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_LVL_INFO, LOG_TAG, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_LVL_DEBUG)                                              \
			log_write(LOG_LVL_DEBUG, LOG_TAG, __VA_ARGS__);                            \
	} while (0)

#endif
