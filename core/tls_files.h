/*
 * tls_files.h — checking the TLS files (see tls_files.c), for the config
 * loader and tls.c's reload; depends on no other module.
 */
#ifndef FANOUT_TLS_FILES_H
#define FANOUT_TLS_FILES_H

#include <stddef.h>

/*
 * Read the certificate chain (PEM: the server certificate first, then any
 * intermediates) and the private key (PEM) and check that the key belongs to
 * the certificate. 0, or -1 with a reason in why[n]. Reads files only; any
 * thread.
 */
int tls_check_files(const char *cert, const char *key, char *why, size_t n);

#endif
