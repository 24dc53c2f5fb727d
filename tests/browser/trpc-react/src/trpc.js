// trpc.js — the application's tRPC client, as it was against the Node
// server. The one line that changes when moving to fanoutd is the URL (here
// the page's own host, where nginx proxies /trpc to fanoutd).
import { createTRPCReact } from '@trpc/react-query';
import { createWSClient, wsLink } from '@trpc/client';

export const trpc = createTRPCReact(); // createTRPCReact<AppRouter>() in TypeScript

const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/trpc`;
export const wsClient = createWSClient({ url });
export const trpcClient = trpc.createClient({ links: [wsLink({ client: wsClient })] });
