/*
 * trpc.h — the tRPC v11 transport: @trpc/client's wsLink / createWSClient
 * pointed at trpc_path talks to fanoutd unchanged. Each subscription
 * procedure named in [trpc] streams a channel (trpc_proto.h has the wire
 * format and the templates). A WebSocket message protocol of the session
 * layer (session.h); the hub reaches its subscriptions through its own
 * sink table (hub.h).
 */
#ifndef FANOUT_TRPC_H
#define FANOUT_TRPC_H

struct config;
struct session_proto;

/* Before the first client (after the loop is up): c for [trpc] and the
 * limits. 0, or -1 (out of memory). */
int trpc_init(const struct config *c);
void trpc_free(void);

extern const struct session_proto trpc_proto;

#endif
