#!/usr/bin/env node
// scripts/broker-cost.mjs — what a broker spends per message, the input of
// SCALING.md: CPU per publish and per subscriber-instance delivery for
//   redis        one redis-server (or valkey-server), PUBLISH / SUBSCRIBE
//   cluster      a 3-shard Redis Cluster, plain PUBLISH (broadcast to every
//                node over the cluster bus) with SUBSCRIBE on any node
//   sharded      the same cluster, SPUBLISH / SSUBSCRIBE (each message only
//                on the shard that owns its channel's slot)
//   redis-pos    one redis-server with the valkey backend's positioned
//                publish (FCALL fanout_publish: epoch, offset, history of
//                1000 per channel, then PUBLISH of the positioned envelope)
//   nats         nats-server, PUB / SUB
//   nats-js      nats-server -js with the stream the nats backend creates
//                (file storage, republish with positions): PUB stores the
//                message, subscribers take the republished copy
// A subscriber stands for one fanoutd instance (one broker subscription per
// channel per instance, whatever its client count). For each broker and each
// instance count S it publishes N messages of 128 bytes over 64 channels,
// every subscriber subscribed to all 64, waits until every copy arrived,
// and reads the broker's CPU time (utime + stime of every broker process,
// /proc/PID/stat). CPU = N x (publish + S x delivery): the report fits
// those two per broker. Brokers run pinned to CPU 0 (taskset), this script
// should run on CPU 1:
//
//   taskset -c 1 node scripts/broker-cost.mjs [--runs 3] [--messages 100000]
//     [--brokers redis,cluster,sharded,nats,nats-js] [--subs 1,8,32] [--json]
//
// With --fanoutd valkey,nats,nats-js it measures fanoutd instead: one
// fanoutd (pinned to CPU 0; the broker then runs on CPU 1) with the given
// backend, C WebSocket clients each subscribed to all 64 channels (--subs
// gives the C values); CPU of fanoutd = N x (ingest + C x delivery): the
// cost of one broker message reaching an instance, and of one delivery.
// (BUILD_DIR: the build to take fanoutd and the plugins from.)
//
// Flow control keeps every subscriber within 20,000 messages of the
// publisher (Redis cuts pub/sub clients whose output buffer passes 32 MB).
// Publishes go out 200 per write (--batch), so the broker writes many
// messages per syscall, as under load; --batch 1 publishes one message at a
// time and waits for its copies: every delivery is its own write, the
// cost at low rates.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf('--' + name);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(opt('runs', 3));
const N = Number(opt('messages', 100000));
const BROKERS = opt('brokers', 'redis,redis-pos,cluster,sharded,nats,nats-js').split(',');
const SUBS = opt('subs', '1,8,32').split(',').map(Number);
const JSON_OUT = args.includes('--json');
const CHANNELS = 64;
const BATCH = Number(opt('batch', 200)); // publishes per write; 1: one at a time, each waiting for its copies
const PAYLOAD = Buffer.alloc(128, 'x');
const WINDOW = 20000;
const REDIS = process.env.REDIS_SERVER || 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
const NATS = process.env.NATS_SERVER || 'nats-server';
const HZ = 100; // clock ticks per second (sysconf(_SC_CLK_TCK) on Linux)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const chName = (i) => 'ch' + String(i).padStart(2, '0');
const children = new Set();
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch {} });

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}
let BROKER_CPU = '0';
function start(cmd, argv, cpu = BROKER_CPU) {
  const p = spawn('taskset', ['-c', cpu, cmd, ...argv], { stdio: 'ignore' });
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}
function cpuTicks(pids) {
  let t = 0;
  for (const pid of pids) {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    t += Number(rest[11]) + Number(rest[12]); // utime, stime
  }
  return t;
}
async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error('port ' + port + ' never opened');
}
const stop = async (p) => { p.kill('SIGKILL'); await new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r))); };

// ---- Redis Cluster slots (CRC16/XMODEM of the channel name) ----
function crc16(s) {
  let crc = 0;
  for (const b of Buffer.from(s)) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}
const slotOf = (ch) => crc16(ch) % 16384;

