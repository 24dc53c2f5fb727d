/*
 * server.c — owns one fanoutd process's runtime: accepting on the listen
 * socket (opened by listen.c; accepted connections handed to lws), the lws
 * context and its vhost (protocols, mounts, keepalive policy, lws's log
 * routed into ours), signals (a signalfd watched by the loop) and the
 * shutdown sequence: stop accepting, let every client go (clients.c: each
 * transport its own way; native WebSocket clients with 1001 once their
 * queue is flushed), at most shutdown_grace_ms, then stop the backends.
 * Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_TAG "server"
#include "budget.h"
#include "clients.h"
#include "conn.h"
#include "gate.h"
#include "http.h"
#include "http_reply.h"
#include "http_api.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "notify.h"
#include "loop.h"
#include "server.h"
#include "session.h"
#include "sse.h"
#include "tls.h"
#include "trpc.h"
#include "workers.h"
#include "wsconn.h"

struct server srv = {.listen_fd = -1};

static struct fanout_watch *accept_watch, *admin_watch, *signal_watch;
static int admin_fd = -1;
static struct lws_vhost *admin_vh; /* with TLS on: admin_listen's plain vhost */
static struct fanout_timer *grace_timer, *accept_pause_timer;
static int signal_fd = -1;
static uint64_t emfile_logged_ms;

static void accept_resume(struct fanout_timer *t, void *arg)
{
	if (accept_watch && !clients_draining())
		loop_watch_set(accept_watch, FANOUT_FD_READ);
}

/* The conn being adopted, and whether lws already released it (an
 * adoption that fails after the wsi existed ends in WSI_DESTROY). */
static struct conn *adopting;
static int adopting_released;

static void on_accept(struct fanout_watch *w, int lfd, unsigned ev, void *arg)
{
	int admin = arg != NULL;

	/* the admin listener keeps answering while draining (/readyz says so) */
	/* Up to 256 per pass: a storm drains the accept queue quickly while the
	 * rest of the loop still gets its turn. */
	for (int i = 0; i < 256 && (admin || !clients_draining()); i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				uint64_t now = loop_now_ms();
				if (now - emfile_logged_ms > 5000) {
					emfile_logged_ms = now;
					log_warn("accept: %s (clients: %lld): pausing accepts",
						 strerror(errno), clients_count());
				}
				loop_watch_set(w, 0);
				loop_timer_arm(accept_pause_timer, 100);
			}
			return;
		}
		struct conn *c = conn_accept((struct sockaddr *)&ss, admin);
		if (!c) { /* over max_connections_per_ip (counted, logged) */
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		lws_adopt_desc_t info;
		memset(&info, 0, sizeof(info));
		info.vh = admin && admin_vh ? admin_vh : srv.vh;
		info.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL;
		info.fd.sockfd = fd;
		info.opaque = c;
		adopting = c;
		adopting_released = 0;
		if (!lws_adopt_descriptor_vhost_via_info(&info)) {
			/* lws closed the socket; with TLS a handshake that fails
			 * at once ends here (plain HTTP on the TLS port), so this
			 * is not worth more than a debug line */
			if (!adopting_released) {
				log_debug("could not adopt a connection from %s", c->ip);
				conn_release(c);
			} else {
				log_debug("a connection closed while being adopted");
			}
		}
		adopting = NULL;
	}
}

/*
 * protocols[0]: lws binds every new connection here first and after each
 * keep-alive transaction, and sends it every wsi's WSI_DESTROY. It releases
 * the connection's conn, sends any upgrade through the gate, never takes a
 * WebSocket itself (a client could name it in Sec-WebSocket-Protocol) and
 * leaves the rest to lws's stock HTTP handling.
 */
static int base_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_WSI_DESTROY: {
		/* a TLS WebSocket connection taken over after its 101 becomes
		 * fully wsconn.c's now */
		wsconn_lws_destroyed(wsi);
		const struct lws_protocols *p = lws_get_protocol(wsi);
		if (p && p->name && !strcmp(p->name, loop_protocol.name))
			break; /* a loop watch: its opaque data is not a conn */
		struct conn *c = conn_of(wsi);
		if (c) {
			lws_set_opaque_user_data(wsi, NULL);
			if (c == adopting)
				adopting_released = 1;
			conn_release(c);
		}
		break;
	}
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return gate_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void finish(void)
{
	loop_quit();
}

static void grace_over(struct fanout_timer *t, void *arg)
{
	if (clients_count())
		log_warn("shutdown_grace_ms over: dropping %lld clients", clients_count());
	finish();
}

void server_drain(const char *why)
{
	if (clients_draining()) {
		log_info("second signal: exiting now");
		finish();
		return;
	}
	notify_stopping();
	long long open = clients_drain_all();
	log_info("%s: draining %lld clients (close 1001, at most %lld ms)", why, open,
		 srv.cfg->shutdown_grace_ms);
	if (accept_watch) {
		loop_watch_remove(accept_watch);
		accept_watch = NULL;
	}
	if (srv.listen_fd >= 0) {
		close(srv.listen_fd);
		srv.listen_fd = -1;
	}
	if (!open)
		loop_timer_arm(grace_timer, 0);
	else
		loop_timer_arm(grace_timer, (uint64_t)srv.cfg->shutdown_grace_ms);
}

/* The last client closed while draining. */
static void sessions_drained(void)
{
	loop_timer_arm(grace_timer, 0);
}

static void on_signal(struct fanout_watch *w, int fd, unsigned ev, void *arg)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			server_drain(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		case SIGHUP:
			/* the config file again, TLS files included (reload.c) */
			reload_run(1);
			break;
		}
	}
}

