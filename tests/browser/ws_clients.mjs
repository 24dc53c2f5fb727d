// ws_clients.mjs — fanoutd's own WebSocket framing and permessage-deflate
// against the clients people use: Chromium (through nginx, as deployed),
// the Node `ws` client and Python `websockets` (Debian python3-websockets).
// Each negotiates permessage-deflate, gets a 1 KiB JSON message compressed
// (checked on the wire by the server's counters), sends a compressed
// request, and closes cleanly both ways: Chromium reports wasClean on a
// server-initiated close (drain, 1001) and on its own close.
import assert from 'node:assert/strict';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, WebSocket, parseMetrics, run, haveCommand, tmpDir, SRCDIR, waitFor } from '../lib/harness.mjs';
import { startNginx, NGINX } from '../integration/cluster_env.mjs';
import { launch, missingBrowser, newPage } from './browser.mjs';

const t = tap();
const PYTHON = process.env.PYTHON3 || '/usr/bin/python3';
const ANSWER = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const data = { items: [...Array(40).keys()].map((i) => ({ id: i, name: `item-${i}`, price: i * 1.5 })) };
const ini = `[server]
allow_publish = true
permessage_deflate = true
shutdown_grace_ms = 5000

[backend mem]
plugin = loopback
`;

const missing = [missingBrowser(), haveCommand(NGINX) ? null : 'no nginx',
  (await run(PYTHON, ['-c', 'import websockets'])).code === 0 ? null : `no python3-websockets for ${PYTHON}`].filter(Boolean);
const names = ['Node ws: deflate negotiated, compressed message both ways, clean close',
  'Python websockets: deflate negotiated, compressed message both ways, clean close',
  'Chromium through nginx: deflate negotiated, message received, its own close is clean',
  'Chromium through nginx: the server\'s drain close (1001) is clean (wasClean)',
  'bytes on the wire: compressed frames at least 3x smaller, each compressed once'];
