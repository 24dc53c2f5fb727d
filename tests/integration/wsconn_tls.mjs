// wsconn_tls.mjs — fanoutd's own WebSocket I/O (core/wsconn.c) on TLS
// connections: lws does the TLS handshake and the upgrade, then fanoutd
// keeps reading and writing through the same SSL object. Big messages both
// ways (one frame across many TLS records), a burst of 8 KiB messages
// (partial SSL writes), a reader that stops (4001 while a fast one gets
// everything), a ping answered while an SSL_write waits for room, the
// close handshake and a protocol error (the close frame
// before close_notify and FIN), permessage-deflate over TLS.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { WebSocket, pluginPath, startFanoutd, tmpDir, waitFor, parseMetrics } from '../lib/harness.mjs';
import { rawConnect, frame, OP, closePayload, json } from '../lib/rawws.mjs';

const t = tap();
const dir = tmpDir('fanout-wstls-');
const cert = path.join(dir, 'c.crt'), key = path.join(dir, 'c.key');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
  '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=wsconn',
  '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
const ca = fs.readFileSync(cert);
const f = await startFanoutd({
  ini: `[server]\ninstance = tls\ntls_cert = ${cert}\ntls_key = ${key}\nallow_publish = true\n` +
    `permessage_deflate = true\nclient_queue_bytes = 2m\nmax_payload_bytes = 1m\n\n[backend mem]\nplugin = ${pluginPath('loopback')}\n`,
  wait: 'none',
});
await waitFor(async () => { try { const c = await rawConnect(f.port, { ca }); c.destroy(); return c.status === 101; } catch { return false; } },
  { what: 'fanoutd over TLS' });
const url = `wss://127.0.0.1:${f.port}/ws`;
const metrics = () => new Promise((resolve, reject) => {
  https.get({ host: '127.0.0.1', port: f.port, path: '/metrics', ca }, (res) => {
    let b = ''; res.on('data', (x) => (b += x)); res.on('end', () => resolve(parseMetrics(b)));
  }).on('error', reject);
});
const wss = (opts = {}) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url, { ca, perMessageDeflate: false, ...opts });
  const got = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString())));
  ws.on('open', () => resolve({ ws, got }));
  ws.on('error', reject);
});

await t.test('a 65,536-byte request and its answer over TLS (one frame, many TLS records)', async () => {
  const c = await rawConnect(f.port, { ca });
  assert.equal(c.status, 101);
  await c.next((fr) => json(fr)?.type === 'hello');
  const base = '{"type":"ping","id":"big","pad":""}';
  c.send(frame(OP.TEXT, `{"type":"ping","id":"big","pad":"${'p'.repeat(65536 - base.length)}"}`));
  await c.next((fr) => json(fr)?.id === 'big', 5000, 'pong big');
  c.send(frame(OP.CLOSE, closePayload(1000)));
  const d = await c.done();
  assert.equal(d.close.code, 1000);
  assert.equal(d.afterClose, 0);
});

await t.test('2000 messages of 8 KiB to two TLS subscribers, in order; a reader that stops is cut 4001', async () => {
  const fast = await wss();
  const slow = await wss();
  for (const c of [fast, slow]) {
    c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'tls', id: 's' }));
    await waitFor(() => c.got.some((m) => m.type === 'subscribed'), { what: 'subscribed' });
  }
  slow.ws._socket.pause();
  // The reader resumes as soon as it is cut, as a slow (not dead) client
  // would: its 4001 waits behind what the kernel already holds for it, and a
  // client that reads nothing for the close timeout after its cut is dropped
  // without it (README "Close handshake"), which a loaded machine could
  // otherwise turn into a 1006 here.
  const closed = new Promise((r) => slow.ws.on('close', (code) => r(code)));
  const resumed = waitFor(async () => (await metrics()).fanout_slow_client_disconnects_total >= 1, {
    timeoutMs: 60000, intervalMs: 100, what: 'the slow reader cut',
  }).then(() => slow.ws._socket.resume());
  const pub = await wss();
  const blob = 'b'.repeat(8000);
  for (let i = 0; i < 2000; i++) {
    pub.ws.send(JSON.stringify({ type: 'publish', channel: 'tls', data: { i, blob }, id: i }));
    if (i % 200 === 199) await waitFor(() => pub.got.some((m) => m.id === i), { what: `ack ${i}` });
  }
  await waitFor(() => fast.got.filter((m) => m.type === 'message').length === 2000, { timeoutMs: 30000, what: 'fast got all' });
  assert.deepEqual(fast.got.filter((m) => m.type === 'message').map((m) => m.data.i), [...Array(2000).keys()]);
  await resumed;
  // The cut comes while an SSL_write waits for room (the socket is full):
  // the frames offered to it are finished first, then the close frame.
  assert.equal(await closed, 4001);
  const m = await metrics();
  assert.equal(m.fanout_slow_client_disconnects_total, 1);
  fast.ws.close();
  pub.ws.close();
});

