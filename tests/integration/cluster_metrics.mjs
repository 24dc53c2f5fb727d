// cluster_metrics.mjs — issue 4, observability: every instance's /metrics is
// valid Prometheus text and its counters match exactly what the test did
// (clients connected to each instance directly, updates published, bad
// frames sent); /readyz goes 503 on every instance while the broker is down
// (clients stay connected) and 200 again once it is back, with updates
// flowing again through nginx.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { waitFor, startRedis, wsClient } from '../lib/harness.mjs';
import { missing, startCluster, TrackedClient, push, metrics, finish } from './cluster_env.mjs';

const t = tap();
const UPDATES = 50;
const PER = { c1: 3, c2: 2, c3: 1 }; // clients connected straight to each instance
const lacking = missing();

if (lacking.length) {
  t.skip('cluster metrics and readiness', 'missing: ' + lacking.join(', '));
} else {
  const cl = await startCluster();
  const direct = {};
  let before;

  await t.test('/metrics parses as Prometheus text on every instance', async () => {
    before = {};
    for (const n of cl.names) {
      const m = await metrics(cl.byName[n]);
      before[n] = m;
      for (const [k, type] of [
        ['fanout_clients', 'gauge'], ['fanout_subscriptions', 'gauge'], ['fanout_channels', 'gauge'],
        ['fanout_messages_in_total', 'counter'], ['fanout_frames_out_total', 'counter'],
        ['fanout_bytes_out_total', 'counter'], ['fanout_slow_client_disconnects_total', 'counter'],
        ['fanout_protocol_errors_total', 'counter'], ['fanout_queue_bytes', 'gauge'],
        ['fanout_backend_up', 'gauge'],
      ]) assert.equal(m.types.get(k), type, `${n}: # TYPE ${k}`);
      assert.equal(m.get('fanout_clients'), 0);
      assert.equal(m.get('fanout_backend_up{backend="valkey"}'), 1, `${n} backend up`);
    }
  });

  await t.test('counters match what the test sent', async () => {
    for (const n of cl.names) {
      direct[n] = [];
      for (let i = 0; i < PER[n]; i++) {
        const c = new TrackedClient(cl.byName[n].ws);
        await c.connect();
        assert.equal(c.current.instance, n);
        direct[n].push(c);
      }
    }
    // Two bad frames on c1: one bad_json, one bad_channel.
    const bad = await wsClient(cl.byName.c1.ws);
    bad.send('{"type":');
    await bad.next((f) => f.type === 'error' && f.code === 'bad_json');
    bad.send({ type: 'subscribe', channel: 'no spaces allowed' });
    await bad.next((f) => f.type === 'error' && f.code === 'bad_channel');
    await bad.close();

    const mid = {};
    for (const n of cl.names) mid[n] = await metrics(cl.byName[n]);
    const r = await push(cl.redis, { count: UPDATES, rate: 500 });
    assert.equal(r.code, 0, r.stderr);
    const all = Object.values(direct).flat();
    await waitFor(() => all.every((c) => c.seqs.length === UPDATES), { what: 'every update everywhere' });

    for (const n of cl.names) {
      const k = PER[n];
      const m = await metrics(cl.byName[n]);
      const d = (key) => m.get(key) - mid[n].get(key);
      assert.equal(m.get('fanout_clients'), k, `${n} clients`);
      assert.equal(m.get('fanout_subscriptions'), k, `${n} subscriptions`);
      assert.equal(m.get('fanout_channels'), 1, `${n} channels`);
      assert.equal(m.get('fanout_clients_accepted_total') - before[n].get('fanout_clients_accepted_total'),
        k + (n === 'c1' ? 1 : 0), `${n} accepted`);
      assert.equal(d('fanout_messages_in_total'), UPDATES, `${n} messages in`);
      assert.equal(d('fanout_deliveries_total'), UPDATES * k, `${n} deliveries`);
      assert.equal(d('fanout_frames_out_total'), UPDATES * k, `${n} frames out`);
      // fanout_bytes_out_total counts WebSocket payload bytes (its HELP
      // says so): exactly the message frames the clients received, since
      // nothing else was written in between.
      const payload = direct[n].reduce((a, c) => a + c.current.payloadBytes, 0);
      assert.equal(d('fanout_bytes_out_total'), payload, `${n} bytes out`);
      assert.equal(m.get('fanout_slow_client_disconnects_total'), 0);
      assert.equal(m.get('fanout_queue_bytes'), 0, `${n} queues drained`);
      const errs = (code) => m.get(`fanout_protocol_errors_total{code="${code}"}`);
      assert.equal(errs('bad_json'), n === 'c1' ? 1 : 0, `${n} bad_json`);
      assert.equal(errs('bad_channel'), n === 'c1' ? 1 : 0, `${n} bad_channel`);
    }
    t.diag(`checked on c1/c2/c3 with ${PER.c1}/${PER.c2}/${PER.c3} clients and ${UPDATES} updates: ` +
      'clients, subscriptions, channels, messages in, deliveries, frames and bytes out, protocol errors');
  }, { timeoutMs: 60000 });

  await t.test('/readyz is 503 on every instance while the broker is down; clients stay connected', async () => {
    const t0 = Date.now();
    await cl.redis.stop('SIGKILL');
    const when = {};
    await Promise.all(cl.names.map(async (n) => {
      await waitFor(async () => (await cl.byName[n].http('/readyz')).status === 503, {
        timeoutMs: 15000, what: `${n} /readyz 503`,
      });
      when[n] = Date.now() - t0;
      const r = await cl.byName[n].http('/readyz');
      const body = JSON.parse(r.body);
      assert.match(JSON.stringify(body), /valkey/, `${n} /readyz body names the backend: ${r.body}`);
      assert.equal((await metrics(cl.byName[n])).get('fanout_backend_up{backend="valkey"}'), 0);
      assert.equal((await cl.byName[n].http('/healthz')).status, 200, `${n} still live`);
    }));
    t.diag('broker killed -> /readyz 503 (ms): ' + JSON.stringify(when));
    for (const c of Object.values(direct).flat()) assert.equal(c.current.closedAt, null, 'a client was closed');
  });

  await t.test('broker back: /readyz 200 everywhere, updates flow again through nginx', async () => {
    const t0 = Date.now();
    cl.redis = await startRedis({ port: cl.redis.port });
    const when = {};
    await Promise.all(cl.names.map(async (n) => {
      await waitFor(async () => (await cl.byName[n].http('/readyz')).status === 200, {
        timeoutMs: 15000, what: `${n} /readyz 200`,
      });
      when[n] = Date.now() - t0;
    }));
    t.diag('broker restarted -> /readyz 200 (ms): ' + JSON.stringify(when));
    const viaLb = [];
    for (let i = 0; i < 3; i++) {
      const c = new TrackedClient(cl.nginx.ws);
      await c.connect();
      viaLb.push(c);
    }
    const r = await push(cl.redis, { count: 5, rate: 50 });
    assert.equal(r.code, 0, r.stderr);
    const all = [...viaLb, ...Object.values(direct).flat()];
    await waitFor(() => all.every((c) => c.current.seqs.length >= (viaLb.includes(c) ? 5 : UPDATES + 5)), {
      what: 'updates after recovery',
    });
    for (const c of Object.values(direct).flat()) {
      assert.equal(c.sessions.length, 1, 'a direct client reconnected');
      assert.ok(c.gaps.length >= 1, 'no gap notice after the broker came back');
    }
    for (const c of all) c.close();
  }, { timeoutMs: 40000 });

  await t.test('the cluster stops cleanly', async () => {
    await cl.nginx.stop();
    for (const f of cl.instances) assert.equal(await f.stop('SIGTERM'), 0);
    await cl.redis.stop();
  });
}
finish(t);
