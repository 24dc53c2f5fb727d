// valkey_basic.mjs — the valkey backend through the real fanoutd and a real
// redis-server/valkey-server: redis-cli PUBLISH reaches every subscriber,
// JSON and non-JSON payloads, a 10,000-message burst in order, and demand-
// driven SUBSCRIBE/UNSUBSCRIBE seen with PUBSUB NUMSUB, and the backend's
// probe channel out of clients' reach (the reserved "__" namespace).
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor, run, parseMetrics, REDIS_CLI } from '../lib/harness.mjs';

const t = tap();
const ini = (r, extra = '') => `[server]
allow_publish = true
max_payload_bytes = 1048576

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${r.port}/0
${extra}
`;

const r = await startRedis();
const f = await startFanoutd({ ini: ini(r), wait: 'ready' });
const numsub = async (ch) => Number((await r.cli('PUBSUB', 'NUMSUB', ch)).split('\n')[1]);

await t.test('redis-cli PUBLISH reaches every ws subscriber', async () => {
  const cs = await Promise.all([1, 2, 3].map(() => wsClient(f.ws)));
  for (const c of cs) await c.subscribe('updates');
  assert.equal(await numsub('updates'), 1, 'one broker subscription per instance, not per client');
  assert.equal(await r.cli('PUBLISH', 'updates', '{"n":1,"s":"x"}'), '1');
  for (const c of cs) {
    const m = await c.next((x) => x.type === 'message' && x.channel === 'updates');
    assert.deepEqual(m.data, { n: 1, s: 'x' });
  }
  for (const c of cs) await c.close();
});

await t.test('non-JSON payload arrives as a JSON string', async () => {
  const c = await wsClient(f.ws);
  await c.subscribe('raw');
  await r.cli('PUBLISH', 'raw', 'hello <b>world</b> {not json');
  const m = await c.next((x) => x.type === 'message' && x.channel === 'raw');
  assert.equal(m.data, 'hello <b>world</b> {not json');
  await c.close();
});

await t.test('10,000-message burst arrives complete and in order', async () => {
  const c = await wsClient(f.ws);
  await c.subscribe('burst');
  const n = 10000;
  let input = '';
  for (let i = 0; i < n; i++) input += `PUBLISH burst ${i}\n`;
  const res = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(r.port)], { input, timeoutMs: 60000 });
  assert.equal(res.code, 0, res.stderr);
  await waitFor(() => c.all((x) => x.type === 'message' && x.channel === 'burst').length >= n, {
    timeoutMs: 30000, what: 'all burst messages',
  });
  const got = c.all((x) => x.type === 'message' && x.channel === 'burst').map((x) => x.data);
  assert.equal(got.length, n);
  for (let i = 0; i < n; i++) assert.equal(got[i], i, `message ${i} out of order`);
  await c.close();
});

await t.test('PUBSUB NUMSUB shows the channel only while local clients want it', async () => {
  assert.equal(await numsub('demand'), 0);
  const a = await wsClient(f.ws);
  const b = await wsClient(f.ws);
  await a.subscribe('demand');
  await b.subscribe('demand');
  assert.equal(await numsub('demand'), 1);
  a.send({ type: 'unsubscribe', channel: 'demand', id: 'u1' });
  await a.next((x) => x.id === 'u1');
  assert.equal(await numsub('demand'), 1, 'b still wants it');
  await b.close();
  await waitFor(async () => (await numsub('demand')) === 0, { what: 'NUMSUB 0 after the last client left' });
  await a.close();
});

await t.test('client publish goes through the broker', async () => {
  const c = await wsClient(f.ws);
  await c.subscribe('echo');
  c.send({ type: 'publish', channel: 'echo', data: { hi: 1 }, id: 'p1' });
  // The reply (command connection) and the message (subscriber connection)
  // may arrive in either order.
  const rep = await waitFor(() => c.frames.find((x) => x.id === 'p1'), { what: 'publish reply' });
  assert.equal(rep.type, 'published', JSON.stringify(rep));
  const m = await waitFor(() => c.frames.find((x) => x.type === 'message' && x.channel === 'echo'), { what: 'echo message' });
  assert.deepEqual(m.data, { hi: 1 });
  await c.close();
});

// Issue 11, hole 4: a client could subscribe to and unsubscribe from the
// backend's probe channel, which broke the probe: backend down, a gap to
// every client, repeatably. Channel names starting with "__" are reserved.
await t.test('the probe channel is out of reach: refused, the backend stays up, no gap', async () => {
  const g = await startFanoutd({ ini: ini(r, 'probe_interval_ms = 100\nprobe_timeout_ms = 400'), instance: 'probed', wait: 'ready' });
  try {
    const probe = (await r.cli('PUBSUB', 'CHANNELS', '__fanout_probe:probed:*')).trim();
    assert.match(probe, /^__fanout_probe:probed:[0-9a-f]{16}$/);
    const bystander = await wsClient(g.ws);
    await bystander.subscribe('bystander');
    const c = await wsClient(g.ws);
    for (let i = 0; i < 3; i++) {
      for (const type of ['subscribe', 'unsubscribe']) {
        c.send({ type, channel: probe, id: `${type}${i}` });
        const e = await c.next((x) => x.id === `${type}${i}`);
        assert.equal(e.code, 'bad_channel', JSON.stringify(e));
      }
    }
    const q = await wsClient(`${g.ws}?channel=${encodeURIComponent(probe)}`);
    assert.equal((await q.next('error')).code, 'bad_channel');
    // Eight probe rounds later (the broker counts PUBLISH calls): still up,
    // the probe still subscribed, no reconnect, no gap.
    const publishes = async () => Number(((await r.cli('INFO', 'commandstats')).match(/cmdstat_publish:calls=(\d+)/) || [0, 0])[1]);
    const p0 = await publishes();
    await waitFor(async () => (await publishes()) >= p0 + 8, { what: 'eight probe rounds' });
    assert.equal(await numsub(probe), 1);
    assert.equal((await g.http('/readyz')).status, 200);
    const m = parseMetrics((await g.http('/metrics')).body);
    for (const ev of ['probe_timeouts', 'reconnects', 'subscribe_errors'])
      assert.equal(m[`fanout_backend_events_total{backend="valkey",event="${ev}"}`] || 0, 0, ev);
    assert.equal(bystander.frames.filter((x) => x.type === 'gap').length, 0);
    await Promise.all([bystander.close(), c.close(), q.close()]);
  } finally {
    assert.equal(await g.stop(), 0);
  }
});

assert.equal(await f.stop(), 0);
await r.stop();
t.done();
