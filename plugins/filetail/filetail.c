/*
 * filetail.c — the filetail backend: reads updates from a file and delivers
 * them as if a broker had sent them, following the file as it grows like
 * `tail -F` (appends, copytruncate, rename-and-recreate, a file that does
 * not exist yet). Lines are parsed by line.c (jsonl or raw).
 *
 * Everything here runs on the host's loop thread: two timers (`work`, which
 * drives reading in bounded slices and pacing, and `poll`, the polling
 * fallback / rotation check / log limiter) and one fd watch on an inotify
 * descriptor watching the file's directory. Reading never blocks the loop:
 * one slice reads at most FT_CHUNK bytes and handles at most FT_LINES lines,
 * then re-arms `work` at 0 ms so other work (clients, other backends) runs
 * between slices.
 *
 * Positions (ABI 1.1): every line's number is its offset and the file's
 * identity its epoch; top and history are answered from the file itself
 * (positions.c, which also keeps the line index this reader feeds).
 *
 * Allocations: struct ft (init .. destroy, ft.h) with its copies of the
 * path, the read buffer (grown up to max_line_bytes + FT_CHUNK + 1), the
 * set of subscribed channels (chset.c), and at most one parsed line held
 * back for pacing. File and inotify descriptors are opened in start() and
 * closed in stop().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fanout/plugin.h>

#include "ft.h"
#include "line.h"

/* Option indexes: the order of opts[] below. */
enum {
	OPT_PATH,
	OPT_FORMAT,
	OPT_CHANNEL,
	OPT_START,
	OPT_FOLLOW,
	OPT_PACE,
	OPT_SPEED,
	OPT_RATE,
	OPT_LOOP,
	OPT_MAX_LINE,
	OPT_POLL,
	OPT_INDEX,
};

static const struct fanout_option opts[] = {
    {"path", FANOUT_OPT_STRING, NULL, 0, 0, NULL, "the file to read and follow",
     FANOUT_OPT_REQUIRED},
    FANOUT_OPTION_ENUM(
	"format", "jsonl", "jsonl|raw",
	"jsonl: {\"channel\",\"data\",\"ts\"} per line; raw: the line is the payload"),
    FANOUT_OPTION_STRING("channel", NULL, "format = raw: the channel every line goes to"),
    FANOUT_OPTION_ENUM("start", "beginning", "beginning|end",
		       "where reading starts in a file that exists at startup"),
    FANOUT_OPTION_BOOL("follow", "true", "keep reading as the file grows, is truncated or rotated"),
    FANOUT_OPTION_ENUM(
	"pace", "none", "none|recorded|rate",
	"none: as fast as possible; recorded: the lines' ts gaps; rate: `rate` lines/s"),
    FANOUT_OPTION_STRING("speed", "1",
			 "pace = recorded: multiplier of the recorded speed (2: twice as fast)"),
    FANOUT_OPTION_INT("rate", "100", 1, 1000000, "pace = rate: lines per second"),
    FANOUT_OPTION_BOOL("loop", "false", "follow = false: start again at the end of the file"),
    FANOUT_OPTION_INT("max_line_bytes", "1048576", 16, 64 * 1024 * 1024,
		      "longer lines are skipped and counted as bad"),
    FANOUT_OPTION_INT("poll_interval_ms", "250", 10, 60000,
		      "how often the file is checked without inotify, and for rotation"),
    FANOUT_OPTION_INT("index_entries", "65536", 16, 16777216,
		      "history: byte offsets kept of every Nth line (8 bytes each; N doubles)"),
    FANOUT_OPTION_END,
};

static double now_ms(struct ft *f)
{
	return (double)f->host->now_ms(f->b);
}

static void set_state(struct ft *f, enum fanout_state st, const char *reason)
{
	if (f->state == (int)st)
		return;
	f->state = (int)st;
	f->host->backend_state(f->b, st, reason);
	f->host->log(f->b, st == FANOUT_UP ? FANOUT_LOG_INFO : FANOUT_LOG_WARN, "%s", reason);
}

