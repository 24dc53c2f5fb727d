/*
 * guard.h — what one client may do over time, for any transport: the
 * claims of its access token (auth.h) with their expiry and in-band
 * refresh, and its request rate (max_requests_per_s: a token bucket with a
 * burst of 2 x rate; sustained abuse is told apart from a burst).
 *
 * Embed a struct guard in each client, zeroed; guard_init() once the
 * connection is accepted, guard_free() when it closes. The hub reads the
 * claims through hub_subscriber.claims (point it at guard_claims()).
 * Loop thread only; pure apart from the token check (no I/O, no clock:
 * callers pass the time).
 */
#ifndef FANOUT_GUARD_H
#define FANOUT_GUARD_H

#include <stdint.h>

#include "auth.h"

/* A client is closed 1008 once more than GUARD_ABUSE_FACTOR x rate of its
 * requests were refused within GUARD_ABUSE_WINDOW_MS: it kept sending at
 * more than twice the rate for ten seconds, not one burst. */
#define GUARD_ABUSE_WINDOW_MS 10000
#define GUARD_ABUSE_FACTOR    10

struct guard {
	/* token */
	struct auth_claims claims;
	int has_claims;
	/* rate: millirequests in the bucket, refilled from last_ms */
	long long rate; /* max_requests_per_s; 0: unlimited */
	long long bucket;
	uint64_t last_ms;
	uint64_t window_start_ms; /* first refusal of the current window */
	long long refused_in_window;
};

enum guard_verdict { GUARD_OK = 0, GUARD_LIMITED, GUARD_ABUSE };

/* Start: rate (0 = unlimited), now_ms; claims (moved in, may be NULL when
 * tokens are off). */
void guard_init(struct guard *g, long long rate, uint64_t now_ms, struct auth_claims *claims);
void guard_free(struct guard *g);

/* The claims for hub_subscriber.claims: NULL when the client has no token. */
const struct auth_claims *guard_claims(const struct guard *g);

/* One request arrived at now_ms: GUARD_OK, GUARD_LIMITED (answer
 * rate_limited, do not act on it) or GUARD_ABUSE (close 1008). */
enum guard_verdict guard_request(struct guard *g, uint64_t now_ms);

/* 1 when the client's token has expired at now (seconds, leeway included). */
int guard_expired(const struct guard *g, const struct auth_key *k, long long now);

/*
 * In-band refresh with token[0..len): verified with k at now; the old
 * token's "sub", when it had one, must be the new one's. 0: the new claims
 * replace the old ones (then call hub_claims_changed()); -1: refused, the
 * old claims stay, *why says why.
 */
int guard_refresh(struct guard *g, const struct auth_key *k, const char *token, size_t len,
		  long long now, const char **why);

#endif
