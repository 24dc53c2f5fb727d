// security_http.mjs — the HTTP side of fanoutd attacked with raw sockets:
// pipelined requests (each answered once, nothing leaked: run under ASan
// with leak checking in the sanitizer suite), empty frames.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, pluginPath, waitFor, freePort, tmpDir, httpGet, run, FANOUTD } from '../lib/harness.mjs';
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

await t.test('HEAD on every route; other methods 405 with Allow', async () => {
  const web = tmpDir('fanout-web-');
  fs.writeFileSync(path.join(web, 'index.html'), '<h1>head test</h1>');
  const f = await startFanoutd({ ini: ini(), webRoot: web });
  for (const [p, status] of [['/healthz', 200], ['/readyz', 200], ['/metrics', 200], ['/', 200], ['/index.html', 200], ['/nope', 404]]) {
    const get = await rawRequest(f.port, req('GET', p), { want: 1 });
    const head = await rawRequest(f.port, req('HEAD', p) + req('GET', '/healthz'), { want: 2, methods: ['HEAD', 'GET'] });
    assert.equal(head.responses[0].status, status, p);
    assert.equal(head.responses[0].body, '', `HEAD ${p}: no body`);
    if (p !== '/metrics' && p !== '/readyz') // these change between two requests
      assert.equal(head.responses[0].headers['content-length'], get.responses[0].headers['content-length'], p);
    assert.equal(head.responses[1].status, 200, 'the connection goes on after HEAD');
    assert.deepEqual(JSON.parse(head.responses[1].body), { status: 'ok' });
  }
  for (const m of ['POST', 'PUT', 'DELETE']) {
    const r = await rawRequest(f.port, req(m, '/healthz', { 'Content-Length': '0' }), { want: 1 });
    assert.equal(r.responses[0].status, 405, m);
    assert.equal(r.responses[0].headers.allow, 'GET, HEAD');
  }
  assert.equal(await f.stop(), 0);
});

await t.test('static files: nothing outside web_root through symlinks, no dotfiles', async () => {
  const root = tmpDir('fanout-web-');
  const outside = tmpDir('fanout-outside-');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'TOP SECRET');
  fs.writeFileSync(path.join(root, 'index.html'), '<h1>root</h1>');
  fs.writeFileSync(path.join(root, 'app.js'), 'export const a = 1;');
  fs.writeFileSync(path.join(root, '.env'), 'PASSWORD=hunter2');
  fs.mkdirSync(path.join(root, '.git'));
  fs.writeFileSync(path.join(root, '.git', 'config'), '[core]');
  fs.mkdirSync(path.join(root, 'sub'));
  fs.writeFileSync(path.join(root, 'sub', 'index.html'), '<h1>sub</h1>');
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'leak.txt'));
  fs.symlinkSync(outside, path.join(root, 'outdir'));
  fs.symlinkSync('/etc/passwd', path.join(root, 'passwd'));
  fs.symlinkSync('app.js', path.join(root, 'alias.js')); // stays inside: fine
  const f = await startFanoutd({ ini: ini(), webRoot: root });
  const get = async (p) => (await rawRequest(f.port, req('GET', p), { want: 1 })).responses[0];
  assert.equal((await get('/')).body, '<h1>root</h1>');
  assert.equal((await get('/sub/')).body, '<h1>sub</h1>');
  assert.match((await get('/app.js')).headers['content-type'], /javascript/);
  assert.equal((await get('/alias.js')).body, 'export const a = 1;');
  for (const p of ['/leak.txt', '/outdir/secret.txt', '/passwd', '/.env', '/.git/config', '/sub/../.env',
    '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc/passwd', '/sub', '/%2eenv']) {
    const r = await get(p);
    assert.ok(r, `${p}: an answer`);
    assert.notEqual(r.status, 200, `${p} must not be served: ${r.body}`);
    assert.doesNotMatch(r.body, /SECRET|hunter2|root:|\[core\]/, p);
  }
  assert.equal(await f.stop(), 0);
});

