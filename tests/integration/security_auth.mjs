// security_auth.mjs — access tokens and request limits against a real
// fanoutd, with real WebSocket clients and raw sockets:
//   tokens valid / expired / not yet valid / forged / "alg":"none" / wrong
//   key type (HS token against an RS key and the other way round), from the
//   query and from the Authorization header: HTTP 401 at the upgrade;
//   claims enforced for subscribe (also ?channel=) and publish; in-band
//   refresh extends the session, expiry without one closes 4003; a token
//   never reaches the log (log_level = debug, lws's own lines included);
//   max_requests_per_s: rate_limited, then 1008 for sustained abuse;
//   max_channels_per_ip (addresses from X-Forwarded-For behind a trusted
//   proxy); tokens on Server-Sent Events (401, claims, an "expired" event).
// Keys are generated with openssl inside the test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, parseMetrics, pluginPath, waitFor, WebSocket, run, FANOUTD, tmpDir } from '../lib/harness.mjs';
import { makeKeys, sign, now } from '../lib/jwt.mjs';
import { sseConnect } from '../lib/sse.mjs';

const t = tap();
const lb = pluginPath('loopback');
const SECRET = 'test-secret-test-secret-test-secret-0123';
const ini = (auth, server = '') =>
  `[server]\ninstance = sec1\nallow_publish = true\nlog_level = debug\n${server}\n[auth]\n${auth}\n[backend mem]\nplugin = ${lb}\n`;

/** Try an upgrade: {status, headers, body} when refused, {client} when open. */
function upgrade(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        req.destroy(); // ws leaves the socket to whoever handles this event
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', (e) => reject(e));
  });
}

const keys = await makeKeys();
const good = (extra = {}) => ({ exp: now() + 60, sub: 'alice', channels: ['news.*', 'user/alice'], publish: ['chat.*'], ...extra });

