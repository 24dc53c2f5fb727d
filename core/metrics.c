/*
 * metrics.c — owns the process counters (struct metrics) and renders them,
 * with each backend's state and event counters, as Prometheus text
 * (version 0.0.4) for /metrics. Loop thread only; render allocates into
 * the caller's buffer.
 */
#include <string.h>

#include "metrics.h"
#include "msg.h"
#include "plugin_host.h"
#include "protocol.h"
#include "trpc_proto.h"

struct metrics metrics;

static const char *const err_codes[ME__COUNT] = {
    PROTO_E_BAD_JSON,	 PROTO_E_BAD_REQUEST,	  PROTO_E_UNKNOWN_TYPE,
    PROTO_E_BAD_CHANNEL, PROTO_E_FORBIDDEN,	  PROTO_E_TOO_MANY_SUBS,
    PROTO_E_NO_BACKEND,	 PROTO_E_BACKEND_UNAVAIL, PROTO_E_RATE_LIMITED,
};

static const char *const refuse_names[REFUSE__COUNT] = {
    "max_clients", "origin",	  "path",	  "subprotocol",  "per_ip",
    "token",	   "bad_request", "headers",	  "url_too_long", "method",
    "api_key",	   "timeout",	  "http_version",
};

const char *refuse_reason_name(enum refuse_reason r)
{
	return r < REFUSE__COUNT ? refuse_names[r] : "?";
}

int metric_err_index(const char *code)
{
	for (int i = 0; i < ME__COUNT; i++)
		if (!strcmp(code, err_codes[i]))
			return i;
	return -1;
}

static void one(struct buf *o, const char *name, const char *type, const char *help, long long v)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

static void head(struct buf *o, const char *name, const char *type, const char *help)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const fail_names[RF__COUNT] = {
    "epoch",  "too_far", "truncated", "ahead", "timeout",
    "buffer", "too_big", "gap",	      "error", "unpositioned",
};

/* Positions and recovery (recovery.c). */
static void render_recovery(struct buf *o, const struct recovery_metrics *s)
{
	one(o, "fanout_recoveries_total", "counter", "Subscribes that resumed with since.",
	    s->recoveries);
	buf_printf(o, "# HELP fanout_recovery_results_total Resumes answered, by result.\n"
		      "# TYPE fanout_recovery_results_total counter\n");
	buf_printf(o, "fanout_recovery_results_total{result=\"recovered\",reason=\"\"} %lld\n",
		   s->recovered);
	for (int i = 0; i < RF__COUNT; i++)
		buf_printf(o,
			   "fanout_recovery_results_total{result=\"failed\",reason=\"%s\"} %lld\n",
			   fail_names[i], s->failed[i]);
	one(o, "fanout_recovered_messages_total", "counter",
	    "Messages replayed to resuming subscribers.", s->recovered_messages);
	one(o, "fanout_recovery_ring_hits_total", "counter",
	    "Resumes served from the in-memory ring alone.", s->ring_hits);
	buf_printf(o,
		   "# HELP fanout_history_requests_total Requests sent to backends, by kind.\n"
		   "# TYPE fanout_history_requests_total counter\n"
		   "fanout_history_requests_total{kind=\"top\"} %lld\n"
		   "fanout_history_requests_total{kind=\"repair\"} %lld\n"
		   "fanout_history_requests_total{kind=\"recover\"} %lld\n",
		   s->requests[0], s->requests[1], s->requests[2]);
	one(o, "fanout_history_requests_inflight", "gauge",
	    "top/history requests awaiting the backend's answer.", s->requests_inflight);
	one(o, "fanout_history_requests_queued", "gauge",
	    "Requests waiting for a slot (recovery_max_requests).", s->requests_queued);
	one(o, "fanout_history_request_timeouts_total", "counter",
	    "Requests not answered within recovery_timeout_ms.", s->request_timeouts);
	one(o, "fanout_holes_total", "counter",
	    "Holes seen in a channel's offsets (lost or delayed broker messages).", s->holes);
	one(o, "fanout_holes_repaired_total", "counter", "Holes filled completely from history.",
	    s->holes_repaired);
	one(o, "fanout_hole_messages_repaired_total", "counter",
	    "Messages filled into holes from history.", s->hole_messages);
	one(o, "fanout_position_gaps_total", "counter",
	    "Gap frames sent because history could not fill a hole or was lost.", s->gaps);
	one(o, "fanout_epoch_changes_total", "counter",
	    "Channels whose epoch changed (the broker lost their history).", s->epoch_changes);
	one(o, "fanout_duplicate_messages_total", "counter",
	    "Messages dropped because their offset was already delivered.", s->duplicates);
	one(o, "fanout_repair_hold_overflows_total", "counter",
	    "Repairs given up because recovery_buffer_messages frames arrived meanwhile.",
	    s->hold_overflows);
	one(o, "fanout_position_probes_total", "counter",
	    "Checks of a channel's top (quiet channels, backend reconnects, resumes ahead).",
	    s->probes);
	one(o, "fanout_recovery_waiting", "gauge", "Subscribers waiting for their recovery.",
	    s->waiting);
	one(o, "fanout_recovery_ring_messages", "gauge",
	    "Frames kept in the per-channel rings of recent messages.", s->ring_messages);
	one(o, "fanout_recovery_ring_bytes", "gauge", "Bytes of the frames kept in the rings.",
	    s->ring_bytes);
}

