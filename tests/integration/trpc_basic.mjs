// trpc_basic.mjs — the tRPC endpoint (trpc_path) against the real
// @trpc/client 11 (createWSClient + wsLink + createTRPCClient, as a
// browser application uses them) and a raw WebSocket for the wire details:
// subscribe and receive in order, procedures mapped by [trpc] with
// {input.FIELD}, one tick's requests sent as one batch, connectionParams,
// stop, every error shape (unknown procedure, bad input, duplicate id,
// query, limits, parse errors, a refused subscribe, resume without
// positions), what the real client's onError gets when history cannot
// reach back to its lastEventId and when a gap ends a subscription
// (PRECONDITION_FAILED), PING/PONG keepalive in both directions, and the
// reconnect notification when the server drains. One fanoutd, loopback
// and filetail backends.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, pluginPath, parseMetrics, waitFor, tmpDir } from '../lib/harness.mjs';
import { recordingWebSocket } from '../lib/trpc.mjs';

const t = tap();
const lb = pluginPath('loopback');
const logFile = path.join(tmpDir('fanout-trpc-'), 'ft.log');
fs.writeFileSync(logFile, '');
// short.*: a broker history of 3 messages and hub rings of 2, so a resume
// from further back cannot be served; ft.log: a file whose truncation is a gap
const f = await startFanoutd({
  wait: 'ready',
  ini: `[server]\ninstance = tr1\nallow_publish = true\nmax_subscriptions = 3\nshutdown_grace_ms = 3000\n` +
    `recovery_ring_messages = 2\n` +
    `[backend refusing]\nplugin = ${lb}\nchannels = refused.*\nfail_subscribe = true\n` +
    `[backend short]\nplugin = ${lb}\nchannels = short.*\nhistory_size = 3\n` +
    `[backend file]\nplugin = ${pluginPath('filetail')}\nchannels = ft.*\npath = ${logFile}\nformat = raw\n` +
    `channel = ft.log\nstart = end\npoll_interval_ms = 20\n` +
    `[backend mem]\nplugin = ${lb}\n` +
    `[trpc]\nonUpdates = updates\nonRoom = room.{input.roomId}\nonRefused = refused.x\n` +
    `onShort = short.x\nonLog = ft.log\n`,
});
const url = `ws://127.0.0.1:${f.port}/trpc`;

/** A tRPC client; subscriptions record what their callbacks saw. */
function trpcClient(opts = {}) {
  const log = [];
  const ws = createWSClient({ url, WebSocket: recordingWebSocket(log), ...opts });
  const client = createTRPCClient({ links: [wsLink({ client: ws })] });
  const sub = (proc, input) => {
    const s = { data: [], events: [], errors: [], started: 0, completed: 0 };
    s.handle = client[proc].subscribe(input, {
      onStarted: () => s.started++,
      onData: (d) => { s.events.push(d); s.data.push(d.data); }, // tracked: {id, data}
      onError: (e) => s.errors.push(e),
      onComplete: () => s.completed++,
    });
    return s;
  };
  return { ws, client, log, sub, close: () => ws.close() };
}

const publisher = await wsClient(f.ws);
let pubId = 0;
async function publish(channel, data) {
  const id = ++pubId;
  publisher.send({ type: 'publish', channel, data, id });
  const r = await publisher.next((fr) => fr.id === id, 5000, `published ${id}`);
  assert.equal(r.type, 'published', JSON.stringify(r));
}

await t.test('subscribe with @trpc/client: started, then every update in order', async () => {
  const c = trpcClient();
  const s = c.sub('onUpdates');
  await waitFor(() => s.started === 1, { what: 'started' });
  for (let i = 0; i < 50; i++) await publish('updates', { n: i, text: 'ü "q"' });
  await waitFor(() => s.data.length === 50, { what: '50 updates' });
  assert.deepEqual(s.data.map((d) => d.n), [...Array(50).keys()]);
  assert.equal(s.data[0].text, 'ü "q"');
  assert.equal(s.errors.length, 0);
  // tracked events: the position "EPOCH:OFFSET" on both levels, offsets one apart
  const data = c.log.filter((l) => l.in && l.in.includes('"type":"data"'));
  const f0 = JSON.parse(data[0].in);
  const id0 = f0.result.id;
  assert.match(id0, /^[A-Za-z0-9_-]{1,64}:\d+$/);
  assert.deepEqual(f0, { id: JSON.parse(c.log.find((l) => l.out).out).id, result: { type: 'data', id: id0, data: { id: id0, data: { n: 0, text: 'ü "q"' } } } });
  const offs = s.events.map((e) => Number(e.id.split(':')[1]));
  for (let i = 1; i < offs.length; i++) assert.equal(offs[i], offs[i - 1] + 1);
  s.handle.unsubscribe();
  await c.close();
});