await t.test('HS256: a valid token opens, from the query and from the Authorization header', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const tok = sign('HS256', SECRET, good());
  const a = await wsClient(`${f.ws}?token=${tok}`);
  await a.next('hello');
  const b = await wsClient(f.ws, { headers: { Authorization: `Bearer ${tok}` } });
  await b.next('hello');
  await Promise.all([a.close(), b.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('401 at the upgrade: missing, expired, not yet valid, forged, alg none, twice', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const cases = [
    ['no token', f.ws, {}],
    ['expired', `${f.ws}?token=${sign('HS256', SECRET, good({ exp: now() - 1 }))}`, {}],
    ['not yet valid', `${f.ws}?token=${sign('HS256', SECRET, good({ nbf: now() + 120 }))}`, {}],
    ['no exp', `${f.ws}?token=${sign('HS256', SECRET, { sub: 'x', channels: ['*'] })}`, {}],
    ['forged (other secret)', f.ws, { Authorization: `Bearer ${sign('HS256', SECRET + 'x', good())}` }],
    ['alg none', `${f.ws}?token=${sign('none', null, good(), { alg: 'none' })}`, {}],
    ['alg none, any signature', `${f.ws}?token=${sign('none', null, good(), { alg: 'none' })}c2ln`, {}],
    ['RS256 token (wrong key type)', `${f.ws}?token=${sign('RS256', keys.rsaPriv, good())}`, {}],
    ['garbage', `${f.ws}?token=not.a.token`, {}],
    ['query and header', `${f.ws}?token=${sign('HS256', SECRET, good())}`, { Authorization: `Bearer ${sign('HS256', SECRET, good())}` }],
    ['twice in the query', `${f.ws}?token=${sign('HS256', SECRET, good())}&token=${sign('HS256', SECRET, good())}`, {}],
  ];
  for (const [what, url, headers] of cases) {
    const r = await upgrade(url, headers);
    assert.equal(r.status, 401, `${what}: ${r.status}`);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="fanout"', what);
  }
  // a raw socket sees a complete HTTP answer, and the token is not echoed
  const tok = sign('HS256', SECRET + 'x', good());
  const raw = await new Promise((resolve, reject) => {
    const s = net.connect(f.port, '127.0.0.1', () => {
      s.write(`GET /ws?token=${tok} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      if (/\r\n\r\n[\s\S]*\n$/.test(buf)) { s.destroy(); resolve(buf); }
    });
    s.on('error', reject);
    setTimeout(() => { s.destroy(); resolve(buf); }, 5000);
  });
  assert.match(raw, /^HTTP\/1\.[01] 401 /); // lws writes 1.0 before the request is routed
  assert.match(raw, /bad signature/);
  assert.ok(!raw.includes(tok.split('.')[2]), 'the answer echoes the token');
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m['fanout_refused_total{reason="token"}'], cases.length + 1);
  assert.equal(m.fanout_clients, 0);
  assert.equal(await f.stop(), 0);
});

await t.test('RS256 and ES256 keys: their own tokens open; HS tokens keyed with the public key, and the other type, get 401', async () => {
  for (const [alg, pubPath, priv, other] of [
    ['RS256', keys.rsaPubPath, keys.rsaPriv, ['ES256', keys.ecPriv]],
    ['ES256', keys.ecPubPath, keys.ecPriv, ['RS256', keys.rsaPriv]],
  ]) {
    const f = await startFanoutd({ ini: ini(`jwt_public_key = ${pubPath}`) });
    const c = await wsClient(`${f.ws}?token=${sign(alg, priv, good())}`);
    await c.subscribe('news.1');
    await c.close();
    const pub = fs.readFileSync(pubPath, 'utf8');
    // the key-confusion forgery: HMAC keyed with the server's public key text
    for (const [what, tok] of [
      ['HS256 keyed with the public key', sign('HS256', pub, good())],
      ['HS256 keyed with the public key, header says ' + alg, sign('HS256', pub, good(), { alg, typ: 'JWT' })],
      [`${other[0]} token`, sign(other[0], other[1], good())],
      ['HS256 with a secret', sign('HS256', SECRET, good())],
      ['expired', sign(alg, priv, good({ exp: now() - 5 }))],
    ]) {
      const r = await upgrade(`${f.ws}?token=${tok}`);
      assert.equal(r.status, 401, `${alg} key, ${what}: ${r.status}`);
    }
    assert.match(f.log(), new RegExp(`tokens required: ${alg}`));
    assert.equal(await f.stop(), 0);
  }
});

await t.test('claims: subscribe (also ?channel=) and publish only where the token says', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const tok = sign('HS256', SECRET, good());
  const c = await wsClient(`${f.ws}?token=${tok}&channel=news.a&channel=secret.x`);
  await c.next((fr) => fr.type === 'subscribed' && fr.channel === 'news.a');
  const e = await c.next((fr) => fr.type === 'error');
  assert.equal(e.code, 'forbidden');
  await c.subscribe('user/alice');
  c.send({ type: 'subscribe', channel: 'user/bob', id: 'b' });
  assert.equal((await c.next((fr) => fr.id === 'b')).code, 'forbidden');
  c.send({ type: 'publish', channel: 'chat.1', data: { hi: 1 }, id: 'p1' });
  assert.equal((await c.next((fr) => fr.id === 'p1')).type, 'published');
  c.send({ type: 'publish', channel: 'news.a', data: { hi: 2 }, id: 'p2' });
  const p2 = await c.next((fr) => fr.id === 'p2');
  assert.equal(p2.type, 'error');
  assert.equal(p2.code, 'forbidden');
  // a token without channels/publish claims may do nothing
  const bare = await wsClient(`${f.ws}?token=${sign('HS256', SECRET, { exp: now() + 60 })}`);
  bare.send({ type: 'subscribe', channel: 'news.a', id: 1 });
  assert.equal((await bare.next((fr) => fr.id === 1)).code, 'forbidden');
  bare.send({ type: 'publish', channel: 'chat.1', data: 1, id: 2 });
  assert.equal((await bare.next((fr) => fr.id === 2)).code, 'forbidden');
  await Promise.all([c.close(), bare.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('refresh: auth -> authed extends the session; expiry without refresh closes 4003', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const short = () => sign('HS256', SECRET, good({ exp: now() + 2 }));
  const a = await wsClient(`${f.ws}?token=${short()}`); // will refresh
  const b = await wsClient(`${f.ws}?token=${short()}`); // will not
  await a.subscribe('news.1');
  await a.subscribe('user/alice');
  await b.next('hello');
  // refused refreshes keep the old token: bad signature, other subject, not JSON
  a.send({ type: 'auth', token: sign('HS256', SECRET + 'x', good()), id: 'r0' });
  assert.equal((await a.next((fr) => fr.id === 'r0')).code, 'forbidden');
  a.send({ type: 'auth', token: sign('HS256', SECRET, good({ sub: 'mallory' })), id: 'r1' });
  const r1 = await a.next((fr) => fr.id === 'r1');
  assert.equal(r1.code, 'forbidden');
  assert.match(r1.message, /subject/);
  a.send({ type: 'auth', id: 'r2' });
  assert.equal((await a.next((fr) => fr.id === 'r2')).code, 'bad_request');
  // a good one, with narrower channels: user/alice is dropped and named
  a.send({ type: 'auth', token: sign('HS256', SECRET, good({ exp: now() + 60, channels: ['news.*'] })), id: 'r3' });
  assert.deepEqual(await a.next((fr) => fr.id === 'r3'), { type: 'authed', id: 'r3' });
  const dropped = await a.next((fr) => fr.type === 'error' && /user\/alice/.test(fr.message));
  assert.equal(dropped.code, 'forbidden');
  const { code } = await b.closed; // b's token ran out
  assert.equal(code, 4003);
  await new Promise((r) => setTimeout(r, 1500)); // well past a's first exp
  a.send({ type: 'ping', id: 'alive' });
  assert.equal((await a.next((fr) => fr.id === 'alive')).type, 'pong');
  a.send({ type: 'publish', channel: 'news.1', data: 1, id: 'np' }); // publish claim gone
  assert.equal((await a.next((fr) => fr.id === 'np')).code, 'forbidden');
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m.fanout_token_expired_disconnects_total, 1);
  assert.equal(m.fanout_token_refreshes_total, 1);
  await a.close();
  assert.equal(await f.stop(), 0);
});

await t.test('a token never reaches the log (query, header, refresh, refusals; log_level = debug)', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const toks = [sign('HS256', SECRET, good()), sign('HS256', SECRET, good({ sub: 'alice', n: 2 })),
    sign('HS256', SECRET + 'bad', good()), sign('HS256', SECRET, good({ exp: now() - 9 }))];
  const a = await wsClient(`${f.ws}?token=${toks[0]}`);
  await a.next('hello');
  a.send({ type: 'auth', token: toks[1], id: 1 });
  await a.next((fr) => fr.id === 1);
  await upgrade(`${f.ws}?token=${toks[2]}`);
  await upgrade(f.ws, { Authorization: `Bearer ${toks[3]}` });
  await upgrade(`http://127.0.0.1:${f.port}/elsewhere?token=${toks[0]}`.replace('http', 'ws'));
  assert.equal((await f.http(`/metrics?token=${toks[0]}`)).status, 200);
  await a.close();
  assert.equal(await f.stop(), 0);
  const log = f.log();
  assert.match(log, /refused .*token refused: bad signature/); // the refusals were logged ...
  for (const tok of toks) {
    for (const part of tok.split('.')) assert.ok(!log.includes(part), 'a token part is in the log'); // ... without them
  }
});

await t.test('max_requests_per_s: a burst of 2 x rate, then rate_limited, then 1008 for sustained abuse', async () => {
  const f = await startFanoutd({ ini: ini('', 'max_requests_per_s = 5') });
  const c = await wsClient(f.ws);
  await c.next('hello');
  for (let i = 0; i < 20; i++) c.send({ type: 'ping', id: i });
  await c.next((fr) => fr.id === 19);
  const pongs = c.all((fr) => fr.type === 'pong').length;
  const limited = c.all((fr) => fr.type === 'error' && fr.code === 'rate_limited');
  assert.ok(pongs >= 10 && pongs < 20, `${pongs} pongs of 20`);
  assert.equal(pongs + limited.length, 20);
  assert.ok(limited.every((fr) => typeof fr.id === 'number'), 'rate_limited echoes the id');
  // a well-behaved client next to it is not affected
  const d = await wsClient(f.ws);
  await d.subscribe('x');
  // keep going: more than 10 x rate refusals within 10 s closes 1008. One
  // request at a time, each awaited: a flood still unread when the server
  // closes would reach it after the close frame and make the kernel reset
  // the connection (1006 on this side) — not what is tested here.
  for (let i = 0; i < 200 && !c.closeInfo; i++) {
    c.send({ type: 'ping', id: `x${i}` });
    await c.next((fr) => fr.id === `x${i}`, 10000).catch(() => {});
  }
  assert.equal((await c.closed).code, 1008);
  d.send({ type: 'ping', id: 'd' });
  assert.equal((await d.next((fr) => fr.id === 'd')).type, 'pong');
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m.fanout_abuse_disconnects_total, 1);
  assert.ok(m['fanout_protocol_errors_total{code="rate_limited"}'] >= 50);
  await d.close();
  assert.equal(await f.stop(), 0);
});

await t.test('max_channels_per_ip: new channels count per client address (X-Forwarded-For behind a trusted proxy)', async () => {
  const f = await startFanoutd({ ini: ini('', 'max_channels_per_ip = 3\ntrusted_proxies = 127.0.0.1') });
  const from = (ip) => wsClient(f.ws, { headers: { 'X-Forwarded-For': ip } });
  const a1 = await from('10.0.0.1'), a2 = await from('10.0.0.1'), b = await from('10.0.0.2');
  await a1.subscribe('c1');
  await a1.subscribe('c2');
  await a2.subscribe('c3'); // another connection, same address: the third
  a2.send({ type: 'subscribe', channel: 'c4', id: 'x' });
  const e = await a2.next((fr) => fr.id === 'x');
  assert.equal(e.code, 'too_many_subscriptions');
  assert.match(e.message, /max_channels_per_ip/);
  await a2.subscribe('c1'); // exists: free
  await b.subscribe('c4'); // another address: its own count
  await b.subscribe('c5');
  await b.subscribe('c6');
  // c2 goes (its only subscriber leaves): a has room again
  a1.send({ type: 'unsubscribe', channel: 'c2', id: 'u' });
  await a1.next((fr) => fr.id === 'u');
  await a2.subscribe('c7');
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m.fanout_channel_ip_limit_hits_total, 1);
  assert.equal(m.fanout_channels, 6);
  await Promise.all([a1.close(), a2.close(), b.close()]);
  assert.equal(await f.stop(), 0);
});

await t.test('tokens on Server-Sent Events: 401 without, claims on channels, an expired event at the end', async () => {
  const f = await startFanoutd({ ini: ini(`jwt_secret = ${SECRET}`) });
  const base = `http://127.0.0.1:${f.port}/sse`;
  const none = await sseConnect(`${base}?channel=news.1`);
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer realm="fanout"');
  const tok = sign('HS256', SECRET, { exp: now() + 2, channels: ['news.*'] });
  const bad = await sseConnect(`${base}?channel=news.1&channel=secret&token=${tok}`);
  assert.equal(bad.status, 403); // a channel outside the token's claims
  assert.match(bad.body, /secret.*forbidden/);
  const s = await sseConnect(`${base}?channel=news.1&token=${tok}`);
  assert.equal(s.status, 200);
  assert.equal((await s.next('subscribed')).json.channel, 'news.1');
  const h = await sseConnect(`${base}?channel=news.2`, { headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(h.status, 200);
  await h.next('subscribed');
  await s.next('expired', 8000);
  await s.ended;
  await h.close();
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.ok(m.fanout_token_expired_disconnects_total >= 1);
  assert.equal(await f.stop(), 0);
});

await t.test('config: a bad key file or a short secret stops start-up; --check-config hides the secret', async () => {
  const dir = tmpDir('fanout-authcfg-');
  const file = path.join(dir, 'f.ini');
  const check = async (auth) => {
    fs.writeFileSync(file, ini(auth));
    return run(FANOUTD, ['-c', file, '--check-config']);
  };
  let r = await check(`jwt_public_key = ${keys.rsaPrivPath}`);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /\[auth\] jwt_public_key: .*no PEM public key/);
  r = await check('jwt_secret = short');
  assert.equal(r.code, 3);
  assert.match(r.stderr, /\[auth\] jwt_secret: must be at least 32 bytes/);
  r = await check(`jwt_secret = ${SECRET}\njwt_public_key = ${keys.ecPubPath}`);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /not both/);
  r = await check(`jwt_secret = ${SECRET}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\[auth\]\njwt_secret = \*\*\*\n/);
  assert.ok(!r.stdout.includes(SECRET));
});

t.done();
// A failed test may leave a server or socket open: exit anyway (the
// harness kills its children on exit).
setTimeout(() => process.exit(), 500).unref();
