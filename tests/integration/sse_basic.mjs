// sse_basic.mjs — Server-Sent Events at sse_path over raw HTTP: one stream
// carries several channels (each event names its channel), chunked
// HTTP/1.1 and HTTP/1.0 until close, refusals before the stream starts
// (HTTP errors, so EventSource stops retrying), a gap from a truncated file
// (filetail backend), comment keepalives, CORS for an allowed Origin and
// 403 for another, max_clients, a slow reader cut at client_queue_bytes,
// max_connections_per_ip behind a trusted proxy and max_queued_bytes, and
// the end of every stream when the server drains.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { sseConnect } from '../lib/sse.mjs';
import { startFanoutd, wsClient, pluginPath, parseMetrics, waitFor, tmpDir } from '../lib/harness.mjs';

const t = tap();
const dir = tmpDir('fanout-sse-');
const logFile = path.join(dir, 'ft.log');
fs.writeFileSync(logFile, '');
const f = await startFanoutd({
  wait: 'ready',
  ini: `[server]\ninstance = sse1\nallow_publish = true\nping_interval_s = 1\nmax_clients = 6\n` +
    `max_subscriptions = 4\nmax_payload_bytes = 16384\nclient_queue_bytes = 65536\n` +
    `channels = a b c d e ft.log big orphan\nallowed_origins = http://good.example\n` +
    `[backend file]\nplugin = ${pluginPath('filetail')}\nchannels = ft.*\npath = ${logFile}\nformat = raw\nchannel = ft.log\n` +
    `start = end\npoll_interval_ms = 20\n` +
    `[backend mem]\nplugin = ${pluginPath('loopback')}\nchannels = a b c d e big\n`,
});
const base = `http://127.0.0.1:${f.port}/sse`;
const publisher = await wsClient(f.ws);
let pubId = 0;
async function publish(channel, data) {
  const id = ++pubId;
  publisher.send({ type: 'publish', channel, data, id });
  const r = await publisher.next((fr) => fr.id === id, 5000, `published ${id}`);
  assert.equal(r.type, 'published', JSON.stringify(r));
}
const metrics = async () => parseMetrics((await f.http('/metrics')).body);

await t.test('one stream, several channels: subscribed, then every message with its channel', async () => {
  const s = await sseConnect(`${base}?channel=a&channel=b&channel=a`);
  assert.equal(s.status, 200);
  assert.equal(s.headers['content-type'], 'text/event-stream');
  assert.equal(s.headers['cache-control'], 'no-cache');
  assert.equal(s.headers['transfer-encoding'], 'chunked');
  assert.equal(s.headers['x-accel-buffering'], 'no');
  const subs = [await s.next('subscribed'), await s.next('subscribed')];
  assert.deepEqual(subs.map((e) => e.json.channel).sort(), ['a', 'b']); // the duplicate a once
  assert.equal(s.retry, 1000);
  for (let i = 0; i < 20; i++) await publish(i % 2 ? 'b' : 'a', { i, text: 'two\nlines "q"' });
  await waitFor(() => s.events.filter((e) => e.event === 'message').length === 20, { what: '20 messages' });
  const msgs = s.events.filter((e) => e.event === 'message').map((e) => e.json);
  assert.deepEqual(msgs.map((m) => m.data.i), [...Array(20).keys()]);
  assert.deepEqual(msgs.map((m) => m.channel), msgs.map((m) => (m.data.i % 2 ? 'b' : 'a')));
  assert.equal(msgs[0].instance, 'sse1');
  assert.equal(msgs[0].data.text, 'two\nlines "q"');
  await s.close();
});

await t.test('Last-Event-ID resumes every channel of the stream: replay, then live, nothing twice', async () => {
  const s1 = await sseConnect(`${base}?channel=d&channel=e`);
  await s1.next('subscribed');
  await s1.next('subscribed');
  assert.match(s1.lastEventId, /^v1;[0-9a-f]{8};[^,]+:\d+,[^,]+:\d+$/);
  await publish('d', 'd1');
  await publish('e', 'e1');
  await s1.next((e) => e.event === 'message' && e.json.data === 'e1');
  const last = s1.lastEventId;
  await s1.close();
  await publish('e', 'e2'); // missed while away
  await publish('d', 'd2');
  const s2 = await sseConnect(`${base}?channel=d&channel=e`, { headers: { 'last-event-id': last } });
  const subs = [await s2.next('subscribed'), await s2.next('subscribed')];
  assert.ok(subs.every((e) => e.json.recovered === true), JSON.stringify(subs));
  await publish('d', 'd3');
  await s2.next((e) => e.event === 'message' && e.json.data === 'd3');
  const got = s2.events.filter((e) => e.event === 'message').map((e) => e.json.data);
  assert.deepEqual(got.filter((x) => x[0] === 'd'), ['d2', 'd3']);
  assert.deepEqual(got.filter((x) => x[0] === 'e'), ['e2']);
  assert.equal(s2.events.filter((e) => e.event === 'gap').length, 0);
  // the same through ?lastEventId= (clients that cannot set headers)
  const s3 = await sseConnect(`${base}?channel=d&channel=e&lastEventId=${encodeURIComponent(s2.lastEventId)}`);
  const subs3 = [await s3.next('subscribed'), await s3.next('subscribed')];
  assert.ok(subs3.every((e) => e.json.recovered === true));
  await s2.close();
  await s3.close();
});

