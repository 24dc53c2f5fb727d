// cli_sub_resume.mjs — fanout-cli sub resumes on positioned channels: it
// starts after CHANNEL@EPOCH:OFFSET, and with --reconnect it resubscribes
// with its last position after losing its fanoutd, so what was published
// meanwhile (through another instance, into the broker's history) arrives,
// each message once; a resume the server cannot recover is said on stderr.
// Two fanoutd on one redis-server (the valkey backend keeps history).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor, FANOUT_CLI } from '../lib/harness.mjs';

const t = tap();
const r = await startRedis();
const ini = `[server]\nallow_publish = true\n[backend v]\nplugin = valkey\nurl = ${r.url}\n`;
let a = await startFanoutd({ ini, instance: 'a', wait: 'ready' });
const b = await startFanoutd({ ini, instance: 'b', wait: 'ready' });

function sub(args) {
  const p = spawn(FANOUT_CLI, ['sub', '-v', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s = { proc: p, out: '', err: '' };
  p.stdout.on('data', (d) => (s.out += d));
  p.stderr.on('data', (d) => (s.err += d));
  s.exited = new Promise((res) => p.on('close', (code) => res(code)));
  s.messages = () => s.out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return s;
}

/** Publish n numbered messages on ch through fanoutd f; resolves the acks. */
async function publish(f, ch, from, n) {
  const p = await wsClient(f.ws);
  const acks = [];
  for (let i = from; i < from + n; i++) {
    p.send({ type: 'publish', channel: ch, data: { n: i }, id: i });
    acks.push(await p.next((fr) => fr.id === i, 10000));
  }
  await p.close();
  return acks;
}

await t.test('CHANNEL@EPOCH:OFFSET starts after that position', async () => {
  const acks = await publish(b, 'start', 1, 5);
  const s = sub([a.ws, `start@${acks[0].epoch}:2`, '--count', '3', '--timeout-ms', '20000']);
  assert.equal(await s.exited, 0, s.err);
  assert.deepEqual(s.messages().map((m) => m.offset), [3, 4, 5]);
  assert.deepEqual(s.messages().map((m) => m.data.n), [3, 4, 5]);
  assert.match(s.err, /position start@[A-Za-z0-9_-]+:5/);
});

await t.test('--reconnect resumes from the last position: nothing missed, nothing twice', async () => {
  const s = sub([a.ws, 'resume', '--reconnect', '--backoff-min-ms', '50', '--backoff-max-ms', '200', '--count', '9', '--timeout-ms', '60000']);
  await waitFor(() => s.err.includes('subscribed to resume'), { what: 'sub confirmed' });
  await publish(b, 'resume', 1, 3);
  await waitFor(() => s.messages().length === 3, { what: 'three live' });
  const port = a.port;
  assert.equal(await a.stop(), 0); // sub sees 1001 and retries
  await publish(b, 'resume', 4, 3); // while sub is disconnected
  a = await startFanoutd({ ini, port, instance: 'a', wait: 'ready' });
  await waitFor(() => s.messages().length >= 6, { what: 'the three missed', timeoutMs: 20000 });
  await publish(b, 'resume', 7, 3);
  assert.equal(await s.exited, 0, s.err);
  assert.deepEqual(s.messages().map((m) => m.data.n), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(s.messages().map((m) => m.offset), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.doesNotMatch(s.err, /not recovered/);
});

await t.test('a resume that cannot be recovered is said on stderr', async () => {
  const acks = await publish(b, 'lost', 1, 2);
  const s = sub([a.ws, `lost@not-the-epoch:1`, '--timeout-ms', '3000']);
  assert.equal(await s.exited, 0, s.err);
  assert.match(s.err, new RegExp(`lost: not recovered: .* continuing from ${acks[1].epoch}:2`));
  assert.deepEqual(s.messages(), []);
});

await t.test('a bad position is a usage error', async () => {
  const s = sub([a.ws, 'x@nope']);
  assert.equal(await s.exited, 2);
  assert.match(s.err, /EPOCH:OFFSET/);
});

assert.equal(await a.stop(), 0);
assert.equal(await b.stop(), 0);
await r.stop();
t.done();
