/*
 * auth.c — owns access-token verification (auth.h): the configured key, the
 * token's structure, header and claims (parsed here with jansson, strictly:
 * duplicate members refused, types checked), the signature (libjwt 1.10),
 * the algorithm pinned to the key's type, and the claims' globs.
 *
 * HS256 signatures are checked by libjwt 1.10 (jwt_decode; Debian's build
 * compares the HMAC in constant time, CVE-2024-25189). libjwt trusts the
 * token's own "alg": given a PEM public key and an HS256 token it computes
 * an HMAC keyed with the PEM text, so anyone holding the public key could
 * forge tokens. Two guards stop that: the header's alg is checked before
 * libjwt runs, and jwt_get_alg() after it. libjwt 1.10 has no exp/nbf
 * checks either: they are done here, on the claims text the signature
 * covers.
 *
 * RS256 / ES256 signatures are checked here with OpenSSL (EVP_DigestVerify)
 * against the key parsed once at start-up: libjwt 1.10 re-reads the PEM
 * text on every call, which costs 300-380 µs per token with OpenSSL 3
 * (measured: RS256 394 µs, ES256 493 µs per libjwt verify; 29 µs and 69 µs
 * with the parsed key) — on the one loop thread, a cost any client could
 * make the server pay with well-formed tokens carrying bad signatures.
 *
 * Any thread; the one global, the process's key pointer, is set once at
 * start-up. Allocates the key (auth_key_load, freed by
 * auth_key_free) and each verified token's claims (freed by
 * auth_claims_free); everything else is freed before returning.
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"

#define PEM_MAX (64 * 1024)

struct auth_key {
	jwt_alg_t alg;
	const char *alg_name;
	unsigned char *bytes; /* the secret, or the PEM text (NUL-terminated) */
	size_t len;
	EVP_PKEY *pkey; /* RS256 / ES256: the public key, parsed once */
	char *audience; /* NULL: aud not checked */
	long long leeway_s;
};

/* ---- the key ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return -1;
}

static int set(const char *s)
{
	return s && *s;
}

/* Read the PEM file and decide the algorithm from the key it holds. */
static int load_pem(struct auth_key *k, const char *path, char *why, size_t wn)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return fail(why, wn, "cannot open %s: %s", path, strerror(errno));
	k->bytes = malloc(PEM_MAX + 1);
	if (!k->bytes) {
		fclose(f);
		return fail(why, wn, "out of memory");
	}
	k->len = fread(k->bytes, 1, PEM_MAX + 1, f);
	fclose(f);
	if (k->len > PEM_MAX)
		return fail(why, wn, "%s: larger than 64 KiB, not a public key", path);
	k->bytes[k->len] = 0;

	BIO *bio = BIO_new_mem_buf(k->bytes, (int)k->len);
	EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	k->pkey = pk;
	if (!pk)
		return fail(why, wn,
			    "%s: no PEM public key (expected -----BEGIN PUBLIC KEY-----; "
			    "openssl pkey -pubout writes one)",
			    path);
	int rc = 0;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < 2048) {
			rc = fail(why, wn, "%s: RSA key under 2048 bits", path);
			break;
		}
		k->alg = JWT_ALG_RS256;
		k->alg_name = "RS256";
		break;
	case EVP_PKEY_EC: {
		char group[64] = "";
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), &gl) ||
		    strcmp(group, "prime256v1")) {
			rc = fail(why, wn, "%s: EC key not on curve P-256 (ES256 needs prime256v1)",
				  path);
			break;
		}
		k->alg = JWT_ALG_ES256;
		k->alg_name = "ES256";
		break;
	}
	default:
		rc = fail(why, wn, "%s: not an RSA or EC P-256 public key", path);
		break;
	}
	return rc;
}

