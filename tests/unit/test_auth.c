/*
 * test_auth.c — unit tests of core/auth.c: base64url, the key loader's
 * refusals, HS256 / RS256 / ES256 tokens that verify, and every way a token
 * must fail: expired, not yet valid, forged, tampered, "alg":"none", the
 * HS/RS key confusion (an HS256 token keyed with the RSA public key's PEM
 * text, which libjwt 1.10 alone accepts), wrong key type, bad structure,
 * bad claims, audience; and what the claims' globs allow.
 *
 * Keys are generated here with OpenSSL (RSA 2048, RSA 1024, EC P-256,
 * EC P-384) and written as PEM files under $TMPDIR, removed at the end.
 * Tokens are signed with libjwt, or by hand (HMAC) when a test needs a
 * header or claims text libjwt would not write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth.h"
#include "log.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW    1700000000LL

static char *rsa_priv, *rsa_pub, *rsa_pub_path, *ec_priv, *ec_pub, *ec_pub_path;
static char *rsa1024_path, *ec384_path, *rsa_priv_path;

/* ---- helpers ------------------------------------------------------------ */

static char *pem_of(EVP_PKEY *k, int pub)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	if (pub)
		assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static char *write_tmp(const char *text)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path;
	assert_true(asprintf(&path, "%s/test_auth.XXXXXX", dir) > 0);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int setup(void **state)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (!rsa || !rsa1024 || !ec || !ec384)
		return -1;
	rsa_priv = pem_of(rsa, 0);
	rsa_pub = pem_of(rsa, 1);
	ec_priv = pem_of(ec, 0);
	ec_pub = pem_of(ec, 1);
	rsa_pub_path = write_tmp(rsa_pub);
	rsa_priv_path = write_tmp(rsa_priv);
	ec_pub_path = write_tmp(ec_pub);
	char *p = pem_of(rsa1024, 1);
	rsa1024_path = write_tmp(p);
	free(p);
	p = pem_of(ec384, 1);
	ec384_path = write_tmp(p);
	free(p);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec384);
	return 0;
}

static int teardown(void **state)
{
	char *paths[] = {rsa_pub_path, rsa_priv_path, ec_pub_path, rsa1024_path, ec384_path};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	free(rsa_priv);
	free(rsa_pub);
	free(ec_priv);
	free(ec_pub);
	return 0;
}

static struct auth_key *key_hs(void)
{
	struct auth_opts o = {SECRET, NULL, NULL, 0};
	struct auth_key *k;
	char why[256];
	assert_int_equal(auth_key_load(&o, &k, why, sizeof(why)), 0);
	assert_non_null(k);
	return k;
}

static struct auth_key *key_pem(const char *path)
{
	struct auth_opts o = {NULL, path, NULL, 0};
	struct auth_key *k;
	char why[256] = "";
	if (auth_key_load(&o, &k, why, sizeof(why)))
		fail_msg("auth_key_load(%s): %s", path, why);
	return k;
}

/* A token signed by libjwt with alg and key over claims (JSON text). */
static char *sign(jwt_alg_t alg, const char *key, const char *claims)
{
	jwt_t *j;
	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_add_grants_json(j, claims), 0);
	assert_int_equal(
	    jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
	char *t = jwt_encode_str(j);
	assert_non_null(t);
	jwt_free(j);
	return t;
}

static void b64url(const char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = 0;
}

/* header.claims signed by hand with HMAC-SHA256 keyed by key. */
static char *hand(const char *header, const char *claims, const char *key)
{
	static char t[4 * AUTH_TOKEN_MAX];
	char h[2048], c[AUTH_TOKEN_MAX * 2], s[128];
	unsigned char mac[32];
	unsigned ml = 0;
	b64url(header, strlen(header), h);
	b64url(claims, strlen(claims), c);
	snprintf(t, sizeof(t), "%s.%s", h, c);
	HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)t, strlen(t), mac, &ml);
	b64url((char *)mac, ml, s);
	strcat(t, ".");
	strcat(t, s);
	return t;
}

#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void refused(struct auth_key *k, const char *tok, long long now, const char *want)
{
	struct auth_claims c;
	const char *why = NULL;
	if (!auth_verify(k, tok, strlen(tok), now, &c, &why))
		fail_msg("token accepted, expected \"%s\": %s", want, tok);
	assert_non_null(why);
	if (!strstr(why, want))
		fail_msg("refused for \"%s\", expected \"%s\"", why, want);
	assert_null(c.sub);
	assert_null(c.channels);
}

static void accepted(struct auth_key *k, const char *tok, long long now, struct auth_claims *c)
{
	const char *why = NULL;
	if (auth_verify(k, tok, strlen(tok), now, c, &why))
		fail_msg("token refused: %s", why);
}

