// filetail_replay.mjs — record with `fanout-cli sub --jsonl` from a live
// fanoutd (loopback backend), replay the file through the filetail backend of
// a second fanoutd, and check that a client there gets identical messages.
// Also measures end-to-end replay speed (pace = none) through a real fanoutd.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, waitFor, tmpDir, sleep, FANOUT_CLI, ASAN } from '../lib/harness.mjs';

const t = tap();

// Payloads of every JSON kind, including escapes and non-ASCII text.
const PAYLOADS = [
  { n: 1, text: 'plain' },
  [1, 2.5, -3e-7, { deep: [null, true, false] }],
  'a string with "quotes", a \\ backslash, a\nnewline and \u00e9\u20ac\ud83d\ude00',
  42,
  0.1,
  null,
  true,
  '',
  { empty: {}, list: [], unicode: '\u0001\u001f' },
  { big: 'x'.repeat(20000) },
];

function loopbackIni() {
  return `[server]
instance = live
allow_publish = true

[backend mem]
plugin = loopback
`;
}

function filetailIni(file, extra = '') {
  return `[server]
instance = replay
client_queue_bytes = 134217728

[backend file]
plugin = filetail
path = ${file}
${extra}`;
}

// CPU seconds (user + sys) a process has used so far, from /proc (Linux).
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

const messages = (c, pred = () => true) => c.frames.filter((f) => f.type === 'message' && pred(f));

await t.test('record with fanout-cli sub --jsonl, replay through filetail: identical messages', async () => {
  const dir = tmpDir('filetail-rec-');
  const recFile = path.join(dir, 'rec.jsonl');
  const live = await startFanoutd({ ini: loopbackIni(), instance: 'live' });
  let cli;
  let replay;
  try {
    // A live client sees everything published on instance A.
    const watcher = await wsClient(live.ws);
    await watcher.subscribe('rec1');
    await watcher.subscribe('rec2');
    const pub = await wsClient(live.ws);

    // The recorder: stdout straight into the file, as a user would redirect it.
    const out = fs.openSync(recFile, 'w');
    cli = spawn(FANOUT_CLI, ['sub', '--jsonl', live.ws, 'rec1', 'rec2'], { stdio: ['ignore', out, 'pipe'] });
    fs.closeSync(out);
    let cliErr = '';
    cli.stderr.on('data', (d) => (cliErr += d));
    const cliExit = new Promise((r) => cli.on('exit', (code, signal) => r({ code, signal })));

    // Warm up until the recorder demonstrably receives (its subscription is live).
    let k = 0;
    await waitFor(async () => {
      pub.send({ type: 'publish', channel: 'rec1', data: { warmup: k++ } });
      await sleep(50);
      return fs.statSync(recFile).size > 0;
    }, { timeoutMs: 10000, what: 'the recorder to receive a message' });

    // The real messages, alternating channels, each acknowledged.
    for (let i = 0; i < PAYLOADS.length; i++) {
      const id = 'p' + i;
      pub.send({ type: 'publish', channel: i % 2 ? 'rec2' : 'rec1', data: PAYLOADS[i], id });
      const r = await pub.next((f) => f.id === id, 5000, `ack of ${id}`);
      assert.equal(r.type, 'published', JSON.stringify(r));
    }
    pub.send({ type: 'publish', channel: 'rec2', data: 'the end', id: 'end' });
    await pub.next((f) => f.id === 'end');
    await waitFor(() => fs.readFileSync(recFile, 'utf8').includes('"the end"'), {
      timeoutMs: 10000, what: 'the recording to contain the last message',
    });
    await watcher.next((f) => f.type === 'message' && f.data === 'the end');
    cli.kill('SIGTERM');
    await cliExit;

    // The recording: one {"channel","data","ts"} object per line.
    const lines = fs.readFileSync(recFile, 'utf8').split('\n').filter((l) => l.length);
    const recorded = lines.map((l) => JSON.parse(l));
    for (const r of recorded) {
      assert.equal(typeof r.channel, 'string');
      assert.ok('data' in r, 'record has data: ' + JSON.stringify(r).slice(0, 200));
      assert.equal(typeof r.ts, 'number');
    }
    const liveMsgs = messages(watcher).map((f) => ({ channel: f.channel, data: f.data }));
    const real = (m) => !(m.data && typeof m.data === 'object' && 'warmup' in m.data);
    assert.deepEqual(recorded.map((r) => ({ channel: r.channel, data: r.data })).filter(real),
      liveMsgs.filter(real), 'the recording holds what the live client saw');

    // Replay on instance B: subscribe first, then the file appears in full.
    const replayFile = path.join(dir, 'replay.jsonl');
    fs.writeFileSync(replayFile, '');
    replay = await startFanoutd({ ini: filetailIni(replayFile), instance: 'replay', wait: 'ready' });
    const c = await wsClient(replay.ws);
    await c.subscribe('rec1');
    await c.subscribe('rec2');
    fs.appendFileSync(replayFile, fs.readFileSync(recFile));
    await waitFor(() => messages(c).length >= recorded.length, {
      timeoutMs: 10000, what: `${recorded.length} replayed messages`,
    });
    await sleep(200); // nothing extra may follow
    const got = messages(c);
    assert.equal(got.length, recorded.length);
    for (const f of got) assert.equal(f.instance, 'replay');
    assert.deepEqual(got.map((f) => ({ channel: f.channel, data: f.data })),
      recorded.map((r) => ({ channel: r.channel, data: r.data })));
    assert.deepEqual(got.map((f) => ({ channel: f.channel, data: f.data })).filter(real),
      liveMsgs.filter(real), 'identical to what the live instance delivered');
    assert.equal(c.frames.filter((f) => f.type === 'gap').length, 0);
    if (cliErr.includes('error')) t.diag('fanout-cli stderr: ' + cliErr);
    await c.close();
    await watcher.close();
    await pub.close();
  } finally {
    if (cli && cli.exitCode === null) cli.kill('SIGKILL');
    if (replay) assert.equal(await replay.stop(), 0);
    assert.equal(await live.stop(), 0);
  }
});

