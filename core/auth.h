/*
 * auth.h — access tokens (JWT, compact JWS) and what they allow: the one
 * module every transport (WebSocket, tRPC, SSE) calls to check a token.
 *
 * A token is verified against the one key configured in [auth]: jwt_secret
 * (HS256) or jwt_public_key (a PEM public key: RSA -> RS256, EC P-256 ->
 * ES256). The token's "alg" must be exactly that algorithm, so "alg":"none"
 * and HS/RS key confusion are refused before and after libjwt looks at it.
 *
 * Claims (DESIGN.md, Security): exp (required), nbf, sub, channels (globs it
 * may subscribe), publish (globs it may publish), aud (checked only when
 * jwt_audience is set). A token without "channels" may subscribe to nothing,
 * one without "publish" may publish nothing: a token grants only what it
 * names. Globs are fnmatch(3) patterns with no flags, as the server's
 * `channels` key ('*' also matches '/').
 *
 * Usage:
 *   struct auth_key *k;  auth_key_load(&opts, &k, why, sizeof(why));
 *   struct auth_claims c;
 *   if (auth_verify(k, token, len, time(NULL), &c, &reason)) -> 401 / error
 *   auth_may_subscribe(&c, "news.1"); ...; auth_claims_free(&c);
 *
 * Thread-safe: the key is read-only once loaded; the only global is the
 * process's key pointer (set at start-up); no I/O except auth_key_load()
 * (reads the PEM file).
 */
#ifndef FANOUT_AUTH_H
#define FANOUT_AUTH_H

#include <stddef.h>

/* Longest token accepted (bytes of the compact form). */
#define AUTH_TOKEN_MAX 8192
/* Shortest jwt_secret (RFC 7518 3.2: a key of at least the hash size). */
#define AUTH_SECRET_MIN 32
/* Most globs in one of "channels" / "publish", and the longest glob. */
#define AUTH_GLOBS_MAX 256
#define AUTH_GLOB_MAX  256
/* Longest "sub" kept (longer: the token is refused). */
#define AUTH_SUB_MAX 256

struct auth_key;

/* What [auth] says (strings may be NULL or "" = unset). */
struct auth_opts {
	const char *secret;   /* jwt_secret: HS256 */
	const char *pem_path; /* jwt_public_key: PEM file, RS256 or ES256 */
	const char *audience; /* jwt_audience: when set, "aud" must name it */
	long long leeway_s;   /* jwt_leeway_s: clock skew allowed on exp and nbf */
};

/*
 * Build the verifier. Returns 0 with *out set (NULL when neither secret nor
 * pem_path is set: tokens are off), or -1 with a reason in why[why_len]:
 * both set, a secret shorter than AUTH_SECRET_MIN bytes, a file that cannot
 * be read or holds no PEM public key, an RSA key under 2048 bits, an EC key
 * on another curve than P-256, another key type.
 */
int auth_key_load(const struct auth_opts *o, struct auth_key **out, char *why, size_t why_len);
void auth_key_free(struct auth_key *k);

/* The process's key: set once by main.c at start-up (workers inherit it),
 * read by every transport. NULL: tokens are off. */
void auth_set_process_key(struct auth_key *k);
/* The same, returning the key it replaces (a reload frees that one; every
 * check reads the process key when it runs, none keeps it). */
struct auth_key *auth_swap_process_key(struct auth_key *k);
const struct auth_key *auth_process_key(void);
/* "HS256", "RS256" or "ES256". */
const char *auth_key_alg(const struct auth_key *k);
/* jwt_audience (NULL: not checked) and jwt_leeway_s of the key. */
const char *auth_key_audience(const struct auth_key *k);
long long auth_key_leeway(const struct auth_key *k);

struct auth_claims {
	long long exp;	 /* seconds since the epoch */
	long long nbf;	 /* 0 when absent */
	char *sub;	 /* NULL when absent */
	char **channels; /* globs it may subscribe to */
	size_t n_channels;
	char **publish; /* globs it may publish to */
	size_t n_publish;
};

/*
 * Verify a compact token (token[0..len), need not be NUL-terminated) with k
 * at wall-clock time now (seconds). Returns 0 with *c filled (free with
 * auth_claims_free()), or -1 with *why a static reason ("expired", "not
 * valid yet", "bad signature", ...) and *c empty. Work before the signature
 * check is linear in len; nothing is logged (a token is a secret).
 */
int auth_verify(const struct auth_key *k, const char *token, size_t len, long long now,
		struct auth_claims *c, const char **why);

/* 0 when the claims are valid at now (exp, nbf with leeway), else -1 and
 * *why ("expired" / "not valid yet"). */
int auth_check_time(const struct auth_claims *c, long long now, long long leeway_s,
		    const char **why);
/* Seconds until the claims expire at now (<= 0: expired), leeway included. */
long long auth_remaining_s(const struct auth_key *k, const struct auth_claims *c, long long now);

/* 1 when channel is matched by one of the token's globs, else 0. */
int auth_may_subscribe(const struct auth_claims *c, const char *channel);
int auth_may_publish(const struct auth_claims *c, const char *channel);

void auth_claims_free(struct auth_claims *c);

/* ---- the pure steps (no signature), for the unit tests and the fuzzer ---- */

/*
 * The token's structure, header and claims without its signature: three
 * base64url segments (no padding, non-empty signature), a header that is a
 * JSON object with "alg" == alg, "typ" absent or "JWT", no "crit"; claims
 * as described above (types, sizes, aud against audience when not NULL).
 * Duplicate member names are refused. 0 and *c, or -1 and *why.
 */
int auth_parse_token(const char *token, size_t len, const char *alg, const char *audience,
		     struct auth_claims *c, const char **why);
/* Decode unpadded base64url s[0..n) into out (room for n * 3 / 4 + 1
 * bytes); returns the length, or -1 on a bad character or length. */
long auth_b64url_decode(const char *s, size_t n, unsigned char *out);

#endif