await t.test('a Last-Event-ID that cannot be served is a gap per channel, never silence', async () => {
  const s = await sseConnect(`${base}?channel=d&channel=e`, { headers: { 'last-event-id': 'v1;00000000;x:1,y:2' } });
  const gaps = [await s.next('gap'), await s.next('gap')];
  assert.deepEqual(gaps.map((g) => g.json.channel).sort(), ['d', 'e']);
  assert.match(gaps[0].json.reason, /cannot resume: Last-Event-ID names another stream/);
  await s.close();
  const s0 = await sseConnect(`${base}?channel=d`);
  await s0.next('subscribed');
  const fp = s0.lastEventId.split(';')[1];
  await s0.close();
  const s2 = await sseConnect(`${base}?channel=d`, { headers: { 'last-event-id': `v1;${fp};nosuchepoch:3` } });
  const sub = await s2.next('subscribed');
  assert.equal(sub.json.recovered, false);
  assert.match((await s2.next('gap')).json.reason, /history no longer reaches back/);
  await s2.close();
});

await t.test('HTTP/1.0: no chunks, the stream runs until the connection closes', async () => {
  const sock = net.connect(f.port, '127.0.0.1');
  let raw = '';
  sock.on('data', (d) => (raw += d));
  sock.write('GET /sse?channel=c HTTP/1.0\r\n\r\n');
  await waitFor(() => raw.includes('event: subscribed'), { what: 'subscribed' });
  await publish('c', 'plain');
  await waitFor(() => raw.includes('"data":"plain"'), { what: 'message' });
  assert.match(raw, /^HTTP\/1\.0 200 OK\r\n/);
  assert.doesNotMatch(raw, /transfer-encoding/i);
  assert.match(raw, /\r\nconnection: close\r\n/i);
  assert.match(raw, /\r\n\r\n: fanout sse1\nretry: 1000\n\n(id: [^\n]*\n)?event: subscribed\ndata: \{"type":"subscribed","channel":"c"[^\n]*\}\n\n/);
  sock.destroy();
});

await t.test('refused before the stream: HTTP errors with a reason', async () => {
  const ask = async (q, status, re, opts) => {
    const s = await sseConnect(`${base}${q}`, opts);
    assert.equal(s.status, status, `${q}: ${s.body}`);
    assert.match(JSON.parse(s.body).error, re);
  };
  await ask('', 400, /at least one channel/);
  await ask('?channel=has%20space', 400, /1-200 bytes/);
  await ask('?channel=a&channel=notallowed', 403, /channel notallowed: .*not allowed.*\(forbidden\)/);
  await ask('?channel=orphan', 404, /channel orphan: .*\(no_backend\)/);
  await ask('?channel=a&channel=b&channel=c&channel=d&channel=e', 400, /max_subscriptions/);
  await ask('?channel=a', 405, /GET/, { method: 'POST' });
  await ask('?channel=a', 403, /origin not allowed/, { headers: { origin: 'http://evil.example' } });
  await waitFor(async () => (await metrics())['fanout_transport_clients{transport="sse"}'] === 0, { what: 'no stream left' });
});

await t.test('CORS: an allowed Origin is echoed', async () => {
  const s = await sseConnect(`${base}?channel=a`, { headers: { origin: 'http://good.example' } });
  assert.equal(s.status, 200);
  assert.equal(s.headers['access-control-allow-origin'], 'http://good.example');
  assert.equal(s.headers.vary, 'Origin');
  await s.close();
});

await t.test('a truncated file is event: gap for its channel', async () => {
  const s = await sseConnect(`${base}?channel=ft.log&channel=a`);
  await s.next((e) => e.event === 'subscribed' && e.json.channel === 'ft.log');
  fs.appendFileSync(logFile, '{"line":1}\n');
  assert.deepEqual((await s.next('message')).json.data, { line: 1 });
  fs.truncateSync(logFile, 0);
  fs.appendFileSync(logFile, '{"line":2}\n');
  const g = await s.next('gap');
  assert.equal(g.json.type, 'gap');
  assert.equal(g.json.channel, 'ft.log');
  assert.match(g.json.reason, /truncated|new epoch/);
  assert.deepEqual((await s.next('message')).json.data, { line: 2 });
  await s.close();
});

await t.test('comment keepalives every ping_interval_s', async () => {
  const s = await sseConnect(`${base}?channel=a`);
  await waitFor(() => s.comments.filter((c) => c === 'keepalive').length >= 2, { what: '2 keepalives', timeoutMs: 5000 });
  await s.close();
});

