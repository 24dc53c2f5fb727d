/*
 * sse.h — Server-Sent Events at sse_path: GET /sse?channel=a&channel=b
 * streams every message of those channels as text/event-stream (for
 * EventSource in browsers, curl, and anything that reads HTTP). Same
 * limits, gate and drain as WebSocket clients; the hub reaches a stream
 * through this transport's sink table (hub.h).
 *
 * The stream, per event:
 *   data: {"type":"message","channel":"a","instance":"c1","data":…}
 *   event: gap          + data: {"type":"gap","channel":"a","reason":…}
 *   event: subscribed   + data: {"type":"subscribed","channel":"a"}
 *   event: refused      + data: {"type":"error","channel":"a","code":…,"message":…}
 *   : keepalive         (a comment, every ping_interval_s)
 * data is the native protocol's frame (README, "Client protocol v1"), on
 * one line: a stream carries several channels, so each event says which.
 * On positioned channels each event's id: holds every channel's position
 * (sse_id.h), and Last-Event-ID (or ?lastEventId=) resumes them all: replay
 * from history, then live; a channel that cannot resume gets a gap.
 */
#ifndef FANOUT_SSE_H
#define FANOUT_SSE_H

struct config;
struct lws_protocols;

/* Before the first client (after the loop is up). 0 or -1. */
int sse_init(const struct config *c);
void sse_free(void);

/* The lws protocol of the sse_path mount (http_mounts()). */
extern const struct lws_protocols sse_protocol;
#define SSE_PROTOCOL_NAME "fanout-sse"

#endif
