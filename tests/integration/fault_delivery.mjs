// fault_delivery.mjs — the delivery guarantee under faults, counting every
// message (issue 10). 30 clients through nginx over three fanoutd on one
// redis-server; a publisher sends 1,000 numbered updates at 200/s; during
// the run one instance is drained (SIGTERM: its clients resume on the
// others), the broker is restarted, and four clients lose their TCP
// connection. Clients resume with `since` after every reconnect
// (fault_env.mjs: a raw client, no client-side dedup).
//
// 1. Broker with persistence (AOF, fsync always): history survives the
//    restart. Every client receives every update exactly once, in order,
//    every resume answered recovered:true, no gap.
// 2. Broker without persistence: the restart loses the history (a new
//    epoch). Clients learn it (a gap frame, or recovered:false on a resume)
//    and are never left with a silent hole; nothing arrives twice; the
//    stream goes on to the last update.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, waitFor } from '../lib/harness.mjs';
import { missing, startNginx, instanceIni, metrics, stats, finish } from './cluster_env.mjs';
import { ResumingClient, publishNumbered, checkExactlyOnce, checkNoSilentHole, resumeLatencies } from './fault_env.mjs';

const t = tap();
const CLIENTS = 30;
const UPDATES = 1000;
const RATE = 200;
const DROPPED = 4;
const lacking = missing();

const T0 = Date.now();
const el = () => `${((Date.now() - T0) / 1000).toFixed(1)} s`;

async function scenario(name, { persist }) {
  t.diag(`${el()}: ${name}: starting redis, 3 fanoutd, nginx`);
  const persistArgs = persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [];
  let redis = await startRedis({ args: persistArgs });
  const dir = redis.dir;
  const ini = instanceIni(redis.port, 'position_probe_s = 2\n');
  const names = ['c1', 'c2', 'c3'];
  const inst = {};
  for (const n of names) inst[n] = await startFanoutd({ ini, instance: n, wait: 'ready' });
  const nginx = await startNginx({ upstreamPorts: names.map((n) => inst[n].port) });
  const clients = [];
  const victim = 'c2';
  let drained = null, restart = null, restartMs = 0, again = new Set();

  t.diag(`${el()}: cluster up`);
  await t.test(`${name}: ${CLIENTS} resuming clients through nginx`, async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const c = new ResumingClient(nginx.ws);
      clients.push(c);
      await c.start();
    }
    const on = (n) => clients.filter((c) => c.instances[0] === n).length;
    t.diag(`clients per instance: ${names.map((n) => `${n} ${on(n)}`).join(', ')}`);
    assert.ok(on(victim) > 0);
  });

  await t.test(`${name}: ${UPDATES} updates at ${RATE}/s through a drain, a broker restart and dropped connections`, async () => {
    t.diag(`${el()}: publishing`);
    const pub = await publishNumbered(redis.port, {
      count: UPDATES,
      rate: RATE,
      onSeq: (seq) => {
        if (seq === 150) drained = inst[victim].stop('SIGTERM');
        if (seq === 400) {
          // The publisher waits (blocks on its next call) while the broker
          // is away; instances reconnect on their own.
          restart = (async () => {
            const t0 = Date.now();
            await redis.stop('SIGTERM');
            redis = await startRedis({ port: redis.port, args: [...persistArgs, '--dir', dir] });
            restartMs = Date.now() - t0;
          })();
        }
        if (seq === 650) for (const c of clients.slice(0, DROPPED)) c.dropTcp();
      },
    });
    t.diag(`${el()}: published`);
    again = pub.resentAfterLoss;
    await restart;
    assert.equal(await drained, 0, `${victim} exits 0 after draining`);
    t.diag(`publisher: ${pub.published.length} updates, ${pub.reconnects} lost connections, ` +
      `${pub.resent} resent, ${pub.retries} retried on errors; broker down ${restartMs} ms`);
    const epochs = new Set(pub.published.map((p) => p.epoch));
    t.diag(`epochs seen by the publisher: ${epochs.size}`);
    if (persist) assert.equal(epochs.size, 1, 'the history survived the restart');
    else assert.equal(epochs.size, 2, 'the restart lost the history: a new epoch');
    await waitFor(() => clients.every((c) => c.lastSeq === UPDATES), {
      timeoutMs: 30000, what: 'the last update at every client',
    }).catch((e) => {
      const behind = clients.filter((c) => c.lastSeq !== UPDATES).map((c) => c.lastSeq);
      throw new Error(`${e.message}; clients behind at: ${behind.join(',')}`);
    });
  }, { timeoutMs: 90000 });

  await t.test(persist
    ? `${name}: every client got every update exactly once, in order; every resume recovered`
    : `${name}: no silent hole: every loss announced (gap or recovered:false), nothing twice`, async () => {
    const problems = [];
    for (const [i, c] of clients.entries()) {
      const why = persist ? checkExactlyOnce(c, UPDATES) : checkNoSilentHole(c, UPDATES, again);
      if (why) problems.push(`client ${i} (${c.instances.join('>')}): ${why}`);
    }
    assert.deepEqual(problems, []);
    const resumes = clients.flatMap((c) => c.log.filter((e) => e.k === 'sub' && e.since));
    const recovered = resumes.filter((e) => e.recovered === true).length;
    const gaps = clients.reduce((n, c) => n + c.log.filter((e) => e.k === 'gap').length, 0);
    const moved = clients.filter((c) => c.instances[0] === victim);
    assert.ok(moved.every((c) => c.sessions >= 2 && !c.instances.slice(1).includes(victim)),
      `${victim}'s clients resumed elsewhere`);
    const dropped = clients.slice(0, DROPPED);
    assert.ok(dropped.every((c) => c.sessions >= 2), 'the dropped clients reconnected');
    const s = stats(resumeLatencies(clients));
    t.diag(`${resumes.length} resumes (${recovered} recovered, ${resumes.length - recovered} not), ${gaps} gap frames; ` +
      `reconnect -> resumed ms: p50 ${s.p50} p90 ${s.p90} max ${s.max}`);
    if (!persist) {
      const told = clients.filter((c) => c.log.some((e) => e.k === 'gap' || (e.k === 'sub' && e.since && e.recovered !== true)));
      assert.ok(told.length > 0, 'the lost history was announced to someone');
      t.diag(`${told.length} of ${CLIENTS} clients were told of the lost history`);
    }
    for (const n of names.filter((x) => x !== victim)) {
      const m = await metrics(inst[n]);
      t.diag(`${n}: recoveries ${m.get('fanout_recoveries_total')}, ring hits ${m.get('fanout_recovery_ring_hits_total')}, ` +
        `history requests ${m.get('fanout_history_requests_total{kind="recover"}')}, holes ${m.get('fanout_holes_total')} ` +
        `(repaired ${m.get('fanout_holes_repaired_total')}), gaps ${m.get('fanout_position_gaps_total')}, ` +
        `epoch changes ${m.get('fanout_epoch_changes_total')}`);
    }
  });

  t.diag(`${el()}: checked`);
  for (const c of clients) c.stop();
  await nginx.stop();
  for (const n of names.filter((x) => x !== victim)) await inst[n].stop('SIGTERM');
  await redis.stop();
  t.diag(`${el()}: stopped`);
}

if (lacking.length) {
  t.skip('delivery fault tests', 'missing: ' + lacking.join(', '));
} else {
  await scenario('persistent broker', { persist: true });
  await scenario('broker without persistence', { persist: false });
}
finish(t);