static void set_waiting(struct ft *f, const char *why)
{
	char msg[PATH_MAX + 128];

	if (f->state == FANOUT_DOWN)
		return;
	snprintf(msg, sizeof(msg), "waiting for %s%s%s", f->path, why ? ": " : "", why ? why : "");
	set_state(f, FANOUT_DOWN, msg);
}

static void bad_summary(struct ft *f)
{
	if (!f->bad_suppressed)
		return;
	f->host->log(f->b, FANOUT_LOG_WARN, "%s: %llu more bad lines suppressed", f->path,
		     (unsigned long long)f->bad_suppressed);
	f->bad_suppressed = 0;
}

/* Count a bad line and log it as FILE:LINE: reason, at most FT_BAD_PER_S a second. */
static void bad_line(struct ft *f, uint64_t lineno, const char *reason)
{
	uint64_t now = f->host->now_ms(f->b);

	f->host->count(f->b, "bad_lines", 1);
	if (now - f->bad_window_ms >= 1000) {
		bad_summary(f);
		f->bad_window_ms = now;
		f->bad_logged = 0;
	}
	if (f->bad_logged < FT_BAD_PER_S) {
		f->bad_logged++;
		f->host->log(f->b, FANOUT_LOG_WARN, "%s:%llu: %s", f->path,
			     (unsigned long long)lineno, reason);
	} else {
		f->bad_suppressed++;
	}
}

static void reset_file_pos(struct ft *f)
{
	f->offset = 0;
	f->lineno = 0;
	f->top = 0;
	f->skip_until = 0;
	f->head = f->tail = 0;
	f->discard = 0;
	f->pass_lines = 0;
}

static void close_file(struct ft *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->rotating = 0;
}

/*
 * Open the path. Returns 1 when a file is open, 0 when it is not there
 * (state DOWN "waiting for PATH"). A file opened after another one was
 * open is a rotation: subscribers get a gap notice first.
 */
static int try_open(struct ft *f)
{
	struct stat st;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		set_waiting(f, errno == ENOENT ? NULL : strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		set_waiting(f, "not a regular file");
		return 0;
	}
	f->fd = fd;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	reset_file_pos(f);
	ftp_reset(f);
	ftp_epoch(f);
	if (f->first_open && f->start_end && st.st_size > 0) {
		/* Lines that start before the current end are counted (line
		 * numbers are offsets, the same on every instance) and indexed
		 * for history, but not delivered: a line begun before us is
		 * skipped whole. */
		f->skip_until = st.st_size;
		f->counting = 1;
	}
	f->first_open = 0;
	if (f->had_file) {
		f->host->count(f->b, "rotated", 1);
		f->host->log(f->b, FANOUT_LOG_INFO, "%s: new file, reading it from the beginning",
			     f->path);
		f->host->gap(f->b, NULL, "file rotated");
	}
	f->had_file = 1;
	{
		char msg[PATH_MAX + 32];
		snprintf(msg, sizeof(msg), "reading %s", f->path);
		set_state(f, FANOUT_UP, msg);
	}
	return 1;
}

/* When a parsed line is due (loop clock, ms). Advances the pacing state. */
static double due_of(struct ft *f, const struct ft_line *l, double now)
{
	double d;

	switch (f->pace) {
	case PACE_RATE:
		d = f->next_due;
		if (d < now - FT_LATE_MS)
			d = now; /* idle (waiting for data) or far behind: no burst */
		f->next_due = d + 1000.0 / f->rate;
		return d;
	case PACE_RECORDED:
		if (!l->has_ts)
			return now;
		if (!f->have_base) {
			f->have_base = 1;
			f->base_ms = now;
			f->base_ts = l->ts;
		}
		d = f->base_ms + (double)(l->ts - f->base_ts) / f->speed;
		if (d < now - FT_LATE_MS) {
			/* Followed a live file, or a gap backwards: a new time base. */
			f->base_ms = now;
			f->base_ts = l->ts;
			d = now;
		}
		return d;
	default:
		return now;
	}
}