void metrics_render_core(struct buf *o)
{
	const struct metrics *m = &metrics;

	one(o, "fanout_clients", "gauge", "Connected clients (every transport).", m->clients);
	one(o, "fanout_clients_accepted_total", "counter", "Clients accepted (every transport).",
	    m->clients_accepted_total);
	head(o, "fanout_refused_total", "counter",
	     "Connections and requests refused before or right after the upgrade, by reason.");
	for (int i = 0; i < REFUSE__COUNT; i++)
		buf_printf(o, "fanout_refused_total{reason=\"%s\"} %lld\n", refuse_names[i],
			   m->refused[i]);
	one(o, "fanout_idle_timeouts_total", "counter",
	    "Clients closed 1001 after idle_timeout_s without a frame or pong.", m->idle_timeouts);
	one(o, "fanout_token_expired_disconnects_total", "counter",
	    "Clients closed 4003: their access token expired without a refresh.",
	    m->clients_closed_token_expired);
	one(o, "fanout_token_refreshes_total", "counter",
	    "In-band token refreshes accepted (auth -> authed).", m->token_refreshes);
	one(o, "fanout_requests_rate_limited_total", "counter",
	    "Client messages over max_requests_per_s, answered rate_limited and not done.",
	    m->requests_rate_limited);
	one(o, "fanout_queue_pinned_bytes", "gauge",
	    "Memory all send queues pin: each queued frame once, plus 16 bytes per entry.",
	    m->queue_pinned_bytes);
	one(o, "fanout_queue_budget_bytes", "gauge", "max_queued_bytes in effect (this process).",
	    m->queue_budget_bytes);
	one(o, "fanout_queue_budget_disconnects_total", "counter",
	    "Clients closed 4001 (furthest behind) at max_queued_bytes.", m->budget_disconnects);
	one(o, "fanout_channel_ip_limit_hits_total", "counter",
	    "Subscribes refused at max_channels_per_ip.", m->channel_ip_limit_hits);
	one(o, "fanout_abuse_disconnects_total", "counter",
	    "Clients closed 1008: they kept sending over max_requests_per_s.",
	    m->clients_closed_abuse);
	one(o, "fanout_clients_closed_too_big_total", "counter",
	    "Clients closed 1009 for a frame over max_message_bytes.", m->clients_closed_too_big);
	one(o, "fanout_slow_client_disconnects_total", "counter",
	    "Clients closed 4001: send queue over client_queue_bytes.", m->slow_client_disconnects);
	one(o, "fanout_subscriptions", "gauge", "Client subscriptions.", m->subscriptions);
	one(o, "fanout_channels", "gauge", "Channels with at least one local subscriber.",
	    m->channels);
	one(o, "fanout_messages_in_total", "counter",
	    "Backend messages fanned out to local subscribers.", m->messages_in);
	head(o, "fanout_messages_dropped_total", "counter", "Backend messages not delivered.");
	buf_printf(o, "fanout_messages_dropped_total{reason=\"no_subscribers\"} %lld\n",
		   m->messages_no_subscriber);
	buf_printf(o, "fanout_messages_dropped_total{reason=\"too_big\"} %lld\n",
		   m->messages_too_big);
	one(o, "fanout_messages_utf8_replaced_total", "counter",
	    "Payloads sent as JSON strings with invalid UTF-8 replaced by U+FFFD.",
	    m->messages_utf8_replaced);
	one(o, "fanout_deliveries_total", "counter", "Message frames queued to subscribers.",
	    m->deliveries);
	one(o, "fanout_frames_out_total", "counter",
	    "WebSocket message frames written to clients (pings, pongs, closes not counted).",
	    m->frames_out);
	one(o, "fanout_bytes_out_total", "counter",
	    "WebSocket payload bytes of the message frames written to clients (before "
	    "compression).",
	    m->bytes_out);
	one(o, "fanout_wire_bytes_out_total", "counter",
	    "Bytes written to WebSocket clients: frame headers, pings and closes included, "
	    "compressed frames at their compressed size.",
	    m->wire_bytes_out);
	one(o, "fanout_writes_total", "counter",
	    "Socket writes of frames (every frame a loop pass produced for a client goes out in "
	    "one write).",
	    m->writes);
	one(o, "fanout_coalesced_writes_total", "counter",
	    "Writes that carried several queued frames at once.", m->coalesced_writes);
	one(o, "fanout_loop_passes_total", "counter", "Passes of the event loop.", m->loop_passes);
	head(o, "fanout_ws_closes_total", "counter",
	     "WebSocket connections closed by fanoutd or lost, by reason.");
	buf_printf(o, "fanout_ws_closes_total{reason=\"protocol_error\"} %lld\n",
		   m->ws_protocol_errors);
	buf_printf(o, "fanout_ws_closes_total{reason=\"invalid_data\"} %lld\n",
		   m->ws_bad_data_closes);
	buf_printf(o, "fanout_ws_closes_total{reason=\"no_close_handshake\"} %lld\n",
		   m->ws_abnormal_closes);
	buf_printf(o, "fanout_ws_closes_total{reason=\"close_timeout\"} %lld\n",
		   m->ws_close_timeouts);
	buf_printf(o, "fanout_ws_closes_total{reason=\"ping_timeout\"} %lld\n",
		   m->ws_ping_timeouts);
	one(o, "fanout_ws_pings_total", "counter", "Keepalive pings sent.", m->ws_pings);
	one(o, "fanout_deflate_clients_total", "counter",
	    "Clients that negotiated permessage-deflate.", m->deflate_clients);
	one(o, "fanout_deflate_frames_total", "counter",
	    "Frames compressed (once per frame and window size, shared by every subscriber).",
	    m->deflate_messages);
	head(o, "fanout_deflate_bytes_total", "counter",
	     "Payload bytes of the compressed frames, before and after.");
	buf_printf(o, "fanout_deflate_bytes_total{stage=\"in\"} %lld\n", m->deflate_bytes_in);
	buf_printf(o, "fanout_deflate_bytes_total{stage=\"out\"} %lld\n", m->deflate_bytes_out);
	one(o, "fanout_inflated_messages_total", "counter", "Compressed client messages inflated.",
	    m->inflated_messages);
	one(o, "fanout_queue_bytes", "gauge", "Bytes queued for clients (all sessions).",
	    m->queue_bytes);
	one(o, "fanout_shared_frames", "gauge", "Distinct frames alive in send queues.",
	    msg_live_count);
	one(o, "fanout_gaps_total", "counter", "Gap notices queued to subscribers.", m->gaps);
	head(o, "fanout_publish_total", "counter", "Client publishes by result.");
	buf_printf(o, "fanout_publish_total{result=\"ok\"} %lld\n", m->publish_ok);
	buf_printf(o, "fanout_publish_total{result=\"failed\"} %lld\n", m->publish_failed);
	head(o, "fanout_protocol_errors_total", "counter", "Error frames sent, by code.");
	for (int i = 0; i < ME__COUNT; i++)
		buf_printf(o, "fanout_protocol_errors_total{code=\"%s\"} %lld\n", err_codes[i],
			   m->errors[i]);
	one(o, "fanout_channel_limit_hits_total", "counter", "Subscribes refused at max_channels.",
	    m->channel_limit_hits);
	head(o, "fanout_transport_clients", "gauge", "Connected clients by transport.");
	static const char *const transports[] = {"ws", "trpc", "sse"};
	for (int i = 0; i < 3; i++)
		buf_printf(o, "fanout_transport_clients{transport=\"%s\"} %lld\n", transports[i],
			   m->transport_clients[i]);
	head(o, "fanout_trpc_errors_total", "counter", "tRPC error frames sent, by tRPC code.");
	for (int i = 0; i < TRPC__CODES; i++)
		buf_printf(o, "fanout_trpc_errors_total{code=\"%s\"} %lld\n", trpc_code_name(i),
			   m->trpc_errors[i]);
	render_recovery(o, &m->rec);
}