await t.test('admin_listen: /metrics moves there, /healthz and /readyz on both, nothing else', async () => {
  const admin = await freePort();
  const f = await startFanoutd({ ini: ini(`admin_listen = 127.0.0.1:${admin}`) });
  assert.equal((await f.http('/metrics')).status, 404);
  const m = await httpGet(admin, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /^# HELP fanout_clients /);
  for (const p of ['/healthz', '/readyz']) {
    assert.equal((await f.http(p)).status, 200, p);
    assert.equal((await httpGet(admin, p)).status, 200, `admin ${p}`);
  }
  assert.equal((await httpGet(admin, '/')).status, 404);
  assert.equal((await httpGet(admin, '/index.html')).status, 404);
  const up2 = await rawRequest(admin, up('/ws'), { want: 1 });
  assert.equal(up2.responses[0].status, 404, 'no WebSocket on the admin port');
  const c = await wsClient(f.ws); // the public port still upgrades
  await c.next('hello');
  await c.close();
  assert.equal(await f.stop(), 0);
});

await t.test('HTTP publish API: key, body checks, delivered once the broker accepted it', async () => {
  const key = 'k-0123456789abcdef-secret';
  const f = await startFanoutd({ ini: ini(`publish_api_key = ${key}\nmax_message_bytes = 4096`) });
  const sub = await wsClient(f.ws);
  await sub.subscribe('news');
  const post = (body, headers = {}) => {
    const b = typeof body === 'string' ? body : JSON.stringify(body);
    return rawRequest(f.port, req('POST', '/api/publish', {
      'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(b)), ...headers,
    }) + b, { want: 1 });
  };
  const ok = await post({ channel: 'news', data: { n: 1.10, s: 'x' } }, { Authorization: `apikey ${key}` });
  assert.equal(ok.responses[0].status, 200, ok.raw);
  // loopback keeps history: the answer is the message's position
  const pos = JSON.parse(ok.responses[0].body);
  assert.match(pos.epoch, /^[A-Za-z0-9_-]{1,64}$/);
  assert.equal(pos.offset, 1);
  const msg = await sub.next('message');
  assert.equal(msg.channel, 'news');
  assert.deepEqual(msg.data, { n: 1.1, s: 'x' });
  for (const [h, why] of [[{}, 'no key'], [{ Authorization: 'apikey wrong-key-wrong-key' }, 'wrong key'],
    [{ Authorization: `Bearer ${key}` }, 'wrong scheme'], [{ Authorization: `apikey ${key}x` }, 'longer key']]) {
    const r = await post({ channel: 'news', data: 1 }, h);
    assert.equal(r.responses[0].status, 401, why);
  }
  const bad = await post('{"channel":"news","data":', { Authorization: `apikey ${key}` });
  assert.equal(bad.responses[0].status, 400);
  assert.match(JSON.parse(bad.responses[0].body).error, /bad_json: invalid JSON/);
  const badch = await post({ channel: 'bad channel!', data: 1 }, { Authorization: `apikey ${key}` });
  assert.equal(badch.responses[0].status, 400);
  assert.match(JSON.parse(badch.responses[0].body).error, /bad_channel/);
  const nodata = await post({ channel: 'news' }, { Authorization: `apikey ${key}` });
  assert.equal(nodata.responses[0].status, 400);
  const big = await post({ channel: 'news', data: 'x'.repeat(5000) }, { Authorization: `apikey ${key}` });
  assert.equal(big.responses[0].status, 413);
  const get = await rawRequest(f.port, req('GET', '/api/publish', { Authorization: `apikey ${key}` }), { want: 1 });
  assert.equal(get.responses[0].status, 405);
  // nothing of the refused ones arrived
  const n = await post({ channel: 'news', data: 'last' }, { Authorization: `apikey ${key}` });
  assert.equal(n.responses[0].status, 200);
  assert.deepEqual(JSON.parse(n.responses[0].body), { epoch: pos.epoch, offset: 2 });
  assert.equal((await sub.next('message')).data, 'last');
  assert.equal(sub.all((fr) => fr.type === 'message').length, 2);
  assert.ok((await refusals(f)).api_key >= 4);
  assert.doesNotMatch(f.log(), new RegExp(key));
  await sub.close();
  assert.equal(await f.stop(), 0);
  // a backend that confirms later: the answer waits for it, and a request
  // pipelined behind the POST is answered after it, in order
  const d = await startFanoutd({ ini: `[server]\ninstance = sec1\npublish_api_key = ${key}\n[backend mem]\nplugin = ${lb}\ndelay_confirm_ms = 100\n` });
  const dsub = await wsClient(d.ws);
  await dsub.subscribe('news', 10000);
  const body = JSON.stringify({ channel: 'news', data: 'slow' });
  const t0 = Date.now();
  const pr = await rawRequest(d.port, [req('POST', '/api/publish', { Authorization: `apikey ${key}`, 'Content-Length': String(body.length) }) + body + req('GET', '/healthz')], { want: 2 });
  assert.deepEqual(pr.responses.map((x) => x.status), [200, 200], pr.raw);
  assert.ok(Date.now() - t0 >= 90, 'answered once the backend confirmed');
  assert.deepEqual(JSON.parse(pr.responses[1].body), { status: 'ok' });
  assert.equal((await dsub.next('message')).data, 'slow');
  // the connection closes while the publish is in flight: nothing breaks
  const gone = await rawRequest(d.port, req('POST', '/api/publish', { Authorization: `apikey ${key}`, 'Content-Length': String(body.length) }) + body, { timeoutMs: 20 });
  assert.equal(gone.responses.length, 0);
  assert.equal((await dsub.next('message')).data, 'slow');
  await dsub.close();
  assert.equal(await d.stop(), 0);
  // off unless a key is set
  const g = await startFanoutd({ ini: ini() });
  const off = await rawRequest(g.port, req('POST', '/api/publish', { 'Content-Length': '2' }) + '{}', { want: 1 });
  assert.equal(off.responses[0].status, 404);
  assert.equal(await g.stop(), 0);
});

await t.test('431 for an oversized header, 414 for an oversized URL (routes and upgrades)', async () => {
  const f = await startFanoutd({ ini: ini() });
  const big = 'a'.repeat(9000);
  const cases = [
    [req('GET', '/healthz?' + big), 414],
    [req('GET', '/' + big), 414],
    [req('GET', '/healthz', { Cookie: 'c=' + big }), 431],
    [req('GET', '/healthz', { 'User-Agent': big }), 431],
    [req('GET', '/ws?channel=' + big, upgradeHeaders()), 414],
    [req('GET', '/ws', { ...upgradeHeaders(), Cookie: big }), 431],
    [req('GET', '/healthz', { Cookie: 'c=' + 'a'.repeat(7000) }), 200], // under the limit
  ];
  for (const [r, want] of cases) {
    const res = await rawRequest(f.port, r, { want: 1 });
    assert.equal(res.responses[0]?.status, want, `${r.slice(0, 60)}…: ${res.raw.slice(0, 200)}`);
  }
  const rf = await refusals(f);
  assert.equal(rf.url_too_long, 3);
  assert.equal(rf.headers, 3);
  assert.equal(await f.stop(), 0);
});

await t.test('handshake_timeout_s: a request head that never completes is cut', async () => {
  const f = await startFanoutd({ ini: ini('handshake_timeout_s = 2') });
  const s = await tcp(f.port);
  s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // never finished
  const t0 = Date.now();
  assert.equal(await closedSoon(s, 8000), true, 'closed');
  const took = Date.now() - t0;
  assert.ok(took >= 1500 && took < 7000, `closed after ${took} ms`);
  const silent = await tcp(f.port); // nothing at all
  assert.equal(await closedSoon(silent, 8000), true, 'a silent connection is closed too');
  await waitFor(async () => (await refusals(f)).timeout >= 2, { what: 'timeouts counted' });
  assert.equal(await f.stop(), 0);
});

await t.test('idle_timeout_s: a WebSocket client that sends nothing is closed 1001 even with pings off', async () => {
  const f = await startFanoutd({ ini: ini('ping_interval_s = 0\nidle_timeout_s = 2') });
  const quiet = await wsClient(f.ws);
  const chatty = await wsClient(f.ws);
  await chatty.next('hello');
  const timer = setInterval(() => chatty.send({ type: 'ping' }), 400);
  const t0 = Date.now();
  const { code } = await quiet.closed;
  const took = Date.now() - t0;
  clearInterval(timer);
  assert.equal(code, 1001);
  assert.ok(took >= 1500 && took < 6000, `closed after ${took} ms`);
  assert.equal(chatty.closeInfo, null, 'a client that talks stays');
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m.fanout_idle_timeouts_total, 1);
  await chatty.close();
  assert.equal(await f.stop(), 0);
});

