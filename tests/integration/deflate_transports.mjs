// deflate_transports.mjs — permessage-deflate is compressed once per message
// and transport, also for tRPC, whose frames are a per-subscription head
// ({"id":N,...) before a data body every tRPC subscriber shares: fanoutd
// sends the head as a stored deflate block followed by the body's shared
// compressed bytes, so no subscriber costs a compression. Checked with raw
// clients that inflate what arrives, and with @trpc/client (the `ws` client
// negotiates deflate by default).
import assert from 'node:assert/strict';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, pluginPath, parseMetrics, waitFor, WebSocket } from '../lib/harness.mjs';
import { rawConnect, frame, OP, json } from '../lib/rawws.mjs';

const t = tap();
const f = await startFanoutd({
  wait: 'ready',
  ini: `[server]\ninstance = z1\nallow_publish = true\npermessage_deflate = true\n` +
    `[backend mem]\nplugin = ${pluginPath('loopback')}\n[trpc]\nonUpdates = updates\n`,
});
const OFFER = 'permessage-deflate; client_max_window_bits';
const data = { rows: [...Array(40).keys()].map((i) => ({ id: 1000 + i, name: `row-${i}`, price: (i * 7) % 100 })) };
const metrics = async () => parseMetrics((await f.http('/metrics')).body);

await t.test('one message to 2 raw tRPC and 1 native subscriber: compressed once per transport, every frame inflates', async () => {
  const trpc = [];
  for (let i = 0; i < 2; i++) {
    const c = await rawConnect(f.port, { path: '/trpc', extensions: OFFER });
    assert.match(c.headers['sec-websocket-extensions'] || '', /^permessage-deflate; server_no_context_takeover/);
    c.send(frame(OP.TEXT, JSON.stringify({ id: 7 + i, method: 'subscription', params: { path: 'onUpdates' } })));
    await c.next((fr) => json(fr)?.result?.type === 'started', 5000, 'started');
    trpc.push(c);
  }
  const nat = await rawConnect(f.port, { extensions: OFFER });
  nat.send(frame(OP.TEXT, JSON.stringify({ type: 'subscribe', channel: 'updates', id: 's' })));
  await nat.next((fr) => json(fr)?.type === 'subscribed', 5000, 'subscribed');
  const before = await metrics();
  const pub = await rawConnect(f.port);
  pub.send(frame(OP.TEXT, JSON.stringify({ type: 'publish', channel: 'updates', data, id: 'p' })));
  await pub.next((fr) => json(fr)?.id === 'p', 5000, 'published');
  for (const [i, c] of trpc.entries()) {
    const fr = await c.next((x) => json(x)?.result?.type === 'data', 5000, 'tRPC data');
    assert.equal(fr.rsv, 4, 'compressed (RSV1)');
    assert.equal(json(fr).id, 7 + i);
    assert.deepEqual(json(fr).result.data.data, data); // a tracked event: {id, data}
    assert.ok(fr.payload.length * 3 < JSON.stringify(json(fr)).length, `${fr.payload.length} bytes`);
  }
  const n = await nat.next((x) => json(x)?.type === 'message', 5000, 'message');
  assert.equal(n.rsv, 4);
  assert.deepEqual(json(n).data, data);
  const after = await metrics();
  assert.equal(after.fanout_deflate_frames_total - before.fanout_deflate_frames_total, 2,
    'one compression for the native frame, one for the tRPC body');
  for (const c of [...trpc, nat, pub]) c.destroy();
});

await t.test('@trpc/client over a deflate connection receives the data', async () => {
  const ws = createWSClient({ url: `ws://127.0.0.1:${f.port}/trpc`, WebSocket });
  const client = createTRPCClient({ links: [wsLink({ client: ws })] });
  const got = [];
  let started = 0;
  const sub = client.onUpdates.subscribe(undefined, { onStarted: () => started++, onData: (d) => got.push(d) });
  await waitFor(() => started === 1, { what: 'started' });
  const pub = await rawConnect(f.port);
  pub.send(frame(OP.TEXT, JSON.stringify({ type: 'publish', channel: 'updates', data, id: 'p' })));
  await waitFor(() => got.length === 1, { what: 'data' });
  assert.deepEqual(got[0].data, data); // tracked: {id, data}
  sub.unsubscribe();
  ws.close();
  pub.destroy();
});

assert.equal(await f.stop(), 0);
t.done();
