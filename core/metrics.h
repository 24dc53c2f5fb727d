/*
 * metrics.h — the process's counters and gauges, rendered as Prometheus
 * text for /metrics. Plain integers updated on the loop thread; no locks.
 */
#ifndef FANOUT_METRICS_H
#define FANOUT_METRICS_H

#include "buf.h"

/* Protocol error codes counted one by one (index = enum). */
enum metric_err {
	ME_BAD_JSON,
	ME_BAD_REQUEST,
	ME_UNKNOWN_TYPE,
	ME_BAD_CHANNEL,
	ME_FORBIDDEN,
	ME_TOO_MANY_SUBS,
	ME_NO_BACKEND,
	ME_BACKEND_UNAVAIL,
	ME_RATE_LIMITED,
	ME__COUNT
};

/* Why a connection or request was refused before (or right after) the
 * upgrade; each is a fanout_refused_total{reason=...} series. */
enum refuse_reason {
	REFUSE_MAX_CLIENTS,  /* close 1013 at max_clients */
	REFUSE_ORIGIN,	     /* 403: Origin absent from allowed_origins or unparsable */
	REFUSE_PATH,	     /* 404: upgrade to a path that is no WebSocket endpoint */
	REFUSE_SUBPROTOCOL,  /* 400: a Sec-WebSocket-Protocol the endpoint does not speak */
	REFUSE_PER_IP,	     /* TCP close / 429 at max_connections_per_ip */
	REFUSE_TOKEN,	     /* 401: no or bad token (sec-auth) */
	REFUSE_BAD_REQUEST,  /* 400: malformed request or upgrade */
	REFUSE_HEADERS,	     /* 431: request head over the limit */
	REFUSE_URL,	     /* 414: URL over the limit */
	REFUSE_METHOD,	     /* 405 */
	REFUSE_API_KEY,	     /* 401: /api/publish without the right key */
	REFUSE_TIMEOUT,	     /* no complete request within handshake_timeout_s */
	REFUSE_HTTP_VERSION, /* 400: a WebSocket upgrade over HTTP/1.0 */
	REFUSE__COUNT
};

/* The label value of a reason ("origin", "per_ip", ...). */
const char *refuse_reason_name(enum refuse_reason r);

/* Why a resume ("since") was answered recovered:false (recovery.c; the
 * reason label of fanout_recovery_results_total). */
enum recovery_fail {
	RF_EPOCH,	 /* since.epoch is not the broker's (current) epoch */
	RF_TOO_FAR,	 /* more than recovery_max_messages behind */
	RF_TRUNCATED,	 /* history no longer reaches back */
	RF_AHEAD,	 /* since.offset is past the broker's top */
	RF_TIMEOUT,	 /* no answer within recovery_timeout_ms */
	RF_BUFFER,	 /* recovery_buffer_messages live messages arrived meanwhile */
	RF_TOO_BIG,	 /* the replay is over client_queue_bytes / 2 */
	RF_GAP,		 /* the channel itself had a gap meanwhile */
	RF_ERROR,	 /* the backend failed the request (or out of memory) */
	RF_UNPOSITIONED, /* the channel has no positions (no history) */
	RF__COUNT
};

/* Positions and recovery (recovery.c). Counters unless marked gauge. */
struct recovery_metrics {
	long long recoveries;		     /* subscribes with since */
	long long recovered;		     /* answered recovered:true */
	long long failed[RF__COUNT];	     /* answered recovered:false, by reason */
	long long recovered_messages;	     /* messages replayed to resuming clients */
	long long ring_hits;		     /* resumes served from memory alone */
	long long requests[3];		     /* top, repair, recover requests sent */
	long long requests_inflight;	     /* gauge */
	long long requests_queued;	     /* gauge: waiting for recovery_max_requests */
	long long request_timeouts;	     /* requests not answered in time */
	long long holes;		     /* holes seen (offset jumps, moved tops) */
	long long holes_repaired;	     /* filled completely from history */
	long long hole_messages;	     /* messages filled in from history */
	long long gaps;			     /* gap notices: what history could not fill */
	long long epoch_changes;	     /* channels whose epoch changed */
	long long duplicates;		     /* offsets already delivered, dropped */
	long long hold_overflows;	     /* repairs given up at recovery_buffer_messages */
	long long probes;		     /* top() checks */
	long long waiting;		     /* gauge: subscribers waiting for their recovery */
	long long ring_messages, ring_bytes; /* gauges */
};

