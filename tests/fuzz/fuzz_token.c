/*
 * fuzz_token.c — libFuzzer harness for access tokens (core/auth.c):
 * auth_parse_token() (structure, base64url, header, claims) and the whole
 * auth_verify() with an HS256 key, including libjwt's signature check and
 * the time checks.
 *
 * Two input shapes (first byte):
 *   'T' + bytes            the bytes are the token text itself (structure,
 *                          base64url and length checks);
 *   anything else: FLAGS HEADER \0 CLAIMS [\0 SIG]
 *                          header and claims JSON are base64url-encoded by
 *                          the harness and, when FLAGS bit 0 is set, signed
 *                          with the harness's secret (so the fuzzer reaches
 *                          the checks after the signature), else SIG (or
 *                          nothing) is the signature.
 * Checks: verify never succeeds where parsing fails; an accepted token's
 * claims keep every promise of auth.h (sizes, counts, NUL-free globs, exp in
 * the future of now); nothing leaks (ASan).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "fuzz_common.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW    1700000000LL

static struct auth_key *key;

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	return o;
}

static void check_claims(const struct auth_claims *c)
{
	CHECK(c->exp >= 0);
	CHECK(c->nbf >= 0);
	CHECK(!c->sub || strlen(c->sub) <= AUTH_SUB_MAX);
	CHECK(c->n_channels <= AUTH_GLOBS_MAX && c->n_publish <= AUTH_GLOBS_MAX);
	CHECK(!c->n_channels || c->channels);
	for (size_t i = 0; i < c->n_channels; i++)
		CHECK(c->channels[i] && *c->channels[i] && strlen(c->channels[i]) <= AUTH_GLOB_MAX);
	for (size_t i = 0; i < c->n_publish; i++)
		CHECK(c->publish[i] && *c->publish[i] && strlen(c->publish[i]) <= AUTH_GLOB_MAX);
	(void)auth_may_subscribe(c, "news.1");
	(void)auth_may_publish(c, "a/b:c");
}

static void one(const char *tok, size_t len)
{
	struct auth_claims c, v;
	const char *why = NULL;
	int parsed = auth_parse_token(tok, len, "HS256", NULL, &c, &why);
	if (parsed == 0) {
		check_claims(&c);
		auth_claims_free(&c);
	} else {
		CHECK(why && c.sub == NULL && c.channels == NULL && c.publish == NULL);
	}
	why = NULL;
	int ok = auth_verify(key, tok, len, NOW, &v, &why);
	if (ok == 0) {
		CHECK(parsed == 0);
		check_claims(&v);
		CHECK(v.exp > NOW);
		CHECK(auth_remaining_s(key, &v, NOW) > 0);
		auth_claims_free(&v);
	} else {
		CHECK(why && v.sub == NULL && v.channels == NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key) {
		struct auth_opts o = {SECRET, NULL, NULL, 0};
		char why[128];
		if (auth_key_load(&o, &key, why, sizeof(why)))
			__builtin_trap();
	}
	if (!size)
		return 0;
	if (data[0] == 'T') {
		one((const char *)data + 1, size - 1);
		return 0;
	}
	unsigned flags = data[0];
	const unsigned char *p = data + 1, *end = data + size;
	const unsigned char *z1 = memchr(p, 0, (size_t)(end - p));
	if (!z1)
		return 0;
	const unsigned char *claims = z1 + 1;
	const unsigned char *z2 = memchr(claims, 0, (size_t)(end - claims));
	const unsigned char *claims_end = z2 ? z2 : end;
	const unsigned char *sig = z2 ? z2 + 1 : end;
	size_t hl = (size_t)(z1 - p), cl = (size_t)(claims_end - claims), sl = (size_t)(end - sig);
	if (hl + cl + sl > AUTH_TOKEN_MAX)
		return 0;

	char *tok = malloc((hl + cl + sl) * 4 / 3 + 64);
	if (!tok)
		return 0;
	size_t n = b64url(p, hl, tok);
	tok[n++] = '.';
	n += b64url(claims, cl, tok + n);
	size_t signed_len = n;
	tok[n++] = '.';
	if (flags & 1) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned ml = 0;
		HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok, signed_len,
		     mac, &ml);
		n += b64url(mac, ml, tok + n);
	} else {
		n += b64url(sig, sl, tok + n);
	}
	one(tok, n);
	free(tok);
	return 0;
}
