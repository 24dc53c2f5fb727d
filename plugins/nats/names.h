/*
 * names.h — the nats backend's pure text functions: client channel to NATS
 * subject, the subject_prefix and url options, the JetStream stream
 * subjects derived from the backend's `channels` globs, the epoch made from
 * a stream's creation time, and the two broker texts the backend reads (a
 * permissions-violation error and a JetStream publish acknowledgement).
 *
 * No state, no I/O, no threads: every function may run on any thread. Each
 * is fuzzed (tests/fuzz/fuzz_nats.c). Errors are written to err (one line,
 * no trailing newline) and returned as FANOUT_EINVAL.
 */
#ifndef FANOUT_NATS_NAMES_H
#define FANOUT_NATS_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* Longest subject the backend builds: prefix + 200-byte channel, plus the
 * republish prefix in front of it. */
#define NN_SUBJECT_MAX 512

/* A valid NATS publish subject: tokens of non-space printable bytes, no
 * wildcard tokens, no empty token. 1 yes, 0 no. */
int nn_subject_valid(const char *s, size_t len);

/* subject_prefix: empty, or text whose tokens are valid (no wildcards, no
 * whitespace, no empty token except a trailing '.'). 0 or FANOUT_EINVAL. */
int nn_check_prefix(const char *prefix, char *err, size_t errlen);

/* prefix + channel into out (cap bytes, NUL-terminated) when that is a
 * valid subject. 0, or FANOUT_EINVAL (e.g. "a..b": an empty token). */
int nn_subject(const char *prefix, const char *channel, char *out, size_t cap);

/* The client channel of a subject: subject minus prefix (NULL when the
 * subject does not start with prefix or nothing is left). */
const char *nn_channel(const char *prefix, size_t prefix_len, const char *subject);

/*
 * The url option: one or more servers separated by commas, each
 * [nats://|tls://][user[:password]@]host[:port], host a name, an IPv4
 * address or [IPv6]; port 1-65535. 0 or FANOUT_EINVAL naming the bad part.
 * *tls is set to 1 when a server uses tls://.
 */
int nn_check_url(const char *url, int *tls, char *err, size_t errlen);

/*
 * The subjects of the JetStream stream for the backend's channels globs
 * (fnmatch patterns, as in the [backend] section): prefix+glob with no
 * wildcard is that subject; "news.*" (a wildcard after the last '.') is
 * "news.>"; any other wildcard widens to everything after the last '.'
 * before it ("a.*.b" is "a.>"); a glob that leaves no literal token before
 * its first wildcard ("*", "news*" with an empty prefix) cannot be a
 * stream subject and is refused. Subjects covered by another ("a.b" by
 * "a.>") are dropped. *out is a malloc'd array of malloc'd strings (free
 * with nn_free_list); returns 0, FANOUT_EINVAL or FANOUT_ENOMEM.
 */
int nn_stream_subjects(const char *prefix, const char *const *globs, size_t n, char ***out,
		       size_t *nout, char *err, size_t errlen);
void nn_free_list(char **list, size_t n);

/*
 * The subject named by a server error "Permissions Violation for
 * Subscription to "SUBJ"" (quotes optional), into out. 1 when text is such
 * an error, 0 otherwise (publish violations included).
 */
int nn_sub_violation(const char *text, char *out, size_t cap);

/* An epoch ([A-Za-z0-9_-]{1,64}) from a stream's creation time as the
 * JetStream API writes it ("2024-05-02T10:11:12.123456789Z"): its letters
 * and digits. 0, or FANOUT_EINVAL when nothing is left. */
int nn_epoch(const char *created, char *out, size_t cap);

/* A decimal uint64 of 1-20 digits, nothing else. 0 or FANOUT_EINVAL. */
int nn_u64(const char *s, size_t len, uint64_t *v);

/*
 * A JetStream publish acknowledgement: {"stream":"S","seq":N} → 0 with
 * *seq; {"error":{"description":"..."}} or anything else → FANOUT_EIO /
 * FANOUT_EINVAL with the reason in err.
 */
int nn_parse_puback(const char *json, size_t len, uint64_t *seq, char *err, size_t errlen);

#endif /* FANOUT_NATS_NAMES_H */
