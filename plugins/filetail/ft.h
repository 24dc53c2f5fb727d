/*
 * ft.h — what the filetail backend's files share: the backend state (struct
 * ft), the channel set (chset.c) and the positions module (positions.c:
 * epochs, the line index, top and history). Internal to plugins/filetail;
 * nothing here crosses the plugin ABI.
 */
#ifndef FANOUT_FILETAIL_FT_H
#define FANOUT_FILETAIL_FT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <fanout/plugin.h>

#include "line.h"

#define FT_CHUNK     (64 * 1024) /* bytes read per slice */
#define FT_LINES     4096	 /* lines handled per slice */
#define FT_BAD_PER_S 10		 /* bad lines logged per second, then summarised */
#define FT_LATE_MS   1000.0	 /* paced lines later than this rebase the clock */
#define FT_EPOCH_MAX 65
#define FT_HIST_JOBS 16	  /* history answers read at once; more: FANOUT_EUNAVAIL */
#define FT_TOP_WAITS 1024 /* top() calls waiting for the line count; more: FANOUT_EUNAVAIL */

enum { PACE_NONE = 0, PACE_RECORDED = 1, PACE_RATE = 2 };

/* ---- a set of channel names (chset.c) ---- */

struct chnode {
	struct chnode *next;
	uint32_t hash;
	char name[];
};

struct chset {
	struct chnode **slot;
	size_t nslots, count;
};

int chset_has(struct chset *cs, const char *name);
int chset_add(struct chset *cs, const char *name);
void chset_del(struct chset *cs, const char *name);
void chset_free(struct chset *cs);
void chset_each(struct chset *cs, void (*fn)(const char *name, void *arg), void *arg);

/* ---- positions (positions.c) ---- */

/* Byte offset of line k * stride + 1 in off[k]; at most max entries: when
 * full, every other entry goes and the stride doubles. */
struct ft_index {
	off_t *off;
	size_t n, cap, stride;
};

struct ft_wait {
	struct ft_wait *next;
	uint64_t token;
};

struct ft_hjob;

struct ft {
	const struct fanout_host *host;
	struct fanout_backend *b;

	/* config */
	char *path, *dir, *base;
	enum ft_format fmt;
	char channel[FT_CHANNEL_MAX + 1]; /* format = raw */
	int start_end, follow, loop, pace;
	double speed, rate;
	size_t max_line;
	unsigned poll_ms;

	/* the open file */
	int fd; /* -1: none open */
	dev_t dev;
	ino_t ino;
	off_t offset;	     /* bytes read from fd so far */
	uint64_t lineno;     /* complete lines consumed from this file */
	int first_open;	     /* start = end still applies */
	int had_file;	     /* a file was open before: a new one means rotation */
	int rotating;	     /* the path names another file: drain this one, then switch */
	int finished;	     /* follow = false and done */
	int state;	     /* last state reported: -1 none, FANOUT_DOWN, FANOUT_UP */
	uint64_t pass_lines; /* good lines in the current pass (loop) */

	/* read buffer: unconsumed bytes are buf[head, tail) */
	char *buf;
	size_t cap, capmax, head, tail;
	int discard; /* skipping the rest of a line (too long, or mid-line start) */

	/* pacing */
	struct ft_line pending; /* a parsed line waiting for its time */
	int has_pending;
	double pending_due;
	double next_due; /* pace = rate: when the next line is due */
	int have_base;	 /* pace = recorded: base_ms <-> base_ts */
	double base_ms;
	int64_t base_ts;

	/* loop glue */
	struct fanout_timer *work, *poll;
	struct fanout_watch *iwatch;
	int ifd, iwd;

	/* bad-line log limiter */
	uint64_t bad_window_ms;
	unsigned bad_logged;
	uint64_t bad_suppressed;

	/* counters, flushed to host->count once per slice */
	uint64_t n_lines, n_skipped;

	struct chset subs;

	/* positions (positions.c): offsets are line numbers of the file */
	int has_pos;		  /* the host speaks ABI 1.1 */
	char epoch[FT_EPOCH_MAX]; /* the open file's identity ("none": no file) */
	uint64_t epoch_gen;	  /* bumped whenever epoch changes */
	uint64_t top;		  /* number of the newest line handled (emitted or not) */
	uint64_t pending_lineno;  /* the line held back for pacing */
	uint64_t passes;	  /* loop = true: files replayed so far */
	uint64_t truncations;	  /* in-place truncations seen of this path */
	uint64_t first_hash;	  /* hash of the file's first line ... */
	int first_known;	  /* ... once it has a complete one */
	off_t skip_until;     /* start = end: lines starting before this byte are counted only */
	int counting;	      /* start = end: still counting lines before the start */
	struct chset waiting; /* subscribes answered when counting is done */
	struct ft_wait *top_waits; /* top() asked while counting */
	size_t n_top_waits;
	struct ft_index idx;  /* byte offsets of every idx.stride-th line */
	struct ft_hjob *jobs; /* history answers being read from the file */
	size_t n_jobs;
	struct fanout_timer *hist;
	size_t index_max; /* config: index entries */
};

/* Compute the epoch of the file open on f->fd (its identity: device, inode,
 * birth time, first line, loop pass, truncations); "none" when no file. */
void ftp_epoch(struct ft *f);
/* At the end of the file: has its first line changed since it was opened
 * (rewritten in place, maybe to the same size)? 1 yes, 0 no. */
int ftp_rewritten(struct ft *f);
/* Line lineno (1-based) starts at byte start: keep it in the index. */
void ftp_index_line(struct ft *f, uint64_t lineno, off_t start);
/* A new file or the same one truncated: forget the index and the jobs. */
void ftp_reset(struct ft *f);
/* start = end: every line before the start is counted; answer the waiters. */
void ftp_counting_done(struct ft *f);
/* Answer a subscribe (now, or when counting is done). 0 or FANOUT_ENOMEM. */
int ftp_subscribe(struct ft *f, const char *channel);
int ftp_top(struct ft *f, const char *channel, uint64_t token);
int ftp_history(struct ft *f, const char *channel, const char *epoch, uint64_t after, uint64_t max,
		uint64_t token);
/* The history timer: read a slice of each pending history answer. */
void ftp_on_hist(struct fanout_timer *t, void *arg);
/* Stop: answer nothing more, free the jobs and waiters (stop and destroy). */
void ftp_stop(struct ft *f);
void ftp_free(struct ft *f);

#endif /* FANOUT_FILETAIL_FT_H */
