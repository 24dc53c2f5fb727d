// cli_bench.mjs — smoke test of `fanout-cli bench` at a tiny size: 20
// clients, 200 messages, through Valkey (valkey backend; plain PUBLISH and
// --positioned FCALL fanout_publish) and through publish frames (loopback
// backend). It must complete with every client connected
// and zero loss, and report server CPU/RSS for the pid it was given. No
// timing is asserted. Also the --floor mode on its own.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, pluginPath, run, FANOUT_CLI } from '../lib/harness.mjs';

const t = tap();

function checkReport(r, { clients, messages, channels }) {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const rep = JSON.parse(r.stdout);
  assert.equal(rep.ok, true);
  assert.equal(rep.connect.connected, clients);
  assert.equal(rep.connect.failed, 0);
  assert.equal(rep.steps.length, 1);
  const s = rep.steps[0];
  assert.equal(s.published, messages);
  assert.equal(s.pub_errors, 0);
  assert.equal(s.expected, messages * clients / channels); // each message reaches its channel's clients
  assert.equal(s.received, s.expected);
  assert.equal(s.loss, 0);
  assert.equal(s.gaps, 0);
  assert.equal(s.dups, 0);
  assert.ok(s.latency_ms.p50 > 0 && s.latency_ms.p50 <= s.latency_ms.p99 && s.latency_ms.p99 <= s.latency_ms.max * 1.04);
  assert.ok(s.server && s.server.cpu_s >= 0 && s.server.rss_kib > 0, 'server sampled: ' + JSON.stringify(s.server));
  assert.ok(s.bench.cpu_s >= 0);
  assert.ok(s.floor && s.floor.us_per_write > 0, 'floor measured: ' + JSON.stringify(s.floor));
  return rep;
}

let r;
await t.test('bench via Valkey: 20 clients, 2 channels, 200 messages, loss 0', async () => {
  r = await startRedis();
  const ini = `[server]\ninstance = bench\n\n[backend valkey]\nplugin = ${pluginPath('valkey')}\nurl = ${r.url}\n`;
  const f = await startFanoutd({ ini, wait: 'ready' });
  try {
    const b = await run(FANOUT_CLI, ['bench', '--json', '--url', f.ws, '--redis', r.url, '--clients', '20', '--channels', '2',
      '--messages', '200', '--rate', '400', '--server-pid', String(f.pid), '--floor-s', '0.3', '--idle-s', '0.2'], { timeoutMs: 60000 });
    checkReport(b, { clients: 20, messages: 200, channels: 2 });
    assert.equal(JSON.parse(b.stdout).via, 'valkey');
  } finally {
    assert.equal(await f.stop(), 0);
    await r.stop();
  }
});

await t.test('bench --deflate --payload-json --broker-hop: compressed frames inflated, bytes per delivery, the broker hop', async () => {
  const r2 = await startRedis();
  const ini = `[server]\ninstance = bench\npermessage_deflate = true\n\n[backend valkey]\nplugin = ${pluginPath('valkey')}\nurl = ${r2.url}\n`;
  const f = await startFanoutd({ ini, wait: 'ready' });
  try {
    const run1 = async (extra) => {
      const b = await run(FANOUT_CLI, ['bench', '--json', '--url', f.ws, '--redis', r2.url, '--clients', '10', '--messages', '50',
        '--rate', '200', '--payload-bytes', '1024', '--payload-json', '--no-floor', '--idle-s', '0', ...extra], { timeoutMs: 60000 });
      assert.equal(b.code, 0, b.stdout + b.stderr);
      return JSON.parse(b.stdout).steps[0];
    };
    const plain = await run1(['--broker-hop']);
    const z = await run1(['--deflate']);
    assert.equal(plain.loss, 0);
    assert.equal(z.loss, 0);
    assert.ok(plain.rx_bytes_per_delivery > 1000, `plain ${plain.rx_bytes_per_delivery}`);
    assert.ok(z.rx_bytes_per_delivery * 2 < plain.rx_bytes_per_delivery, `deflate ${z.rx_bytes_per_delivery}`);
    assert.equal(plain.broker_hop_ms.n, 50);
    assert.ok(plain.broker_hop_ms.p50 > 0 && plain.broker_hop_ms.p50 <= plain.broker_hop_ms.p99);
  } finally {
    assert.equal(await f.stop(), 0);
    await r2.stop();
  }
});

