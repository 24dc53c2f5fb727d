// cli_sub_pub.mjs — fanout-cli sub and pub against a real fanoutd running
// the loopback backend (publish frames come straight back as messages):
// frames printed as received, --jsonl records, --count, pub's answers and
// error exits, --reconnect across a fanoutd restart, usage errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, pluginPath, run, waitFor, FANOUT_CLI } from '../lib/harness.mjs';

const t = tap();
const ini = `[server]
instance = clitest
allow_publish = true

[backend mem]
plugin = ${pluginPath('loopback')}
`;

/** Start `fanout-cli sub -v ...`; resolves once every channel is confirmed. */
async function startSub(args, channels) {
  const p = spawn(FANOUT_CLI, ['sub', '-v', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s = { proc: p, out: '', err: '' };
  p.stdout.on('data', (d) => (s.out += d));
  p.stderr.on('data', (d) => (s.err += d));
  s.exited = new Promise((r) => p.on('close', (code) => r(code)));
  s.lines = () => s.out.split('\n').filter(Boolean);
  await waitFor(() => channels.every((c) => s.err.includes(`subscribed to ${c}`)),
    { what: `sub confirming ${channels}`, timeoutMs: 10000 }).catch((e) => {
    p.kill('SIGKILL');
    throw new Error(`${e.message}\nstderr: ${s.err}`);
  });
  return s;
}

const pub = (url, ch, data) => run(FANOUT_CLI, ['pub', url, ch, data]);

let f;
await t.test('fanoutd starts with the loopback backend', async () => {
  f = await startFanoutd({ ini });
});
if (!f) {
  t.done();
  process.exit();
}

await t.test('sub prints each message frame as received, one compact line, and stops at --count', async () => {
  const s = await startSub([f.ws, 'news', 'sport', '--count', '3', '--timeout-ms', '20000'], ['news', 'sport']);
  for (const [ch, d] of [['news', '{"n":1,"s":"a b"}'], ['sport', 'plain text'], ['news', '[1,2,3]']]) {
    const r = await pub(f.ws, ch, d);
    assert.equal(r.code, 0, `pub ${ch} ${d}: ${r.stderr}`);
  }
  assert.equal(await s.exited, 0, s.err);
  const lines = s.lines();
  assert.equal(lines.length, 3, s.out);
  for (const l of lines) assert.ok(!l.includes('\n') && !/\s/.test(l.replace(/"[^"]*"/g, '')), 'compact: ' + l);
  const frames = lines.map((l) => JSON.parse(l));
  assert.deepEqual(frames.map((x) => [x.type, x.channel, x.instance]),
    [['message', 'news', 'clitest'], ['message', 'sport', 'clitest'], ['message', 'news', 'clitest']]);
  assert.deepEqual(frames.map((x) => x.data), [{ n: 1, s: 'a b' }, 'plain text', [1, 2, 3]]);
});

await t.test('sub --jsonl prints {"channel","data","ts"} records with data byte for byte', async () => {
  const s = await startSub([f.ws, 'rec', '--jsonl', '-n', '2'], ['rec']);
  const before = Date.now();
  assert.equal((await pub(f.ws, 'rec', '{"seq":7,"text":"h\\u00e9"}')).code, 0);
  assert.equal((await pub(f.ws, 'rec', '42')).code, 0);
  assert.equal(await s.exited, 0, s.err);
  const after = Date.now();
  const lines = s.lines();
  assert.equal(lines.length, 2, s.out);
  const recs = lines.map((l) => JSON.parse(l));
  for (const r of recs) {
    assert.deepEqual(Object.keys(r), ['channel', 'data', 'ts']);
    assert.equal(r.channel, 'rec');
    assert.ok(Number.isInteger(r.ts) && r.ts >= before - 5 && r.ts <= after + 5, `ts ${r.ts} in [${before}, ${after}]`);
  }
  assert.deepEqual(recs[0].data, { seq: 7, text: 'hé' });
  assert.equal(recs[1].data, 42);
  assert.match(lines[1], /^\{"channel":"rec","data":42,"ts":\d+\}$/);
});

await t.test('pub prints the error frame and exits 1 when the server refuses', async () => {
  const r = await pub(f.ws, 'bad channel!', '1');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /"type":"error"/);
  assert.match(r.stderr, /bad_channel/);
});

await t.test('pub and sub fail clearly when nothing listens; usage errors exit 2', async () => {
  const dead = 'ws://127.0.0.1:1/ws';
  let r = await pub(dead, 'x', '1');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refused/i);
  r = await run(FANOUT_CLI, ['sub', dead, 'x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refused/i);
  r = await run(FANOUT_CLI, ['pub', f.ws, 'x']);
  assert.equal(r.code, 2);
  r = await run(FANOUT_CLI, ['sub', '--count', 'zero', f.ws, 'x']);
  assert.equal(r.code, 2);
  r = await run(FANOUT_CLI, ['frobnicate']);
  assert.equal(r.code, 2);
  r = await run(FANOUT_CLI, ['--help']);
  assert.equal(r.code, 0);
  for (const c of ['sub', 'pub', 'push', 'bench']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
});

await t.test('sub --timeout-ms: exit 1 when --count is not reached', async () => {
  const r = await run(FANOUT_CLI, ['sub', f.ws, 'quiet', '--count', '1', '--timeout-ms', '300']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /timed out/);
});

await t.test('sub --reconnect survives a fanoutd restart (close 1001) and subscribes again', async () => {
  const port = f.port;
  const s = await startSub([f.ws, 'again', '--reconnect', '--backoff-min-ms', '20', '--backoff-max-ms', '200', '-n', '2', '--timeout-ms', '30000'], ['again']);
  assert.equal((await pub(f.ws, 'again', '"one"')).code, 0);
  await waitFor(() => s.lines().length === 1, { what: 'first message' });
  assert.equal(await f.stop('SIGTERM'), 0);
  await waitFor(() => /reconnecting/.test(s.err), { what: 'sub to notice the close' });
  assert.match(s.err, /code (1001|1006)/);
  const f2 = await startFanoutd({ ini, port });
  try {
    await waitFor(() => (s.err.match(/subscribed to again/g) || []).length >= 2, { what: 'resubscribe', timeoutMs: 15000 });
    assert.equal((await pub(f2.ws, 'again', '"two"')).code, 0);
    assert.equal(await s.exited, 0, s.err);
    assert.deepEqual(s.lines().map((l) => JSON.parse(l).data), ['one', 'two']);
  } finally {
    s.proc.kill('SIGKILL');
    await f2.stop();
  }
});

t.done();
