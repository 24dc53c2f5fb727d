/*
 * tls.c — owns TLS on the public listener: the vhost setup lws
 * needs (its OpenSSL does the handshakes: HTTP/1.1 only over ALPN, since a
 * WebSocket over HTTP/2 would not pass the upgrade gate; TLS 1.2 and newer),
 * and the reload on SIGHUP through lws_tls_cert_updated(), which loads the
 * files into the vhost's existing SSL_CTX: new handshakes get the new
 * certificate, open connections keep theirs. The files are checked
 * (tls_files.c) at config load and before every reload.
 *
 * The admin listener stays plain HTTP (server.c gives it its own vhost).
 * Loop thread; allocates nothing.
 */
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>

#define LOG_TAG "tls"
#include "config.h"
#include "log.h"
#include "tls.h"
#include "tls_files.h"

int tls_enabled(const struct config *c)
{
	return c->tls_cert && *c->tls_cert;
}

void tls_setup(struct lws_context_creation_info *info, const struct config *c)
{
	if (!tls_enabled(c))
		return;
	info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info->ssl_cert_filepath = c->tls_cert;
	info->ssl_private_key_filepath = c->tls_key;
	info->alpn = "http/1.1";
	info->ssl_options_set = (long)(SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
}

int tls_reload(struct lws_context *ctx, const struct config *c)
{
	char why[512];

	if (!tls_enabled(c))
		return 0;
	if (tls_check_files(c->tls_cert, c->tls_key, why, sizeof(why))) {
		log_err("TLS reload refused, the old certificate stays in use: %s", why);
		return -1;
	}
	lws_tls_cert_updated(ctx, c->tls_cert, c->tls_key, NULL, 0, NULL, 0);
	log_info("TLS certificate and key re-read from %s and %s", c->tls_cert, c->tls_key);
	return 0;
}