await t.test('max_clients counts streams: one over is 503', async () => {
  // the publisher is one client; max_clients = 6. The streams of the
  // tests before are closed on our side; the server may not have seen it
  // yet (under load): wait, or one of the five would be the one over.
  await waitFor(async () => (await metrics())['fanout_transport_clients{transport="sse"}'] === 0, { what: 'earlier streams gone' });
  const open = [];
  for (let i = 0; i < 5; i++) open.push(await sseConnect(`${base}?channel=a`));
  assert.deepEqual(open.map((s) => s.status), [200, 200, 200, 200, 200]);
  const over = await sseConnect(`${base}?channel=a`);
  assert.equal(over.status, 503);
  assert.match(JSON.parse(over.body).error, /max_clients/);
  assert.equal((await metrics())['fanout_transport_clients{transport="sse"}'], 5);
  for (const s of open) await s.close();
  await waitFor(async () => (await metrics())['fanout_transport_clients{transport="sse"}'] === 0, { what: 'streams closed' });
});

await t.test('a reader that stops reading is cut at client_queue_bytes', async () => {
  const before = (await metrics())['fanout_slow_client_disconnects_total'];
  const sock = net.connect(f.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d; if (got.includes('event: subscribed')) sock.pause(); });
  sock.write('GET /sse?channel=big HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => got.includes('event: subscribed'), { what: 'subscribed' });
  const fast = await sseConnect(`${base}?channel=big`);
  await fast.next('subscribed');
  const blob = 'x'.repeat(15000);
  // far more than the socket buffers and the 64 KiB queue hold
  for (let i = 0; i < 400; i++) await publish('big', { i, blob });
  await waitFor(async () => (await metrics())['fanout_slow_client_disconnects_total'] > before, { what: 'the slow reader cut' });
  // the other stream kept everything
  await waitFor(() => fast.events.filter((e) => e.event === 'message').length === 400, { what: 'fast reader complete', timeoutMs: 20000 });
  sock.destroy();
  await fast.close();
});

await t.test('limits shared with WebSocket clients: max_connections_per_ip behind a proxy (429), max_queued_bytes', async () => {
  const g = await startFanoutd({
    wait: 'ready',
    ini: `[server]\ninstance = sse2\nallow_publish = true\ntrusted_proxies = 127.0.0.1/32\n` +
      `max_connections_per_ip = 2\nmax_queued_bytes = 1m\nclient_queue_bytes = 64m\n` +
      `[backend mem]\nplugin = ${pluginPath('loopback')}\nhistory_size = 0\n`,
  });
  const open = [];
  let sock = null;
  try {
    const gm = async () => parseMetrics((await g.http('/metrics')).body);
    const url = `http://127.0.0.1:${g.port}/sse?channel=big`;
    const from = (ip) => ({ headers: { 'x-forwarded-for': ip } });
    // two streams for the client address 10.0.0.1 (as the proxy says), the third is refused
    const a = await sseConnect(url, from('10.0.0.1'));
    const b = await sseConnect(url, from('10.0.0.1'));
    open.push(a, b);
    await a.next('subscribed');
    await b.next('subscribed');
    const over = await sseConnect(url, from('10.0.0.1'));
    assert.equal(over.status, 429, over.body);
    assert.match(JSON.parse(over.body).error, /too many connections/);
    const other = await sseConnect(url, from('10.0.0.2'));
    assert.equal(other.status, 200);
    await other.close();
    await b.close();
    // max_queued_bytes counts event streams' queues: a stream that stops
    // reading is cut once what all queues pin passes 1m (client_queue_bytes
    // is far above); the stream that reads keeps everything
    sock = net.connect(g.port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => { got += d; if (got.includes('event: subscribed')) sock.pause(); });
    sock.write('GET /sse?channel=big HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.3\r\n\r\n');
    await waitFor(() => got.includes('event: subscribed'), { what: 'subscribed' });
    const pub = await wsClient(g.ws);
    open.push(pub);
    const blob = 'x'.repeat(15000);
    let n = 0;
    const cut = async () => (await gm())['fanout_queue_budget_disconnects_total'] > 0;
    while (!(await cut())) {
      assert.ok(n < 4000, 'no cut after 60 MB');
      // small bursts (75 KB), so the reading stream's queue stays far below the budget
      for (let i = 0; i < 5; i++, n++) pub.send({ type: 'publish', channel: 'big', data: { n, blob }, id: n });
      await pub.next((fr) => fr.id === n - 1, 10000, `published ${n - 1}`);
    }
    await waitFor(async () => (await gm())['fanout_transport_clients{transport="sse"}'] === 1, { what: 'the stalled stream gone, the reader kept' });
    await waitFor(() => a.events.filter((e) => e.event === 'message').length === n, { what: `all ${n} messages for the reader`, timeoutMs: 30000 });
    assert.equal((await gm())['fanout_queue_budget_disconnects_total'], 1);
  } finally {
    sock?.destroy();
    for (const c of open) await c.close();
    assert.equal(await g.stop(), 0);
  }
}, { timeoutMs: 90000 });

await t.test('draining ends every stream (the final chunk)', async () => {
  const s = await sseConnect(`${base}?channel=a&channel=b`);
  await s.next('subscribed');
  f.kill('SIGTERM');
  assert.equal(await s.ended, 'ended');
  assert.equal(await f.stop(), 0);
});

t.done();
