/*
 * positions.c — the filetail backend's positions (plugin ABI 1.1): every
 * line of the file is a position, its line number the offset; the epoch is
 * the file's identity. History is read back from the file itself.
 *
 * Epoch: "f" + 16 hex digits, a hash of the device, the inode, the birth
 * time (statx; 0 where the file system has none), the first line (when the
 * file has a complete one when it is opened), the loop pass and the number
 * of in-place truncations this instance saw. So a rotated file, a file
 * truncated and rewritten, or each pass of loop = true is a new epoch, and
 * two instances reading the same file agree on epochs and offsets.
 * Offsets count every line, empty and malformed ones and those of other
 * channels included, so they go up on each channel but not by one: the
 * backend does not claim FANOUT_POS_CONTIGUOUS. The top is the number of
 * the newest line handled (a line held back for pacing is not handled
 * yet). With start = end the lines before the start are counted first (in
 * the reader's slices); subscribes and top() are answered when that count
 * is done.
 *
 * History: an index keeps the byte offset of every stride-th line; it
 * holds at most index_entries offsets and, when full, drops every other
 * one and doubles the stride (memory: 8 bytes x index_entries). A history
 * answer seeks to the nearest indexed line at or before `after` + 1 and
 * reads forward with pread() in slices of the history timer (never
 * blocking the loop for more than a slice), collecting the channel's lines
 * after `after` up to the top at the time of the request, at most max.
 * Items are sent with the answer's end, so a file rotated or truncated
 * meanwhile answers FANOUT_EEPOCH with no items. At most FT_HIST_JOBS
 * answers are read at once (more: FANOUT_EUNAVAIL, counted as
 * "history_busy"); each holds a buffer of max_line_bytes + 64 KiB and its
 * items until it ends.
 *
 * Loop thread only. Allocates the index, the jobs with their buffers and
 * items, and the waiting top() tokens; ftp_stop / ftp_free release them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ft.h"

#define FT_STRIDE0 64 /* the first index stride, in lines */

struct ft_item {
	struct ft_item *next;
	uint64_t offset;
	size_t len;
	char data[];
};

struct ft_hjob {
	struct ft_hjob *next;
	uint64_t token;
	char channel[FT_CHANNEL_MAX + 1];
	uint64_t after, max, last; /* last: the top when asked */
	uint64_t gen;
	off_t pos;     /* file offset of buf[0] */
	uint64_t line; /* number of the line starting at buf[0] */
	int discard;   /* inside a line longer than max_line_bytes */
	char *buf;
	size_t cap, len;
	struct ft_item *items, **tail;
	uint64_t found;
};

/* ---- epoch ---- */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

/* The hash of the file's first line (at most 4 KiB); 0 when it has no
 * complete one. */
static int first_line(struct ft *f, uint64_t *hash)
{
	char first[4096];
	ssize_t n = pread(f->fd, first, sizeof(first), 0);
	const char *nl = n > 0 ? memchr(first, '\n', (size_t)n) : NULL;

	if (!nl)
		return 0;
	*hash = mix(1469598103934665603ull, first, (size_t)(nl - first));
	return 1;
}

int ftp_rewritten(struct ft *f)
{
	uint64_t h;
	int known;

	if (f->fd < 0)
		return 0;
	known = first_line(f, &h);
	if (!f->first_known) {
		/* The first line completed after the file was opened: keep it
		 * (the epoch stays the one given at open). */
		f->first_known = known;
		f->first_hash = h;
		return 0;
	}
	return !known || h != f->first_hash;
}

void ftp_epoch(struct ft *f)
{
	uint64_t h = 1469598103934665603ull, v;
	struct statx sx;

	f->epoch_gen++;
	if (f->fd < 0) {
		snprintf(f->epoch, sizeof(f->epoch), "none");
		return;
	}
	v = (uint64_t)f->dev;
	h = mix(h, &v, sizeof(v));
	v = (uint64_t)f->ino;
	h = mix(h, &v, sizeof(v));
	if (statx(f->fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME)) {
		v = (uint64_t)sx.stx_btime.tv_sec;
		h = mix(h, &v, sizeof(v));
		v = sx.stx_btime.tv_nsec;
		h = mix(h, &v, sizeof(v));
	}
	f->first_known = first_line(f, &f->first_hash);
	if (f->first_known)
		h = mix(h, &f->first_hash, sizeof(f->first_hash));
	h = mix(h, &f->passes, sizeof(f->passes));
	h = mix(h, &f->truncations, sizeof(f->truncations));
	snprintf(f->epoch, sizeof(f->epoch), "f%016llx", (unsigned long long)h);
}

/* ---- the line index ---- */

