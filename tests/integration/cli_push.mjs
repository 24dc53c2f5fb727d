// cli_push.mjs — fanout-cli push against a real redis-server (valkey-server
// where present): demo payloads and --stdin lines reach a direct Valkey
// subscriber (positioned with FCALL fanout_publish, loading the functions
// into a fresh broker; --plain with PUBLISH) and, through fanoutd's valkey
// backend, a `fanout-cli sub` client; --prefix matches the backend's
// channel_prefix; push reconnects when Valkey restarts (and reloads the
// functions the restarted broker lost).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, pluginPath, run, waitFor, REDIS_CLI, FANOUT_CLI } from '../lib/harness.mjs';

const t = tap();

/** A redis-cli --csv quoted string: JSON, plus \xHH escapes. */
function csvString(q) {
  return JSON.parse(q.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1'));
}

/** The position envelope in front of a positioned message (fanout-valkey(5)). */
const ENVELOPE = /^\u0000fo1:([A-Za-z0-9_-]{1,64}):([1-9]\d*)\n/;

/** redis-cli SUBSCRIBE in the background; .messages() parses its --csv output
 * (payloads without their envelope), .positions() the envelopes' offsets
 * (null for a message without one). */
function subscribeDirect(port, channel) {
  const p = spawn(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), '--csv', 'SUBSCRIBE', channel], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  return {
    proc: p,
    ready: () => out.includes('"subscribe"'),
    raw: () => out.split('\n').filter((l) => l.startsWith('"message"')).map((l) => {
      const m = l.match(/^"message","[^"]*",(.*)$/);
      return csvString(m[1]); // the payload as a CSV-quoted string
    }),
    messages() {
      return this.raw().map((m) => m.replace(ENVELOPE, ''));
    },
    positions() {
      return this.raw().map((m) => {
        const e = m.match(ENVELOPE);
        return e ? Number(e[2]) : null;
      });
    },
  };
}

let r;
await t.test('redis-server starts', async () => {
  r = await startRedis();
});
if (!r) {
  t.done();
  process.exit();
}

await t.test('push publishes --count demo payloads at the rate and prints a summary', async () => {
  const s = subscribeDirect(r.port, 'demo:updates');
  try {
    await waitFor(s.ready, { what: 'redis-cli subscribed' });
    const before = Date.now();
    const p = await run(FANOUT_CLI, ['push', '--redis', r.url, '--prefix', 'demo:', '--rate', '20/s', '--count', '5']);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^published 5 messages to demo:updates in [\d.]+ s .*last position [0-9a-f]+:5, 0 reconnects, 0 errors/);
    assert.match(p.stderr, /loaded the fanout functions/); // a fresh broker
    await waitFor(() => s.messages().length === 5, { what: '5 messages' });
    assert.deepEqual(s.positions(), [1, 2, 3, 4, 5]);
    const msgs = s.messages().map((m) => JSON.parse(m));
    assert.deepEqual(msgs.map((m) => m.seq), [1, 2, 3, 4, 5]);
    for (const m of msgs) {
      assert.deepEqual(Object.keys(m), ['seq', 'ts', 'text', 'value']);
      assert.equal(typeof m.text, 'string');
      assert.ok(m.text.length > 0);
      assert.equal(typeof m.value, 'number');
      assert.ok(m.ts >= before - 5 && m.ts <= Date.now());
    }
    // 5 messages at 20/s: the schedule spans 4 intervals of 50 ms
    assert.ok(msgs[4].ts - msgs[0].ts >= 150, `paced: ${msgs[4].ts - msgs[0].ts} ms`);
  } finally {
    s.proc.kill();
  }
});

await t.test('push --stdin sends each non-empty line as one payload', async () => {
  const s = subscribeDirect(r.port, 'lines');
  try {
    await waitFor(s.ready, { what: 'redis-cli subscribed' });
    const p = await run(FANOUT_CLI, ['push', '--redis-host', '127.0.0.1', '--redis-port', String(r.port), '-c', 'lines', '--stdin', '--rate', '1000'],
      { input: 'first line\n\n{"a":1}\r\nlast' });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^published 3 messages/);
    assert.doesNotMatch(p.stderr, /loaded the fanout functions/); // already there
    await waitFor(() => s.messages().length === 3, { what: '3 lines' });
    assert.deepEqual(s.messages(), ['first line', '{"a":1}', 'last']);
  } finally {
    s.proc.kill();
  }
});

await t.test('push --plain PUBLISHes without positions', async () => {
  const s = subscribeDirect(r.port, 'plain');
  try {
    await waitFor(s.ready, { what: 'redis-cli subscribed' });
    const p = await run(FANOUT_CLI, ['push', '--redis', r.url, '-c', 'plain', '--plain', '--stdin', '--rate', '1000'], { input: 'a\nb\n' });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^published 2 messages to plain .*2 deliveries to Valkey subscribers/);
    await waitFor(() => s.messages().length === 2, { what: '2 lines' });
    assert.deepEqual(s.raw(), ['a', 'b']);
    assert.deepEqual(s.positions(), [null, null]);
  } finally {
    s.proc.kill();
  }
});

await t.test('push reaches fanout-cli sub through fanoutd\'s valkey backend', async () => {
  const ini = `[server]
instance = pushtest

[backend valkey]
plugin = ${pluginPath('valkey')}
url = ${r.url}
channel_prefix = app:
`;
  const f = await startFanoutd({ ini, wait: 'ready' });
  const sub = spawn(FANOUT_CLI, ['sub', '-v', '--jsonl', f.ws, 'updates', '-n', '3', '--timeout-ms', '20000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  sub.stdout.on('data', (d) => (out += d));
  sub.stderr.on('data', (d) => (err += d));
  const exited = new Promise((res) => sub.on('close', res));
  try {
    await waitFor(() => err.includes('subscribed to updates'), { what: 'sub confirmed' });
    const p = await run(FANOUT_CLI, ['push', '--redis', r.url, '--prefix', 'app:', '--rate', '50', '-n', '3']);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /last position [0-9a-f]+:3,/);
    assert.equal(await exited, 0, err);
    const recs = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((x) => [x.channel, x.data.seq]), [['updates', 1], ['updates', 2], ['updates', 3]]);
  } finally {
    sub.kill('SIGKILL');
    assert.equal(await f.stop(), 0);
  }
});

await t.test('push reconnects when Valkey restarts and keeps publishing', async () => {
  const port = r.port;
  const pushp = run(FANOUT_CLI, ['push', '--redis', r.url, '-c', 'rc', '--rate', '50', '--duration-s', '4']);
  await new Promise((res) => setTimeout(res, 800));
  await r.stop('SIGKILL');
  r = await startRedis({ port });
  const s = subscribeDirect(r.port, 'rc');
  try {
    await waitFor(s.ready, { what: 'subscriber on the new redis' });
    await waitFor(() => s.messages().length >= 3, { what: 'messages after the restart', timeoutMs: 10000 });
    const p = await pushp;
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /[1-9]\d* reconnects/);
    assert.match(p.stderr, /connection lost|retrying/);
    assert.match(p.stderr, /loaded the fanout functions/); // the new broker had none
    const seqs = s.messages().map((m) => JSON.parse(m).seq);
    assert.ok(seqs.every((x, i) => i === 0 || x > seqs[i - 1]), 'increasing seq: ' + seqs);
  } finally {
    s.proc.kill();
  }
});

await r.stop();
t.done();
