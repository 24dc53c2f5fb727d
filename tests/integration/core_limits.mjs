// core_limits.mjs — limits and lifecycle of a real fanoutd: 1009 on an
// oversized frame, 1013 at max_clients, 403 for a refused origin, 4001 for
// a client that stops reading while a fast one keeps receiving, static
// files and HTTP routes, and SIGTERM: every client sees 1001, exit code 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, parseMetrics, pluginPath, sleep, waitFor, tmpDir } from '../lib/harness.mjs';

const t = tap();
const lb = pluginPath('loopback');
const ini = (server = '') =>
  `[server]\ninstance = lim1\nallow_publish = true\n${server}\n[backend mem]\nplugin = ${lb}\n`;

await t.test('a frame over max_message_bytes closes 1009; others unaffected', async () => {
  const f = await startFanoutd({ ini: ini('max_message_bytes = 1024') });
  const other = await wsClient(f.ws);
  await other.subscribe('a');
  const c = await wsClient(f.ws);
  await c.next('hello');
  c.send({ type: 'publish', channel: 'a', data: 'x'.repeat(2000) });
  const { code } = await c.closed;
  assert.equal(code, 1009);
  // a message just under the limit still works for the other client
  const p = await wsClient(f.ws);
  p.send({ type: 'publish', channel: 'a', data: 'y'.repeat(900), id: 1 });
  assert.equal((await p.next((fr) => fr.id === 1)).type, 'published');
  assert.equal((await other.next('message')).data.length, 900);
  await Promise.all([other.close(), p.close()]);
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m['fanout_clients_closed_too_big_total'], 1);
  assert.equal(await f.stop(), 0);
});