void ftp_index_line(struct ft *f, uint64_t lineno, off_t start)
{
	struct ft_index *x = &f->idx;
	size_t k;

	if (!x->stride)
		x->stride = FT_STRIDE0;
	if ((lineno - 1) % x->stride)
		return;
	k = (size_t)((lineno - 1) / x->stride);
	if (k != x->n)
		return; /* lines come in order; an entry we have (or skipped) */
	if (x->n == f->index_max) {
		/* Full: keep lines 1, 2s+1, 4s+1, ... and double the stride. */
		for (size_t i = 0; 2 * i < x->n; i++)
			x->off[i] = x->off[2 * i];
		x->n = (x->n + 1) / 2;
		x->stride *= 2;
		if ((lineno - 1) % x->stride || (lineno - 1) / x->stride != x->n)
			return;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		off_t *off;
		if (cap > f->index_max)
			cap = f->index_max;
		off = realloc(x->off, cap * sizeof(*off));
		if (!off)
			return; /* history reads from further back: slower, still right */
		x->off = off;
		x->cap = cap;
	}
	x->off[x->n++] = start;
}

void ftp_reset(struct ft *f)
{
	f->idx.n = 0;
	f->idx.stride = FT_STRIDE0;
}

/* ---- subscribe, top ---- */

static void answer_sub(const char *name, void *arg)
{
	struct ft *f = arg;

	if (chset_has(&f->subs, name))
		f->host->subscribed_at(f->b, name, 1, f->epoch, f->top, 0);
}

void ftp_counting_done(struct ft *f)
{
	struct chset w = f->waiting;
	struct ft_wait *t = f->top_waits, *n;

	f->counting = 0;
	memset(&f->waiting, 0, sizeof(f->waiting));
	f->top_waits = NULL;
	f->n_top_waits = 0;
	chset_each(&w, answer_sub, f);
	chset_free(&w);
	for (; t; t = n) {
		n = t->next;
		f->host->top_done(f->b, t->token, 0, f->epoch, f->top);
		free(t);
	}
}

int ftp_subscribe(struct ft *f, const char *channel)
{
	if (!f->has_pos) {
		f->host->subscribed(f->b, channel, 1);
		return 0;
	}
	if (f->counting) {
		if (chset_add(&f->waiting, channel)) {
			f->host->subscribed(f->b, channel, 0);
			return FANOUT_ENOMEM;
		}
		return 0;
	}
	f->host->subscribed_at(f->b, channel, 1, f->epoch, f->top, 0);
	return 0;
}

int ftp_top(struct ft *f, const char *channel, uint64_t token)
{
	struct ft_wait *w;

	(void)channel; /* one position for every channel of the file */
	if (!f->has_pos)
		return FANOUT_ENOTSUP;
	if (!f->counting) {
		f->host->top_done(f->b, token, 0, f->epoch, f->top);
		return 0;
	}
	if (f->n_top_waits >= FT_TOP_WAITS || !(w = malloc(sizeof(*w))))
		return FANOUT_EUNAVAIL;
	w->token = token;
	w->next = f->top_waits;
	f->top_waits = w;
	f->n_top_waits++;
	return 0;
}

/* ---- history ---- */

static void job_free(struct ft_hjob *j)
{
	struct ft_item *i, *n;

	for (i = j->items; i; i = n) {
		n = i->next;
		free(i);
	}
	free(j->buf);
	free(j);
}

/* End a job: the items and the answer, or only the answer. */
static void job_done(struct ft *f, struct ft_hjob *j, int status)
{
	if (status == 0)
		for (struct ft_item *i = j->items; i; i = i->next)
			f->host->history_item(f->b, j->token, i->offset, i->data, i->len);
	f->host->history_done(f->b, j->token, status,
			      status == 0 || status == FANOUT_EEPOCH ? f->epoch : NULL, f->top);
}