/* Deliver a parsed line (number lineno) if a local client wants its channel. */
static void emit(struct ft *f, struct ft_line *l, uint64_t lineno)
{
	const char *ch = f->fmt == FT_RAW ? f->channel : l->channel;

	f->n_lines++;
	f->top = lineno;
	if (!chset_has(&f->subs, ch)) {
		f->n_skipped++;
		return;
	}
	if (ft_line_payload(l) < 0) {
		f->host->log(f->b, FANOUT_LOG_ERR, "%s:%llu: out of memory, line dropped", f->path,
			     (unsigned long long)f->lineno);
		return;
	}
	if (f->has_pos)
		f->host->deliver_at(f->b, ch, f->epoch, lineno, l->data, l->data_len);
	else
		f->host->deliver(f->b, ch, l->data, l->data_len);
}

enum { R_MORE, R_WAIT, R_BUDGET };

/* Handle one complete line; R_WAIT when it is held back for pacing. */
static int handle_line(struct ft *f, const char *p, size_t len, double now)
{
	struct ft_line l;
	const char *reason;
	double due;
	int r = ft_line_parse(f->fmt, p, len, f->max_line, &l, &reason);

	if (r != FT_LINE_OK)
		f->top = f->lineno; /* handled: nothing to deliver */
	if (r == FT_LINE_EMPTY)
		return R_MORE;
	if (r == FT_LINE_BAD) {
		bad_line(f, f->lineno, reason);
		return R_MORE;
	}
	if (r != FT_LINE_OK) {
		f->host->log(f->b, FANOUT_LOG_ERR, "%s:%llu: out of memory, line dropped", f->path,
			     (unsigned long long)f->lineno);
		return R_MORE;
	}
	f->pass_lines++;
	due = due_of(f, &l, now);
	if (due > now) {
		f->pending = l; /* raw: data points into buf, untouched until emitted */
		f->pending_due = due;
		f->pending_lineno = f->lineno;
		f->has_pending = 1;
		return R_WAIT;
	}
	emit(f, &l, f->lineno);
	ft_line_clear(&l);
	return R_MORE;
}

/* Handle the complete lines in the buffer. */
/* The file offset of buf[i]. */
static off_t file_pos(struct ft *f, size_t i)
{
	return f->offset - (off_t)f->tail + (off_t)i;
}

static int process_lines(struct ft *f, double now, unsigned *budget)
{
	while (f->head < f->tail) {
		char *p = f->buf + f->head;
		size_t avail = f->tail - f->head;
		char *nl = memchr(p, '\n', avail);
		off_t start = file_pos(f, f->head);

		if (f->counting && start >= f->skip_until)
			ftp_counting_done(f);

		if (f->discard) {
			if (!nl) {
				f->head = f->tail = 0;
				return R_MORE;
			}
			f->head += (size_t)(nl - p) + 1;
			f->discard = 0;
			continue;
		}
		if (!nl) {
			if (avail > f->max_line) {
				/* Too long: report once, skip to its newline. */
				f->lineno++;
				ftp_index_line(f, f->lineno, start);
				f->top = f->lineno;
				if (start >= f->skip_until)
					bad_line(f, f->lineno, "line longer than max_line_bytes");
				f->discard = 1;
				f->head = f->tail = 0;
			}
			return R_MORE;
		}
		f->head += (size_t)(nl - p) + 1;
		f->lineno++;
		ftp_index_line(f, f->lineno, start);
		if (start < f->skip_until) {
			f->top = f->lineno; /* before the start: counted, not delivered */
			continue;
		}
		if (handle_line(f, p, (size_t)(nl - p), now) == R_WAIT)
			return R_WAIT;
		if (--*budget == 0)
			return R_BUDGET;
	}
	f->head = f->tail = 0;
	return R_MORE;
}