int auth_key_load(const struct auth_opts *o, struct auth_key **out, char *why, size_t wn)
{
	*out = NULL;
	if (!set(o->secret) && !set(o->pem_path))
		return 0;
	if (set(o->secret) && set(o->pem_path))
		return fail(why, wn, "set jwt_secret or jwt_public_key, not both");
	struct auth_key *k = calloc(1, sizeof(*k));
	if (!k)
		return fail(why, wn, "out of memory");
	k->leeway_s = o->leeway_s;
	if (set(o->audience) && !(k->audience = strdup(o->audience))) {
		fail(why, wn, "out of memory");
		goto bad;
	}
	if (set(o->secret)) {
		size_t n = strlen(o->secret);
		if (n < AUTH_SECRET_MIN) {
			fail(why, wn, "jwt_secret must be at least %d bytes (it has %zu)",
			     AUTH_SECRET_MIN, n);
			goto bad;
		}
		k->alg = JWT_ALG_HS256;
		k->alg_name = "HS256";
		k->len = n;
		if (!(k->bytes = (unsigned char *)strdup(o->secret))) {
			fail(why, wn, "out of memory");
			goto bad;
		}
	} else if (load_pem(k, o->pem_path, why, wn)) {
		goto bad;
	}
	*out = k;
	return 0;
bad:
	auth_key_free(k);
	return -1;
}

void auth_key_free(struct auth_key *k)
{
	if (!k)
		return;
	if (k->bytes)
		memset(k->bytes, 0, k->len);
	free(k->bytes);
	free(k->audience);
	EVP_PKEY_free(k->pkey);
	free(k);
}

static struct auth_key *process_key;

void auth_set_process_key(struct auth_key *k)
{
	process_key = k;
}

struct auth_key *auth_swap_process_key(struct auth_key *k)
{
	struct auth_key *old = process_key;
	process_key = k;
	return old;
}

const struct auth_key *auth_process_key(void)
{
	return process_key;
}

const char *auth_key_alg(const struct auth_key *k)
{
	return k ? k->alg_name : "none";
}

const char *auth_key_audience(const struct auth_key *k)
{
	return k ? k->audience : NULL;
}

long long auth_key_leeway(const struct auth_key *k)
{
	return k ? k->leeway_s : 0;
}

/* ---- base64url ------------------------------------------------------------ */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long auth_b64url_decode(const char *s, size_t n, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0;
	long o = 0;

	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o;
}

