// valkey_repair.mjs — the hub's hole repair on the valkey backend, end to
// end through one fanoutd on a real redis-server, counting every message.
// A publisher sends numbered updates through the broker's function (FCALL
// fanout_publish, exactly once per seq: fault_env.mjs) while the backend
// loses its broker in three ways; two WebSocket clients stay connected
// throughout (they never resume: what they get is what the instance's
// repair gives them).
//
// 1. The subscriber connection killed twice (CLIENT KILL TYPE pubsub) while
//    the broker keeps taking publishes: what was published meanwhile never
//    reaches the instance live; the backend's gap() after the resubscribe
//    makes the hub fill the hole from the history. Every update exactly
//    once, in order, no gap frame.
// 2. The broker crashes (SIGKILL) and restarts with its AOF (appendfsync
//    always): the history survives, the same: exactly once, no gap.
// 3. The same crash without persistence: the history is lost (a new epoch).
//    Clients are told (a gap with the new position), nothing arrives twice,
//    the stream goes on to the last update: never a silent hole.
// 4. The backend's ACL user loses the channel (the broker disconnects the
//    subscriber; the resubscribe is refused for that channel only) and gets
//    it back: the channel's clients still get every update exactly once
//    (the hub's position probe and the backend's gap() after the channel is
//    subscribed again repair from the history), no gap.
//
// The cluster-wide version (nginx, three instances, a drain, clients that
// resume) is fault_delivery.mjs; this one isolates the backend's
// reconnect → gap() → repair path.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, waitFor, sleep } from '../lib/harness.mjs';
import { ResumingClient, publishNumbered, checkExactlyOnce, checkNoSilentHole } from './fault_env.mjs';

const t = tap();
const COUNT = 300;
const RATE = 200;

const ini = (port, extra = '') => `[server]
position_probe_s = 2

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${port}/0
${extra}reconnect_min_ms = 20
reconnect_max_ms = 200
connect_timeout_ms = 500
probe_interval_ms = 200
probe_timeout_ms = 600
`;

