/*
 * refuse.h — one refusal: counted in /metrics by reason
 * (fanout_refused_total) and logged with the client's address, at most a
 * few lines per second per reason so a flood cannot flood the log too.
 */
#ifndef FANOUT_REFUSE_H
#define FANOUT_REFUSE_H

#include "metrics.h"

/* Count reason and log "refused <ip>: <fmt...>" (info level; past the
 * rate, the next line that gets through says how many were left out). */
void refuse(enum refuse_reason reason, const char *ip, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The log line of refuse() alone, for a refusal already counted (clients.c
 * counts max_clients for every transport). */
void refuse_log(enum refuse_reason reason, const char *ip, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