await t.test('at max_clients the next client is closed 1013', async () => {
  const f = await startFanoutd({ ini: ini('max_clients = 2') });
  const a = await wsClient(f.ws);
  const b = await wsClient(f.ws);
  await a.next('hello');
  await b.next('hello');
  const c = await wsClient(f.ws);
  const { code } = await c.closed;
  assert.equal(code, 1013);
  assert.equal(c.all((fr) => fr.type === 'hello').length, 0);
  await a.close();
  await waitFor(async () => parseMetrics((await f.http('/metrics')).body).fanout_clients === 1);
  const d = await wsClient(f.ws);
  await d.next('hello');
  await Promise.all([b.close(), d.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('an origin outside allowed_origins is refused with HTTP 403', async () => {
  const f = await startFanoutd({ ini: ini('allowed_origins = https://good.example http://127.0.0.1:8080') });
  await assert.rejects(wsClient(f.ws, { headers: { Origin: 'https://evil.example' } }), /403/);
  const good = await wsClient(f.ws, { headers: { Origin: 'https://good.example' } });
  await good.next('hello');
  const none = await wsClient(f.ws); // no Origin: not a browser
  await none.next('hello');
  await Promise.all([good.close(), none.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('a client that stops reading is cut at client_queue_bytes (4001) while a fast one gets everything', async () => {
  const f = await startFanoutd({ ini: ini('max_payload_bytes = 16k\nclient_queue_bytes = 64k') });
  const fast = await wsClient(f.ws);
  const slow = await wsClient(f.ws);
  await fast.subscribe('firehose');
  await slow.subscribe('firehose');
  slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then our queue
  const p = await wsClient(f.ws);
  const N = 3000;
  const blob = 'z'.repeat(8000);
  for (let i = 0; i < N; i++) {
    p.send({ type: 'publish', channel: 'firehose', data: { i, blob }, id: i });
    if (i % 200 === 199) await p.next((fr) => fr.id === i, 10000, `ack ${i}`);
  }
  await waitFor(() => fast.all((fr) => fr.type === 'message').length === N, { timeoutMs: 30000, what: 'fast client complete' });
  const seq = fast.all((fr) => fr.type === 'message').map((fr) => fr.data.i);
  assert.deepEqual(seq, [...Array(N).keys()]);
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m.fanout_slow_client_disconnects_total, 1);
  slow.ws._socket.resume();
  const { code } = await slow.closed;
  assert.ok(code === 4001 || code === 1006, `slow client closed with ${code}`);
  assert.ok(slow.all((fr) => fr.type === 'message').length < N);
  await Promise.all([fast.close(), p.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('HTTP: healthz, readyz, metrics, static files, unknown ws path refused', async () => {
  const web = tmpDir('fanout-web-');
  fs.writeFileSync(path.join(web, 'index.html'), '<h1>fanout test page</h1>');
  fs.writeFileSync(path.join(web, 'app.js'), 'export const x = 1;');
  const f = await startFanoutd({ ini: ini(), webRoot: web });
  assert.deepEqual(JSON.parse((await f.http('/healthz')).body), { status: 'ok' });
  const ready = await f.http('/readyz');
  assert.equal(ready.status, 200);
  assert.equal(JSON.parse(ready.body).backends.mem.state, 'up');
  const idx = await f.http('/');
  assert.equal(idx.status, 200);
  assert.match(idx.body, /fanout test page/);
  const js = await f.http('/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'], /javascript/);
  assert.equal((await f.http('/missing.txt')).status, 404);
  await assert.rejects(wsClient(`ws://127.0.0.1:${f.port}/not-ws`));
  assert.equal(await f.stop(), 0);
  // web_root empty: no static files, routes still answer
  const g = await startFanoutd({ ini: ini(), webRoot: '' });
  assert.equal((await g.http('/')).status, 404);
  assert.equal((await g.http('/healthz')).status, 200);
  assert.equal(await g.stop(), 0);
});

await t.test('keepalive: an idle client gets a WebSocket ping every ping_interval_s', async () => {
  const f = await startFanoutd({ ini: ini('ping_interval_s = 1') });
  const c = await wsClient(f.ws);
  let pings = 0;
  c.ws.on('ping', () => pings++);
  await sleep(3500);
  assert.ok(pings >= 2, `${pings} pings in 3.5 s`);
  await c.close();
  const g = await startFanoutd({ ini: ini('ping_interval_s = 0') }); // 0: off
  const d = await wsClient(g.ws);
  let none = 0;
  d.ws.on('ping', () => none++);
  await sleep(1500);
  assert.equal(none, 0);
  await d.close();
  assert.equal(await f.stop(), 0);
  assert.equal(await g.stop(), 0);
});

await t.test('SIGTERM: every client sees 1001, readyz goes 503, exit code 0', async () => {
  const f = await startFanoutd({ ini: ini('shutdown_grace_ms = 3000') });
  const clients = [];
  for (let i = 0; i < 20; i++) {
    const c = await wsClient(f.ws);
    await c.subscribe('updates');
    clients.push(c);
  }
  f.kill('SIGTERM');
  const codes = await Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
  assert.deepEqual([...new Set(codes)], [1001]);
  assert.equal(await f.stop(), 0);
  assert.match(f.log(), /SIGTERM: draining 20 clients/);
});

await t.test('SIGTERM with a client that never reads: exit within shutdown_grace_ms', async () => {
  const f = await startFanoutd({ ini: ini('shutdown_grace_ms = 1500\nclient_queue_bytes = 64m') });
  const c = await wsClient(f.ws);
  await c.subscribe('big');
  c.ws._socket.pause();
  const p = await wsClient(f.ws);
  for (let i = 0; i < 400; i++) p.send({ type: 'publish', channel: 'big', data: 'q'.repeat(60000), id: i });
  await p.next((fr) => fr.id === 399, 20000);
  await p.close();
  const t0 = Date.now();
  assert.equal(await f.stop('SIGTERM'), 0);
  const took = Date.now() - t0;
  assert.ok(took < 6000, `exit took ${took} ms`);
});

t.done();
