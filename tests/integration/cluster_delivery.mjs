// cluster_delivery.mjs — issue 4: 30 clients through nginx land on all three
// instances (the hello/message `instance` field shows it), and 500 updates
// from `fanout-cli push` reach every client complete, in order, without
// duplicates. Real redis-server, three real fanoutd, real nginx.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { waitFor } from '../lib/harness.mjs';
import { missing, startCluster, TrackedClient, push, checkRun, metrics, finish } from './cluster_env.mjs';

const t = tap();
const CLIENTS = 30;
const UPDATES = 500;
const lacking = missing();

if (lacking.length) {
  t.skip('cluster delivery', 'missing: ' + lacking.join(', '));
} else {
  let cl;
  const clients = [];
  await t.test('three fanoutd behind nginx start and are ready', async () => {
    cl = await startCluster();
    for (const f of cl.instances) assert.equal((await f.http('/readyz')).status, 200);
  });

  await t.test(`${CLIENTS} clients through nginx land on all three instances`, async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const c = new TrackedClient(cl.nginx.ws);
      clients.push(c);
      await c.connect();
    }
    const per = {};
    for (const c of clients) per[c.current.instance] = (per[c.current.instance] || 0) + 1;
    t.diag('clients per instance: ' + JSON.stringify(per));
    assert.deepEqual(Object.keys(per).sort(), ['c1', 'c2', 'c3']);
    // nginx round robin over three healthy servers: 10 each.
    for (const n of cl.names) assert.equal(per[n], CLIENTS / 3, `clients on ${n}`);
  }, { timeoutMs: 60000 });

  await t.test(`${UPDATES} updates from fanout-cli push reach every client complete, in order, no dups`, async () => {
    const before = await Promise.all(cl.instances.map(metrics));
    const t0 = Date.now();
    const r = await push(cl.redis, { count: UPDATES, rate: 250 });
    assert.equal(r.code, 0, `fanout-cli push failed: ${r.stderr}`);
    await waitFor(() => clients.every((c) => c.seqs.length >= UPDATES), {
      timeoutMs: 20000, what: 'every client to receive every update',
    }).catch((e) => {
      throw new Error(e.message + ': ' + clients.map((c) => c.seqs.length).join(','));
    });
    const elapsed = Date.now() - t0;
    let delivered = 0;
    for (const [i, c] of clients.entries()) {
      const why = checkRun(c.seqs, 1, UPDATES);
      assert.equal(why, '', `client ${i} (${c.current.instance}): ${why}`);
      assert.equal(c.sessions.length, 1, `client ${i} reconnected`);
      assert.equal(c.current.closedAt, null, `client ${i} was closed`);
      assert.deepEqual(c.current.bad, [], `client ${i}: messages from another instance`);
      assert.deepEqual(c.gaps, [], `client ${i}: gap notices`);
      delivered += c.seqs.length;
    }
    assert.equal(delivered, CLIENTS * UPDATES);
    // Each instance took every update in once from the broker and wrote it
    // to its own 10 clients.
    const after = await Promise.all(cl.instances.map(metrics));
    for (const [i, n] of cl.names.entries()) {
      const d = (k) => after[i].get(k) - before[i].get(k);
      assert.equal(d('fanout_messages_in_total'), UPDATES, `${n} messages in`);
      assert.equal(d('fanout_deliveries_total'), UPDATES * (CLIENTS / 3), `${n} deliveries`);
    }
    t.diag(`delivered ${delivered}/${CLIENTS * UPDATES} (${CLIENTS} clients x ${UPDATES} updates at 250/s) ` +
      `in ${elapsed} ms from the first publish to the last receipt; 0 lost, 0 duplicated, 0 out of order`);
  }, { timeoutMs: 60000 });

  for (const c of clients) c.close();
  if (cl) {
    await t.test('every instance exits 0 on SIGTERM', async () => {
      await cl.nginx.stop();
      for (const f of cl.instances) assert.equal(await f.stop('SIGTERM'), 0);
      await cl.redis.stop();
    });
  }
}
finish(t);
