/*
 * tls_files.c — owns the check of the TLS files (tls_cert, tls_key) with
 * libcrypto alone: the PEM certificate and private key parse and the key
 * belongs to the certificate. Used at config load (so --check-config refuses
 * what start-up would) and before every reload (tls.c). Any thread; reads
 * the two files, frees the OpenSSL objects before returning.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "tls_files.h"

static void ossl_why(char *why, size_t n, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char es[160] = "no PEM data";
	if (e)
		ERR_error_string_n(e, es, sizeof(es));
	ERR_clear_error();
	snprintf(why, n, "%s %s: %s", what, path, es);
}

int tls_check_files(const char *cert, const char *key, char *why, size_t n)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	FILE *f = NULL;
	int rc = -1;

	ERR_clear_error();
	if (!(f = fopen(cert, "r"))) {
		snprintf(why, n, "tls_cert %s: %s", cert, strerror(errno));
		goto out;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		ossl_why(why, n, "tls_cert", cert);
		goto out;
	}
	if (!(f = fopen(key, "r"))) {
		snprintf(why, n, "tls_key %s: %s", key, strerror(errno));
		goto out;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, (void *)""); /* "": never prompt */
	fclose(f);
	if (!k) {
		ossl_why(why, n, "tls_key", key);
		goto out;
	}
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		snprintf(why, n, "tls_key %s does not belong to the certificate in %s", key, cert);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}
