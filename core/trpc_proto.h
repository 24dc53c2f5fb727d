/*
 * trpc_proto.h — the tRPC v11 WebSocket wire protocol as @trpc/client's
 * wsLink speaks it (captured from @trpc/client + @trpc/server 11.25; the
 * frames are listed in man/fanout.ini.5 and README "Coming from tRPC"):
 * parsing client messages, mapping a procedure path to a channel through
 * the [trpc] section's templates, and writing every server frame. Pure
 * functions, no I/O; fuzzed by tests/fuzz/fuzz_trpc.c.
 *
 * Client -> server, text frames, one JSON object or an array of them (the
 * requests of one tick):
 *   {"id":1,"method":"subscription","params":{"input":…,"path":"onUpdates",
 *    "lastEventId":"E:42"}}            (lastEventId only when resuming)
 *   {"id":1,"method":"subscription.stop"}
 *   {"method":"connectionParams","data":{…}}  (first, with ?connectionParams=1)
 *   PING                                (literal text; answered PONG)
 * Server -> client:
 *   {"id":1,"result":{"type":"started"}}
 *   {"id":1,"result":{"type":"data","id":"E:42","data":{"id":"E:42","data":P}}}
 *   {"id":1,"result":{"type":"data","data":P}}        (no position known)
 *   {"id":1,"result":{"type":"stopped"}}
 *   {"id":1,"error":{"message":M,"code":-32004,"data":{"code":"NOT_FOUND",
 *    "httpStatus":404,"path":"x"}}}
 *   {"id":null,"method":"reconnect"}    (the server is going away)
 * A request with "jsonrpc":"2.0" gets it echoed after its id.
 */
#ifndef FANOUT_TRPC_PROTO_H
#define FANOUT_TRPC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "protocol.h"

#define TRPC_PATH_MAX	  256  /* bytes of a procedure path */
#define TRPC_EVENT_ID_MAX 128  /* bytes of a lastEventId */
#define TRPC_BATCH_MAX	  1024 /* requests in one message (more: PARSE_ERROR) */

enum trpc_method {
	TRPC_SUBSCRIPTION,
	TRPC_STOP,
	TRPC_QUERY,
	TRPC_MUTATION,
};

struct trpc_req {
	enum trpc_method method;
	int id_null;		      /* "id": null (an error "`id` is required") */
	char id[PROTO_ID_MAX + 1];    /* compact JSON text of "id" */
	int jsonrpc;		      /* "jsonrpc":"2.0" was given: echo it */
	char path[TRPC_PATH_MAX + 1]; /* params.path */
	const struct json_t *input;   /* params.input (borrowed from the batch), or NULL */
	/* params.lastEventId, else a string input.lastEventId (the server
	 * merges one into the other, so either resumes); "" when absent. */
	char last_event_id[TRPC_EVENT_ID_MAX + 1];
};

struct trpc_batch {
	struct json_t *root; /* owns every input */
	struct trpc_req *reqs;
	size_t n;
};

/*
 * Parse one text message into requests. Returns 0 and fills b (free with
 * trpc_batch_free), or -1 with a reason in why[why_len] when the message is
 * not valid: not JSON, not an object or an array of objects, more than
 * TRPC_BATCH_MAX requests, or one request invalid (as @trpc/server's
 * parseTRPCMessage: "id" null, a string or a number of at most PROTO_ID_MAX
 * bytes of JSON; "jsonrpc" absent or "2.0"; "method" "subscription.stop",
 * "subscription", "query" or "mutation"; "params" an object with a string
 * "path" of at most TRPC_PATH_MAX bytes and an optional string
 * "lastEventId" of at most TRPC_EVENT_ID_MAX bytes). One invalid request
 * fails the whole message, as it does in @trpc/server: the client gets one
 * PARSE_ERROR with a null id.
 */
int trpc_parse(const char *p, size_t len, struct trpc_batch *b, char *why, size_t why_len);
void trpc_batch_free(struct trpc_batch *b);

/*
 * The connectionParams message {"method":"connectionParams","data":{…}}
 * (data.token: the access token when [auth] is on).
 * Returns 0 and *token (malloc'd; NULL when data has no string "token"),
 * or -1 with why (not that message; data neither null nor an object of
 * strings: what @trpc/server refuses as "Invalid connection params shape").
 */
int trpc_parse_params(const char *p, size_t len, char **token, char *why, size_t why_len);

/*
 * Channel templates (the values of the [trpc] section): channel-name bytes
 * ([A-Za-z0-9_.:/-]) and placeholders {input.FIELD} where FIELD is one or
 * more names of [A-Za-z0-9_-] joined by '.' (a nested field). Returns 0, or
 * -1 with a static reason.
 */
int trpc_template_check(const char *tpl, const char **why);
/*
 * Expand tpl with the subscription input: each {input.FIELD} becomes the
 * field's value, a string or an integer. Returns 0 with the channel in
 * out[PROTO_CHANNEL_MAX + 1], or -1 with why (a field missing or of
 * another type, or the result not a valid channel name).
 */
int trpc_template_expand(const char *tpl, const struct json_t *input, char *out, char *why,
			 size_t why_len);

/* ---- server frames; each appends to out ---- */

/* The per-subscription head every frame of that subscription starts with:
 * {"id":ID, (and "jsonrpc":"2.0", when asked). id_null: "id":null. */
int trpc_head(struct buf *out, const char *id, int id_null, int jsonrpc);
/* The bodies that follow a head: */
int trpc_started_body(struct buf *out); /* "result":{"type":"started"}} */
int trpc_stopped_body(struct buf *out); /* "result":{"type":"stopped"}} */
/* "result":{"type":"data",…}} with the payload's JSON text; tracked (an
 * "EPOCH:OFFSET" id on both levels, so lastEventId resumes) when epoch is
 * not NULL. */
int trpc_data_body(struct buf *out, const char *epoch, uint64_t offset, const char *json,
		   size_t len);

/* tRPC error codes (TRPC_ERROR_CODES_BY_KEY), as used here. */
enum trpc_code {
	TRPC_PARSE_ERROR,
	TRPC_BAD_REQUEST,
	TRPC_UNAUTHORIZED,
	TRPC_FORBIDDEN,
	TRPC_NOT_FOUND,
	TRPC_PRECONDITION_FAILED,
	TRPC_TOO_MANY_REQUESTS,
	TRPC_INTERNAL_SERVER_ERROR,
	TRPC_SERVICE_UNAVAILABLE,
	TRPC__CODES
};
const char *trpc_code_name(enum trpc_code c);
/* The tRPC code for one of the native protocol's error codes (PROTO_E_*). */
enum trpc_code trpc_code_from_proto(const char *proto_code);

/* "error":{"message":M,"code":-32xxx,"data":{"code":K,"httpStatus":H
 * [,"path":P]}}} — the body after a head. path may be NULL. */
int trpc_error_body(struct buf *out, enum trpc_code code, const char *message, const char *path);
/* {"id":null,"method":"reconnect"} */
int trpc_reconnect(struct buf *out);

#endif