await t.test('bench --positioned --broker-hop: FCALL fanout_publish (library loaded if missing), positions assigned, loss 0', async () => {
  const r3 = await startRedis();
  const ini = `[server]\ninstance = bench\n\n[backend valkey]\nplugin = ${pluginPath('valkey')}\nurl = ${r3.url}\n`;
  const f = await startFanoutd({ ini, wait: 'ready' });
  try {
    assert.equal(await r3.cli('FUNCTION', 'FLUSH'), 'OK'); // bench loads it again
    const b = await run(FANOUT_CLI, ['bench', '--json', '--url', f.ws, '--redis', r3.url, '--positioned', '--broker-hop',
      '--clients', '10', '--channels', '2', '--messages', '100', '--rate', '400', '--server-pid', String(f.pid),
      '--floor-s', '0.3', '--idle-s', '0'], { timeoutMs: 60000 });
    const rep = checkReport(b, { clients: 10, messages: 100, channels: 2 });
    assert.equal(rep.via, 'valkey-positioned');
    assert.equal(rep.steps[0].broker_hop_ms.n, 100, 'the direct subscriber read each payload inside its envelope');
    for (const ch of ['bench.0', 'bench.1']) assert.equal(await r3.cli('HGET', `fanout:{${ch}}`, 'o'), '50', `${ch}'s top`);
    const usage = await run(FANOUT_CLI, ['bench', '--url', f.ws, '--via', 'ws', '--positioned']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--positioned: with --via valkey only/);
  } finally {
    assert.equal(await f.stop(), 0);
    await r3.stop();
  }
});

await t.test('bench via ws publish frames (loopback backend): loss 0', async () => {
  const ini = `[server]\ninstance = bench\nallow_publish = true\n\n[backend mem]\nplugin = ${pluginPath('loopback')}\n`;
  const f = await startFanoutd({ ini });
  try {
    const b = await run(FANOUT_CLI, ['bench', '--json', '--url', f.ws, '--via', 'ws', '-c', '20', '-n', '200', '-r', '400',
      '-p', String(f.pid), '--floor-s', '0.3', '--idle-s', '0'], { timeoutMs: 60000 });
    const rep = checkReport(b, { clients: 20, messages: 200, channels: 1 });
    assert.equal(rep.steps[0].pub_acks, 200);
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

await t.test('bench --floor writes 140-byte frames to loopback sockets and reports CPU per write', async () => {
  const b = await run(FANOUT_CLI, ['bench', '--floor', '--json', '--clients', '50', '--rate', '5000', '--floor-s', '0.3']);
  assert.equal(b.code, 0, b.stderr);
  const fl = JSON.parse(b.stdout).floor;
  assert.equal(fl.sockets, 50);
  assert.equal(fl.frame_bytes, 140);
  assert.ok(fl.writes > 0);
  assert.equal(fl.read_bytes, fl.writes * 140); // the readers got every byte
  assert.ok(fl.us_per_write > 0);
});

await t.test('bench --storm: 200 clients on two instances, one drained, every client back on the other', async () => {
  const ini = `[server]\nshutdown_grace_ms = 5000\n\n[backend mem]\nplugin = ${pluginPath('loopback')}\n`;
  const a = await startFanoutd({ ini, instance: 'a' });
  const b = await startFanoutd({ ini, instance: 'b' });
  try {
    const s = await run(FANOUT_CLI, ['bench', '--storm', '--json', '--url', a.ws, '--url', b.ws, '--clients', '200',
      '--channels', '3', '--server-pid', `${a.pid},${b.pid}`, '--drain-pid', String(a.pid), '--timeout-s', '30'], { timeoutMs: 60000 });
    assert.equal(s.code, 0, s.stdout + s.stderr);
    const rep = JSON.parse(s.stdout);
    assert.equal(rep.ok, true);
    assert.equal(rep.connect.done, 200);
    assert.ok(rep.connect.ms.p50 <= rep.connect.ms.p99 && rep.connect.ms.p99 <= rep.connect.ms.max);
    assert.equal(rep.drain.closed_1001, 100, 'half of the clients were on the drained instance');
    assert.equal(rep.drain.moved, 100);
    assert.equal(rep.drain.back.done, 100, 'every moved client subscribed again');
    assert.ok(rep.bench_cpu_s > 0 && rep.drain.servers_cpu_s >= 0 && rep.drain.bench_cpu_s >= 0);
    assert.ok(Number.isInteger(rep.listen_overflows), 'the kernel\'s dropped handshakes are counted');
    assert.equal(await a.stop(), 0); // it exits on its own once drained
  } finally {
    assert.equal(await b.stop(), 0);
  }
});

await t.test('bench without a server fails clearly', async () => {
  const b = await run(FANOUT_CLI, ['bench', '--url', 'ws://127.0.0.1:1/ws', '-c', '3', '-n', '1', '--connect-timeout-s', '5']);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /no client connected.*refused/i);
});

t.done();