// ---- a counting subscriber socket ----
function subscriber(port, proto, lines) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const s = { sock, count: 0, ready: false };
    let acks = 0;
    const want = lines.length;
    sock.on('error', reject);
    sock.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let pos = 0;
      for (;;) {
        if (proto === 'nats') {
          const eol = buf.indexOf('\r\n', pos);
          if (eol < 0) break;
          const line = buf.toString('latin1', pos, Math.min(eol, pos + 200));
          if (line.startsWith('MSG ') || line.startsWith('HMSG ')) {
            const n = Number(line.slice(line.lastIndexOf(' ') + 1));
            if (buf.length < eol + 2 + n + 2) break;
            pos = eol + 2 + n + 2;
            s.count++;
          } else {
            pos = eol + 2;
            if (line.startsWith('INFO')) {
              sock.write('CONNECT {"verbose":false,"headers":true}\r\n' + lines.join('') + 'PING\r\n');
            } else if (line === 'PONG') { s.ready = true; resolve(s); }
            else if (line === 'PING') sock.write('PONG\r\n');
          }
        } else {
          // RESP: every push is *3 (kind, channel, payload); subscribe acks too
          const r = readResp(buf, pos);
          if (!r) break;
          pos = r.pos;
          const kind = r.value[0];
          if (kind === 'message' || kind === 'smessage') s.count++;
          else if (++acks === want) { s.ready = true; resolve(s); }
        }
      }
      buf = buf.subarray(pos);
    });
    if (proto !== 'nats') sock.write(lines.join(''));
  });
}
function readResp(b, p) {
  if (p >= b.length) return null;
  const eol = b.indexOf('\r\n', p);
  if (eol < 0) return null;
  const t = b[p];
  const line = b.toString('latin1', p + 1, eol);
  if (t === 0x2a) { // *
    const n = Number(line);
    let q = eol + 2;
    const out = [];
    for (let i = 0; i < n; i++) {
      const r = readResp(b, q);
      if (!r) return null;
      out.push(r.value);
      q = r.pos;
    }
    return { value: out, pos: q };
  }
  if (t === 0x24) { // $
    const n = Number(line);
    if (b.length < eol + 2 + n + 2) return null;
    return { value: n < 40 ? b.toString('latin1', eol + 2, eol + 2 + n) : null, pos: eol + 4 + n };
  }
  return { value: line, pos: eol + 2 };
}
function respRequest(port, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = readResp(buf, 0);
      if (r) { s.destroy(); resolve(r.value); }
    });
    s.on('error', reject);
  });
}
const resp = (...a) => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('');

