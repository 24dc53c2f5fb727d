// security_http.mjs — the HTTP side of fanoutd attacked with raw sockets:
// pipelined requests (each answered once, nothing leaked: run under ASan
// with leak checking in the sanitizer suite), empty frames.
import assert from 'node:assert/strict';
import net from 'node:net';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, pluginPath, waitFor } from '../lib/harness.mjs';
import { rawRequest, req, upgradeHeaders } from '../lib/rawhttp.mjs';
import { parseMetrics } from '../lib/harness.mjs';

const t = tap();
const lb = pluginPath('loopback');
const ini = (server = '') => `[server]\ninstance = sec1\n${server}\n[backend mem]\nplugin = ${lb}\n`;

await t.test('pipelined requests: each answered once, in order, with its own body', async () => {
  const f = await startFanoutd({ ini: ini() });
  const routes = ['/metrics', '/healthz', '/readyz'];
  for (const n of [2, 3]) {
    for (const first of routes) {
      const paths = [first, ...routes.filter((r) => r !== first)].slice(0, n);
      const r = await rawRequest(f.port, paths.map((p) => req('GET', p)).join(''), { want: n });
      assert.equal(r.responses.length, n, `${paths}: ${n} responses, got ${JSON.stringify(r.raw.slice(0, 600))}`);
      r.responses.forEach((res, i) => {
        assert.equal(res.status, 200, paths[i]);
        if (paths[i] === '/healthz') assert.deepEqual(JSON.parse(res.body), { status: 'ok' });
        if (paths[i] === '/readyz') assert.equal(JSON.parse(res.body).status, 'ready');
        if (paths[i] === '/metrics') assert.match(res.body, /^# HELP fanout_clients /);
      });
      assert.equal(r.rest.length, 0, 'nothing after the last response');
    }
  }
  // many connections each pipelining /metrics twice: under ASan the
  // leak checker at exit sees any body that was never freed
  await Promise.all(Array.from({ length: 20 }, () =>
    rawRequest(f.port, req('GET', '/metrics') + req('GET', '/metrics'), { want: 2 }).then((r) =>
      assert.equal(r.responses.length, 2))));
  assert.equal(await f.stop(), 0); // throws on a sanitizer report
});

await t.test('an empty text frame is error bad_json; the connection stays', async () => {
  const f = await startFanoutd({ ini: ini() });
  const c = await wsClient(f.ws);
  await c.next('hello');
  c.ws.send('');
  const e = await c.next('error');
  assert.equal(e.code, 'bad_json');
  assert.match(e.message, /empty/);
  c.send({ type: 'ping', id: 7 });
  assert.equal((await c.next((fr) => fr.id === 7)).type, 'pong');
  await c.close();
  assert.equal(await f.stop(), 0);
});

const up = (path, extra = {}) => req('GET', path, upgradeHeaders(extra));
const refusals = async (f) => {
  const m = parseMetrics((await f.http('/metrics')).body);
  const out = {};
  for (const [k, v] of Object.entries(m)) {
    const r = k.match(/^fanout_refused_total\{reason="(\w+)"\}$/);
    if (r) out[r[1]] = v;
  }
  return out;
};

await t.test('Origin: exact scheme://host[:port], leading *. only; anything else is HTTP 403', async () => {
  const f = await startFanoutd({
    ini: ini('allowed_origins = https://app.example.com, https://*.good.example, http://127.0.0.1:8080'),
  });
  const longHost = 'a'.repeat(60) + '.' + 'b'.repeat(60) + '.' + 'c'.repeat(60) + '.' + 'd'.repeat(60) + '.example.com';
  const cases = [
    // [origin header value(s), expected status]
    [undefined, 101],                                     // not a browser
    ['https://app.example.com', 101],
    ['HTTPS://APP.EXAMPLE.COM', 101],                     // case-insensitive
    ['https://app.example.com:443', 101],                 // default port made explicit
    ['https://x.good.example', 101],
    ['https://a.b.good.example', 101],
    ['http://127.0.0.1:8080', 101],
    ['https://good.example', 403],                        // *. needs a label in front
    ['https://app.example.com.evil.com', 403],
    ['https://evil.com/https://app.example.com', 403],    // fnmatch's * crossed '/'
    ['https://evilgood.example', 403],
    ['http://app.example.com', 403],                      // scheme differs
    ['https://app.example.com:8443', 403],                // port differs
    ['http://127.0.0.1:80', 403],
    ['null', 403],
    ['https://app.example.com/', 403],                    // origins have no path
    ['', 403],
    [`https://${longHost}`, 403],                         // >= 256 bytes: failed open before
    [['https://evil.com', 'https://app.example.com'], 403], // two headers were joined
    [['https://app.example.com', 'https://app.example.com'], 403],
  ];
  for (const [origin, want] of cases) {
    const h = origin === undefined ? {} : { Origin: origin };
    const r = await rawRequest(f.port, up('/ws', h), { want: 1 });
    assert.equal(r.responses[0]?.status, want, `Origin ${JSON.stringify(origin)}: ${r.raw.slice(0, 200)}`);
    if (want === 403) assert.match(r.responses[0].body, /origin not allowed/);
  }
  // with a long legal origin listed, it is allowed (no fixed buffer)
  const g = await startFanoutd({ ini: ini(`allowed_origins = https://${longHost}`) });
  assert.equal((await rawRequest(g.port, up('/ws', { Origin: `https://${longHost}` }), { want: 1 })).responses[0].status, 101);
  assert.equal((await refusals(f)).origin, cases.filter((c) => c[1] === 403).length);
  assert.equal(await f.stop(), 0);
  assert.equal(await g.stop(), 0);
});

await t.test('an upgrade naming another subprotocol or path is refused and never becomes a client', async () => {
  const f = await startFanoutd({ ini: ini('max_clients = 2\nallowed_origins = https://app.example.com') });
  const cases = [
    ['/anything', { 'Sec-WebSocket-Protocol': 'http' }, 404],
    ['/ws', { 'Sec-WebSocket-Protocol': 'http' }, 400],
    ['/ws', { 'Sec-WebSocket-Protocol': 'fanout-http' }, 400],
    ['/ws', { 'Sec-WebSocket-Protocol': 'fanout-loop' }, 400],
    ['/ws', { 'Sec-WebSocket-Protocol': 'fanout-ws' }, 400],
    ['/metrics', { 'Sec-WebSocket-Protocol': 'fanout-ws' }, 404],
    ['/healthz', {}, 404],
    ['/', {}, 404],
    ['/ws', { 'Sec-WebSocket-Protocol': 'http', Origin: 'https://evil.com' }, 400],
  ];
  for (const [path, h, want] of cases) {
    const r = await rawRequest(f.port, up(path, h), { want: 1 });
    assert.equal(r.responses[0]?.status, want, `${path} ${JSON.stringify(h)}: ${r.raw.slice(0, 200)}`);
  }
  // they never counted as clients: two real clients still fit under max_clients = 2
  const a = await wsClient(f.ws);
  const b = await wsClient(f.ws);
  await a.next('hello');
  await b.next('hello');
  const rf = await refusals(f);
  assert.equal(rf.path, 4);
  assert.equal(rf.subprotocol, 5);
  await Promise.all([a.close(), b.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('only a WebSocket upgrade is served: h2c and others refused', async () => {
  const f = await startFanoutd({ ini: ini() });
  for (const u of ['h2c', 'foo']) {
    const r = await rawRequest(f.port, req('GET', '/ws', { ...upgradeHeaders(), Upgrade: u, 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' }), { want: 1 });
    assert.ok([400, 403].includes(r.responses[0]?.status), `${u}: ${r.raw.slice(0, 200)}`);
    assert.doesNotMatch(r.raw, /101 Switching/);
  }
  const r = await rawRequest(f.port, req('POST', '/ws', upgradeHeaders()), { want: 1 });
  assert.equal(r.responses[0]?.status, 405);
  assert.equal(await f.stop(), 0);
});

/** Open a raw TCP connection and resolve once it is connected. */
const tcp = (port) => new Promise((resolve, reject) => {
  const s = net.connect(port, '127.0.0.1', () => resolve(s));
  s.on('error', reject);
});
const closedSoon = (s, ms = 3000) => new Promise((resolve) => {
  const t = setTimeout(() => resolve(false), ms);
  s.on('close', () => { clearTimeout(t); resolve(true); });
  s.resume();
});

await t.test('max_connections_per_ip: the next direct connection is closed at accept', async () => {
  const f = await startFanoutd({ ini: ini('max_connections_per_ip = 3') });
  // a connection that stays open (the harness's own HTTP checks may still
  // be closing and hold a slot for a moment)
  const held = () => waitFor(async () => {
    const s = await tcp(f.port);
    if (await closedSoon(s, 300)) return null;
    return s;
  }, { what: 'a held connection' });
  const open = [await held(), await held()];
  open.push(await wsClient(f.ws));
  await open[2].next('hello');
  const over = await tcp(f.port);
  assert.equal(await closedSoon(over), true, 'the 4th connection is closed');
  open[0].destroy();
  await waitFor(async () => {
    const s = await tcp(f.port);
    const closed = await closedSoon(s, 300);
    s.destroy();
    return !closed;
  }, { what: 'a slot after one closed' });
  for (const s of open.slice(0, 2)) s.destroy();
  await open[2].close();
  assert.ok((await waitFor(() => refusals(f).catch(() => null))).per_ip >= 1);
  assert.match(f.log(), /refused 127\.0\.0\.1 \(per_ip\)/);
  assert.equal(await f.stop(), 0);
});

await t.test('trusted_proxies: X-Forwarded-For names the client for the per-IP cap and logs', async () => {
  const f = await startFanoutd({ ini: ini('max_connections_per_ip = 2\ntrusted_proxies = 127.0.0.0/8') });
  const via = (xff) => wsClient(f.ws, { headers: { 'X-Forwarded-For': xff } });
  // a forged left part is ignored: the proxy appended the real client
  const a1 = await via('6.6.6.6, 203.0.113.5');
  const a2 = await via('203.0.113.5');
  await a1.next('hello');
  await a2.next('hello');
  await assert.rejects(via('203.0.113.5'), /429/);
  // another client behind the same proxy still gets in
  const b = await via('198.51.100.7');
  await b.next('hello');
  // direct connections from the proxy's own address are not capped
  const direct = [await wsClient(f.ws), await wsClient(f.ws), await wsClient(f.ws)];
  await Promise.all(direct.map((d) => d.next('hello')));
  assert.match(f.log(), /refused 203\.0\.113\.5 \(per_ip\)/);
  await a1.close();
  const a3 = await via('203.0.113.5');
  await a3.next('hello');
  await Promise.all([a2, a3, b, ...direct].map((c) => c.close()));
  // an untrusted peer's X-Forwarded-For is not believed
  const g = await startFanoutd({ ini: ini('max_connections_per_ip = 1\ntrusted_proxies = 10.0.0.0/8') });
  const c1 = await waitFor(() => wsClient(g.ws, { headers: { 'X-Forwarded-For': '203.0.113.9' } }),
    { what: 'the one allowed connection' });
  await c1.next('hello');
  const c2 = await tcp(g.port);
  assert.equal(await closedSoon(c2), true, 'counted by the peer address, not the header');
  await c1.close();
  assert.equal(await f.stop(), 0);
  assert.equal(await g.stop(), 0);
});

t.done();