await t.test('{input.FIELD} picks the channel; one tick of requests is one batch', async () => {
  const c = trpcClient();
  const a = c.sub('onRoom', { roomId: 7 });
  const b = c.sub('onRoom', { roomId: 'blue' });
  const u = c.sub('onUpdates');
  await waitFor(() => a.started && b.started && u.started, { what: 'three started' });
  const batch = c.log.find((l) => l.out && l.out.startsWith('['));
  assert.ok(batch, 'the three subscriptions went out as one JSON array');
  assert.equal(JSON.parse(batch.out).length, 3);
  await publish('room.7', 'seven');
  await publish('room.blue', 'blue');
  await publish('updates', 'u');
  await waitFor(() => a.data.length && b.data.length && u.data.length, { what: 'one each' });
  assert.deepEqual([a.data, b.data, u.data], [['seven'], ['blue'], ['u']]);
  for (const s of [a, b, u]) s.handle.unsubscribe();
  await c.close();
});

await t.test('connectionParams come first and the subscription works', async () => {
  const c = trpcClient({ connectionParams: async () => ({ token: 'not-checked-without-auth' }) });
  const s = c.sub('onUpdates');
  await waitFor(() => s.started, { what: 'started' });
  assert.match(c.log[0].url, /\?connectionParams=1$/);
  const first = JSON.parse(c.log.find((l) => l.out).out);
  assert.deepEqual(first, { method: 'connectionParams', data: { token: 'not-checked-without-auth' } });
  await publish('updates', 'p');
  await waitFor(() => s.data.includes('p'), { what: 'data' });
  s.handle.unsubscribe();
  await c.close();
});

await t.test('stop: "stopped", and nothing more for that id', async () => {
  const raw = await wsClient(url);
  raw.send({ id: 1, method: 'subscription', params: { path: 'onUpdates' } });
  raw.send({ id: 2, method: 'subscription', params: { path: 'onUpdates' } });
  await raw.next((fr) => fr.id === 1 && fr.result?.type === 'started');
  await raw.next((fr) => fr.id === 2 && fr.result?.type === 'started');
  await publish('updates', 'both');
  await raw.next((fr) => fr.id === 2 && fr.result?.type === 'data');
  raw.send({ id: 1, method: 'subscription.stop' });
  assert.deepEqual(await raw.next((fr) => fr.id === 1 && fr.result?.type === 'stopped'), { id: 1, result: { type: 'stopped' } });
  raw.send({ id: 99, method: 'subscription.stop' }); // unknown: no answer
  await publish('updates', 'only2');
  await raw.next((fr) => fr.id === 2 && fr.result?.data?.data === 'only2');
  raw.send('PING');
  await raw.next((fr) => fr.raw === 'PONG');
  assert.equal(raw.all((fr) => fr.id === 1 && fr.result?.type === 'data').length, 1);
  assert.equal(raw.all((fr) => fr.id === 99).length, 0);
  // jsonrpc is echoed
  raw.send({ id: 'j', jsonrpc: '2.0', method: 'subscription', params: { path: 'onUpdates' } });
  assert.deepEqual(await raw.next((fr) => fr.id === 'j'), { id: 'j', jsonrpc: '2.0', result: { type: 'started' } });
  await raw.close();
});

await t.test('lastEventId resumes: what was missed is replayed, then live, nothing twice', async () => {
  const raw = await wsClient(url);
  raw.send({ id: 1, method: 'subscription', params: { path: 'onRoom', input: { roomId: 'r' } } });
  await raw.next((fr) => fr.id === 1 && fr.result?.type === 'started');
  for (let i = 0; i < 3; i++) await publish('room.r', { i });
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(await raw.next((fr) => fr.id === 1 && fr.result?.type === 'data'));
  raw.send({ id: 1, method: 'subscription.stop' });
  await raw.next((fr) => fr.id === 1 && fr.result?.type === 'stopped');
  for (let i = 3; i < 6; i++) await publish('room.r', { i }); // missed
  // @trpc/client resends the subscription with the last id it saw
  raw.send({ id: 2, method: 'subscription', params: { path: 'onRoom', input: { roomId: 'r' }, lastEventId: seen[1].result.id } });
  await raw.next((fr) => fr.id === 2 && fr.result?.type === 'started');
  await publish('room.r', { i: 6 });
  const got = [];
  for (let i = 0; i < 5; i++) got.push(await raw.next((fr) => fr.id === 2 && fr.result?.type === 'data'));
  assert.deepEqual(got.map((fr) => fr.result.data.data.i), [2, 3, 4, 5, 6]);
  assert.equal(got[0].result.id.split(':')[0], seen[0].result.id.split(':')[0]);
  await raw.close();
});

