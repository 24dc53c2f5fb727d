/*
 * listen.c — owns opening the TCP listen sockets (listen, and admin_listen
 * when set): numeric address only (no DNS at start-up), SO_REUSEADDR, and
 * SO_REUSEPORT for worker processes that share the port (workers.c). IPv6 "::" also accepts IPv4;
 * any other IPv6 address is v6-only. Called once per process before the loop runs; the fd belongs
 * to the caller.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_TAG "listen"
#include "listen.h"

#define LISTEN_BACKLOG 65535
#include "log.h"

static int listen_on(const char *what, const char *host_in, int port_n, int reuseport)
{
	struct addrinfo hints, *res = NULL;
	char port[16];
	int fd = -1, one = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", port_n);
	const char *host = host_in && *host_in ? host_in : "0.0.0.0";
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		log_err("listen %s: %s (use a numeric address)", what, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (res->ai_family == AF_INET6) {
		int v6only = strcmp(host, "::") ? 1 : 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	}
	/* A connection storm (an instance drained, its clients moving here)
	 * must not overflow the accept queue: a dropped handshake costs the
	 * client a 1 s SYN retransmit. The kernel caps this at
	 * net.core.somaxconn (4096 on Debian 12). */
	if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, LISTEN_BACKLOG))
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	log_err("listen %s: %s", what, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int listen_socket(const struct config *c, int reuseport)
{
	return listen_on(c->listen, c->listen_host, c->listen_port, reuseport);
}

int listen_admin_socket(const struct config *c, int reuseport)
{
	char *host;
	int port;
	const char *why;

	if (!c->admin_listen || !*c->admin_listen)
		return -2;
	if (cfg_parse_listen(c->admin_listen, &host, &port, &why)) {
		log_err("admin_listen %s: %s", c->admin_listen, why); /* config.c checked it */
		return -1;
	}
	int fd = listen_on(c->admin_listen, host, port, reuseport);
	free(host);
	return fd;
}