static void lws_log_emit(int level, const char *line)
{
	enum log_level l = level & LLL_ERR	? LOG_LVL_ERR
			   : level & LLL_WARN	? LOG_LVL_WARN
			   : level & LLL_NOTICE ? LOG_LVL_INFO
						: LOG_LVL_DEBUG;
	log_write(l, "lws", "%s", line);
}

static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options pvo_ws = {NULL, &pvo_default, "fanout-ws", ""};

static struct lws_protocols protocols[6];
int server_init(const struct config *c, int listen_fd, long long max_clients)
{
	struct lws_context_creation_info info;

	srv.cfg = c;
	srv.listen_fd = listen_fd;
	srv.started_ms = loop_now_ms();
	clients_init(max_clients, sessions_drained);
	metrics.queue_budget_bytes = budget_init(c);
	log_info("max_queued_bytes: %lld bytes for this process's send queues%s",
		 metrics.queue_budget_bytes, c->max_queued_bytes < 0 ? " (auto)" : "");
	session_init(c);
	if (conn_init(c) || gate_init(c) || http_init(c))
		return -1;
	http_api_init(c);

	int lws_levels = LLL_ERR | LLL_WARN;
	if (c->log_level >= LOG_LVL_DEBUG)
		lws_levels |= LLL_NOTICE;
	lws_set_log_level(lws_levels, lws_log_emit);

	protocols[0] = (struct lws_protocols){"fanout-base", base_callback, 0, 0, 0, NULL, 0};
	protocols[1] = session_protocol;
	protocols[2] = http_protocol;
	protocols[3] = loop_protocol;
	protocols[4] = sse_protocol;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.pvo = &pvo_ws;
	info.mounts = http_mounts(c);
	info.vhost_name = "default";
	/* No fd_limit_per_thread: lws then sizes its fd table from the soft
	 * RLIMIT_NOFILE that main.c set, with O(1) lookups (see fd_budget). */
	/* handshake_timeout_s: lws's timeout for a TLS handshake and for a
	 * connection's first request head (its header table is taken at
	 * accept, so a slow sender does not extend it) */
	info.timeout_secs = (unsigned)c->handshake_timeout_s;
	info.timeout_secs_ah_idle = (unsigned)c->handshake_timeout_s;
	http_limits(&info);
	/* No lws keepalive policy and no lws extensions: WebSocket connections
	 * leave lws right after the 101 (wsconn.c pings and negotiates
	 * permessage-deflate itself). */
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * 0; /* our own listener binds */
	tls_setup(&info, c); /* tls_cert: the public vhost speaks TLS only */

	srv.ctx = lws_create_context(&info);
	reload_set_context(srv.ctx);
	if (!srv.ctx) {
		log_err("cannot create the libwebsockets context");
		return -1;
	}
	srv.vh = lws_get_vhost_by_name(srv.ctx, "default");
	if (!srv.vh) {
		log_err("no default vhost");
		return -1;
	}
	if (tls_enabled(c) && c->admin_listen && *c->admin_listen) {
		/* the admin listener stays plain HTTP: a vhost of its own */
		info.vhost_name = "admin";
		info.ssl_cert_filepath = info.ssl_private_key_filepath = NULL;
		info.options &= ~(uint64_t)LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.alpn = NULL;
		admin_vh = lws_create_vhost(srv.ctx, &info);
		if (!admin_vh) {
			log_err("cannot create the admin vhost");
			return -1;
		}
	}
	loop_init(srv.ctx, srv.vh);
	loop_on_pass_end(wsconn_pass_end);
	loop_count_passes(&metrics.loop_passes);
	if (wsconn_start())
		return -1;
	if (*c->trpc_path && (trpc_init(c) || session_add_proto(c->trpc_path, &trpc_proto)))
		return -1;
	if (*c->sse_path && sse_init(c))
		return -1;

	if (clients_idle_init(c->idle_timeout_s))
		return -1;
	grace_timer = loop_timer_add((fanout_timer_cb)grace_over, NULL);
	accept_pause_timer = loop_timer_add(accept_resume, NULL);
	accept_watch = loop_watch_add(listen_fd, FANOUT_FD_READ, on_accept, NULL);
	if (!accept_watch || !grace_timer || !accept_pause_timer)
		return -1;
	admin_fd = listen_admin_socket(c, workers_active());
	if (admin_fd == -1)
		return -1;
	if (admin_fd >= 0 &&
	    !(admin_watch = loop_watch_add(admin_fd, FANOUT_FD_READ, on_accept, (void *)1)))
		return -1;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (signal_fd < 0 ||
	    !(signal_watch = loop_watch_add(signal_fd, FANOUT_FD_READ, on_signal, NULL)))
		return -1;
	return 0;
}

int server_run(void)
{
	return loop_run();
}

void server_free(void)
{
	clients_tokens_free();
	loop_watch_remove(accept_watch);
	accept_watch = NULL;
	loop_watch_remove(signal_watch);
	signal_watch = NULL;
	loop_watch_remove(admin_watch);
	admin_watch = NULL;
	if (admin_fd >= 0)
		close(admin_fd);
	admin_fd = -1;
	clients_idle_free();
	loop_timer_remove(grace_timer);
	grace_timer = NULL;
	loop_timer_remove(accept_pause_timer);
	accept_pause_timer = NULL;
	trpc_free();
	sse_free();
	wsconn_shutdown();
	if (srv.ctx)
		lws_context_destroy(srv.ctx);
	srv.ctx = NULL;
	reload_set_context(NULL);
	admin_vh = NULL;
	gate_free();
	http_free();
	conn_free_all();
	if (signal_fd >= 0)
		close(signal_fd);
	signal_fd = -1;
	if (srv.listen_fd >= 0)
		close(srv.listen_fd);
	srv.listen_fd = -1;
}
