// trpc_conformance.mjs — fanoutd's tRPC endpoint answers as the real tRPC
// server does. A reference @trpc/server 11 (applyWSSHandler on a `ws`
// server, in this process, with the procedures of fanoutd's [trpc] section
// written as tRPC subscriptions that yield tracked(id, data)) and fanoutd
// get the same raw frames; their answers are compared frame by frame:
// started, tracked data, stopped, a batch, PING/PONG, jsonrpc, every error
// shape (unknown procedure, query, missing id, duplicate id, parse errors,
// binary frames, bad input, a resume refused), connectionParams, the
// lastEventId merge into input, and the reconnect notification. The
// reference server also shows what @trpc/client does with that
// notification (new socket, resubscribe with lastEventId, then the old one
// closed), which fanoutd's drain relies on. Error messages are compared
// where fanoutd says the same thing; where tRPC's text comes from a
// library (JSON.parse's, a validator's), everything but the message.
import assert from 'node:assert/strict';
import { EventEmitter, on } from 'node:events';
import { initTRPC, tracked, TRPCError } from '@trpc/server';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { WebSocketServer } from 'ws';
import { tap } from '../lib/tap.mjs';
import { freePort, pluginPath, startFanoutd, waitFor, wsClient } from '../lib/harness.mjs';
import { recordingWebSocket } from '../lib/trpc.mjs';

const t = tap();

/** The reference: a tRPC v11 server with fanoutd's procedures. */
async function startReference() {
  const tr = initTRPC.create({ isDev: false });
  const ee = new EventEmitter();
  const inputs = []; // every subscription's input, as the procedure got it
  const connectionParams = [];
  const log = []; // {conn, open|close|msg}
  const feed = (channel) => async function* ({ input, signal }) {
    inputs.push(input);
    if (input?.lastEventId === 'nosuchepoch:5')
      throw new TRPCError({ code: 'PRECONDITION_FAILED', message: 'cannot resume' });
    for await (const [m] of on(ee, channel(input), { signal })) yield tracked(m.id, m.data);
  };
  const roomInput = (v) => {
    if (typeof v?.roomId !== 'string' && !Number.isInteger(v?.roomId))
      throw new Error('input.roomId must be a string or an integer');
    return v;
  };
  const router = tr.router({
    onUpdates: tr.procedure.input((v) => v).subscription(feed(() => 'updates')),
    onRoom: tr.procedure.input(roomInput).subscription(feed((i) => `room.${i.roomId}`)),
  });
  const port = await freePort();
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((r) => wss.once('listening', r));
  let nconn = 0;
  wss.on('connection', (ws) => {
    const conn = ++nconn;
    log.push({ conn, open: true });
    ws.on('message', (d) => log.push({ conn, msg: String(d) }));
    ws.on('close', () => log.push({ conn, close: true }));
  });
  const handler = applyWSSHandler({
    wss, router,
    createContext: ({ info }) => { connectionParams.push(info.connectionParams); return {}; },
  });
  return {
    url: `ws://127.0.0.1:${port}`, inputs, connectionParams, log, handler,
    emit: (channel, id, data) => ee.emit(channel, { id, data }),
    close: () => { handler.broadcastReconnectNotification(); for (const c of wss.clients) c.terminate(); return new Promise((r) => wss.close(r)); },
  };
}

const ref = await startReference();
const f = await startFanoutd({
  wait: 'ready',
  ini: `[server]\ninstance = conf1\nallow_publish = true\nshutdown_grace_ms = 3000\n` +
    `[backend mem]\nplugin = ${pluginPath('loopback')}\n` +
    `[trpc]\nonUpdates = updates\nonRoom = room.{input.roomId}\n`,
});
const fan = `ws://127.0.0.1:${f.port}/trpc`;
const publisher = await wsClient(f.ws);
let pubId = 0;
async function publish(channel, data) {
  const id = ++pubId;
  publisher.send({ type: 'publish', channel, data, id });
  const r = await publisher.next((fr) => fr.id === id, 5000, `published ${id}`);
  assert.equal(r.type, 'published', JSON.stringify(r));
}

/** One raw socket to each server: [reference, fanoutd]. */
const pair = async (query = '') => Promise.all([wsClient(ref.url + query), wsClient(fan + query)]);
/** Send the same thing on both; resolve both answers matching pred. */
async function both(conns, req, pred, what) {
  for (const c of conns) typeof req === 'function' ? req(c) : c.send(req);
  return Promise.all(conns.map((c) => c.next(pred, 5000, what)));
}
const withoutMessage = (fr) => ({ ...fr, error: { ...fr.error, message: typeof fr.error?.message } });