/* Decode a segment and parse it as a JSON object (duplicates refused). */
static json_t *segment_json(const char *s, size_t n)
{
	unsigned char *raw = malloc(n * 3 / 4 + 1);
	if (!raw)
		return NULL;
	long len = auth_b64url_decode(s, n, raw);
	json_t *j = NULL;
	if (len > 0)
		j = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* ---- claims ----------------------------------------------------------------- */

/* A NumericDate (RFC 7519: seconds, may have a fraction) as whole seconds. */
static int numeric_date(const json_t *v, long long *out)
{
	double d;
	if (json_is_integer(v))
		d = (double)json_integer_value(v);
	else if (json_is_real(v))
		d = json_real_value(v);
	else
		return -1;
	/* 0 .. 2^53: beyond that a double has no whole seconds left. */
	if (!isfinite(d) || d < 0 || d > 9007199254740992.0)
		return -1;
	*out = (long long)d; /* d >= 0: truncation is floor */
	return 0;
}

static void free_globs(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* "channels" / "publish": absent -> none; else an array of 1..AUTH_GLOBS_MAX
 * strings of 1..AUTH_GLOB_MAX bytes without NUL. */
static int globs(const json_t *obj, const char *name, char ***out, size_t *n, const char **why)
{
	const json_t *a = json_object_get(obj, name);
	*out = NULL;
	*n = 0;
	if (!a)
		return 0;
	size_t cnt = json_is_array(a) ? json_array_size(a) : 0;
	if (!json_is_array(a) || cnt > AUTH_GLOBS_MAX) {
		*why = !strcmp(name, "channels")
			   ? "claim channels must be an array of at most 256 globs"
			   : "claim publish must be an array of at most 256 globs";
		return -1;
	}
	char **v = calloc(cnt + 1, sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < cnt; i++) {
		const json_t *g = json_array_get(a, i);
		size_t gl = json_is_string(g) ? json_string_length(g) : 0;
		if (!gl || gl > AUTH_GLOB_MAX || strlen(json_string_value(g)) != gl ||
		    !(v[i] = strdup(json_string_value(g)))) {
			*why = !strcmp(name, "channels")
				   ? "claim channels: each glob must be a string of 1-256 bytes"
				   : "claim publish: each glob must be a string of 1-256 bytes";
			free_globs(v, i);
			return -1;
		}
	}
	*out = v;
	*n = cnt;
	return 0;
}

static int aud_matches(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	size_t i;
	const json_t *v;
	json_array_foreach(aud, i, v) if (json_is_string(v) &&
					  !strcmp(json_string_value(v), want)) return 1;
	return 0;
}

static int parse_claims(const json_t *o, const char *audience, struct auth_claims *c,
			const char **why)
{
	const json_t *v;

	if (!(v = json_object_get(o, "exp"))) {
		*why = "no exp claim (tokens must expire)";
		return -1;
	}
	if (numeric_date(v, &c->exp)) {
		*why = "claim exp must be a number of seconds";
		return -1;
	}
	if ((v = json_object_get(o, "nbf")) && numeric_date(v, &c->nbf)) {
		*why = "claim nbf must be a number of seconds";
		return -1;
	}
	if ((v = json_object_get(o, "sub"))) {
		size_t sl = json_is_string(v) ? json_string_length(v) : 0;
		if (!json_is_string(v) || sl > AUTH_SUB_MAX || strlen(json_string_value(v)) != sl) {
			*why = "claim sub must be a string of at most 256 bytes";
			return -1;
		}
		if (!(c->sub = strdup(json_string_value(v)))) {
			*why = "out of memory";
			return -1;
		}
	}
	v = json_object_get(o, "aud");
	if (v && !json_is_string(v) && !json_is_array(v)) {
		*why = "claim aud must be a string or an array of strings";
		return -1;
	}
	if (audience && (!v || !aud_matches(v, audience))) {
		*why = "the token is not for this audience (aud)";
		return -1;
	}
	if (globs(o, "channels", &c->channels, &c->n_channels, why) ||
	    globs(o, "publish", &c->publish, &c->n_publish, why))
		return -1;
	return 0;
}

/* ---- the token ----------------------------------------------------------------- */

int auth_parse_token(const char *t, size_t len, const char *alg, const char *audience,
		     struct auth_claims *c, const char **why)
{
	json_t *head = NULL, *body = NULL;
	size_t dot[2], nd = 0;

	memset(c, 0, sizeof(*c));
	if (!t || !len) {
		*why = "no token";
		return -1;
	}
	if (len > AUTH_TOKEN_MAX) {
		*why = "token longer than 8192 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (t[i] == '.') {
			if (nd == 2) {
				*why = "not a JWT (more than three parts)";
				return -1;
			}
			dot[nd++] = i;
		} else if (b64val((unsigned char)t[i]) < 0) {
			*why = "not a JWT (a character outside base64url)";
			return -1;
		}
	}
	if (nd != 2 || dot[0] == 0 || dot[1] == dot[0] + 1) {
		*why = "not a JWT (header.claims.signature)";
		return -1;
	}
	if (dot[1] + 1 == len) {
		*why = "unsigned token";
		return -1;
	}
	head = segment_json(t, dot[0]);
	if (!head) {
		*why = "bad token header";
		goto fail;
	}
	const json_t *a = json_object_get(head, "alg"), *typ = json_object_get(head, "typ");
	if (!json_is_string(a) || strcmp(json_string_value(a), alg)) {
		*why = "wrong algorithm for the configured key";
		goto fail;
	}
	if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT"))) {
		*why = "token type is not JWT";
		goto fail;
	}
	if (json_object_get(head, "crit")) {
		*why = "token header has crit extensions";
		goto fail;
	}
	body = segment_json(t + dot[0] + 1, dot[1] - dot[0] - 1);
	if (!body) {
		*why = "bad token claims (not a JSON object)";
		goto fail;
	}
	if (parse_claims(body, audience, c, why))
		goto fail;
	json_decref(head);
	json_decref(body);
	return 0;
fail:
	json_decref(head);
	json_decref(body);
	auth_claims_free(c);
	return -1;
}

