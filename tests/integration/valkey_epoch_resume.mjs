// valkey_epoch_resume.mjs — a client that already read the broker's new
// epoch on one instance resumes on another instance that has not seen that
// epoch yet (its broker connection is still coming back after a restart
// without persistence). The resume must not be answered from the old epoch:
// the gap to the new epoch would then replay the new epoch from its start,
// messages the client already has (fault_delivery.mjs once saw "seq 405
// after 649: a duplicate" this way). The instance waits until it is in the
// client's epoch and replays only what follows `since`.
//
// One redis-server without persistence, two fanoutd: "quick" reconnects at
// once, "slow" only after 2 s.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor, sleep } from '../lib/harness.mjs';
import { Resp } from '../lib/resp.mjs';

const t = tap();
const CH = 'updates';
const ini = (port, reconnectMs) => `[server]
recovery_timeout_ms = 15000

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${port}/0
reconnect_min_ms = ${reconnectMs}
reconnect_max_ms = ${reconnectMs}
`;

// FCALL fanout_publish, retried while the broker (or the library a fanoutd
// loads into it on reconnect) is not there yet. Resolves [epoch, offset].
async function publish(port, seq) {
  const end = Date.now() + 15000;
  for (;;) {
    const r = new Resp(port);
    try {
      await r.connect(500);
      return await r.call('FCALL', 'fanout_publish', 1, `fanout:{${CH}}`, JSON.stringify({ seq }));
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(50);
    } finally {
      r.close();
    }
  }
}

const msgs = (c) => c.all((f) => f.type === 'message' && f.channel === CH);

await t.test('resume in the new epoch on an instance still in the old one: replays after since, nothing twice', async () => {
  let redis = await startRedis();
  const procs = [];
  const socks = [];
  try {
    procs.push(await startFanoutd({ ini: ini(redis.port, 50), instance: 'quick', wait: 'ready' }));
    procs.push(await startFanoutd({ ini: ini(redis.port, 2000), instance: 'slow', wait: 'ready' }));
    await body(redis, procs, socks, (r) => (redis = r));
  } finally {
    // Stopped on failure too (an open socket or child keeps node running).
    for (const x of socks) x.ws.terminate();
    for (const p of procs) await p.stop();
    await redis.stop();
  }
});

async function body(redis, [quick, slow], socks, setRedis) {
  const client = async (url) => {
    const c = await wsClient(url);
    socks.push(c);
    return c;
  };
  const a = await client(quick.ws); // reads everything on the quick instance
  const b = await client(slow.ws); // a subscriber of the slow instance itself
  const e1 = (await a.subscribe(CH)).epoch;
  await b.subscribe(CH);
  for (let seq = 1; seq <= 5; seq++) await publish(redis.port, seq);
  await waitFor(() => msgs(a).length === 5 && msgs(b).length === 5, { what: '5 messages at both' });

  // The broker restarts without its data; the slow instance stays away ~2 s.
  await redis.stop();
  redis = await startRedis({ port: redis.port });
  setRedis(redis);
  const pub = [];
  for (let seq = 6; seq <= 15; seq++) pub.push(await publish(redis.port, seq));
  const e2 = pub[0][0];
  assert.notEqual(e2, e1, 'a new epoch');
  await waitFor(() => msgs(a).some((m) => m.data.seq === 15), { what: 'seq 15 at the quick instance' });
  const gapA = a.all((f) => f.type === 'gap');
  assert.equal(gapA.length, 1);
  assert.equal(gapA[0].epoch, e2);
  const last = msgs(a).at(-1);
  assert.equal(last.offset, 10);

  // a's user reconnects and lands on the slow instance, resuming at E2:10.
  const c = await client(slow.ws);
  c.send({ type: 'subscribe', channel: CH, id: 'r', since: { epoch: e2, offset: last.offset } });
  for (let seq = 16; seq <= 18; seq++) await publish(redis.port, seq);
  const sub = await c.next((f) => f.id === 'r', 20000, 'the resume answer');
  assert.equal(sub.type, 'subscribed');
  assert.equal(sub.epoch, e2, `answered in the client's epoch, not the old one: ${JSON.stringify(sub)}`);
  assert.equal(sub.recovered, true);
  await waitFor(() => msgs(c).some((m) => m.data.seq === 18), { timeoutMs: 10000, what: 'seq 18 at the resumed client' });
  assert.deepEqual(msgs(c).map((m) => m.data.seq), [16, 17, 18], 'only what follows since, once each');
  assert.deepEqual(c.all((f) => f.type === 'gap'), [], 'no gap: it was in E2 already');
  // The slow instance's own subscriber: E1 1..5, the gap to E2, E2 1..13.
  await waitFor(() => msgs(b).some((m) => m.data.seq === 18), { timeoutMs: 10000, what: 'seq 18 at b' });
  assert.deepEqual(msgs(b).map((m) => m.data.seq), Array.from({ length: 18 }, (_, i) => i + 1));
  assert.equal(b.all((f) => f.type === 'gap').length, 1);

  for (const x of [a, b, c]) await x.close();
  assert.equal(await quick.stop(), 0);
  assert.equal(await slow.stop(), 0);
}

t.done();
