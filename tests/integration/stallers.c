/*
 * stallers.c — WebSocket clients that stop reading, for the memory-budget
 * test (security_limits.mjs). Node cannot shrink a socket's receive buffer,
 * and loopback sockets autotune to megabytes, so a paused node client
 * soaks up ~10 MB in the kernel before the server queues anything; these
 * set SO_RCVBUF to 4 KiB before connecting, so the server's own queue is
 * what fills.
 *
 *   stallers PORT N PATH_PREFIX
 *
 * Opens N connections to 127.0.0.1:PORT, upgrading each at
 * "PATH_PREFIX<i>" (e.g. "/ws?channel=q" subscribes connection i to q<i>),
 * reads each one's 101 answer, prints "ready" and then reads nothing. When
 * a line "go M" arrives on stdin it reads every connection until it ends,
 * brings a close frame or has brought M whole data frames (M = 0: until
 * nothing arrives for 6 s), at most 60 s, and prints per connection
 * "i CODE BYTES FRAMES": the close code the server sent, or 0 when the
 * connection ended without a close frame (the server gave up on a close
 * the client never read), or -1 when it is still open without one; the
 * bytes and the data frames read after "go". Then "done"; the connections
 * still open stay open until stdin ends. Exits 1 on any setup error. Test
 * helper only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 512

struct peer {
	int fd;
	uint8_t hdr[14];
	size_t hlen;   /* bytes of the current frame header seen */
	uint64_t skip; /* payload bytes of the current frame still to come */
	int op;	       /* opcode of the current frame */
	int fin;       /* ... and its FIN bit */
	uint8_t cb[2]; /* a close frame's code bytes */
	int cn, code, done;
	unsigned frames;	/* whole data frames read after "go" */
	unsigned long long got; /* bytes read after "go" */
};

static int fail(const char *what)
{
	fprintf(stderr, "stallers: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Read the HTTP answer up to the blank line (byte by byte: nothing after
 * it is consumed). */
static int read_head(int fd)
{
	char c, last[4] = {0};
	for (int n = 0; n < 8192; n++) {
		if (read(fd, &c, 1) != 1)
			return -1;
		memmove(last, last + 1, 3);
		last[3] = c;
		if (!memcmp(last, "\r\n\r\n", 4))
			return 0;
	}
	return -1;
}

/* Feed received bytes through a minimal parser of server frames
 * (unmasked); remember the first close frame's code. */
static void feed(struct peer *p, const uint8_t *d, size_t n)
{
	while (n && !p->done) {
		if (p->skip) {
			if (p->op == 8 && p->cn < 2) {
				p->cb[p->cn++] = *d++;
				n--;
				p->skip--;
				if (p->cn == 2) {
					p->code = p->cb[0] << 8 | p->cb[1];
					p->done = 1;
				}
				continue;
			}
			size_t k = n < p->skip ? n : (size_t)p->skip;
			p->skip -= k;
			d += k;
			n -= k;
			if (!p->skip && p->fin && p->op < 8) /* a data frame is whole */
				p->frames++;
			continue;
		}
		p->hdr[p->hlen++] = *d++;
		n--;
		if (p->hlen < 2)
			continue;
		size_t need = (p->hdr[1] & 127) == 126 ? 4 : (p->hdr[1] & 127) == 127 ? 10 : 2;
		if (p->hlen < need)
			continue;
		uint64_t len = p->hdr[1] & 127;
		if (len == 126)
			len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
		else if (len == 127)
			for (int i = 0; i < 8; i++)
				len = len << 8 | p->hdr[2 + i];
		p->op = p->hdr[0] & 15;
		p->hlen = 0;
		p->skip = len;
		p->fin = p->hdr[0] >> 7;
		if (!len && p->fin && p->op < 8)
			p->frames++;
		if (p->op == 8) {
			p->cn = 0;
			if (len < 2) {
				p->code = 1005;
				p->done = 1;
			}
		}
	}
}

int main(int argc, char **argv)
{
	static struct peer peers[MAXC];
	if (argc != 4)
		return fprintf(stderr, "usage: stallers PORT N PATH_PREFIX\n"), 2;
	int port = atoi(argv[1]);
	long nl = atol(argv[2]);
	if (nl < 1 || nl > MAXC)
		return 2;
	unsigned n = (unsigned)nl;
	for (unsigned i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
		if (fd < 0)
			return fail("socket");
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		a.sin_addr.s_addr = htonl(0x7f000001);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fail("connect");
		char req[512];
		int len = snprintf(
		    req, sizeof(req),
		    "GET %s%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n",
		    argv[3], i);
		if (write(fd, req, (size_t)len) != len || read_head(fd))
			return fail("upgrade");
		peers[i].fd = fd;
		peers[i].code = 0;
	}
	printf("ready\n");
	fflush(stdout);

	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	unsigned want = 0;
	sscanf(line, "go %u", &want);
	for (unsigned i = 0; i < n; i++) {
		int big = 1 << 20; /* open the window: drain fast */
		setsockopt(peers[i].fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		fcntl(peers[i].fd, F_SETFL, O_NONBLOCK);
	}
	time_t end = time(NULL) + 60;
	static uint8_t buf[65536];
	/* A connection is waited for until it ends, brings its close frame or
	 * (want > 0) has brought want data frames; all of them at most 60 s
	 * (those still open then stay -1). With want = 0 also until 6 s pass
	 * without a byte from any of them. */
	time_t quiet = time(NULL) + 6;
	for (;;) {
		struct pollfd pf[MAXC];
		unsigned waiting = 0;
		for (unsigned i = 0; i < n; i++) {
			struct peer *p = &peers[i];
			int wait = p->fd >= 0 && !p->done && (!want || p->frames < want);
			pf[i] = (struct pollfd){.fd = wait ? p->fd : -1, .events = POLLIN};
			waiting += (unsigned)wait;
		}
		if (!waiting || time(NULL) >= end || (!want && time(NULL) >= quiet))
			break;
		if (poll(pf, n, 200) < 0)
			return fail("poll");
		for (unsigned i = 0; i < n; i++) {
			if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r;
			while ((r = read(peers[i].fd, buf, sizeof(buf))) > 0) {
				feed(&peers[i], buf, (size_t)r);
				peers[i].got += (unsigned long long)r;
				quiet = time(NULL) + 6;
			}
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(peers[i].fd);
				peers[i].fd = -1;
			}
		}
	}
	for (unsigned i = 0; i < n; i++)
		printf("%u %d %llu %u\n", i,
		       peers[i].code > 0 ? peers[i].code
		       : peers[i].fd < 0 ? 0
					 : -1,
		       peers[i].got, peers[i].frames);
	printf("done\n");
	fflush(stdout);
	/* Keep the open ones open until stdin ends. */
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