struct metrics {
	long long clients;		   /* gauge: connected ws sessions */
	long long clients_accepted_total;  /* ws sessions established */
	long long clients_closed_too_big;  /* closed 1009 */
	long long slow_client_disconnects; /* closed 4001 */
	long long subscriptions;	   /* gauge */
	long long channels;		   /* gauge */
	long long messages_in;		   /* delivered by backends, accepted */
	long long messages_no_subscriber;  /* delivered on a channel nobody wants */
	long long messages_too_big;	   /* dropped: over max_payload_bytes */
	long long messages_utf8_replaced;  /* payloads sent as strings with U+FFFD */
	long long frames_out;		   /* ws message frames written */
	long long bytes_out;		   /* message frame payload bytes written (uncompressed) */
	long long wire_bytes_out;	   /* bytes written to ws clients: headers, compressed */
	long long writes;		   /* socket writes of frames */
	long long coalesced_writes;	   /* writes that carried several frames */
	long long ws_protocol_errors;	   /* connections failed 1002 */
	long long ws_bad_data_closes;	   /* connections failed 1007 */
	long long ws_abnormal_closes;	   /* clients gone without a close handshake */
	long long ws_close_timeouts;	   /* close handshakes given up on */
	long long ws_pings;		   /* keepalive pings sent */
	long long ws_ping_timeouts;	   /* clients dropped: no answer to a ping */
	long long deflate_clients;	   /* connections with permessage-deflate */
	long long deflate_messages;	   /* frames compressed (once each) */
	long long deflate_bytes_in;	   /* ... their payload bytes before */
	long long deflate_bytes_out;	   /* ... and after */
	long long inflated_messages;	   /* compressed client messages inflated */
	long long loop_passes;		   /* passes of the event loop */
	long long queue_bytes;		   /* gauge: bytes queued over all sessions */
	long long deliveries;		   /* frames queued to subscribers */
	long long clients_closed_token_expired; /* closed 4003 */
	long long clients_closed_abuse;		/* closed 1008: over max_requests_per_s for long */
	long long requests_rate_limited;	/* messages over max_requests_per_s, not done */
	long long token_refreshes;		/* in-band auth accepted */
	long long queue_pinned_bytes;		/* gauge: memory send queues pin (budget.c) */
	long long queue_budget_bytes;		/* gauge: max_queued_bytes in effect */
	long long budget_disconnects;		/* closed 4001 at max_queued_bytes */
	long long channel_ip_limit_hits;	/* subscribes refused at max_channels_per_ip */
	long long publish_ok, publish_failed;
	long long gaps;			  /* gap notices queued */
	long long channel_limit_hits;	  /* subscribe refused at max_channels */
	long long errors[ME__COUNT];	  /* protocol errors by code */
	long long refused[REFUSE__COUNT]; /* refusals by reason */
	long long idle_timeouts;	  /* clients closed at idle_timeout_s */
	long long transport_clients[3];	  /* gauge: clients by transport (enum client_kind) */
	long long trpc_errors[16];	  /* tRPC error frames by code (enum trpc_code) */
	struct recovery_metrics rec;	  /* positions and recovery */
};

extern struct metrics metrics;

int metric_err_index(const char *code);
/* Append the whole /metrics page of a single process (core counters, msg
 * pool, backends, the draining gauge); a worker group renders through
 * workers_render_metrics() instead. */
void metrics_render(struct buf *out, int draining);
/* Only the process counters (no backends, no draining); workers.c sums. */
void metrics_render_core(struct buf *out);

#endif