/* A file ends without a newline: its last line is complete after all. */
static void flush_partial(struct ft *f, double now)
{
	if (f->tail > f->head && !f->discard) {
		off_t start = file_pos(f, f->head);
		f->lineno++;
		ftp_index_line(f, f->lineno, start);
		if (start < f->skip_until)
			f->top = f->lineno;
		else if (handle_line(f, f->buf + f->head, f->tail - f->head, now) == R_WAIT &&
			 f->fmt == FT_RAW) {
			/* Held back for pacing, but raw data points into buf, which is
			 * about to be reused: give the pending line its own copy. */
			char *copy = malloc(f->pending.data_len + 1);
			if (copy) {
				memcpy(copy, f->pending.data, f->pending.data_len);
				f->pending.owned = copy;
				f->pending.data = copy;
			} else {
				f->has_pending = 0; /* the line is dropped, logged */
				f->host->log(f->b, FANOUT_LOG_ERR,
					     "%s:%llu: out of memory, line dropped", f->path,
					     (unsigned long long)f->lineno);
			}
		}
	}
	f->head = f->tail = 0;
	f->discard = 0;
}

/* Read up to want bytes into the buffer. Returns bytes read, 0 at EOF, -1 on error. */
static ssize_t read_more(struct ft *f, size_t want)
{
	ssize_t n;
	size_t room;

	if (f->head == f->tail) {
		f->head = f->tail = 0;
	} else if (f->head > 0 && f->cap - f->tail < FT_CHUNK) {
		memmove(f->buf, f->buf + f->head, f->tail - f->head);
		f->tail -= f->head;
		f->head = 0;
	}
	if (f->cap - f->tail < FT_CHUNK && f->cap < f->capmax) {
		size_t nc = f->cap * 2;
		char *nb;
		if (nc < f->tail + FT_CHUNK)
			nc = f->tail + FT_CHUNK;
		if (nc > f->capmax)
			nc = f->capmax;
		nb = realloc(f->buf, nc);
		if (!nb)
			return -1;
		f->buf = nb;
		f->cap = nc;
	}
	room = f->cap - f->tail;
	if (room > want)
		room = want;
	do
		n = read(f->fd, f->buf + f->tail, room);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		n = 0;
	if (n > 0) {
		f->tail += (size_t)n;
		f->offset += n;
	}
	return n;
}

enum { E_CONTINUE, E_IDLE };

/* The fd is at its end: truncated? rotated? finished? */
static int at_eof(struct ft *f, double now)
{
	struct stat st;

	if (f->counting)
		ftp_counting_done(f); /* every line before the start is counted */

	if (f->rotating) {
		/* The old file is drained: switch to whatever the path names now. */
		flush_partial(f, now);
		close_file(f);
		return try_open(f) ? E_CONTINUE : E_IDLE;
	}
	if (fstat(f->fd, &st) == 0 && (st.st_size < f->offset || ftp_rewritten(f))) {
		/* Shorter than what we read, or (a truncation followed by a
		 * rewrite before we looked) its first line changed. */
		f->host->log(f->b, FANOUT_LOG_INFO,
			     "%s: truncated (size %lld, offset %lld%s), reading from the beginning",
			     f->path, (long long)st.st_size, (long long)f->offset,
			     st.st_size < f->offset ? "" : ", first line rewritten");
		f->host->count(f->b, "truncated", 1);
		if (lseek(f->fd, 0, SEEK_SET) < 0) {
			close_file(f);
			return E_IDLE;
		}
		reset_file_pos(f);
		f->truncations++;
		ftp_reset(f);
		ftp_epoch(f);
		f->host->gap(f->b, NULL, "file truncated");
		return E_CONTINUE;
	}
	if (!f->follow) {
		flush_partial(f, now);
		if (!f->loop) {
			f->host->log(f->b, FANOUT_LOG_INFO, "%s: finished after %llu lines",
				     f->path, (unsigned long long)f->lineno);
			close_file(f);
			f->finished = 1;
			return E_IDLE;
		}
		if (f->pass_lines == 0)
			return E_IDLE; /* nothing to replay yet: look again at the next poll */
		/* Loop: reopen by name (a replaced file is picked up), no gap;
		 * line numbers start again, so a new epoch (passes). */
		close_file(f);
		f->had_file = 0;
		f->passes++;
		f->have_base = 0;
		return try_open(f) ? E_CONTINUE : E_IDLE;
	}
	if (stat(f->path, &st) < 0 || st.st_ino != f->ino || st.st_dev != f->dev) {
		/* Renamed away or replaced: read the old file once more to its end. */
		f->rotating = 1;
		return E_CONTINUE;
	}
	return E_IDLE;
}