int ftp_history(struct ft *f, const char *channel, const char *epoch, uint64_t after, uint64_t max,
		uint64_t token)
{
	struct ft_hjob *j, **pp;
	size_t k;

	if (!f->has_pos)
		return FANOUT_ENOTSUP;
	if (f->counting)
		return FANOUT_EUNAVAIL;
	if (!epoch || strcmp(epoch, f->epoch) != 0) {
		f->host->history_done(f->b, token, FANOUT_EEPOCH, f->epoch, f->top);
		return 0;
	}
	if (after >= f->top || max == 0) {
		f->host->history_done(f->b, token, 0, f->epoch, f->top);
		return 0;
	}
	if (f->fd < 0) {
		f->host->history_done(f->b, token, FANOUT_EUNAVAIL, NULL, f->top);
		return 0;
	}
	if (f->n_jobs >= FT_HIST_JOBS) {
		f->host->count(f->b, "history_busy", 1);
		return FANOUT_EUNAVAIL;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return FANOUT_ENOMEM;
	snprintf(j->channel, sizeof(j->channel), "%s", channel);
	j->token = token;
	j->after = after;
	j->max = max;
	j->last = f->top;
	j->gen = f->epoch_gen;
	j->tail = &j->items;
	/* The nearest indexed line at or before after + 1. */
	if (f->idx.n) {
		k = (size_t)(after / f->idx.stride);
		if (k >= f->idx.n)
			k = f->idx.n - 1;
		j->pos = f->idx.off[k];
		j->line = (uint64_t)k * f->idx.stride + 1;
	} else {
		j->pos = 0;
		j->line = 1;
	}
	for (pp = &f->jobs; *pp; pp = &(*pp)->next)
		;
	*pp = j;
	f->n_jobs++;
	f->host->timer_arm(f->hist, 0);
	return 0;
}

/* One complete line of a job (without its '\n'). 1 when the job is full. */
static int job_line(struct ft *f, struct ft_hjob *j, const char *p, size_t len)
{
	struct ft_line l;
	const char *reason, *ch;
	struct ft_item *it;

	if (j->line <= j->after)
		return 0;
	if (ft_line_parse(f->fmt, p, len, f->max_line, &l, &reason) != FT_LINE_OK)
		return 0;
	ch = f->fmt == FT_RAW ? f->channel : l.channel;
	if (strcmp(ch, j->channel) != 0 || ft_line_payload(&l) < 0) {
		ft_line_clear(&l);
		return 0;
	}
	it = malloc(sizeof(*it) + l.data_len);
	if (it) {
		it->next = NULL;
		it->offset = j->line;
		it->len = l.data_len;
		memcpy(it->data, l.data, l.data_len);
		*j->tail = it;
		j->tail = &it->next;
		j->found++;
	}
	ft_line_clear(&l);
	return j->found >= j->max;
}

/*
 * Read one slice of a job: at most *budget bytes. Returns 1 when the job
 * is finished (*status set), 0 to continue later.
 */
static int job_step(struct ft *f, struct ft_hjob *j, size_t *budget, int *status)
{
	if (j->gen != f->epoch_gen || f->fd < 0) {
		*status = FANOUT_EEPOCH;
		return 1;
	}
	if (!j->buf) {
		j->cap = f->max_line + FT_CHUNK + 1;
		j->buf = malloc(j->cap);
		if (!j->buf) {
			*status = FANOUT_ENOMEM;
			return 1;
		}
	}
	while (*budget > 0) {
		size_t used = 0, want;
		ssize_t n;
		char *nl;

		/* Every complete line in the buffer. */
		while ((nl = memchr(j->buf + used, '\n', j->len - used)) != NULL) {
			size_t ll = (size_t)(nl - (j->buf + used));
			int full = 0;
			if (j->discard)
				j->discard = 0;
			else
				full = job_line(f, j, j->buf + used, ll);
			used += ll + 1;
			j->line++;
			if (full || j->line > j->last) {
				*status = 0;
				return 1;
			}
		}
		if (j->len - used > f->max_line) {
			/* Too long: the reader skipped it too; skip to its newline. */
			j->discard = 1;
			used = j->len;
		}
		memmove(j->buf, j->buf + used, j->len - used);
		j->len -= used;
		j->pos += (off_t)used;
		want = j->cap - j->len;
		if (want > FT_CHUNK)
			want = FT_CHUNK;
		do
			n = pread(f->fd, j->buf + j->len, want, j->pos + (off_t)j->len);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			*status = FANOUT_EIO;
			return 1;
		}
		if (n == 0) {
			/* The end: a last line without its newline counts when the
			 * reader counted it (follow = false). */
			if (j->len && !j->discard && j->line <= j->last)
				job_line(f, j, j->buf, j->len);
			*status = 0;
			return 1;
		}
		j->len += (size_t)n;
		*budget -= (size_t)n < *budget ? (size_t)n : *budget;
	}
	return 0;
}

void ftp_on_hist(struct fanout_timer *t, void *arg)
{
	struct ft *f = arg;
	size_t budget = 4 * FT_CHUNK;
	struct ft_hjob *j;
	int status;

	(void)t;
	while ((j = f->jobs) != NULL && budget > 0) {
		if (!job_step(f, j, &budget, &status))
			break;
		f->jobs = j->next;
		f->n_jobs--;
		job_done(f, j, status);
		job_free(j);
	}
	if (f->jobs)
		f->host->timer_arm(f->hist, 0);
}

void ftp_stop(struct ft *f)
{
	struct ft_hjob *j, *jn;
	struct ft_wait *w, *wn;

	if (f->hist)
		f->host->timer_remove(f->hist);
	f->hist = NULL;
	for (j = f->jobs; j; j = jn) {
		jn = j->next;
		job_free(j);
	}
	f->jobs = NULL;
	f->n_jobs = 0;
	for (w = f->top_waits; w; w = wn) {
		wn = w->next;
		free(w);
	}
	f->top_waits = NULL;
	f->n_top_waits = 0;
}

void ftp_free(struct ft *f)
{
	ftp_stop(f);
	free(f->idx.off);
	memset(&f->idx, 0, sizeof(f->idx));
}
