/*
 * guard.c — owns a client's token claims over the connection's life (expiry,
 * refresh) and its request-rate bucket (guard.h).
 *
 * The bucket counts in millirequests so that integer arithmetic refills it
 * smoothly: it holds at most 2 x rate requests (the burst), gains rate per
 * second, and each request takes one. A refused request is answered
 * rate_limited; refusals are counted over a window of
 * GUARD_ABUSE_WINDOW_MS and past GUARD_ABUSE_FACTOR x rate of them the
 * client is abusive (closed 1008 by its transport).
 *
 * Loop thread only. Owns the claims it was given (freed by guard_free()
 * or replaced by guard_refresh()); allocates nothing else.
 */
#include <string.h>

#include "guard.h"

void guard_init(struct guard *g, long long rate, uint64_t now_ms, struct auth_claims *claims)
{
	memset(g, 0, sizeof(*g));
	g->rate = rate;
	g->bucket = 2 * rate * 1000;
	g->last_ms = now_ms;
	if (claims) {
		g->claims = *claims;
		memset(claims, 0, sizeof(*claims));
		g->has_claims = 1;
	}
}

void guard_free(struct guard *g)
{
	auth_claims_free(&g->claims);
	g->has_claims = 0;
}

const struct auth_claims *guard_claims(const struct guard *g)
{
	return g->has_claims ? &g->claims : NULL;
}

enum guard_verdict guard_request(struct guard *g, uint64_t now_ms)
{
	if (g->rate <= 0)
		return GUARD_OK;
	long long cap = 2 * g->rate * 1000;
	if (now_ms > g->last_ms) {
		uint64_t dt = now_ms - g->last_ms;
		/* dt capped so the product cannot overflow: a full refill takes
		 * at most 2000 ms anyway. */
		g->bucket += (long long)(dt > 10000 ? 10000 : dt) * g->rate;
		if (g->bucket > cap)
			g->bucket = cap;
		g->last_ms = now_ms;
	}
	if (g->bucket >= 1000) {
		g->bucket -= 1000;
		return GUARD_OK;
	}
	if (!g->refused_in_window || now_ms - g->window_start_ms > GUARD_ABUSE_WINDOW_MS) {
		g->window_start_ms = now_ms;
		g->refused_in_window = 0;
	}
	g->refused_in_window++;
	return g->refused_in_window > GUARD_ABUSE_FACTOR * g->rate ? GUARD_ABUSE : GUARD_LIMITED;
}

int guard_expired(const struct guard *g, const struct auth_key *k, long long now)
{
	return g->has_claims && auth_remaining_s(k, &g->claims, now) <= 0;
}

int guard_refresh(struct guard *g, const struct auth_key *k, const char *token, size_t len,
		  long long now, const char **why)
{
	struct auth_claims c;
	if (!k) {
		*why = "tokens are not used on this server";
		return -1;
	}
	if (auth_verify(k, token, len, now, &c, why))
		return -1;
	if (g->has_claims && g->claims.sub && (!c.sub || strcmp(c.sub, g->claims.sub))) {
		auth_claims_free(&c);
		*why = "the new token is for another subject (sub)";
		return -1;
	}
	auth_claims_free(&g->claims);
	g->claims = c;
	g->has_claims = 1;
	return 0;
}