void metrics_render(struct buf *o, int draining)
{
	metrics_render_core(o);
	size_t nb = plugin_host_count();
	head(o, "fanout_backend_up", "gauge", "1 when the backend is up.");
	for (size_t i = 0; i < nb; i++) {
		struct fanout_backend *b = plugin_host_get(i);
		buf_printf(o, "fanout_backend_up{backend=\"%s\"} %d\n", b->cfg->name,
			   b->up == FANOUT_UP);
	}
	head(o, "fanout_backend_state_changes_total", "counter",
	     "Backend up/down transitions (reconnects show here).");
	for (size_t i = 0; i < nb; i++) {
		struct fanout_backend *b = plugin_host_get(i);
		buf_printf(o, "fanout_backend_state_changes_total{backend=\"%s\"} %lld\n",
			   b->cfg->name, b->state_changes);
	}
	head(o, "fanout_backend_messages_total", "counter", "Messages delivered by each backend.");
	for (size_t i = 0; i < nb; i++) {
		struct fanout_backend *b = plugin_host_get(i);
		buf_printf(o, "fanout_backend_messages_total{backend=\"%s\"} %lld\n", b->cfg->name,
			   b->messages_in);
	}
	head(o, "fanout_backend_events_total", "counter", "Events counted by backends.");
	for (size_t i = 0; i < nb; i++) {
		struct fanout_backend *b = plugin_host_get(i);
		for (int e = 0; e < b->n_events; e++)
			buf_printf(
			    o, "fanout_backend_events_total{backend=\"%s\",event=\"%s\"} %llu\n",
			    b->cfg->name, b->events[e].name,
			    (unsigned long long)b->events[e].value);
	}
	one(o, "fanout_draining", "gauge", "1 while shutting down.", draining);
}