/* One slice of work: deliver what is due, read a bounded amount. */
static void pump(struct ft *f)
{
	size_t budget_bytes = FT_CHUNK;
	unsigned budget_lines = FT_LINES;
	double now = now_ms(f);

	if (f->finished && !f->has_pending)
		return;
	if (f->fd < 0 && !f->finished && !f->has_pending && !try_open(f))
		goto out;
	for (;;) {
		int r;
		ssize_t n;

		if (f->has_pending) {
			if (f->pending_due > now) {
				double wait = f->pending_due - now;
				uint64_t ms = (uint64_t)wait;
				f->host->timer_arm(f->work, (double)ms < wait ? ms + 1 : ms);
				goto out;
			}
			f->has_pending = 0;
			emit(f, &f->pending, f->pending_lineno);
			ft_line_clear(&f->pending);
			if (--budget_lines == 0)
				goto again;
		}
		if (f->fd < 0)
			goto out; /* rotation found no new file */
		r = process_lines(f, now, &budget_lines);
		if (r == R_WAIT)
			continue;
		if (r == R_BUDGET || budget_bytes == 0)
			goto again;
		n = read_more(f, budget_bytes);
		if (n > 0) {
			budget_bytes -= (size_t)n < budget_bytes ? (size_t)n : budget_bytes;
			continue;
		}
		if (n < 0) {
			f->host->log(f->b, FANOUT_LOG_ERR, "%s: read: %s", f->path,
				     strerror(errno));
			close_file(f);
			set_waiting(f, "read error");
			goto out;
		}
		if (at_eof(f, now) == E_IDLE) {
			if (f->has_pending)
				continue; /* the file's last line waits for its time */
			goto out;
		}
	}
again:
	f->host->timer_arm(f->work, 0);
out:
	if (f->n_lines) {
		f->host->count(f->b, "lines", f->n_lines);
		f->n_lines = 0;
	}
	if (f->n_skipped) {
		f->host->count(f->b, "skipped_lines", f->n_skipped);
		f->n_skipped = 0;
	}
}

static void on_work(struct fanout_timer *t, void *arg)
{
	pump(arg);
}

/* Something happened to the file (inotify) or the poll interval passed. */
static void kick(struct ft *f)
{
	if (!f->has_pending && !f->finished)
		f->host->timer_arm(f->work, 0);
}

static void inotify_close(struct ft *f)
{
	if (f->iwatch)
		f->host->watch_remove(f->iwatch);
	f->iwatch = NULL;
	if (f->ifd >= 0)
		close(f->ifd);
	f->ifd = -1;
	f->iwd = -1;
}