await t.test('replay speed through fanoutd (pace = none), and readiness while the file is missing', async () => {
  const n = ASAN ? 50000 : 200000;
  const dir = tmpDir('filetail-speed-');
  const file = path.join(dir, 'big.jsonl');
  const f = await startFanoutd({ ini: filetailIni(file), instance: 'replay', wait: 'listen' });
  try {
    // The file does not exist yet: not ready, and /readyz says why.
    const r = await f.http('/readyz');
    assert.equal(r.status, 503);
    assert.match(r.body, /waiting for/);
    const c = await wsClient(f.ws);
    await c.subscribe('speed');
    let text = '';
    for (let i = 1; i <= n; i++) text += `{"channel":"speed","data":{"seq":${i},"v":"abcdefghij"}}\n`;
    fs.writeFileSync(file + '.tmp', text);
    const base = c.frames.length;
    const cpu0 = cpuSeconds(f.pid);
    const t0 = process.hrtime.bigint();
    fs.renameSync(file + '.tmp', file);
    await waitFor(() => c.frames.length >= base + n, {
      timeoutMs: 120000, intervalMs: 5, what: `${n} messages`,
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = cpuSeconds(f.pid) - cpu0;
    const got = messages(c);
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++) assert.equal(got[i].data.seq, i + 1);
    t.diag(`replayed ${n} lines to one WebSocket client in ${ms.toFixed(0)} ms: ` +
      `${Math.round(n / (ms / 1000))} lines/s end to end (pace = none${ASAN ? ', ASan build' : ''}); ` +
      `fanoutd CPU ${cpu.toFixed(2)} s = ${((cpu * 1e6) / n).toFixed(1)} us per line`);
    await waitFor(async () => (await f.http('/readyz')).status === 200, { what: 'ready' });
    await c.close();
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

t.done();