async function metric(f, name) {
  const m = (await f.http('/metrics')).body.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

/**
 * One fanoutd on redis r, two clients on 'updates'; publish COUNT updates,
 * calling fault(seq, ctx) after each; wait until both have the last one (or
 * what the verdict needs). Resolves {clients, pub, f, r}.
 */
async function run({ redisArgs = [], keys = '', setup, fault }) {
  const ctx = { r: await startRedis({ args: redisArgs }) };
  if (setup) await setup(ctx);
  ctx.f = await startFanoutd({ ini: ini(ctx.r.port, keys), wait: 'ready' });
  const clients = [new ResumingClient(ctx.f.ws), new ResumingClient(ctx.f.ws)];
  for (const c of clients) await c.start();
  const faults = [];
  const pub = await publishNumbered(ctx.r.port, {
    count: COUNT,
    rate: RATE,
    onSeq: (seq) => {
      const p = fault(seq, ctx);
      if (p) faults.push(p);
    },
  });
  await Promise.all(faults);
  await waitFor(() => clients.every((c) => c.lastSeq === COUNT), {
    timeoutMs: 20000, what: 'the last update at both clients',
  }).catch((e) => {
    throw new Error(`${e.message}; at ${clients.map((c) => c.lastSeq).join(', ')}\n${ctx.f.log().slice(-3000)}`);
  });
  for (const c of clients) assert.equal(c.sessions, 1, 'the clients never reconnected');
  return { clients, pub, ...ctx };
}

async function finish({ clients, f, r }) {
  for (const c of clients) c.stop();
  assert.equal(await f.stop(), 0);
  await r.stop();
}

await t.test('subscriber connection killed twice mid-stream: the holes are repaired from history, no gap', async () => {
  const x = await run({
    fault: (seq, { r }) => {
      if (seq === 80 || seq === 180)
        return r.cli('CLIENT', 'KILL', 'TYPE', 'pubsub').then((n) => assert.equal(n, '1'));
      return null;
    },
  });
  for (const [i, c] of x.clients.entries()) assert.equal(checkExactlyOnce(c, COUNT), '', `client ${i}`);
  const holes = await metric(x.f, 'fanout_holes_total');
  const repaired = await metric(x.f, 'fanout_holes_repaired_total');
  t.diag(`holes ${holes}, repaired ${repaired}; backend reconnects: ${(x.f.log().match(/up: connected/g) || []).length - 1}`);
  assert.ok(/subscriber connection lost/.test(x.f.log()), 'the subscriber connection was lost');
  await finish(x);
});

await t.test('broker crash (SIGKILL) + restart with AOF fsync always: every update exactly once, no gap', async () => {
  const x = await run({
    redisArgs: ['--appendonly', 'yes', '--appendfsync', 'always'],
    fault: (seq, ctx) => {
      if (seq !== 120) return null;
      return (async () => {
        const { port, dir } = ctx.r;
        await ctx.r.stop('SIGKILL');
        await sleep(200); // the instance sees the broker gone
        ctx.r = await startRedis({ port, args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
      })();
    },
  });
  const epochs = new Set(x.pub.published.map((p) => p.epoch));
  assert.equal(epochs.size, 1, 'the history survived the crash');
  for (const [i, c] of x.clients.entries()) assert.equal(checkExactlyOnce(c, COUNT), '', `client ${i}`);
  t.diag(`publisher: ${x.pub.reconnects} lost connections, ${x.pub.resent} resent; ` +
    `holes ${await metric(x.f, 'fanout_holes_total')}, repaired ${await metric(x.f, 'fanout_holes_repaired_total')}`);
  await finish(x);
});

await t.test('broker crash + restart without persistence: the loss is announced, nothing twice, the stream goes on', async () => {
  const x = await run({
    fault: (seq, ctx) => {
      if (seq !== 120) return null;
      return (async () => {
        const { port } = ctx.r;
        await ctx.r.stop('SIGKILL');
        await sleep(200);
        ctx.r = await startRedis({ port });
      })();
    },
  });
  const epochs = [...new Set(x.pub.published.map((p) => p.epoch))];
  assert.equal(epochs.length, 2, 'the restart lost the history: a new epoch');
  for (const [i, c] of x.clients.entries()) {
    assert.equal(checkNoSilentHole(c, COUNT, x.pub.resentAfterLoss), '', `client ${i}`);
    const gaps = c.log.filter((e) => e.k === 'gap');
    assert.ok(gaps.length >= 1, `client ${i} was told of the loss`);
    assert.ok(gaps.some((g) => g.epoch === epochs[1]), `client ${i}: a gap names the new epoch (${JSON.stringify(gaps)})`);
    // After the last gap, the new epoch goes on from the position it named.
    const last = c.log.lastIndexOf(gaps[gaps.length - 1]);
    let want = gaps[gaps.length - 1].offset + 1;
    for (const m of c.log.slice(last).filter((e) => e.k === 'msg'))
      assert.equal(m.offset, want++, `client ${i}: offsets after the gap`);
  }
  await finish(x);
});

await t.test('the channel revoked from the ACL user and granted again: every update exactly once, no gap', async () => {
  const acl = (r, chans) => r.cli('ACL', 'SETUSER', 'fan', 'reset', 'on', '>fanpw', '~fanout:*', '+@all',
    'resetchannels', '&__fanout_probe:*', ...chans);
  let revoked = 0, granted = 0;
  const x = await run({
    keys: 'username = fan\npassword = fanpw\n',
    setup: async ({ r }) => assert.equal(await acl(r, ['&updates']), 'OK'),
    fault: (seq, { r, f }) => {
      if (seq === 80) {
        revoked = Date.now();
        return acl(r, []).then(() => waitFor(() => /SUBSCRIBE updates refused/.test(f.log()), { what: 'the refusal' }));
      }
      if (seq === 200) {
        granted = Date.now();
        return acl(r, ['&updates']);
      }
      return null;
    },
  });
  for (const [i, c] of x.clients.entries()) assert.equal(checkExactlyOnce(c, COUNT), '', `client ${i}`);
  t.diag(`refused for ${granted - revoked} ms; holes ${await metric(x.f, 'fanout_holes_total')}, ` +
    `repaired ${await metric(x.f, 'fanout_holes_repaired_total')}`);
  await finish(x);
});

t.done();
