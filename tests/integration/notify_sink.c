/*
 * notify_sink.c — the receiving end of systemd's notify socket, for tests:
 *
 *   notify-sink PATH
 *
 * binds an AF_UNIX datagram socket at PATH (what NOTIFY_SOCKET names),
 * prints "listening" and then, for each datagram, one line
 * "PID MESSAGE" (the sender's pid from SCM_CREDENTIALS; newlines inside
 * the message shown as '|'), flushed at once. Exits when stdin closes or on
 * SIGTERM, removing PATH. Single-threaded; nothing to free.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int one = 1;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify-sink PATH\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one))) {
		perror("notify-sink");
		return 1;
	}
	signal(SIGTERM, on_term);
	printf("listening\n");
	fflush(stdout);
	while (!stop) {
		struct pollfd p[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
		if (poll(p, 2, 1000) < 0)
			continue;
		if (p[1].revents)
			break; /* stdin closed: the test is done */
		if (!(p[0].revents & POLLIN))
			continue;
		char buf[4096];
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = {buf, sizeof(buf) - 1};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = &ctl,
				   .msg_controllen = sizeof(ctl)};
		ssize_t n = recvmsg(fd, &m, 0);
		if (n < 0)
			continue;
		buf[n] = 0;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		int pid = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred u;
				memcpy(&u, CMSG_DATA(c), sizeof(u));
				pid = (int)u.pid;
			}
		printf("%d %s\n", pid, buf);
		fflush(stdout);
	}
	unlink(argv[1]);
	return 0;
}