await t.test('subscription: started, a tracked event, stop: the same frames', async () => {
  const [r, n] = await pair();
  const sub = { id: 1, method: 'subscription', params: { path: 'onUpdates' } };
  const [rs, ns] = await both([r, n], sub, (fr) => fr.id === 1, 'started');
  assert.deepEqual(ns, rs);
  assert.deepEqual(rs, { id: 1, result: { type: 'started' } });
  const payload = { n: 1, text: 'ü "q"', list: [1, null, true] };
  await publish('updates', payload);
  const nd = await n.next((fr) => fr.id === 1 && fr.result?.type === 'data', 5000, 'data');
  ref.emit('updates', nd.result.id, payload); // the reference yields tracked(id, data) with fanoutd's id
  const rd = await r.next((fr) => fr.id === 1 && fr.result?.type === 'data', 5000, 'data');
  assert.deepEqual(nd, rd);
  assert.match(rd.result.id, /^[A-Za-z0-9_-]+:\d+$/);
  assert.deepEqual(rd.result.data, { id: rd.result.id, data: payload });
  const [rstop, nstop] = await both([r, n], { id: 1, method: 'subscription.stop' }, (fr) => fr.id === 1 && fr.result?.type === 'stopped', 'stopped');
  assert.deepEqual(nstop, rstop);
  assert.deepEqual(rstop, { id: 1, result: { type: 'stopped' } });
  // a stop for an id that is not subscribed: neither answers
  for (const c of [r, n]) c.send({ id: 77, method: 'subscription.stop' });
  const [rp, np] = await both([r, n], 'PING', (fr) => fr.raw === 'PONG', 'PONG');
  assert.deepEqual(np, rp);
  assert.equal(r.all((fr) => fr.id === 77).length + n.all((fr) => fr.id === 77).length, 0);
  await Promise.all([r.close(), n.close()]);
});

await t.test('a batch (one JSON array) and jsonrpc: the same answers', async () => {
  const [r, n] = await pair();
  const batch = JSON.stringify([
    { id: 2, method: 'subscription', params: { path: 'onUpdates' } },
    { id: 'three', jsonrpc: '2.0', method: 'subscription', params: { path: 'onRoom', input: { roomId: 7 } } },
  ]);
  for (const c of [r, n]) c.send(batch);
  for (const id of [2, 'three']) {
    const [ra, na] = await Promise.all([r, n].map((c) => c.next((fr) => fr.id === id, 5000, `started ${id}`)));
    assert.deepEqual(na, ra);
  }
  assert.deepEqual(n.all((fr) => fr.id === 'three')[0], { id: 'three', jsonrpc: '2.0', result: { type: 'started' } });
  await Promise.all([r.close(), n.close()]);
});

await t.test('errors: the same shape, code, data and (where fanoutd says the same) message', async () => {
  const [r, n] = await pair();
  const cases = [
    // [request, compare the message too]
    [{ id: 4, method: 'subscription', params: { path: 'nope' } }, true],
    [{ id: 5, method: 'query', params: { path: 'getThing' } }, true],
    [{ id: null, method: 'subscription', params: { path: 'onUpdates' } }, true],
    ['{"id":6,', false],
    ['[{"id":7,"method":"subscription.stop"},{"id":8}]', false],
    [(c) => c.ws.send(Buffer.from('{}'), { binary: true }), false],
    [{ id: 9, method: 'subscription', params: { path: 'onRoom', input: {} } }, false],
    [{ id: 10, method: 'subscription', params: { path: 'onUpdates', lastEventId: 'nosuchepoch:5' } }, false],
  ];
  for (const [req, exact] of cases) {
    const [re, ne] = await both([r, n], req, (fr) => fr.error, 'error');
    const what = typeof req === 'function' ? 'binary frame' : JSON.stringify(req);
    if (exact) assert.deepEqual(ne, re, what);
    else assert.deepEqual(withoutMessage(ne), withoutMessage(re), `${what}: fanoutd ${JSON.stringify(ne)}, tRPC ${JSON.stringify(re)}`);
    assert.equal(typeof ne.error.message, 'string');
  }
  // the reference got the resume's lastEventId merged into the input
  assert.deepEqual(ref.inputs.at(-1), { lastEventId: 'nosuchepoch:5' });
  // a duplicate id while the first is live
  const sub = { id: 11, method: 'subscription', params: { path: 'onUpdates' } };
  await both([r, n], sub, (fr) => fr.id === 11, 'started');
  const [rd, nd] = await both([r, n], sub, (fr) => fr.id === 11 && fr.error, 'duplicate');
  assert.deepEqual(nd, rd);
  assert.equal(rd.error.data.code, 'BAD_REQUEST');
  // both still serve the connection
  const [rp, np] = await both([r, n], 'PING', (fr) => fr.raw === 'PONG', 'PONG');
  assert.deepEqual(np, rp);
  await Promise.all([r.close(), n.close()]);
});