if (missing.length) {
  for (const n of names) t.skip(n, missing.join('; '));
  t.done();
} else {
  const f = await startFanoutd({ ini });
  const publish = async (channel) => {
    const p = await wsClient(f.ws);
    p.send({ type: 'publish', channel, data, id: 'p' });
    await p.next((fr) => fr.id === 'p');
    await p.close();
  };
  const metrics = async () => parseMetrics((await f.http('/metrics')).body);

  await t.test(names[0], async () => {
    const ws = new WebSocket(f.ws, { perMessageDeflate: { threshold: 0 } });
    const frames = [];
    let answer;
    ws.on('upgrade', (res) => (answer = res.headers['sec-websocket-extensions']));
    ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
    await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
    assert.equal(answer, ANSWER);
    assert.equal(ws.extensions, 'permessage-deflate');
    ws.send(JSON.stringify({ type: 'subscribe', channel: 'node', id: 's' })); // compressed (threshold 0)
    await waitFor(() => frames.some((m) => m.type === 'subscribed'), { what: 'subscribed' });
    await publish('node');
    await waitFor(() => frames.some((m) => m.type === 'message'), { what: 'message' });
    assert.deepEqual(frames.find((m) => m.type === 'message').data, data);
    const closed = new Promise((r) => ws.on('close', (code) => r(code)));
    ws.close(1000, 'done');
    assert.equal(await closed, 1000);
  });

  await t.test(names[1], async () => {
    const script = `
import asyncio, json, sys
import websockets
async def main():
    async with websockets.connect(sys.argv[1]) as ws:
        ext = ws.response_headers.get('Sec-WebSocket-Extensions')
        await ws.send(json.dumps({"type": "subscribe", "channel": "py", "id": "s", "pad": "x" * 200}))
        while True:
            m = json.loads(await ws.recv())
            if m.get("type") == "subscribed": break
        print("READY", flush=True)
        while True:
            m = json.loads(await ws.recv())
            if m.get("type") == "message": break
        await ws.close(1000, "done")
        print(json.dumps({"ext": ext, "data": m["data"], "close": ws.close_code}), flush=True)
asyncio.run(main())
`;
    const dir = tmpDir('fanout-py-');
    const file = path.join(dir, 'client.py');
    (await import('node:fs')).writeFileSync(file, script);
    const proc = run(PYTHON, [file, f.ws], { timeoutMs: 20000 });
    // publish once the client is subscribed (the broker has no history here)
    await waitFor(async () => (await metrics())['fanout_subscriptions'] >= 1, { what: 'python subscribed' });
    await publish('py');
    const r = await proc;
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(out.ext, ANSWER);
    assert.deepEqual(out.data, data);
    assert.equal(out.close, 1000);
  });

  const nginx = await startNginx({ upstreamPorts: [f.port] });
  const browser = await launch();
  const page = await newPage(browser);
  await page.goto(nginx.url + '/');
  const open = (id) => page.evaluate(([url, id]) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const st = { frames: [], close: null };
    window['ws_' + id] = ws;
    window['st_' + id] = st;
    ws.onmessage = (e) => st.frames.push(JSON.parse(e.data));
    ws.onclose = (e) => { st.close = { code: e.code, reason: e.reason, wasClean: e.wasClean }; };
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'chrome', id: 's', pad: 'y'.repeat(300) }));
      resolve(ws.extensions);
    };
    ws.onerror = () => reject(new Error('websocket error'));
  }), [nginx.ws, id]);
  const state = (id) => page.evaluate((id) => window['st_' + id], id);

  await t.test(names[2], async () => {
    assert.equal(await open('a'), ANSWER);
    await waitFor(async () => (await state('a')).frames.some((m) => m.type === 'subscribed'), { what: 'chromium subscribed' });
    await publish('chrome');
    await waitFor(async () => (await state('a')).frames.some((m) => m.type === 'message'), { what: 'chromium message' });
    assert.deepEqual((await state('a')).frames.find((m) => m.type === 'message').data, data);
    await page.evaluate(() => window.ws_a.close(1000, 'bye'));
    await waitFor(async () => (await state('a')).close, { what: 'chromium close event' });
    // fanoutd echoes the code (RFC 6455 5.5.1), not the reason
    assert.deepEqual((await state('a')).close, { code: 1000, reason: '', wasClean: true });
  });

  await t.test(names[3], async () => {
    assert.equal(await open('b'), ANSWER);
    await waitFor(async () => (await state('b')).frames.some((m) => m.type === 'subscribed'), { what: 'chromium subscribed' });
    process.kill(f.pid, 'SIGTERM');
    await waitFor(async () => (await state('b')).close, { what: 'chromium close event', timeoutMs: 8000 });
    const c = (await state('b')).close;
    assert.equal(c.code, 1001);
    assert.equal(c.wasClean, true, JSON.stringify(c));
    assert.deepEqual(page.errors.filter((e) => !/WebSocket/.test(e)), []);
  });

  await t.test(names[4], async () => {
    // f is draining/stopped: read the counters from a fresh instance and
    // one message to three deflate clients (Node ws, threshold 0)
    const g = await startFanoutd({ ini });
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(g.ws, { perMessageDeflate: true });
      const got = [];
      ws.on('message', (d) => got.push(JSON.parse(d.toString())));
      await new Promise((r) => ws.on('open', r));
      ws.send(JSON.stringify({ type: 'subscribe', channel: 'bytes', id: 's' }));
      await waitFor(() => got.some((m) => m.type === 'subscribed'), { what: 'subscribed' });
      clients.push({ ws, got });
    }
    const before = parseMetrics((await g.http('/metrics')).body);
    const p = await wsClient(g.ws);
    p.send({ type: 'publish', channel: 'bytes', data, id: 'p' });
    await p.next((fr) => fr.id === 'p');
    await waitFor(() => clients.every((c) => c.got.some((m) => m.type === 'message')), { what: 'every client got it' });
    const m = parseMetrics((await g.http('/metrics')).body);
    const d = (k) => m[k] - before[k];
    assert.equal(d('fanout_deflate_frames_total'), 1, 'compressed once for three subscribers');
    const zin = d('fanout_deflate_bytes_total{stage="in"}'), zout = d('fanout_deflate_bytes_total{stage="out"}');
    assert.ok(zin >= 1024 && zout * 3 <= zin, `${zin} -> ${zout} bytes`);
    t.diag(`a ${zin}-byte message frame went out as ${zout} bytes (${(zin / zout).toFixed(1)}x smaller), compressed once for 3 subscribers`);
    for (const c of clients) c.ws.close();
    await p.close();
    assert.equal(await g.stop(), 0);
  });

  await browser.close();
  assert.equal(await f.stop(), 0);
  await nginx.stop();
  t.done();
}
