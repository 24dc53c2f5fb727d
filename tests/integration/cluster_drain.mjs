// cluster_drain.mjs — issue 4, rolling restart: SIGTERM one of three
// instances while updates flow. Its clients get close 1001, reconnect
// through nginx (full-jitter backoff, as the web client does) to the other
// two within a bounded time and receive everything published after their
// reconnect; the other clients never notice (one session, every update, in
// order). Measures the time from SIGTERM to close and from close to
// resubscribed, and how many updates fell into the switch.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { waitFor } from '../lib/harness.mjs';
import { missing, startCluster, TrackedClient, push, checkRun, stats, finish } from './cluster_env.mjs';

const t = tap();
const CLIENTS = 30;
const UPDATES = 800;
const RATE = 100; // updates/s: the stream runs 8 s, the drain happens ~1.5 s in
const RECONNECT_BOUND_MS = 5000;
const lacking = missing();

if (lacking.length) {
  t.skip('cluster drain', 'missing: ' + lacking.join(', '));
} else {
  const cl = await startCluster();
  const clients = [];
  const victim = 'c2';
  let observer, pushDone, sigtermAt, exitCode;

  await t.test(`${CLIENTS} reconnecting clients through nginx, updates flowing`, async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const c = new TrackedClient(cl.nginx.ws, 'updates', { reconnect: true });
      clients.push(c);
      await c.connect();
    }
    // A client straight on c1 records every update's publish time (ts).
    observer = new TrackedClient(cl.byName.c1.ws);
    await observer.connect();
    assert.equal(clients.filter((c) => c.current.instance === victim).length, CLIENTS / 3);
    pushDone = push(cl.redis, { count: UPDATES, rate: RATE });
    await waitFor(() => clients.every((c) => c.seqs.length >= 150), { timeoutMs: 10000, what: 'updates flowing' });
  });

  await t.test(`SIGTERM ${victim}: it drains and exits 0`, async () => {
    sigtermAt = Date.now();
    exitCode = await cl.byName[victim].stop('SIGTERM');
    assert.equal(exitCode, 0);
    t.diag(`${victim} exited ${exitCode} ${Date.now() - sigtermAt} ms after SIGTERM`);
  });

  await t.test('the publisher finishes and every client gets the last update', async () => {
    const r = await pushDone;
    assert.equal(r.code, 0, `fanout-cli push: ${r.stderr}`);
    await waitFor(() => observer.seqs.length >= UPDATES && clients.every((c) => c.seqs.at(-1) === UPDATES), {
      timeoutMs: 20000, what: 'the last update everywhere',
    });
    assert.equal(checkRun(observer.seqs, 1, UPDATES), '');
  }, { timeoutMs: 40000 });

  const drained = clients.filter((c) => c.sessions[0].instance === victim);
  const others = clients.filter((c) => c.sessions[0].instance !== victim);

  await t.test(`${victim}'s clients: close 1001, reconnect via nginx, miss nothing after resubscribing`, async () => {
    assert.equal(drained.length, CLIENTS / 3);
    const toClose = [], toResub = [], lost = [];
    const tsOf = new Map(observer.seqs.map((s, i) => [s, observer.current.ts[i]]));
    for (const [i, c] of drained.entries()) {
      const [s0, s1] = c.sessions;
      assert.equal(s0.closeCode, 1001, `client ${i} close code`);
      assert.equal(c.sessions.length, 2, `client ${i}: ${c.sessions.length} sessions`);
      assert.ok(['c1', 'c3'].includes(s1.instance), `client ${i} reconnected to ${s1.instance}`);
      assert.equal(s1.closedAt, null);
      assert.deepEqual([...s0.bad, ...s1.bad], []);
      const ms = s1.subscribedAt - s0.closedAt;
      assert.ok(ms >= 0 && ms < RECONNECT_BOUND_MS, `client ${i} took ${ms} ms to resubscribe`);
      toClose.push(s0.closedAt - sigtermAt);
      toResub.push(ms);
      // Before the drain: 1..k in order. After: first..UPDATES in order.
      const k = s0.seqs.length;
      assert.equal(checkRun(s0.seqs, 1, k), '', `client ${i} before the drain`);
      const first = s1.seqs[0];
      assert.equal(checkRun(s1.seqs, first, UPDATES), '', `client ${i} after reconnecting`);
      // Nothing published after the subscribed reply is missing: the update
      // just before the first one received was published before it.
      if (first > 1) {
        assert.ok(tsOf.get(first - 1) <= s1.subscribedAt,
          `client ${i}: seq ${first - 1} published at ${tsOf.get(first - 1)}, after resubscribing at ${s1.subscribedAt}, never arrived`);
      }
      lost.push(Math.max(0, first - 1 - k));
    }
    const a = stats(toClose), b = stats(toResub), l = stats(lost);
    t.diag(`SIGTERM -> close 1001 (ms): min ${a.min} p50 ${a.p50} max ${a.max}`);
    t.diag(`close -> resubscribed through nginx (ms): min ${b.min} p50 ${b.p50} p90 ${b.p90} max ${b.max} ` +
      `(bound ${RECONNECT_BOUND_MS}; full-jitter backoff base 200 ms)`);
    t.diag(`updates published while a client was between instances (at ${RATE}/s): min ${l.min} p50 ${l.p50} max ${l.max}`);
    const per = {};
    for (const c of drained) per[c.current.instance] = (per[c.current.instance] || 0) + 1;
    t.diag(`drained clients now on: ${JSON.stringify(per)}`);
  });

  await t.test('the other clients never notice: one session, every update, in order', async () => {
    assert.equal(others.length, CLIENTS - CLIENTS / 3);
    for (const [i, c] of others.entries()) {
      assert.equal(c.sessions.length, 1, `client ${i} reconnected`);
      assert.equal(c.current.closedAt, null, `client ${i} was closed`);
      assert.equal(checkRun(c.seqs, 1, UPDATES), '', `client ${i}`);
      assert.deepEqual(c.gaps, [], `client ${i}: gap notices`);
      assert.deepEqual(c.current.bad, []);
    }
    t.diag(`${others.length} clients x ${UPDATES} updates delivered without a break`);
  });

  for (const c of [...clients, observer]) c?.close();
  await t.test('the rest of the cluster stops cleanly', async () => {
    await cl.nginx.stop();
    for (const n of cl.names.filter((x) => x !== victim)) assert.equal(await cl.byName[n].stop('SIGTERM'), 0);
    await cl.redis.stop();
  });
}
finish(t);
