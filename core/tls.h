/*
 * tls.h — TLS on the public listener (tls_cert, tls_key): setting up lws's
 * vhost for them (wss/https only, HTTP/1.1 only, TLS 1.2 or newer) and
 * re-reading them (SIGHUP). Checking the PEM files: tls_files.h.
 */
#ifndef FANOUT_TLS_H
#define FANOUT_TLS_H

struct config;
struct lws_context;
struct lws_context_creation_info;

/* 1 when c sets tls_cert (and tls_key). */
int tls_enabled(const struct config *c);

/* Fill info's TLS fields for c (no-op when TLS is off). */
void tls_setup(struct lws_context_creation_info *info, const struct config *c);

/*
 * Re-read tls_cert and tls_key into the running vhost (new handshakes use
 * them; open connections keep theirs). The files are checked first: on any
 * error the old certificate stays in use and -1 is returned after logging
 * why. 0 on success or when TLS is off. Loop thread.
 */
int tls_reload(struct lws_context *ctx, const struct config *c);

#endif
