/*
 * recovery.h — positions of channels (protocol v1.1): the per-channel epoch
 * and top offset this instance has fanned out, the in-memory ring of recent
 * frames, resuming subscribers ("since"), hole repair from the backend's
 * history, quiet-channel probes, and their caps and metrics.
 *
 * The hub owns channels and subscribers; this module owns only positions.
 * It reaches the hub and the backends through the hooks given to
 * pos_init() (so unit tests drive it with stubs), and the hub reaches it
 * through the calls below. Loop thread only.
 *
 * Guarantees, per subscriber and positioned channel:
 *   - frames go out in offset order, each offset at most once;
 *   - a resume (pos_recover) either replays every message after `since`
 *     up to the top (recovered) or none of them (not recovered);
 *   - a hole the instance sees (an offset jump on a contiguous channel, a
 *     top that moved past what was delivered) is filled from history
 *     before later frames go out; what history cannot fill becomes one gap
 *     frame carrying the new position. Never a silent hole.
 */
#ifndef FANOUT_RECOVERY_H
#define FANOUT_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "protocol.h"

struct msg;
struct pos_chan; /* the position state of one positioned channel */
struct pos_sub;	 /* one subscriber waiting for its recovery */

/*
 * A channel event kept past the call that brought it (in the ring, held
 * during a repair, buffered for a waiting subscriber, replayed): its native
 * frame (protocol.h), built once, and the frames other transports made of
 * it, one per transport, so each message is framed at most once per
 * transport however many subscribers get it, live or in replays.
 * recovery.c creates items and counts references; the hub fills the cache.
 */
enum pos_item_kind {
	POS_MESSAGE, /* frame is a "message" */
	POS_GAP,     /* frame is a "gap"; reason; epoch/offset: the new position */
};

#define POS_ITEM_FRAMES 8 /* transports in use at once */

struct pos_item {
	int refs;
	enum pos_item_kind kind;
	int positioned;			 /* epoch/offset are set */
	uint64_t offset;		 /* a message's offset; a gap's new position */
	char epoch[PROTO_EPOCH_MAX + 1]; /* "" when not positioned */
	char *reason;			 /* POS_GAP: why (malloc'd) */
	struct msg *frame;		 /* the native frame */
	int n_frames;
	struct {
		const void *key; /* the transport (its sink ops table) */
		struct msg *m;
	} frames[POS_ITEM_FRAMES];
};

/* A new item with one reference, taking a reference to frame; epoch
 * NULL: not positioned. NULL on OOM. */
struct pos_item *pos_item_new(enum pos_item_kind kind, const char *epoch, uint64_t offset,
			      struct msg *frame, const char *reason);
static inline struct pos_item *pos_item_ref(struct pos_item *it)
{
	it->refs++;
	return it;
}
/* Drop a reference; the last one frees the payload and the cached frames. */
void pos_item_unref(struct pos_item *it);

/* How recovery reaches the hub and the backends. ch is the hub's channel
 * pointer given to pos_chan_new(), sub the hub's subscriber pointer given
 * to pos_recover(); recovery never looks inside either. */
struct pos_hooks {
	/* backend top()/history() for ch's channel: 0, or a negative FANOUT_E*
	 * (then no answer comes). The answer may arrive inside the call. */
	int (*top)(void *ch, uint64_t token);
	int (*history)(void *ch, const char *epoch, uint64_t after, uint64_t max, uint64_t token);
	/* Queue it to every subscriber of ch. Live subscribers get it; the
	 * hub hands it to pos_sub_buffer() for subscribers still recovering. */
	void (*fan_out)(void *ch, struct pos_item *it);
	/* The recovery of sub on ch is over: send it "subscribed" with epoch,
	 * offset and recovered, then items[0..n) in order; from now on it is a
	 * live subscriber (the hub stops calling pos_sub_buffer for it). The
	 * items are borrowed for the call. */
	void (*finish)(void *ch, void *sub, const char *epoch, uint64_t offset, int recovered,
		       struct pos_item *const *items, size_t n);
	/* Monotonic milliseconds (the loop's clock). */
	uint64_t (*now)(void);
};

