// workers.mjs — `workers = 2` under load with a real redis-server: clients
// spread over both workers, every client gets every message in order,
// /metrics and /readyz speak for the group, a killed worker is restarted,
// SIGTERM on the parent drains every worker (1001) and exits 0.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, parseMetrics, pluginPath, waitFor, sleep } from '../lib/harness.mjs';

const t = tap();
const redis = await startRedis();
const f = await startFanoutd({
  ini: `[server]\ninstance = wk\nworkers = 2\nshutdown_grace_ms = 3000\n\n[backend valkey]\nplugin = ${pluginPath('valkey')}\nurl = ${redis.url}\n`,
  wait: 'ready',
});
const metrics = async () => parseMetrics((await f.http('/metrics')).body);
const clients = [];

await t.test('clients spread over both workers; /metrics sums them', async () => {
  for (let i = 0; i < 24; i++) {
    const c = await wsClient(f.ws);
    await c.subscribe('wk.updates');
    clients.push(c);
  }
  await waitFor(async () => (await metrics()).fanout_clients === 24, { what: '24 clients in /metrics' });
  const m = await metrics();
  assert.equal(m.fanout_workers, 2);
  const w0 = m['fanout_worker_clients{worker="0"}'];
  const w1 = m['fanout_worker_clients{worker="1"}'];
  assert.equal(w0 + w1, 24);
  assert.ok(w0 > 0 && w1 > 0, `spread ${w0}/${w1}`);
  t.diag(`spread over workers: ${w0} / ${w1}`);
  assert.equal(m.fanout_subscriptions, 24);
  assert.equal(m['fanout_backend_up{backend="valkey"}'], 1);
});

await t.test('every client gets every message, in order', async () => {
  const N = 300;
  for (let i = 0; i < N; i += 50) {
    await redis.cli('EVAL', `for i=${i},${i + 49} do redis.call('PUBLISH','wk.updates',i) end`, '0');
  }
  for (const c of clients) {
    await waitFor(() => c.all((fr) => fr.type === 'message').length >= N, { timeoutMs: 15000, what: 'all messages' });
    assert.deepEqual(c.all((fr) => fr.type === 'message').map((fr) => fr.data), [...Array(N).keys()]);
  }
  // other workers' counters reach the shared page within 250 ms
  await waitFor(async () => (await metrics()).fanout_deliveries_total === 24 * N, { what: 'summed deliveries' });
  const m = await metrics();
  assert.equal(m.fanout_messages_in_total, 2 * N); // once per worker, not per client
});

await t.test('/readyz lists both workers; a killed worker is restarted', async () => {
  const r = JSON.parse((await f.http('/readyz')).body);
  assert.equal(r.status, 'ready');
  assert.equal(r.workers.length, 2);
  const victim = r.workers[0].pid;
  process.kill(victim, 'SIGKILL');
  await waitFor(async () => {
    const x = await f.http('/readyz');
    const b = JSON.parse(x.body);
    return x.status === 200 && b.workers[0].alive && b.workers[0].pid !== victim;
  }, { timeoutMs: 10000, what: 'worker 0 restarted and ready' });
  assert.match(f.log(), /worker 0 \(pid \d+\) killed by signal 9: restarting/);
});

await t.test('SIGTERM on the parent: every remaining client sees 1001, exit 0', async () => {
  const open = clients.filter((c) => !c.closeInfo);
  assert.ok(open.length > 0);
  f.kill('SIGTERM');
  const codes = await Promise.all(open.map((c) => c.closed.then((x) => x.code)));
  assert.deepEqual([...new Set(codes)], [1001]);
  assert.equal(await f.stop(), 0);
});

await redis.stop();
t.done();