/* ---- tests -------------------------------------------------------------- */

static void t_b64url(void **state)
{
	unsigned char out[16];
	assert_int_equal(auth_b64url_decode("", 0, out), 0);
	assert_int_equal(auth_b64url_decode("Zm9v", 4, out), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(auth_b64url_decode("Zm9vYg", 6, out), 4);
	assert_memory_equal(out, "foob", 4);
	assert_int_equal(auth_b64url_decode("_-8", 3, out), 2);
	assert_int_equal(out[0], 0xff);
	assert_int_equal(auth_b64url_decode("Zm9vY", 5, out), -1); /* 4n+1 */
	assert_int_equal(auth_b64url_decode("Zm9v=", 5, out), -1); /* padding */
	assert_int_equal(auth_b64url_decode("Zm+v", 4, out), -1);  /* base64, not url */
}

static void t_key_load(void **state)
{
	struct auth_key *k = (struct auth_key *)1;
	char why[256];
	struct auth_opts none = {NULL, "", NULL, 0};
	assert_int_equal(auth_key_load(&none, &k, why, sizeof(why)), 0);
	assert_null(k);

	struct auth_opts both = {SECRET, rsa_pub_path, NULL, 0};
	assert_int_equal(auth_key_load(&both, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not both"));
	struct auth_opts shorts = {"too-short", NULL, NULL, 0};
	assert_int_equal(auth_key_load(&shorts, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "at least 32 bytes"));
	struct auth_opts missing = {NULL, "/nonexistent/key.pem", NULL, 0};
	assert_int_equal(auth_key_load(&missing, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot open"));
	struct auth_opts priv = {NULL, rsa_priv_path, NULL, 0};
	assert_int_equal(auth_key_load(&priv, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no PEM public key"));
	struct auth_opts small = {NULL, rsa1024_path, NULL, 0};
	assert_int_equal(auth_key_load(&small, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "2048"));
	struct auth_opts p384 = {NULL, ec384_path, NULL, 0};
	assert_int_equal(auth_key_load(&p384, &k, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "P-256"));

	k = key_pem(rsa_pub_path);
	assert_string_equal(auth_key_alg(k), "RS256");
	auth_key_free(k);
	k = key_pem(ec_pub_path);
	assert_string_equal(auth_key_alg(k), "ES256");
	auth_key_free(k);
	k = key_hs();
	assert_string_equal(auth_key_alg(k), "HS256");
	auth_key_free(k);
}

static void t_hs256_claims(void **state)
{
	struct auth_key *k = key_hs();
	struct auth_claims c;
	char *t = sign(JWT_ALG_HS256, SECRET,
		       "{\"exp\":1700000100,\"nbf\":1699999000,\"sub\":\"alice\","
		       "\"channels\":[\"news.*\",\"user/alice\"],\"publish\":[\"chat.?\"]}");
	accepted(k, t, NOW, &c);
	assert_int_equal(c.exp, 1700000100LL);
	assert_int_equal(c.nbf, 1699999000LL);
	assert_string_equal(c.sub, "alice");
	assert_int_equal(c.n_channels, 2);
	assert_true(auth_may_subscribe(&c, "news.today"));
	assert_true(auth_may_subscribe(&c, "news.a/b")); /* '*' crosses '/', as channels = */
	assert_true(auth_may_subscribe(&c, "user/alice"));
	assert_false(auth_may_subscribe(&c, "user/bob"));
	assert_false(auth_may_subscribe(&c, "chat.1"));
	assert_true(auth_may_publish(&c, "chat.1"));
	assert_false(auth_may_publish(&c, "chat.12"));
	assert_false(auth_may_publish(&c, "news.today"));
	assert_int_equal(auth_remaining_s(k, &c, NOW), 100);
	auth_claims_free(&c);
	free(t);

	/* no channels / publish claims: nothing allowed */
	t = sign(JWT_ALG_HS256, SECRET, "{\"exp\":1700000100}");
	accepted(k, t, NOW, &c);
	assert_null(c.sub);
	assert_false(auth_may_subscribe(&c, "news.today"));
	assert_false(auth_may_publish(&c, "news.today"));
	auth_claims_free(&c);
	free(t);

	/* a fractional exp is a NumericDate too */
	t = hand(HS_HDR, "{\"exp\":1700000100.75}", SECRET);
	accepted(k, t, NOW, &c);
	assert_int_equal(c.exp, 1700000100LL);
	auth_claims_free(&c);
	auth_key_free(k);
}

static void t_time(void **state)
{
	struct auth_key *k = key_hs();
	struct auth_claims c;
	char *t = sign(JWT_ALG_HS256, SECRET, "{\"exp\":1700000000,\"nbf\":1699990000}");
	refused(k, t, NOW, "expired"); /* now == exp: expired */
	refused(k, t, NOW + 5000, "expired");
	accepted(k, t, NOW - 1, &c);
	auth_claims_free(&c);
	refused(k, t, 1699989999, "not valid yet");
	accepted(k, t, 1699990000, &c);
	auth_claims_free(&c);
	free(t);
	auth_key_free(k);

	/* leeway on both ends */
	struct auth_opts o = {SECRET, NULL, NULL, 30};
	char why[128];
	assert_int_equal(auth_key_load(&o, &k, why, sizeof(why)), 0);
	t = sign(JWT_ALG_HS256, SECRET, "{\"exp\":1700000000,\"nbf\":1700000020}");
	accepted(k, t, NOW + 29, &c);
	assert_int_equal(auth_remaining_s(k, &c, NOW + 29), 1);
	auth_claims_free(&c);
	accepted(k, t, NOW - 10, &c);
	auth_claims_free(&c);
	refused(k, t, NOW + 30, "expired");
	refused(k, t, NOW - 11, "not valid yet");
	free(t);
	auth_key_free(k);
}

static void t_forged(void **state)
{
	struct auth_key *k = key_hs();
	/* signed with another secret */
	char *t = sign(JWT_ALG_HS256, "another-secret-another-secret-xx", "{\"exp\":1800000000}");
	refused(k, t, NOW, "bad signature");
	free(t);
	/* claims changed after signing: channels widened */
	t = sign(JWT_ALG_HS256, SECRET, "{\"channels\":[\"a\"],\"exp\":1800000000}");
	char *good_sig = strrchr(t, '.');
	char body[256], forged[1024];
	const char *c2 = "{\"channels\":[\"*\"],\"exp\":1800000000}";
	b64url(c2, strlen(c2), body);
	snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(strchr(t, '.') - t), t, body, good_sig);
	refused(k, forged, NOW, "bad signature");
	/* signature cut off, or emptied */
	snprintf(forged, sizeof(forged), "%.*s", (int)(good_sig - t), t);
	refused(k, forged, NOW, "not a JWT");
	snprintf(forged, sizeof(forged), "%.*s.", (int)(good_sig - t), t);
	refused(k, forged, NOW, "unsigned");
	free(t);
	auth_key_free(k);
}

static void t_alg_none(void **state)
{
	struct auth_key *keys[] = {key_hs(), key_pem(rsa_pub_path), key_pem(ec_pub_path)};
	char h[64], c[128], tok[512];
	b64url("{\"alg\":\"none\"}", 14, h);
	b64url("{\"exp\":1800000000,\"channels\":[\"*\"]}", 36, c);
	for (int i = 0; i < 3; i++) {
		snprintf(tok, sizeof(tok), "%s.%s.", h, c);
		refused(keys[i], tok, NOW, "unsigned");
		snprintf(tok, sizeof(tok), "%s.%s.AAAA", h, c);
		refused(keys[i], tok, NOW, "wrong algorithm");
		/* libjwt's own none token */
		char *t = sign(JWT_ALG_NONE, NULL, "{\"exp\":1800000000}");
		refused(keys[i], t, NOW, "unsigned");
		free(t);
		/* "alg":"None" and missing alg */
		refused(keys[i], hand("{\"alg\":\"None\"}", "{\"exp\":1800000000}", SECRET), NOW,
			"wrong algorithm");
		refused(keys[i], hand("{\"typ\":\"JWT\"}", "{\"exp\":1800000000}", SECRET), NOW,
			"wrong algorithm");
		auth_key_free(keys[i]);
	}
}

/* The classic: an HS256 token whose HMAC key is the server's public key PEM
 * text. libjwt 1.10 alone accepts it (checked here, so the guard stays
 * meaningful); auth_verify must not. */
static void t_key_confusion(void **state)
{
	struct auth_key *rs = key_pem(rsa_pub_path), *es = key_pem(ec_pub_path), *hs = key_hs();
	char *t = sign(JWT_ALG_HS256, rsa_pub, "{\"exp\":1800000000,\"channels\":[\"*\"]}");
	jwt_t *j = NULL;
	assert_int_equal(jwt_decode(&j, t, (const unsigned char *)rsa_pub, (int)strlen(rsa_pub)),
			 0);
	jwt_free(j);
	refused(rs, t, NOW, "wrong algorithm");
	free(t);
	t = sign(JWT_ALG_HS256, ec_pub, "{\"exp\":1800000000}");
	refused(es, t, NOW, "wrong algorithm");
	free(t);

	/* RS256 / ES256 tokens against the other keys */
	char *rs_tok = sign(JWT_ALG_RS256, rsa_priv, "{\"exp\":1800000000,\"sub\":\"r\"}");
	char *es_tok = sign(JWT_ALG_ES256, ec_priv, "{\"exp\":1800000000,\"sub\":\"e\"}");
	refused(hs, rs_tok, NOW, "wrong algorithm");
	refused(es, rs_tok, NOW, "wrong algorithm");
	refused(hs, es_tok, NOW, "wrong algorithm");
	refused(rs, es_tok, NOW, "wrong algorithm");
	struct auth_claims c;
	accepted(rs, rs_tok, NOW, &c);
	assert_string_equal(c.sub, "r");
	auth_claims_free(&c);
	accepted(es, es_tok, NOW, &c);
	assert_string_equal(c.sub, "e");
	auth_claims_free(&c);
	/* signatures changed or cut: one byte flipped, shortened, lengthened */
	char *toks[] = {rs_tok, es_tok};
	struct auth_key *ks[] = {rs, es};
	for (int i = 0; i < 2; i++) {
		char t2[4096];
		size_t n = strlen(toks[i]);
		snprintf(t2, sizeof(t2), "%s", toks[i]);
		t2[n - 5] = t2[n - 5] == 'A' ? 'B' : 'A';
		refused(ks[i], t2, NOW, "bad signature");
		snprintf(t2, sizeof(t2), "%.*s", (int)n - 4, toks[i]);
		refused(ks[i], t2, NOW, "bad signature");
		snprintf(t2, sizeof(t2), "%sAAAA", toks[i]);
		refused(ks[i], t2, NOW, "bad signature");
		/* the claims changed under a good signature */
		const char *d1 = strchr(toks[i], '.'), *d2 = strrchr(toks[i], '.');
		char body[128];
		const char *c2 = "{\"exp\":1800000000,\"sub\":\"x\"}";
		b64url(c2, strlen(c2), body);
		snprintf(t2, sizeof(t2), "%.*s.%s%s", (int)(d1 - toks[i]), toks[i], body, d2);
		refused(ks[i], t2, NOW, "bad signature");
	}
	/* an RS256 header over an HS signature */
	refused(rs, hand("{\"alg\":\"RS256\"}", "{\"exp\":1800000000}", rsa_pub), NOW,
		"bad signature");
	free(rs_tok);
	free(es_tok);
	auth_key_free(rs);
	auth_key_free(es);
	auth_key_free(hs);
}

static void t_structure(void **state)
{
	struct auth_key *k = key_hs();
	struct auth_claims c;
	const char *why;
	refused(k, "", NOW, "no token");
	refused(k, "abc", NOW, "not a JWT");
	refused(k, "a.b.c.d", NOW, "more than three");
	refused(k, ".b.c", NOW, "not a JWT");
	refused(k, "a..c", NOW, "not a JWT");
	refused(k, "a b.c.d", NOW, "outside base64url");
	refused(k, "YQ==.YQ.YQ", NOW, "outside base64url");
	refused(k, "e30.e30.AAAA", NOW, "wrong algorithm"); /* {} header */
	refused(k, "bm90IGpzb24.e30.AAAA", NOW, "bad token header");
	/* NUL inside the token's length */
	assert_int_equal(auth_verify(k, "e30\0.e30.AAAA", 13, NOW, &c, &why), -1);
	/* too long */
	char *big = malloc(AUTH_TOKEN_MAX + 2);
	memset(big, 'A', AUTH_TOKEN_MAX + 1);
	big[AUTH_TOKEN_MAX + 1] = 0;
	refused(k, big, NOW, "longer than 8192");
	free(big);
	/* header rules */
	refused(k,
		hand("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}", "{\"exp\":1800000000}", SECRET),
		NOW, "not JWT");
	refused(k, hand("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"exp\":1800000000}", SECRET),
		NOW, "crit");
	refused(k, hand("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"exp\":1800000000}", SECRET),
		NOW, "bad token header");
	refused(k, hand("[\"HS256\"]", "{\"exp\":1800000000}", SECRET), NOW, "bad token header");
	accepted(k,
		 hand("{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"1\"}", "{\"exp\":1800000000}",
		      SECRET),
		 NOW, &c);
	auth_claims_free(&c);
	auth_key_free(k);
}

static void t_claims(void **state)
{
	struct auth_key *k = key_hs();
	static const struct {
		const char *claims, *why;
	} bad[] = {
	    {"{}", "no exp"},
	    {"{\"exp\":\"1800000000\"}", "exp must be a number"},
	    {"{\"exp\":-1}", "exp must be a number"},
	    {"{\"exp\":1e300}", "exp must be a number"},
	    {"{\"exp\":null}", "exp must be a number"},
	    {"{\"exp\":1800000000,\"exp\":1900000000}", "not a JSON object"},
	    {"[1800000000]", "not a JSON object"},
	    {"{\"exp\":1800000000,\"nbf\":true}", "nbf must be a number"},
	    {"{\"exp\":1800000000,\"sub\":7}", "sub must be a string"},
	    {"{\"exp\":1800000000,\"sub\":\"a\\u0000b\"}", "not a JSON object"},
	    {"{\"exp\":1800000000,\"channels\":\"*\"}", "channels must be an array"},
	    {"{\"exp\":1800000000,\"channels\":[1]}", "each glob"},
	    {"{\"exp\":1800000000,\"channels\":[\"\"]}", "each glob"},
	    {"{\"exp\":1800000000,\"publish\":{\"a\":1}}", "publish must be an array"},
	    {"{\"exp\":1800000000,\"publish\":[\"ok\",null]}", "each glob"},
	    {"{\"exp\":1800000000,\"aud\":5}", "aud must be"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(k, hand(HS_HDR, bad[i].claims, SECRET), NOW, bad[i].why);

	/* 257 globs: too many; 256: fine */
	char big[AUTH_TOKEN_MAX];
	for (int n = 256; n <= 257; n++) {
		size_t o = (size_t)snprintf(big, sizeof(big), "{\"exp\":1800000000,\"channels\":[");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"c%d\"", i ? "," : "",
					      i);
		snprintf(big + o, sizeof(big) - o, "]}");
		struct auth_claims c;
		const char *why;
		const char *t = hand(HS_HDR, big, SECRET);
		int rc = auth_verify(k, t, strlen(t), NOW, &c, &why);
		assert_int_equal(rc, n == 256 ? 0 : -1);
		if (!rc) {
			assert_true(auth_may_subscribe(&c, "c255"));
			auth_claims_free(&c);
		}
	}
	auth_key_free(k);
}

static void t_audience(void **state)
{
	struct auth_opts o = {SECRET, NULL, "fanout", 0};
	struct auth_key *k;
	struct auth_claims c;
	char why[128];
	assert_int_equal(auth_key_load(&o, &k, why, sizeof(why)), 0);
	refused(k, hand(HS_HDR, "{\"exp\":1800000000}", SECRET), NOW, "audience");
	refused(k, hand(HS_HDR, "{\"exp\":1800000000,\"aud\":\"other\"}", SECRET), NOW, "audience");
	refused(k, hand(HS_HDR, "{\"exp\":1800000000,\"aud\":[\"a\",\"fanou\"]}", SECRET), NOW,
		"audience");
	accepted(k, hand(HS_HDR, "{\"exp\":1800000000,\"aud\":\"fanout\"}", SECRET), NOW, &c);
	auth_claims_free(&c);
	accepted(k, hand(HS_HDR, "{\"exp\":1800000000,\"aud\":[1,\"fanout\"]}", SECRET), NOW, &c);
	auth_claims_free(&c);
	auth_key_free(k);
}

/* log.c masks a token after "token=" or "Bearer " in every line. */
static void t_log_masks_tokens(void **state)
{
	char path[] = "/tmp/test_auth_log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	log_write(LOG_LVL_ERR, "t",
		  "GET /ws?channel=a&token=eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln&x=1");
	log_write(LOG_LVL_ERR, "t", "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJ9.sig end");
	log_write(LOG_LVL_ERR, "t", "token=abc short values stay, token= too");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char buf[1024] = "";
	lseek(fd, 0, SEEK_SET);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	unlink(path);
	assert_non_null(strstr(buf, "GET /ws?channel=a&token=***&x=1\n"));
	assert_non_null(strstr(buf, "Authorization: Bearer *** end\n"));
	assert_non_null(strstr(buf, "token=abc short values stay, token= too\n"));
	assert_null(strstr(buf, "eyJ"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_b64url),		  cmocka_unit_test(t_key_load),
	    cmocka_unit_test(t_hs256_claims),	  cmocka_unit_test(t_time),
	    cmocka_unit_test(t_forged),		  cmocka_unit_test(t_alg_none),
	    cmocka_unit_test(t_key_confusion),	  cmocka_unit_test(t_structure),
	    cmocka_unit_test(t_claims),		  cmocka_unit_test(t_audience),
	    cmocka_unit_test(t_log_masks_tokens),
	};
	return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}
