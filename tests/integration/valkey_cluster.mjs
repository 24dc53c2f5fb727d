// valkey_cluster.mjs — the valkey backend with cluster = yes through real
// fanoutd instances and a real 3-shard Redis Cluster (redis-server
// --cluster-enabled yes, slots assigned with CLUSTER ADDSLOTSRANGE): 50
// channels spread over every shard, one client on each of two instances
// subscribed to all of them. Counts every message:
//   1. redis-cli -c SPUBLISH and FCALL fanout_publish for every channel:
//      every client gets every message exactly once; INFO commandstats shows
//      each message reached only its own shard.
//   2. one shard killed: the others never pause (their messages keep
//      arriving); /readyz names the shard.
//   3. the shard restarted (empty): its channels, and only they, get a gap;
//      then every channel carries messages again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor, freePort, tmpDir, run, REDIS_CLI } from '../lib/harness.mjs';

const t = tap();
const NCH = 50;
const channels = Array.from({ length: NCH }, (_, i) => `c.${i}`);

/** A free port whose cluster bus port (+10000) is free too. */
async function clusterPort() {
  for (;;) {
    const p = await freePort();
    if (p > 55535) continue;
    const ok = await new Promise((res) => {
      const s = net.createServer();
      s.once('error', () => res(false));
      s.listen(p + 10000, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (ok) return p;
  }
}

/** A cluster node on port, its nodes.conf in dir (kept for a restart). */
function startNode(port, dir) {
  return startRedis({
    port,
    args: ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', '1000', '--cluster-require-full-coverage', 'no'],
  });
}

const clusterOk = async (nodes) => {
  for (const n of nodes) if (!(await n.cli('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
  return true;
};

/** SPUBLISH / FCALL lines through one redis-cli -c (follows MOVED). */
async function publish(seed, lines) {
  const r = await run(REDIS_CLI, ['-c', '-h', '127.0.0.1', '-p', String(seed.port)], { input: lines.join('\n') + '\n', timeoutMs: 60000 });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /ERR|CLUSTERDOWN/, r.stdout);
}

const stat = async (node, cmd) => Number(((await node.cli('INFO', 'commandstats')).match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`)) || [0, 0])[1]);

const ini = (seed) => `[server]
allow_publish = true

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${seed.port}
cluster = yes
reconnect_min_ms = 50
reconnect_max_ms = 500
probe_interval_ms = 300
probe_timeout_ms = 1500
`;

// ---- the cluster ----
const dirs = [tmpDir('fanout-vkc-'), tmpDir('fanout-vkc-'), tmpDir('fanout-vkc-')];
const ports = [];
for (let i = 0; i < 3; i++) {
  let p;
  do p = await clusterPort(); while (ports.includes(p));
  ports.push(p);
}
const nodes = [];
for (let i = 0; i < 3; i++) nodes.push(await startNode(ports[i], dirs[i]));
for (let i = 1; i < 3; i++) await nodes[0].cli('CLUSTER', 'MEET', '127.0.0.1', String(ports[i]));
for (let i = 0; i < 3; i++) {
  const a = Math.floor((i * 16384) / 3), z = Math.floor(((i + 1) * 16384) / 3) - 1;
  assert.equal(await nodes[i].cli('CLUSTER', 'ADDSLOTSRANGE', String(a), String(z)), 'OK');
}
await waitFor(() => clusterOk(nodes), { timeoutMs: 20000, what: 'cluster_state:ok' });

/** Which node owns each channel: the slot ranges assigned above. */
const owner = {};
for (const ch of channels) {
  const slot = Number(await nodes[0].cli('CLUSTER', 'KEYSLOT', ch));
  for (let i = 0; i < 3; i++)
    if (slot >= Math.floor((i * 16384) / 3) && slot <= Math.floor(((i + 1) * 16384) / 3) - 1) owner[ch] = i;
}
const owned = [0, 1, 2].map((i) => channels.filter((ch) => owner[ch] === i));

let a, b, ca, cb;
await t.test('two instances come up on the cluster and subscribe 50 channels over all shards', async () => {
  for (let i = 0; i < 3; i++) assert.ok(owned[i].length > 0, `shard ${i} owns channels`);
  a = await startFanoutd({ ini: ini(nodes[0]), instance: 'a', wait: 'ready' });
  b = await startFanoutd({ ini: ini(nodes[1]), instance: 'b', wait: 'ready' });
  ca = await wsClient(a.ws);
  cb = await wsClient(b.ws);
  for (const c of [ca, cb]) await Promise.all(channels.map((ch) => c.subscribe(ch)));
  for (let i = 0; i < 3; i++) {
    // Two subscriber connections (a and b) per shard, each on its own channels.
    const n = (await nodes[i].cli('PUBSUB', 'SHARDCHANNELS')).split('\n').filter(Boolean);
    assert.deepEqual(n.sort(), [...owned[i]].sort(), `shard ${i}'s channels`);
  }
});

const got = (c, pred = () => true) => c.all((x) => x.type === 'message' && pred(x)).map((x) => x.data);

/** Wait until client c holds every payload of want exactly once. */
async function receivedAll(c, want, timeoutMs = 15000) {
  await waitFor(() => want.every((p) => got(c).includes(p)), { timeoutMs, what: `${want.length} messages` });
  const all = got(c);
  for (const p of want) assert.equal(all.filter((x) => x === p).length, 1, `exactly once: ${p}`);
}

await t.test('SPUBLISH and FCALL fanout_publish: every client gets each message once, each on its own shard only', async () => {
  const before = await Promise.all(nodes.map(async (n) => [await stat(n, 'spublish'), await stat(n, 'fcall')]));
  const lines = [];
  const want = [];
  for (const ch of channels) {
    lines.push(`SPUBLISH ${ch} s1-${ch}`, `FCALL fanout_publish 1 fanout:{${ch}} f1-${ch}`);
    want.push(`s1-${ch}`, `f1-${ch}`);
  }
  await publish(nodes[0], lines);
  await receivedAll(ca, want);
  await receivedAll(cb, want);
  for (let i = 0; i < 3; i++) {
    const [sp, fc] = [await stat(nodes[i], 'spublish'), await stat(nodes[i], 'fcall')];
    // Per channel it owns: the plain SPUBLISH and the one inside the function.
    assert.equal(sp - before[i][0], 2 * owned[i].length, `shard ${i} SPUBLISH calls`);
    assert.equal(fc - before[i][1], owned[i].length, `shard ${i} FCALL calls`);
  }
  // A positioned message carries its offset; a third party's SPUBLISH none.
  const m = ca.all((x) => x.type === 'message' && x.data === `f1-${channels[0]}`)[0];
  assert.equal(m.offset, 1, JSON.stringify(m));
  const p = ca.all((x) => x.type === 'message' && x.data === `s1-${channels[0]}`)[0];
  assert.equal(p.offset, undefined, JSON.stringify(p));
});

await t.test('a shard killed: the others never pause; /readyz names it; back, its channels get a gap, the others none', async () => {
  const victim = 2;
  await nodes[victim].stop('SIGKILL');
  await waitFor(async () => (await a.http('/readyz')).status === 503 && (await b.http('/readyz')).status === 503, { what: 'readyz 503' });
  const body = (await a.http('/readyz')).body;
  assert.match(body, new RegExp(`127\\.0\\.0\\.1:${ports[victim]}`), body);
  // While it is down, the other shards' channels keep flowing.
  const t0 = Date.now();
  const others = channels.filter((ch) => owner[ch] !== victim);
  const want = others.map((ch) => `s2-${ch}`);
  await publish(nodes[0], others.map((ch) => `SPUBLISH ${ch} s2-${ch}`));
  await receivedAll(ca, want, 5000);
  await receivedAll(cb, want, 5000);
  t.diag(`shard down: ${want.length} messages on the other shards reached both instances in ${Date.now() - t0} ms`);
  // Restarted (same node id and slots, no data): its channels resume.
  nodes[victim] = await startNode(ports[victim], dirs[victim]);
  await waitFor(() => clusterOk(nodes), { timeoutMs: 20000, what: 'cluster_state:ok again' });
  await waitFor(async () => (await a.http('/readyz')).status === 200 && (await b.http('/readyz')).status === 200, { timeoutMs: 15000, what: 'readyz 200' });
  for (const c of [ca, cb]) {
    await waitFor(() => owned[victim].every((ch) => c.all((x) => x.type === 'gap' && x.channel === ch).length > 0), { what: 'gaps' });
    for (const ch of channels)
      assert.equal(c.all((x) => x.type === 'gap' && x.channel === ch).length, owner[ch] === victim ? 1 : 0, `gaps on ${ch}`);
    // The shard came back without its data: the gap names the new epoch.
    for (const ch of owned[victim]) {
      const g = c.all((x) => x.type === 'gap' && x.channel === ch)[0];
      assert.ok(g.epoch && g.offset === 0, JSON.stringify(g));
    }
  }
  const lines = [];
  const want3 = [];
  for (const ch of channels) {
    lines.push(`FCALL fanout_publish 1 fanout:{${ch}} f3-${ch}`);
    want3.push(`f3-${ch}`);
  }
  await publish(nodes[0], lines);
  await receivedAll(ca, want3);
  await receivedAll(cb, want3);
});

await t.test('client publishes go through the owning shard', async () => {
  const want = [];
  for (const ch of channels.slice(0, 10)) {
    ca.send({ type: 'publish', channel: ch, data: `p-${ch}`, id: `p-${ch}` });
    want.push(`p-${ch}`);
  }
  await waitFor(() => want.every((p) => ca.frames.find((x) => x.id === p)), { what: 'publish replies' });
  for (const p of want) assert.equal(ca.frames.find((x) => x.id === p).type, 'published');
  await receivedAll(cb, want);
});

for (const c of [ca, cb]) if (c) await c.close();
if (a) assert.equal(await a.stop(), 0);
if (b) assert.equal(await b.stop(), 0);
for (const n of nodes) await n.stop('SIGKILL');
for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
t.done();