await t.test('--check-config refuses what start-up would: a listen name, control characters in instance, a broker URL', async () => {
  const dir = tmpDir('fanout-cfg-');
  const file = path.join(dir, 'f.ini');
  fs.writeFileSync(file, `[server]\n[backend mem]\nplugin = ${lb}\n`);
  const check = (...o) => run(FANOUTD, ['-c', file, '--check-config', ...o.flatMap((x) => ['-o', x])]);
  let r = await check('server.listen=localhost:8080');
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /listen: not a numeric IPv4 address/);
  r = await check('server.admin_listen=example.com:9090');
  assert.equal(r.code, 3, r.stderr);
  r = await check('server.instance=c1\nforged log line');
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /instance: control characters are not allowed/);
  r = await check('server.instance=c1\x1b[31m');
  assert.equal(r.code, 3, r.stderr);
  r = await check('server.allowed_origins=https://ok.example, https://*');
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /allowed_origins: "https:\/\/\*"/);
  r = await check('server.trusted_proxies=10.0.0.1/8');
  assert.equal(r.code, 3, r.stderr);
  r = await check('server.publish_api_key=short');
  assert.equal(r.code, 3, r.stderr);
  r = await check('server.listen=[::1]:8080', 'server.instance=édge-1', 'server.trusted_proxies=10.0.0.0/8 ::1');
  assert.equal(r.code, 0, r.stderr);
  // a broker URL the backend refuses at start-up is refused here too
  fs.writeFileSync(file, `[server]\n[backend v]\nplugin = ${pluginPath('valkey')}\nurl = rediss://127.0.0.1:6379/0\n`);
  r = await run(FANOUTD, ['-c', file, '--check-config']);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /url: TLS \(rediss:\/\/\) is not supported/);
  fs.writeFileSync(file, `[server]\n[backend v]\nplugin = ${pluginPath('valkey')}\nurl = redis://127.0.0.1:99999/0\n`);
  r = await run(FANOUTD, ['-c', file, '--check-config']);
  assert.equal(r.code, 5, r.stderr);
});

t.done();
