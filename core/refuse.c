/*
 * refuse.c — owns the bookkeeping of refusals: the fanout_refused_total
 * counters (struct metrics) and their log lines, rate-limited per reason
 * (REFUSE_LOG_BURST lines per second; the next line after a quiet spell says
 * how many were suppressed), because refusals are exactly what an attacker
 * can produce at will. Loop thread only; no allocation.
 */
#include <stdarg.h>
#include <stdio.h>

#define LOG_TAG "refuse"
#include "log.h"
#include "loop.h"
#include "refuse.h"

#define REFUSE_LOG_BURST 5

static struct {
	uint64_t second;
	unsigned lines;
	unsigned long long suppressed;
} rate[REFUSE__COUNT];

__attribute__((format(printf, 3, 0))) static void vlog(enum refuse_reason reason, const char *ip,
						       const char *fmt, va_list ap)
{
	uint64_t sec = loop_now_ms() / 1000;
	if (rate[reason].second != sec) {
		rate[reason].second = sec;
		rate[reason].lines = 0;
	}
	if (rate[reason].lines >= REFUSE_LOG_BURST) {
		rate[reason].suppressed++;
		return;
	}
	rate[reason].lines++;
	char text[512];
	vsnprintf(text, sizeof(text), fmt, ap);
	if (rate[reason].suppressed) {
		log_info("refused %s (%s): %s (%llu more %s refusals not logged)", ip ? ip : "-",
			 refuse_reason_name(reason), text, rate[reason].suppressed,
			 refuse_reason_name(reason));
		rate[reason].suppressed = 0;
	} else {
		log_info("refused %s (%s): %s", ip ? ip : "-", refuse_reason_name(reason), text);
	}
}

void refuse(enum refuse_reason reason, const char *ip, const char *fmt, ...)
{
	va_list ap;
	if (reason >= REFUSE__COUNT)
		return;
	metrics.refused[reason]++;
	va_start(ap, fmt);
	vlog(reason, ip, fmt, ap);
	va_end(ap);
}

void refuse_log(enum refuse_reason reason, const char *ip, const char *fmt, ...)
{
	va_list ap;
	if (reason >= REFUSE__COUNT)
		return;
	va_start(ap, fmt);
	vlog(reason, ip, fmt, ap);
	va_end(ap);
}
