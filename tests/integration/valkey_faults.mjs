// valkey_faults.mjs — broker faults through the real fanoutd: broker down at
// start, kill + restart mid-stream (recovery time measured and printed),
// CLIENT KILL TYPE pubsub, a paused broker (SIGSTOP) caught by the probe, and
// requirepass right/wrong. Clients stay connected through every fault and
// receive what is published after recovery; /readyz follows. Channels are
// positioned (history_size defaults on): a reconnect that lost nothing is
// checked against the broker's history and needs no gap notice; a broker
// restarted without persistence lost the history (a new epoch): gap.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor, freePort, sleep } from '../lib/harness.mjs';

const t = tap();
const ini = (port, extra = '') => `[server]
allow_publish = true

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${port}/0
reconnect_min_ms = 50
reconnect_max_ms = 500
connect_timeout_ms = 500
probe_interval_ms = 200
probe_timeout_ms = 600
${extra}
`;
const readyz = async (f) => (await f.http('/readyz')).status;

// Publish a numbered message every 20 ms until the client gets one; returns
// the time the first one arrived (Date.now()).
async function publishUntilDelivered(r, c, ch, ms = 15000) {
  const start = c.frames.length;
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    try { await r.cli('PUBLISH', ch, JSON.stringify({ after: i })); } catch {}
    const got = c.frames.slice(start).find((x) => x.type === 'message' && x.channel === ch && x.data && 'after' in x.data);
    if (got) return Date.now();
    await sleep(20);
  }
  throw new Error(`no message on ${ch} after recovery; frames: ${JSON.stringify(c.frames.slice(-5))}`);
}

async function expectRecovery(f, r, clients, ch, { gap }) {
  await waitFor(async () => (await readyz(f)) === 200, { timeoutMs: 15000, what: '/readyz 200 again' });
  if (gap)
    for (const c of clients) {
      const g = await c.next((x) => x.type === 'gap' && x.channel === ch, 10000, 'gap');
      assert.ok(g.reason, 'gap has a reason');
      assert.ok(g.epoch, 'a positioned gap carries the new position');
    }
  for (const c of clients) await publishUntilDelivered(r, c, ch);
  for (const c of clients) assert.equal(c.closeInfo, null, 'client stayed connected');
  if (!gap)
    for (const c of clients)
      assert.deepEqual(c.all((x) => x.type === 'gap'), [], 'nothing was lost: no gap');
}

await t.test('broker down at start: fanoutd serves, /readyz 503 until the broker comes', async () => {
  const port = await freePort();
  const f = await startFanoutd({ ini: ini(port), wait: 'listen' });
  assert.equal((await f.http('/healthz')).status, 200);
  const rz = await f.http('/readyz');
  assert.equal(rz.status, 503);
  assert.match(rz.body, /valkey/);
  const c = await wsClient(f.ws);
  c.send({ type: 'subscribe', channel: 'late', id: 'l1' });
  await sleep(300);
  assert.equal(c.frames.find((x) => x.id === 'l1'), undefined, 'no "subscribed" before the broker confirmed');
  const r = await startRedis({ port });
  const rep = await c.next((x) => x.id === 'l1', 10000);
  assert.equal(rep.type, 'subscribed');
  await waitFor(async () => (await readyz(f)) === 200, { what: '/readyz 200' });
  await publishUntilDelivered(r, c, 'late');
  await c.close();
  assert.equal(await f.stop(), 0);
  await r.stop();
});

await t.test('broker kill + restart mid-stream: 503 then 200, clients stay, messages after recovery arrive', async () => {
  let r = await startRedis();
  const f = await startFanoutd({ ini: ini(r.port), wait: 'ready' });
  const cs = [await wsClient(f.ws), await wsClient(f.ws)];
  for (const c of cs) await c.subscribe('live');
  await r.cli('PUBLISH', 'live', '"before"');
  for (const c of cs) await c.next((x) => x.type === 'message' && x.data === 'before');
  const tKill = Date.now();
  await r.stop('SIGKILL');
  await waitFor(async () => (await readyz(f)) === 503, { what: '/readyz 503 after the kill' });
  const tRestart = Date.now();
  r = await startRedis({ port: r.port });
  const tUp = Date.now();
  const tFirst = await publishUntilDelivered(r, cs[0], 'live');
  t.diag(`recovery: kill -> first message delivered ${tFirst - tKill} ms; broker restart began -> delivered ${tFirst - tRestart} ms; broker answering PING -> delivered ${tFirst - tUp} ms`);
  await expectRecovery(f, r, cs, 'live', { gap: true }); // no persistence: history lost
  const log = f.log();
  assert.match(log, /down: /);
  assert.ok((log.match(/down: /g) || []).length <= 2, 'down logged once per state change, not per retry:\n' + log);
  for (const c of cs) await c.close();
  assert.equal(await f.stop(), 0);
  await r.stop();
});

await t.test('CLIENT KILL TYPE pubsub: reconnect, resubscribe, nothing lost (no gap), messages arrive', async () => {
  const r = await startRedis();
  const f = await startFanoutd({ ini: ini(r.port), wait: 'ready' });
  const c = await wsClient(f.ws);
  await c.subscribe('k');
  assert.equal(await r.cli('CLIENT', 'KILL', 'TYPE', 'pubsub'), '1');
  await expectRecovery(f, r, [c], 'k', { gap: false });
  assert.equal(await r.cli('PUBSUB', 'NUMSUB', 'k'), 'k\n1');
  await c.close();
  assert.equal(await f.stop(), 0);
  await r.stop();
});

await t.test('paused broker (SIGSTOP) is caught by the probe; recovers after SIGCONT', async () => {
  const r = await startRedis();
  const f = await startFanoutd({ ini: ini(r.port), wait: 'ready' });
  const c = await wsClient(f.ws);
  await c.subscribe('p');
  r.kill('SIGSTOP');
  try {
    await waitFor(async () => (await readyz(f)) === 503, { timeoutMs: 5000, what: '/readyz 503 while paused' });
    assert.match(f.log(), /probe not back/);
  } finally {
    r.kill('SIGCONT');
  }
  await expectRecovery(f, r, [c], 'p', { gap: false });
  await c.close();
  assert.equal(await f.stop(), 0);
  await r.stop();
});

await t.test('requirepass: right password serves, wrong one stays 503 with a clear log line', async () => {
  const r = await startRedis({ args: ['--requirepass', 'pa55'] });
  const good = await startFanoutd({ ini: ini(r.port, 'password = pa55'), wait: 'ready' });
  const c = await wsClient(good.ws);
  await c.subscribe('auth');
  await publishUntilDelivered(r, c, 'auth');
  await c.close();
  assert.equal(await good.stop(), 0);
  const bad = await startFanoutd({ ini: ini(r.port, 'password = nope'), wait: 'listen' });
  await waitFor(() => /AUTH refused/.test(bad.log()), { what: 'AUTH refused log line' });
  await sleep(1200); // several retries
  assert.equal(await readyz(bad), 503);
  assert.match(bad.log(), /WRONGPASS/);
  assert.ok(!/nope/.test(bad.log()), 'password not logged');
  assert.ok((bad.log().match(/AUTH refused/g) || []).length <= 3, 'not logged once per retry:\n' + bad.log());
  assert.equal(await bad.stop(), 0);
  await r.stop();
});

t.done();
