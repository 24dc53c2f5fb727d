// reload.mjs — SIGHUP re-reads the config without dropping anyone
// (reload.c). A client subscribed through Valkey keeps receiving across
// every reload below, on the same connection:
//   - live keys apply to new requests (allowed_origins, max_subscriptions,
//     channels globs, log_level, max_channels_per_ip, max_queued_bytes, the
//     token key); a key that needs a restart (ws_path) is reported and
//     keeps its running value; systemd hears RELOADING=1, then READY=1;
//   - a file with errors is refused as a whole, its errors logged with
//     FILE:LINE, the running config kept;
//   - a changed [backend] section restarts that backend: its channels are
//     subscribed again (on the new broker) and their subscribers get a gap;
//   - a new section starts; a section the file loses keeps running;
//   - with workers = 2 every worker reloads.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tap } from '../lib/tap.mjs';
import { BUILDDIR, startFanoutd, startRedis, wsClient, waitFor, tmpDir } from '../lib/harness.mjs';

const t = tap();

/** The new file, then SIGHUP; resolves once the log says how it went. */
async function reload(f, ini) {
  const before = f.log().length;
  fs.writeFileSync(f.file, ini);
  process.kill(f.pid, 'SIGHUP');
  const m = await waitFor(() => f.log().slice(before).match(/reloaded .*|reload refused.*/g),
    { what: 'the reload to finish', timeoutMs: 15000 });
  return { outcome: m.join('\n'), log: f.log().slice(before) };
}

/** Resolves with the HTTP status of a refused upgrade, or 101. */
async function upgradeStatus(url, headers) {
  try {
    const c = await wsClient(url, { headers });
    await c.close();
    return 101;
  } catch (e) {
    const m = String(e.message).match(/Unexpected server response: (\d+)/);
    if (!m) throw e;
    return Number(m[1]);
  }
}