await t.test('history cannot reach back: @trpc/client\'s onError gets PRECONDITION_FAILED; subscribing again without lastEventId goes live', async () => {
  const c = trpcClient();
  const s1 = c.sub('onShort');
  await waitFor(() => s1.started, { what: 'started' });
  await publish('short.x', 'first');
  await waitFor(() => s1.events.length === 1, { what: 'first' });
  const first = s1.events[0].id;
  s1.handle.unsubscribe();
  for (let i = 0; i < 10; i++) await publish('short.x', { i }); // the broker keeps the last 3
  // a resubscribe from there (@trpc/client puts lastEventId into input when asked to)
  const s2 = c.sub('onShort', { lastEventId: first });
  await waitFor(() => s2.errors.length === 1, { what: 'the error' });
  const e = s2.errors[0];
  assert.equal(e.data.code, 'PRECONDITION_FAILED');
  assert.equal(e.shape.code, -32012);
  assert.match(e.message, /^cannot resume short\.x from lastEventId: the history no longer reaches back .*fetch the current state and subscribe again without it$/);
  assert.deepEqual([s2.started, s2.data.length], [0, 0]);
  // what the README tells an application to do: fetch the state, subscribe again
  const s3 = c.sub('onShort');
  await waitFor(() => s3.started, { what: 'started again' });
  await publish('short.x', 'after');
  await waitFor(() => s3.data.includes('after'), { what: 'live again' });
  assert.deepEqual(s3.data, ['after']);
  assert.equal(c.log.filter((l) => l.url).length, 1, 'no reconnect');
  s3.handle.unsubscribe();
  await c.close();
});

await t.test('a gap mid-stream (a truncated file): @trpc/client\'s onError gets PRECONDITION_FAILED with the reason', async () => {
  const c = trpcClient();
  const s = c.sub('onLog');
  await waitFor(() => s.started, { what: 'started' });
  fs.appendFileSync(logFile, '{"line":1}\n');
  await waitFor(() => s.data.length === 1, { what: 'line 1' });
  assert.deepEqual(s.data, [{ line: 1 }]);
  fs.truncateSync(logFile, 0);
  fs.appendFileSync(logFile, '{"line":2}\n');
  await waitFor(() => s.errors.length === 1, { what: 'the gap as an error' });
  const e = s.errors[0];
  assert.equal(e.data.code, 'PRECONDITION_FAILED');
  assert.match(e.message, /^messages on channel ft\.log may have been missed \(.*(truncated|new epoch).*\): fetch the current state and subscribe again$/);
  assert.deepEqual(s.data, [{ line: 1 }], 'nothing after the gap on the ended subscription');
  await c.close();
});

await t.test('unknown procedure: the client gets tRPC\'s NOT_FOUND error shape', async () => {
  const c = trpcClient();
  const s = c.sub('nope');
  await waitFor(() => s.errors.length, { what: 'error' });
  const e = s.errors[0];
  assert.equal(e.message, 'No "subscription"-procedure on path "nope"');
  assert.deepEqual(e.shape, { message: 'No "subscription"-procedure on path "nope"', code: -32004, data: { code: 'NOT_FOUND', httpStatus: 404, path: 'nope' } });
  assert.equal(e.data.code, 'NOT_FOUND');
  await c.close();
});