int auth_check_time(const struct auth_claims *c, long long now, long long leeway_s,
		    const char **why)
{
	if (now >= c->exp + leeway_s) {
		*why = "expired";
		return -1;
	}
	if (c->nbf && now + leeway_s < c->nbf) {
		*why = "not valid yet (nbf)";
		return -1;
	}
	return 0;
}

long long auth_remaining_s(const struct auth_key *k, const struct auth_claims *c, long long now)
{
	return c->exp + (k ? k->leeway_s : 0) - now;
}

/* HS256 through libjwt; 0 when the signature is good. */
static int verify_hs(const struct auth_key *k, const char *token, size_t len)
{
	char buf[AUTH_TOKEN_MAX + 1];
	jwt_t *jwt = NULL;

	memcpy(buf, token, len);
	buf[len] = 0;
	if (jwt_decode(&jwt, buf, k->bytes, (int)k->len) || !jwt)
		return -1;
	/* Belt and braces: what libjwt actually verified with. */
	int rc = jwt_get_alg(jwt) == k->alg ? 0 : -1;
	jwt_free(jwt);
	return rc;
}

/* ES256's signature is R || S (32 bytes each); OpenSSL wants DER. */
static int es256_der(const unsigned char *rs, size_t n, unsigned char *der, size_t *der_len)
{
	if (n != 64)
		return -1;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
	if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return -1;
	}
	unsigned char *p = der;
	int l = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	if (l <= 0)
		return -1;
	*der_len = (size_t)l;
	return 0;
}

/* RS256 / ES256 with the parsed key; 0 when the signature is good. The
 * structure was checked by auth_parse_token(). */
static int verify_pk(const struct auth_key *k, const char *token, size_t len)
{
	const char *last = memrchr(token, '.', len);
	size_t signed_len = (size_t)(last - token), sig_b64 = len - signed_len - 1;
	unsigned char sig[AUTH_TOKEN_MAX], der[80];
	long sl = auth_b64url_decode(last + 1, sig_b64, sig);
	const unsigned char *use = sig;
	size_t use_len = (size_t)sl;
	int rc = -1;

	if (sl <= 0)
		return -1;
	if (k->alg == JWT_ALG_ES256) {
		if (es256_der(sig, (size_t)sl, der, &use_len))
			return -1;
		use = der;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, use, use_len, (const unsigned char *)token, signed_len) == 1)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int auth_verify(const struct auth_key *k, const char *token, size_t len, long long now,
		struct auth_claims *c, const char **why)
{
	if (!k) {
		memset(c, 0, sizeof(*c));
		*why = "tokens are not configured";
		return -1;
	}
	/* Structure, header (alg pinned to the key) and claims first: cheap,
	 * and nothing is verified that claims another algorithm. */
	if (auth_parse_token(token, len, k->alg_name, k->audience, c, why))
		return -1;
	if (k->alg == JWT_ALG_HS256 ? verify_hs(k, token, len) : verify_pk(k, token, len)) {
		*why = "bad signature";
		goto fail;
	}
	if (auth_check_time(c, now, k->leeway_s, why))
		goto fail;
	return 0;
fail:
	auth_claims_free(c);
	return -1;
}

/* ---- what the claims allow --------------------------------------------------- */

static int any_glob(char *const *v, size_t n, const char *channel)
{
	for (size_t i = 0; i < n; i++)
		if (!fnmatch(v[i], channel, 0))
			return 1;
	return 0;
}

int auth_may_subscribe(const struct auth_claims *c, const char *channel)
{
	return any_glob(c->channels, c->n_channels, channel);
}

int auth_may_publish(const struct auth_claims *c, const char *channel)
{
	return any_glob(c->publish, c->n_publish, channel);
}

void auth_claims_free(struct auth_claims *c)
{
	if (!c)
		return;
	free(c->sub);
	free_globs(c->channels, c->n_channels);
	free_globs(c->publish, c->n_publish);
	memset(c, 0, sizeof(*c));
}