/** A notify socket (tests/integration/notify-sink), its lines. */
async function notifySink() {
  const sock = path.join(tmpDir('fanout-reload-notify-'), 'notify');
  const p = spawn(path.join(BUILDDIR, 'tests/integration/notify-sink'), [sock], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  await waitFor(() => fs.existsSync(sock), { what: 'notify socket' });
  return { sock, msgs: () => out.split('\n').filter((l) => l && l !== 'listening').map((l) => l.slice(l.indexOf(' ') + 1)), stop: () => { p.stdin.end(); p.kill(); } };
}

const A = 'https://a.example', B = 'https://b.example';
let ra, rb, f, c, sink;
const ini = ({ origins = A, maxSubs = 128, url, wsPath = '/ws', extra = '', auth = '', first = '' } = {}) =>
  `[server]\nallowed_origins = ${origins}\nmax_subscriptions = ${maxSubs}\nws_path = ${wsPath}\n${extra}\n` +
  `${auth ? `[auth]\n${auth}\n` : ''}${first}[backend v]\nplugin = valkey\nurl = ${url}\nreconnect_max_ms = 200\n`;

/** One message through broker r reaches the subscribed client. */
async function stillReceives(r, n) {
  await r.cli('PUBLISH', 'news', JSON.stringify({ n }));
  const m = await c.next((x) => x.type === 'message' && x.data && x.data.n === n, 10000, `message ${n}`);
  assert.equal(m.channel, 'news');
}

try {
  await t.test('setup: a client subscribed through Valkey', async () => {
    [ra, rb] = await Promise.all([startRedis(), startRedis()]);
    sink = await notifySink();
    f = await startFanoutd({ ini: ini({ url: ra.url }), wait: 'ready', env: { NOTIFY_SOCKET: sink.sock } });
    c = await wsClient(f.ws);
    await c.subscribe('news');
    await stillReceives(ra, 1);
    assert.equal(await upgradeStatus(f.ws, { Origin: B }), 403);
  });

  await t.test('live keys apply to new requests; a restart-only key is reported and kept; the client stays', async () => {
    const live = 'channels = news, x*\nlog_level = debug\nmax_channels_per_ip = 2\nmax_queued_bytes = 8m';
    const r = await reload(f, ini({ url: ra.url, origins: `${A}, ${B}`, maxSubs: 2, wsPath: '/elsewhere', extra: live }));
    assert.match(r.outcome, /^reloaded .*: 6 changes applied, some need a restart/, r.log);
    assert.match(r.log, /allowed_origins: https:\/\/a\.example -> https:\/\/a\.example, https:\/\/b\.example/);
    assert.match(r.log, /channels: \* -> news, x\*/);
    assert.match(r.log, /ws_path: changed to \/elsewhere in the file, needs a restart \(keeps \/ws\)/);
    assert.equal(await upgradeStatus(f.ws, { Origin: B }), 101, 'the new origin is accepted');
    const before = f.log().length;
    const d = await wsClient(f.ws);
    await waitFor(() => /debug.*client #\d+ connected from 127\.0\.0\.1/.test(f.log().slice(before)),
      { what: 'a debug line (log_level = debug)' });
    await d.subscribe('x1');
    await d.subscribe('x2');
    d.send({ type: 'subscribe', channel: 'x3', id: 'x3' });
    assert.equal((await d.next((x) => x.id === 'x3')).code, 'too_many_subscriptions');
    // channels globs: a name outside them is refused now
    const e = await wsClient(f.ws);
    e.send({ type: 'subscribe', channel: 'other', id: 'o' });
    assert.equal((await e.next((x) => x.id === 'o')).code, 'forbidden');
    // max_channels_per_ip = 2: x1 and x2 came in after the reload from this
    // address (news before it, uncounted); a third new channel is refused
    e.send({ type: 'subscribe', channel: 'x9', id: 'x9' });
    const x9 = await e.next((x) => x.id === 'x9');
    assert.equal(x9.code, 'too_many_subscriptions');
    assert.match(x9.message, /max_channels_per_ip/);
    await e.subscribe('x1'); // an existing channel costs nothing
    await e.close();
    assert.match((await f.http('/metrics')).body, /^fanout_queue_budget_bytes 8388608$/m, 'max_queued_bytes in effect');
    await d.close();
    await stillReceives(ra, 2);
    assert.equal(c.all((x) => x.type === 'gap').length, 0, 'an unchanged backend sends no gap');
    await waitFor(() => sink.msgs().includes('RELOADING=1') &&
      sink.msgs().lastIndexOf('READY=1') > sink.msgs().lastIndexOf('RELOADING=1'), { what: 'RELOADING=1 then READY=1' });
  });

  await t.test('token keys are live: a new connection needs a token, the open one stays', async () => {
    let r = await reload(f, ini({ url: ra.url, origins: `${A}, ${B}`, maxSubs: 2, auth: `jwt_secret = ${'s'.repeat(40)}` }));
    assert.match(r.outcome, /^reloaded/, r.log);
    assert.match(r.log, /jwt_secret: {2}-> \*\*\*|jwt_secret: -> \*\*\*/);
    assert.equal(await upgradeStatus(f.ws), 401);
    await stillReceives(ra, 3);
    r = await reload(f, ini({ url: ra.url, origins: `${A}, ${B}`, maxSubs: 2 }));
    assert.match(r.outcome, /^reloaded/, r.log);
    assert.equal(await upgradeStatus(f.ws), 101);
  });

  await t.test('a file with errors is refused whole, its errors logged; the running config stays', async () => {
    const bad = ini({ url: ra.url, origins: A, extra: 'max_clients = lots\ncolour = blue' }) + 'no_such_key = 1\n';
    const r = await reload(f, bad);
    assert.match(r.outcome, /^reload refused: 2 errors in .*; the running configuration stays/, r.log);
    assert.match(r.log, /fanout\.ini:5: \[server\] max_clients: not an integer/);
    assert.match(r.log, /fanout\.ini:6: \[server\] colour: unknown key/);
    assert.equal(await upgradeStatus(f.ws, { Origin: B }), 101, 'origins as before');
    // A section whose keys the plugin refuses: refused before anything changes.
    const r2 = await reload(f, ini({ url: ra.url, origins: A }) + 'no_such_key = 1\n');
    assert.match(r2.outcome, /^reload refused: 1 error/, r2.log);
    assert.match(r2.log, /\[backend v\] no_such_key: unknown key for plugin valkey/);
    assert.equal(await upgradeStatus(f.ws, { Origin: B }), 101);
    await stillReceives(ra, 4);
  });

  await t.test('a changed backend section is restarted: subscribed again on the new broker, with a gap', async () => {
    const r = await reload(f, ini({ url: rb.url, origins: `${A}, ${B}`, maxSubs: 2 }));
    assert.match(r.outcome, /^reloaded/, r.log);
    assert.match(r.log, /\[backend v\]: valkey .* restarted with its new section/);
    const g = await c.next((x) => x.type === 'gap', 10000, 'gap');
    assert.equal(g.channel, 'news');
    // another broker: its history is another epoch, so the gap says so too
    assert.match(g.reason, /^backend reconfigured/);
    await waitFor(async () => (await rb.cli('PUBSUB', 'NUMSUB', 'news')).endsWith('1'), { what: 'news subscribed on broker B' });
    await stillReceives(rb, 5);
    await waitFor(async () => (await ra.cli('PUBSUB', 'NUMSUB', 'news')).endsWith('0'), { what: 'broker A let go' });
    assert.equal((await f.http('/readyz')).status, 200);
  });

  await t.test('a section restarted on the same broker: positions resume, nothing lost or doubled', async () => {
    const before = c.all((x) => x.type === 'message').length;
    const r = await reload(f, ini({ url: rb.url, origins: `${A}, ${B}`, maxSubs: 2, extra: '' }).replace('reconnect_max_ms = 200', 'reconnect_max_ms = 300'));
    assert.match(r.log, /\[backend v\]: valkey .* restarted with its new section/, r.log);
    await waitFor(async () => (await rb.cli('PUBSUB', 'NUMSUB', 'news')).endsWith('1'), { what: 'news subscribed again' });
    await stillReceives(rb, 51);
    await stillReceives(rb, 52);
    const ns = c.all((x) => x.type === 'message').slice(before).map((x) => x.data.n);
    assert.deepEqual(ns, [51, 52], 'each message once, in order');
  });

  await t.test('a new section starts; a section the file loses keeps running', async () => {
    const mem = '[backend mem]\nplugin = loopback\nchannels = local.*\n';
    let r = await reload(f, ini({ url: rb.url, origins: `${A}, ${B}`, maxSubs: 2, first: mem }));
    assert.match(r.outcome, /^reloaded/, r.log);
    assert.match(r.log, /\[backend mem\]: loopback .* started/);
    const d = await wsClient(f.ws);
    await d.subscribe('local.x');
    r = await reload(f, ini({ url: rb.url, origins: `${A}, ${B}`, maxSubs: 2 }));
    assert.match(r.log, /\[backend mem\] is not in the file any more: it keeps running until a restart/);
    await d.subscribe('local.y');
    await d.close();
    await stillReceives(rb, 6);
    assert.equal(c.closeInfo, null, 'the first client was never disconnected');
  });
} finally {
  if (c) await c.close().catch(() => {});
  if (f) assert.equal(await f.stop(), 0);
  if (sink) sink.stop();
  if (ra) await ra.stop();
  if (rb) await rb.stop();
}

await t.test('workers = 2: every worker reloads; the client keeps receiving', async () => {
  const r1 = await startRedis();
  const w = await startFanoutd({ ini: ini({ url: r1.url, extra: 'workers = 2' }), wait: 'ready' });
  try {
    const cl = await wsClient(w.ws);
    await cl.subscribe('news');
    const r = await reload(w, ini({ url: r1.url, origins: `${A}, ${B}`, extra: 'workers = 2' }));
    assert.match(r.outcome, /forwarding SIGHUP to the workers/, r.log);
    await waitFor(() => ['w0', 'w1'].every((x) => new RegExp(`/${x}\\] reload: reloaded`).test(w.log())),
      { what: 'both workers reloaded', timeoutMs: 15000 });
    // Whichever worker a connection reaches, it knows the new origin.
    for (let i = 0; i < 6; i++) assert.equal(await upgradeStatus(w.ws, { Origin: B }), 101);
    await r1.cli('PUBLISH', 'news', '{"n":7}');
    await cl.next((x) => x.type === 'message' && x.data.n === 7, 10000);
    await cl.close();
  } finally {
    assert.equal(await w.stop(), 0);
    await r1.stop();
  }
});

t.done();