await t.test('a ping while an SSL_write waits for room: every message in order, then the pong', async () => {
  const slow = await wss();
  const watch = await wss();
  slow.ws.send(JSON.stringify({ type: 'subscribe', channel: 'tlsp', id: 's' }));
  watch.ws.send(JSON.stringify({ type: 'subscribe', channel: 'tlsw', id: 's' }));
  await waitFor(() => slow.got.some((m) => m.type === 'subscribed') && watch.got.some((m) => m.type === 'subscribed'),
    { what: 'subscribed' });
  slow.ws._socket.pause();
  const pub = await wss();
  const blob = 'p'.repeat(8000);
  let sent = 0;
  // Fill the socket until fanoutd holds more than one SSL_write (64 KiB)
  // for the client: its last SSL_write then waits for room (well under
  // client_queue_bytes = 2m).
  while (!((await metrics()).fanout_queue_bytes > 100000)) {
    assert.ok(sent < 4000, 'the socket never filled');
    for (let j = 0; j < 20; j++, sent++) pub.ws.send(JSON.stringify({ type: 'publish', channel: 'tlsp', data: { i: sent, blob }, id: sent }));
    const last = sent - 1;
    await waitFor(() => pub.got.some((m) => m.id === last), { what: `ack ${last}` });
  }
  let pongs = 0, closed = null;
  slow.ws.on('pong', () => pongs++);
  slow.ws.on('close', (code) => (closed = code));
  slow.ws.ping('x');
  // frames are read in order: once this publish arrives, the ping was read
  slow.ws.send(JSON.stringify({ type: 'publish', channel: 'tlsw', data: 'after ping', id: 'w' }));
  await waitFor(() => watch.got.some((m) => m.type === 'message'), { what: 'publish after the ping' });
  slow.ws._socket.resume();
  await waitFor(() => closed !== null || (pongs === 1 && slow.got.filter((m) => m.type === 'message').length === sent),
    { timeoutMs: 20000, what: 'every message and the pong' });
  assert.equal(closed, null);
  assert.deepEqual(slow.got.filter((m) => m.type === 'message').map((m) => m.data.i), [...Array(sent).keys()]);
  assert.equal(pongs, 1);
  for (const c of [slow, watch, pub]) c.ws.close();
});

await t.test('a protocol error over TLS: the close frame 1002 arrives, nothing after it', async () => {
  const c = await rawConnect(f.port, { ca });
  await c.next((fr) => json(fr)?.type === 'hello');
  c.send(frame(OP.PING, Buffer.alloc(126, 0x61)));
  const d = await c.done();
  assert.equal(d.close.code, 1002);
  assert.equal(d.afterClose, 0);
});

await t.test('permessage-deflate over TLS: a compressed 1 KiB message, clean close', async () => {
  const c = await wss({ perMessageDeflate: true });
  c.ws.send(JSON.stringify({ type: 'subscribe', channel: 'tlsz', id: 's' }));
  await waitFor(() => c.got.some((m) => m.type === 'subscribed'), { what: 'subscribed' });
  const data = { rows: [...Array(30).keys()].map((i) => ({ i, name: `row ${i}` })) };
  const p = await wss();
  p.ws.send(JSON.stringify({ type: 'publish', channel: 'tlsz', data }));
  await waitFor(() => c.got.some((m) => m.type === 'message'), { what: 'message' });
  assert.deepEqual(c.got.find((m) => m.type === 'message').data, data);
  const closed = new Promise((r) => c.ws.on('close', (code) => r(code)));
  c.ws.close(1000);
  assert.equal(await closed, 1000);
  p.ws.close();
});

await t.test('drain over TLS: every client gets 1001 and fanoutd exits 0', async () => {
  const c = await rawConnect(f.port, { ca });
  await c.next((fr) => json(fr)?.type === 'hello');
  process.kill(f.pid, 'SIGTERM');
  const cl = await c.next((fr) => fr.op === OP.CLOSE, 5000, 'close 1001');
  assert.equal(cl.payload.readUInt16BE(0), 1001);
  c.send(frame(OP.CLOSE, closePayload(1001)));
  const d = await c.done();
  assert.equal(d.afterClose, 0);
  assert.equal(await f.stop(), 0);
});

t.done();