static void on_inotify(struct fanout_watch *w, int fd, unsigned revents, void *arg)
{
	struct ft *f = arg;
	char evbuf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int relevant = 0, lost = 0;
	ssize_t n;

	while ((n = read(fd, evbuf, sizeof(evbuf))) > 0) {
		for (char *p = evbuf; p < evbuf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				relevant = 1;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				lost = 1; /* the directory went: back to polling */
			if (ev->len && strcmp(ev->name, f->base) == 0)
				relevant = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (lost) {
		f->host->log(f->b, FANOUT_LOG_INFO, "%s: directory gone, polling every %u ms",
			     f->dir, f->poll_ms);
		inotify_close(f);
	}
	if (relevant)
		kick(f);
}

/* Watch the file's directory (creations, renames, writes of the file). */
static void inotify_open(struct ft *f)
{
	f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (f->ifd < 0)
		goto fail;
	f->iwd = inotify_add_watch(f->ifd, f->dir,
				   IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE |
				       IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
				       IN_ONLYDIR);
	if (f->iwd < 0)
		goto fail;
	f->iwatch = f->host->watch_add(f->b, f->ifd, FANOUT_FD_READ, on_inotify, f);
	if (!f->iwatch)
		goto fail;
	return;
fail:
	inotify_close(f);
}

static void on_poll(struct fanout_timer *t, void *arg)
{
	struct ft *f = arg;
	uint64_t now = f->host->now_ms(f->b);

	if (f->bad_suppressed && now - f->bad_window_ms >= 1000) {
		bad_summary(f);
		f->bad_window_ms = now;
		f->bad_logged = 0;
	}
	if (f->ifd < 0)
		inotify_open(f); /* the directory may exist again */
	kick(f);
	f->host->timer_arm(f->poll, f->poll_ms);
}

/* ---- operations ----------------------------------------------------- */

/* "1", "0.5", "2.25": a positive decimal number. */
static int parse_speed(const char *s, double *out)
{
	const char *p = s;
	int digits = 0;
	char *end;

	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
	if (!digits || *p)
		return -1;
	*out = strtod(s, &end);
	if (*end || !(*out >= 0.001 && *out <= 1e6))
		return -1;
	return 0;
}

static void ft_destroy(void *state);

static int ft_init(const struct fanout_host *host, struct fanout_backend *b,
		   const struct fanout_value *v, void **state)
{
	struct ft *f = calloc(1, sizeof(*f));
	const char *slash;
	int rc = FANOUT_ENOMEM;

	if (!f)
		return FANOUT_ENOMEM;
	f->host = host;
	f->b = b;
	f->fd = -1;
	f->ifd = -1;
	f->iwd = -1;
	f->state = -1;
	f->first_open = 1;
	f->has_pos = host->struct_size > offsetof(struct fanout_host, history_done) &&
		     host->subscribed_at && host->deliver_at && host->top_done &&
		     host->history_item && host->history_done;
	snprintf(f->epoch, sizeof(f->epoch), "none");

	if (!v[OPT_PATH].str || !*v[OPT_PATH].str) {
		host->log(b, FANOUT_LOG_ERR, "path: must name a file");
		rc = FANOUT_EINVAL;
		goto fail;
	}
	f->path = strdup(v[OPT_PATH].str);
	if (!f->path)
		goto fail;
	slash = strrchr(f->path, '/');
	if (slash) {
		f->dir =
		    slash == f->path ? strdup("/") : strndup(f->path, (size_t)(slash - f->path));
		f->base = strdup(slash + 1);
	} else {
		f->dir = strdup(".");
		f->base = strdup(f->path);
	}
	if (!f->dir || !f->base)
		goto fail;
	if (!*f->base) {
		host->log(b, FANOUT_LOG_ERR, "path: %s names a directory, not a file", f->path);
		rc = FANOUT_EINVAL;
		goto fail;
	}

	f->fmt = v[OPT_FORMAT].num == 1 ? FT_RAW : FT_JSONL;
	if (f->fmt == FT_RAW) {
		const char *ch = v[OPT_CHANNEL].str;
		if (!ch || !*ch) {
			host->log(b, FANOUT_LOG_ERR, "channel: required with format = raw");
			rc = FANOUT_EINVAL;
			goto fail;
		}
		if (!ft_channel_valid(ch, strlen(ch))) {
			host->log(b, FANOUT_LOG_ERR,
				  "channel: \"%s\" is not 1-200 bytes of A-Za-z0-9_.:/-", ch);
			rc = FANOUT_EINVAL;
			goto fail;
		}
		strcpy(f->channel, ch);
	} else if (v[OPT_CHANNEL].set) {
		host->log(b, FANOUT_LOG_WARN,
			  "channel: ignored with format = jsonl (each line names its channel)");
	}
	f->start_end = v[OPT_START].num == 1;
	f->follow = v[OPT_FOLLOW].num != 0;
	f->pace = (int)v[OPT_PACE].num;
	if (parse_speed(v[OPT_SPEED].str ? v[OPT_SPEED].str : "1", &f->speed) < 0) {
		host->log(b, FANOUT_LOG_ERR,
			  "speed: \"%s\" is not a positive decimal number (0.001 .. 1000000)",
			  v[OPT_SPEED].str);
		rc = FANOUT_EINVAL;
		goto fail;
	}
	f->rate = (double)v[OPT_RATE].num;
	f->loop = v[OPT_LOOP].num != 0;
	if (f->loop && f->follow)
		host->log(b, FANOUT_LOG_WARN, "loop: ignored with follow = true");
	f->max_line = (size_t)v[OPT_MAX_LINE].num;
	f->poll_ms = (unsigned)v[OPT_POLL].num;
	f->index_max = (size_t)v[OPT_INDEX].num;
	f->capmax = f->max_line + FT_CHUNK + 1;
	f->cap = 2 * FT_CHUNK < f->capmax ? 2 * FT_CHUNK : f->capmax;
	f->buf = malloc(f->cap);
	if (!f->buf)
		goto fail;
	*state = f;
	return 0;
fail:
	if (rc == FANOUT_ENOMEM)
		host->log(b, FANOUT_LOG_ERR, "out of memory");
	ft_destroy(f);
	return rc;
}

static int ft_start(void *state)
{
	struct ft *f = state;

	f->work = f->host->timer_add(f->b, on_work, f);
	f->poll = f->host->timer_add(f->b, on_poll, f);
	f->hist = f->host->timer_add(f->b, ftp_on_hist, f);
	if (!f->work || !f->poll || !f->hist)
		return FANOUT_ENOMEM;
	inotify_open(f);
	if (f->ifd < 0)
		f->host->log(f->b, FANOUT_LOG_INFO, "%s: no inotify watch, polling every %u ms",
			     f->dir, f->poll_ms);
	/* Open now so /readyz is right from the start; read on the next turn. */
	try_open(f);
	f->host->timer_arm(f->work, 0);
	f->host->timer_arm(f->poll, f->poll_ms);
	return 0;
}

static int ft_subscribe(void *state, const char *channel)
{
	struct ft *f = state;
	int rc = chset_add(&f->subs, channel);

	if (rc) {
		f->host->subscribed(f->b, channel, 0);
		return rc;
	}
	return ftp_subscribe(f, channel);
}

static int ft_top(void *state, const char *channel, uint64_t token)
{
	return ftp_top(state, channel, token);
}

static int ft_history(void *state, const char *channel, const char *epoch, uint64_t after,
		      uint64_t max, uint64_t token)
{
	return ftp_history(state, channel, epoch, after, max, token);
}

static int ft_unsubscribe(void *state, const char *channel)
{
	struct ft *f = state;

	chset_del(&f->subs, channel);
	chset_del(&f->waiting, channel);
	return 0;
}

static void ft_stop(void *state)
{
	struct ft *f = state;

	if (f->work)
		f->host->timer_remove(f->work);
	if (f->poll)
		f->host->timer_remove(f->poll);
	f->work = f->poll = NULL;
	inotify_close(f);
	close_file(f);
	if (f->has_pending)
		ft_line_clear(&f->pending);
	f->has_pending = 0;
	ftp_stop(f);
}

static void ft_destroy(void *state)
{
	struct ft *f = state;

	if (!f)
		return;
	ft_stop(f);
	ftp_free(f);
	chset_free(&f->subs);
	chset_free(&f->waiting);
	free(f->buf);
	free(f->path);
	free(f->dir);
	free(f->base);
	free(f);
}

FANOUT_PLUGIN_EXPORT const struct fanout_plugin FANOUT_PLUGIN_SYMBOL = {
    FANOUT_PLUGIN_HEADER,
    .name = "filetail",
    .version = "0.1.0",
    .description = "replays and follows a file of updates (jsonl or raw lines), like tail -F",
    .options = opts,
    .init = ft_init,
    .start = ft_start,
    .subscribe = ft_subscribe,
    .unsubscribe = ft_unsubscribe,
    .stop = ft_stop,
    .destroy = ft_destroy,
    .top = ft_top,
    .history = ft_history,
};