await t.test('every request error, each with its id and the connection kept', async () => {
  const raw = await wsClient(url);
  const ask = async (req, code, msg) => {
    raw.send(req);
    const id = Array.isArray(req) ? null : typeof req === 'string' ? null : req.id ?? null;
    const r = await raw.next((fr) => fr.error && fr.id === id && !raw.seen?.has(fr), 5000, code);
    (raw.seen ||= new Set()).add(r);
    assert.equal(r.error.data.code, code, JSON.stringify(r));
    if (msg) assert.match(r.error.message, msg);
    return r;
  };
  await ask({ id: 1, method: 'subscription', params: { path: 'onRoom', input: {} } }, 'BAD_REQUEST', /input\.roomId must be a string or an integer/);
  await ask({ id: 2, method: 'subscription', params: { path: 'onRoom', input: { roomId: 'no spaces' } } }, 'BAD_REQUEST', /not a valid channel name/);
  await ask({ id: 3, method: 'query', params: { path: 'getThing' } }, 'NOT_FOUND', /No "query"-procedure on path "getThing"/);
  await ask('{"id":4,', 'PARSE_ERROR');
  await ask('[{"id":5,"method":"subscription.stop"},{"id":6}]', 'PARSE_ERROR', /method/);
  await ask({ id: null, method: 'subscription', params: { path: 'onUpdates' } }, 'PARSE_ERROR', /`id` is required/);
  await ask({ id: 7, method: 'subscription', params: { path: 'onUpdates', lastEventId: '~:5' } }, 'PRECONDITION_FAILED', /cannot resume/);
  await ask({ id: 7, method: 'subscription', params: { path: 'onUpdates', lastEventId: 'nosuchepoch:5' } }, 'PRECONDITION_FAILED', /cannot resume updates/);
  raw.send({ id: 8, method: 'subscription', params: { path: 'onUpdates' } });
  await raw.next((fr) => fr.id === 8 && fr.result?.type === 'started');
  await ask({ id: 8, method: 'subscription', params: { path: 'onUpdates' } }, 'BAD_REQUEST', /Duplicate id 8/);
  // the backend refuses (asynchronously): SERVICE_UNAVAILABLE with the path
  const r = await ask({ id: 9, method: 'subscription', params: { path: 'onRefused' } }, 'SERVICE_UNAVAILABLE', /could not subscribe/);
  assert.equal(r.error.data.path, 'onRefused');
  // max_subscriptions = 3 counts live subscriptions only (8 is one)
  raw.send([10, 11].map((id) => ({ id, method: 'subscription', params: { path: 'onUpdates' } })));
  await raw.next((fr) => fr.id === 11 && fr.result?.type === 'started');
  await ask({ id: 12, method: 'subscription', params: { path: 'onUpdates' } }, 'TOO_MANY_REQUESTS', /max_subscriptions/);
  raw.send({ id: 10, method: 'subscription.stop' });
  raw.send({ id: 12, method: 'subscription', params: { path: 'onUpdates' } });
  await raw.next((fr) => fr.id === 12 && fr.result?.type === 'started');
  // binary frames are refused, the connection stays
  raw.ws.send(Buffer.from('{}'), { binary: true });
  await raw.next((fr) => fr.error?.data?.code === 'PARSE_ERROR' && /binary/.test(fr.error.message));
  await publish('updates', 'still here');
  await raw.next((fr) => fr.id === 12 && fr.result?.data?.data === 'still here');
  await raw.close();
});

await t.test('keepalive: PING from @trpc/client is answered PONG, the socket stays', async () => {
  const c = trpcClient({ keepAlive: { enabled: true, intervalMs: 200, pongTimeoutMs: 1000 } });
  const s = c.sub('onUpdates');
  await waitFor(() => s.started, { what: 'started' });
  await waitFor(() => c.log.filter((l) => l.in === 'PONG').length >= 3, { what: '3 PONGs', timeoutMs: 8000 });
  assert.ok(c.log.filter((l) => l.out === 'PING').length >= 3);
  assert.equal(c.log.filter((l) => l.url).length, 1, 'no reconnect');
  await publish('updates', 'after pings');
  await waitFor(() => s.data.includes('after pings'), { what: 'data' });
  s.handle.unsubscribe();
  await c.close();
});

await t.test('/metrics counts tRPC clients and their errors', async () => {
  const raw = await wsClient(url);
  raw.send({ id: 1, method: 'subscription', params: { path: 'nope' } });
  await raw.next((fr) => fr.error);
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m['fanout_transport_clients{transport="trpc"}'], 1);
  assert.ok(m['fanout_trpc_errors_total{code="NOT_FOUND"}'] >= 2, JSON.stringify(m));
  await raw.close();
});

await t.test('draining: the reconnect notification, then the client leaves on its own', async () => {
  const raw = await wsClient(url);
  raw.send({ id: 1, method: 'subscription', params: { path: 'onUpdates' } });
  await raw.next((fr) => fr.result?.type === 'started');
  const native = await wsClient(f.ws);
  f.kill('SIGTERM');
  assert.deepEqual(await raw.next((fr) => fr.method), { id: null, method: 'reconnect' });
  // the native client is closed 1001 at once; the tRPC one stays served
  assert.equal((await native.closed).code, 1001);
  await publish('updates', 'while draining').catch(() => {}); // the publisher is closing too
  raw.send('PING');
  await raw.next((fr) => fr.raw === 'PONG');
  await raw.close();
  assert.equal(await f.stop('SIGTERM'), 0);
});

t.done();