await t.test('connectionParams: first message, no answer, then requests; lastEventId merged into input', async () => {
  const [r, n] = await pair('?connectionParams=1');
  for (const c of [r, n]) c.send({ method: 'connectionParams', data: { token: 'abc', n: '1' } });
  const sub = { id: 1, method: 'subscription', params: { path: 'onRoom', input: { roomId: 'r' }, lastEventId: 'E:1' } };
  const [rs, ns] = await both([r, n], sub, (fr) => fr.id === 1, 'first answer');
  assert.deepEqual(rs, { id: 1, result: { type: 'started' } });
  // fanoutd cannot resume E:1 (no such epoch): it says so; the reference just starts
  assert.ok(ns.result?.type === 'started' || ns.error?.data?.code === 'PRECONDITION_FAILED', JSON.stringify(ns));
  assert.equal(r.frames[0].result.type, 'started', 'nothing answered the connectionParams message');
  assert.equal(n.frames.length, 1);
  assert.deepEqual(ref.connectionParams.at(-1), { token: 'abc', n: '1' });
  assert.deepEqual(ref.inputs.at(-1), { roomId: 'r', lastEventId: 'E:1' });
  await Promise.all([r.close(), n.close()]);
  // what tRPC refuses: a value that is not a string, no data at all (a
  // connectionParams function that returned undefined): PARSE_ERROR with a
  // null id, then the socket is closed
  for (const bad of [{ method: 'connectionParams', data: { token: 'abc', n: 1 } }, { method: 'connectionParams' }]) {
    const conns = await pair('?connectionParams=1');
    const [re, ne] = await both(conns, bad, (fr) => fr.error, 'error');
    assert.deepEqual(withoutMessage(ne), withoutMessage(re), `${JSON.stringify(bad)}: fanoutd ${JSON.stringify(ne)}, tRPC ${JSON.stringify(re)}`);
    assert.match(ne.error.message, /Invalid connection params shape/);
    await Promise.all(conns.map((c) => c.closed));
  }
});

await t.test('reconnect notification: the same frame; @trpc/client then opens a new socket, resubscribes with lastEventId, and only then closes the old one', async () => {
  // the client's side, against the reference server
  const clog = [];
  const wsc = createWSClient({ url: ref.url, WebSocket: recordingWebSocket(clog) });
  const client = createTRPCClient({ links: [wsLink({ client: wsc })] });
  const got = [];
  let started = 0;
  const s = client.onUpdates.subscribe(undefined, { onStarted: () => started++, onData: (d) => got.push(d) });
  await waitFor(() => started === 1, { what: 'started' });
  ref.emit('updates', 'E:1', 'one');
  await waitFor(() => got.length === 1, { what: 'one event' });
  const before = ref.log.length;
  ref.handler.broadcastReconnectNotification();
  await waitFor(() => ref.log.slice(before).some((l) => l.close), { what: 'the old socket closed' });
  const after = ref.log.slice(before);
  const opened = after.findIndex((l) => l.open);
  const resub = after.findIndex((l) => l.msg && JSON.parse(l.msg).params?.lastEventId === 'E:1');
  const closed = after.findIndex((l) => l.close);
  assert.ok(opened >= 0 && resub > opened && closed > resub, JSON.stringify(after));
  assert.notEqual(after[resub].conn, after[closed].conn, 'resubscribed on the new socket, closed the old');
  const note = clog.filter((l) => l.in && l.in.includes('"reconnect"'));
  assert.deepEqual(note.map((l) => JSON.parse(l.in)), [{ id: null, method: 'reconnect' }]);
  s.unsubscribe();
  wsc.close();
  // fanoutd sends the same frame when it drains
  const n = await wsClient(fan);
  n.send({ id: 1, method: 'subscription', params: { path: 'onUpdates' } });
  await n.next((fr) => fr.id === 1);
  f.kill('SIGTERM');
  assert.deepEqual(await n.next((fr) => fr.method, 5000, 'reconnect'), JSON.parse(note[0].in));
  await n.close();
  assert.equal(await f.stop('SIGTERM'), 0);
});

await ref.close();
t.done();