/* Caps, all from [server] keys (fanout.ini(5)). */
struct pos_limits {
	uint64_t max_messages;	   /* recovery_max_messages: replay and hole cap */
	uint64_t buffer_messages;  /* recovery_buffer_messages: held during a wait */
	uint64_t ring_messages;	   /* recovery_ring_messages: per channel, 0 = off */
	uint64_t ring_bytes;	   /* recovery_ring_bytes: frames in all rings */
	uint64_t max_requests;	   /* recovery_max_requests: in flight to backends */
	uint64_t timeout_ms;	   /* recovery_timeout_ms */
	uint64_t probe_ms;	   /* position_probe_s * 1000; 0 = no probes */
	uint64_t max_replay_bytes; /* one replay's bytes (client_queue_bytes / 2) */
	uint64_t max_payload;	   /* max_payload_bytes: bigger history items dropped */
};

/* instance: the config's, for the frames of history items. */
int pos_init(const struct pos_limits *lim, const struct pos_hooks *hooks, const char *instance);
void pos_free(void);

/*
 * A channel became positioned (the backend's subscribed_at): epoch, the top
 * offset read after the subscription was confirmed, FANOUT_POS_* flags.
 * name is borrowed and must outlive the state. NULL on OOM.
 */
struct pos_chan *pos_chan_new(void *ch, const char *name, const char *epoch, uint64_t top,
			      unsigned flags);
/* The channel went (no subscriber left, recovering ones included): frees
 * the ring and held frames; requests in flight are forgotten. */
void pos_chan_free(struct pos_chan *pc);
const char *pos_epoch(const struct pos_chan *pc);
uint64_t pos_top(const struct pos_chan *pc);

/*
 * A message from the backend (a positioned item; the reference stays the
 * caller's). Fans it out, holds it while a repair runs, drops it as a
 * duplicate, or starts a repair.
 */
void pos_deliver(struct pos_chan *pc, struct pos_item *it);
/* A message without a position on a positioned channel (a third-party
 * plain publish): fanned out now, or held in order during a repair. */
void pos_deliver_plain(struct pos_chan *pc, struct pos_item *it);
/* The backend may have lost messages (it reconnected, a file was
 * truncated: why, also prefixed to the gap frames this leads to): check the
 * top, about once a second until the backend answers. */
void pos_suspect(struct pos_chan *pc, const char *why);
/* The backend told the channel's position again (a subscribed_at after
 * a resubscribe): repair or change epoch as a probe answer would. */
void pos_observe(struct pos_chan *pc, const char *epoch, uint64_t top);

/*
 * Resume sub at since on pc. Either finishes at once (hooks->finish is
 * called inside; returns NULL) or returns the waiting state: until finish
 * comes, the hub hands every frame it fans out on the channel to
 * pos_sub_buffer(ps, ...) instead of the subscriber's queue.
 */
struct pos_sub *pos_recover(struct pos_chan *pc, void *sub, const struct proto_since *since);
/* An item fanned out while ps waits (may finish ps, recovered or not). */
void pos_sub_buffer(struct pos_sub *ps, struct pos_item *it);
/* The waiting subscriber left: free its state; no finish comes. */
void pos_sub_cancel(struct pos_sub *ps);

/* Backend answers (tokens are recovery's own). */
void pos_top_done(uint64_t token, int status, const char *epoch, uint64_t top);
void pos_history_item(uint64_t token, uint64_t offset, const void *data, size_t len);
void pos_history_done(uint64_t token, int status, const char *epoch, uint64_t top);

/* Timeouts and quiet-channel probes; returns the ms until it wants to run
 * again (the hub arms a timer). */
uint64_t pos_tick(void);

#endif