// ---- the brokers ----
async function redisSingle() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bc-redis-'));
  const p = start(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  await waitPort(port);
  // the valkey backend's function library, as it loads it (history 1000, TTL 300 s)
  const lua = fs.readFileSync(new URL('../plugins/valkey/library.lua', import.meta.url), 'utf8');
  const head = "#!lua name=fanout\nlocal PUB, SIZE, TTL = 'PUBLISH', 1000, 300\n";
  const r = await respRequest(port, resp('FUNCTION', 'LOAD', 'REPLACE', head + lua));
  if (r !== 'fanout') throw new Error('FUNCTION LOAD: ' + JSON.stringify(r));
  return { pids: [p.pid], nodes: [{ port }], slots: null, async stop() { await stop(p); } };
}
async function redisCluster() {
  const nodes = [];
  const procs = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bc-cluster-'));
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    procs.push(start(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`]));
    nodes.push({ port });
  }
  for (const n of nodes) await waitPort(n.port);
  execFileSync(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
    '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  for (;;) {
    const ok = nodes.every((n) => /cluster_state:ok/.test(execFileSync(REDIS_CLI, ['-p', String(n.port), 'CLUSTER', 'INFO']).toString()));
    if (ok) break;
    await sleep(100);
  }
  const slots = await respRequest(nodes[0].port, resp('CLUSTER', 'SLOTS'));
  const ranges = slots.map((r) => ({ from: Number(r[0]), to: Number(r[1]), port: Number(r[2][1]) }));
  const owner = (ch) => ranges.find((r) => slotOf(ch) >= r.from && slotOf(ch) <= r.to).port;
  return { pids: procs.map((p) => p.pid), nodes, owner, async stop() { for (const p of procs) await stop(p); } };
}
async function natsServer(js, stream = true) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bc-nats-'));
  const p = start(NATS, ['-a', '127.0.0.1', '-p', String(port), ...(js ? ['-js', '-sd', dir] : [])]);
  await waitPort(port);
  if (js && stream) {
    // the stream the nats backend creates (plugins/nats/js.c)
    const cfg = { name: 'FANOUT', subjects: ['ch*'], retention: 'limits', max_msgs: 100000, max_bytes: -1,
      max_age: 0, storage: 'file', num_replicas: 1, discard: 'old', allow_direct: true,
      republish: { src: '>', dest: '_fanout.rp.>' } };
    cfg.subjects = Array.from({ length: CHANNELS }, (_, i) => chName(i));
    await natsRequest(port, '$JS.API.STREAM.CREATE.FANOUT', JSON.stringify(cfg));
  }
  return { pids: [p.pid], nodes: [{ port }], js, async stop() { await stop(p); } };
}
function natsRequest(port, subj, body) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      if (buf.startsWith('INFO') && !s.sent) {
        s.sent = true;
        s.write(`CONNECT {"verbose":false}\r\nSUB _r.1 1\r\nPUB ${subj} _r.1 ${Buffer.byteLength(body)}\r\n${body}\r\n`);
      }
      const i = buf.indexOf('MSG _r.1');
      if (i >= 0 && buf.indexOf('\r\n', buf.indexOf('\r\n', i) + 2) > 0) { s.destroy(); resolve(buf.slice(i)); }
    });
    s.on('error', reject);
    setTimeout(() => { s.destroy(); reject(new Error('request timed out: ' + buf)); }, 5000);
  });
}

// ---- one measurement ----
async function measure(kind, S) {
  const b = kind === 'redis' || kind === 'redis-pos' ? await redisSingle()
    : kind === 'cluster' || kind === 'sharded' ? await redisCluster()
    : await natsServer(kind === 'nats-js');
  try {
    const chans = Array.from({ length: CHANNELS }, (_, i) => chName(i));
    const subs = [];
    for (let i = 0; i < S; i++) {
      if (kind === 'nats' || kind === 'nats-js') {
        const pre = kind === 'nats-js' ? '_fanout.rp.' : '';
        subs.push(await subscriber(b.nodes[0].port, 'nats', chans.map((c, k) => `SUB ${pre}${c} ${k + 1}\r\n`)));
      } else if (kind === 'sharded') {
        // an instance: one connection per shard, SSUBSCRIBE of the channels it owns
        for (const n of b.nodes) {
          const mine = chans.filter((c) => b.owner(c) === n.port);
          if (mine.length) subs.push(await subscriber(n.port, 'resp', mine.map((c) => resp('SSUBSCRIBE', c))));
        }
      } else {
        // plain: instance i subscribes on node i % nodes
        const n = b.nodes[i % b.nodes.length];
        subs.push(await subscriber(n.port, 'resp', chans.map((c) => resp('SUBSCRIBE', c))));
      }
    }
    // publisher connections
    const pubs = new Map();
    const pubFor = async (port) => {
      if (pubs.has(port)) return pubs.get(port);
      const s = net.connect(port, '127.0.0.1');
      await new Promise((r) => s.on('connect', r));
      s.on('data', () => {}); // replies (integers / +OK) are not read
      if (kind.startsWith('nats')) s.write('CONNECT {"verbose":false}\r\n');
      pubs.set(port, s);
      return s;
    };
    const expected = () => subs.reduce((a, s) => a + s.count, 0);
    await sleep(200);
    const t0 = cpuTicks(b.pids);
    const w0 = Date.now();
    let sent = 0;
    const batch = BATCH;
    while (sent < N) {
      const out = new Map();
      for (let k = 0; k < batch && sent < N; k++, sent++) {
        const ch = chans[sent % CHANNELS];
        let port = b.nodes[0].port, cmd;
        if (kind === 'nats' || kind === 'nats-js') cmd = `PUB ${ch} 128\r\n${PAYLOAD}\r\n`;
        else if (kind === 'sharded') { port = b.owner(ch); cmd = resp('SPUBLISH', ch, PAYLOAD.toString()); }
        else if (kind === 'redis-pos') cmd = resp('FCALL', 'fanout_publish', '1', `fanout:{${ch}}`, PAYLOAD.toString());
        else { port = b.nodes[sent % b.nodes.length].port; cmd = resp('PUBLISH', ch, PAYLOAD.toString()); }
        out.set(port, (out.get(port) || '') + cmd);
      }
      for (const [port, text] of out) (await pubFor(port)).write(text);
      // flow control: every subscriber within WINDOW messages
      for (;;) {
        const delivered = expected();
        const want = (BATCH === 1 ? sent : sent - WINDOW) * S;
        if (delivered >= want) break;
        await sleep(1);
      }
    }
    const total = N * S;
    const deadline = Date.now() + 60000;
    while (expected() < total && Date.now() < deadline) await sleep(5);
    const ticks = cpuTicks(b.pids) - t0;
    const wall = Date.now() - w0;
    for (const s of subs) s.sock.destroy();
    for (const s of pubs.values()) s.destroy();
    if (expected() < total) throw new Error(`${kind} S=${S}: ${expected()} of ${total} deliveries`);
    return { kind, S, cpu_s: ticks / HZ, us_per_publish: (ticks / HZ) * 1e6 / N, wall_ms: wall };
  } finally {
    await b.stop();
  }
}

// ---- fanoutd's own cost (--fanoutd) ----
async function measureFanoutd(backend, C) {
  const { default: WebSocket } = await import('ws');
  const BUILD = process.env.BUILD_DIR || path.resolve(new URL('..', import.meta.url).pathname, '_build/default');
  BROKER_CPU = '1';
  const b = backend === 'valkey' ? await redisSingle() : await natsServer(backend === 'nats-js', false);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bc-fanoutd-'));
  const plugins = path.join(dir, 'plugins');
  fs.mkdirSync(plugins);
  for (const n of ['valkey', 'nats']) fs.symlinkSync(path.join(BUILD, 'plugins', n, '.libs', n + '.so'), path.join(plugins, n + '.so'));
  const keys = backend === 'valkey' ? `plugin = valkey\nurl = redis://127.0.0.1:${b.nodes[0].port}/0\nhistory_size = 0\n`
    : `plugin = nats\nurl = nats://127.0.0.1:${b.nodes[0].port}\n` + (backend === 'nats-js' ? 'jetstream = yes\n' : '');
  fs.writeFileSync(path.join(dir, 'f.ini'), `[server]\nlisten = 127.0.0.1:${port}\nweb_root =\nping_interval_s = 0\n` +
    `plugin_dir = ${plugins}\nlog_level = warn\n[backend b]\nchannels = ${Array.from({ length: CHANNELS }, (_, i) => chName(i)).join(' ')}\n${keys}`);
  const f = start(path.join(BUILD, 'core', 'fanoutd'), ['-c', path.join(dir, 'f.ini')], '0');
  BROKER_CPU = '0';
  try {
    for (let i = 0; i < 200; i++) {
      const ok = await new Promise((r) => {
        const req = net.connect(port, '127.0.0.1', () => req.end('GET /readyz HTTP/1.0\r\n\r\n'));
        let t = '';
        req.on('data', (d) => (t += d));
        req.on('end', () => r(/ 200 /.test(t)));
        req.on('error', () => r(false));
      });
      if (ok) break;
      await sleep(50);
    }
    const chans = Array.from({ length: CHANNELS }, (_, i) => chName(i));
    const clients = [];
    for (let i = 0; i < C; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { perMessageDeflate: false });
      const c = { ws, count: 0, subs: 0 };
      await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
      ws.on('message', (d) => {
        if (d.length > 100) c.count++;
        else if (/"subscribed"/.test(d.toString())) c.subs++;
        else if (/"message"/.test(d.toString())) c.count++;
      });
      for (const ch of chans) ws.send(JSON.stringify({ type: 'subscribe', channel: ch }));
      while (c.subs < CHANNELS) await sleep(5);
      clients.push(c);
    }
    const pub = net.connect(b.nodes[0].port, '127.0.0.1');
    await new Promise((r) => pub.on('connect', r));
    pub.on('data', () => {});
    if (backend !== 'valkey') pub.write('CONNECT {"verbose":false}\r\n');
    const got = () => clients.reduce((a, c) => a + c.count, 0);
    await sleep(300);
    const t0 = cpuTicks([f.pid]);
    let sent = 0;
    while (sent < N) {
      let text = '';
      for (let k = 0; k < 100 && sent < N; k++, sent++) {
        const ch = chans[sent % CHANNELS];
        text += backend === 'valkey' ? resp('PUBLISH', ch, PAYLOAD.toString()) : `PUB ${ch} 128\r\n${PAYLOAD}\r\n`;
      }
      pub.write(text);
      while (got() < (sent - 5000) * C) await sleep(1);
    }
    const deadline = Date.now() + 60000;
    while (got() < N * C && Date.now() < deadline) await sleep(5);
    const ticks = cpuTicks([f.pid]) - t0;
    pub.destroy();
    for (const c of clients) c.ws.terminate();
    if (got() < N * C) throw new Error(`fanoutd ${backend} C=${C}: ${got()} of ${N * C}`);
    return { kind: 'fanoutd:' + backend, S: C, cpu_s: ticks / HZ, us_per_publish: (ticks / HZ) * 1e6 / N };
  } finally {
    await stop(f);
    await b.stop();
  }
}

// least squares of us_per_publish = a + b * S
function fit(points) {
  const n = points.length, sx = points.reduce((a, p) => a + p.S, 0), sy = points.reduce((a, p) => a + p.y, 0);
  const sxx = points.reduce((a, p) => a + p.S * p.S, 0), sxy = points.reduce((a, p) => a + p.S * p.y, 0);
  const b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return { per_publish_us: (sy - b * sx) / n, per_delivery_us: b };
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const FANOUTD_KINDS = opt('fanoutd', '') ? opt('fanoutd', '').split(',') : [];
const results = [];
const load = () => os.loadavg()[0].toFixed(2);
console.error(`# ${N} messages x 128 B over ${CHANNELS} channels; runs ${RUNS}; load ${load()}`);
const KINDS = FANOUTD_KINDS.length ? FANOUTD_KINDS.map((k) => 'fanoutd:' + k) : BROKERS;
for (const kind of KINDS) {
  for (let run = 0; run < RUNS; run++) {
    const pts = [];
    for (const S of SUBS) {
      const r = kind.startsWith('fanoutd:') ? await measureFanoutd(kind.slice(8), S) : await measure(kind, S);
      r.run = run;
      r.load = load();
      results.push(r);
      pts.push({ S, y: r.us_per_publish });
      console.error(`# ${kind} run ${run} S=${S}: ${r.us_per_publish.toFixed(2)} us/publish (${r.cpu_s} s CPU, ${r.wall_ms} ms, load ${r.load})`);
    }
    const f = fit(pts);
    results.push({ kind, run, fit: f });
    console.error(`# ${kind} run ${run}: ${f.per_publish_us.toFixed(2)} us per publish + ${f.per_delivery_us.toFixed(3)} us per subscriber-instance`);
  }
}
if (JSON_OUT) console.log(JSON.stringify(results, null, 1));
if (FANOUTD_KINDS.length) {
  console.log('| fanoutd backend | per incoming message (µs CPU) | per delivery (µs CPU) | runs |');
} else {
  console.log('| broker | per publish (µs CPU) | per subscriber-instance delivery (µs CPU) | runs |');
}
console.log('| --- | --- | --- | --- |');
for (const kind of KINDS) {
  const fits = results.filter((r) => r.kind === kind && r.fit).map((r) => r.fit);
  const a = fits.map((f) => f.per_publish_us), d = fits.map((f) => f.per_delivery_us);
  console.log(`| ${kind} | ${median(a).toFixed(2)} (${a.map((x) => x.toFixed(2)).join(', ')}) | ` +
    `${median(d).toFixed(3)} (${d.map((x) => x.toFixed(3)).join(', ')}) | ${fits.length} |`);
}
