// security_limits.mjs — the process-wide limits against a real fanoutd:
//   max_queued_bytes under 50 clients that stop reading, each on its own
//   channel (issue 11, hole 6: 45 such clients reached 139 MB): the memory
//   the queues pin never passes the budget, the clients furthest behind are
//   closed 4001 and counted, a client that keeps up gets everything and
//   stays; the server's RSS stays bounded;
//   max_channels_per_ip with client addresses from X-Forwarded-For behind a
//   trusted proxy: new channels count against the address that brings them
//   in, existing ones are free;
//   tokens on Server-Sent Events: 401 without one, claims on the channels,
//   the stream ends with an "expired" event.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, parseMetrics, pluginPath, waitFor, ASAN, BUILDDIR } from '../lib/harness.mjs';

const t = tap();
const lb = pluginPath('loopback');
const ini = (server = '') =>
  `[server]\ninstance = lim2\nallow_publish = true\n${server}\n[backend mem]\nplugin = ${lb}\nhistory_size = 0\n`;
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** Start tests/integration/stallers: n clients that stop reading (4 KiB
 * receive buffers, so the server's own queues fill), client i on
 * `${prefix}${i}`. Resolves once they are upgraded; finish() makes them read
 * to the end and resolves with each one's close code. */
function stallers(port, n, prefix) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BUILDDIR, 'tests/integration/stallers'), [String(port), String(n), prefix], { stdio: ['pipe', 'pipe', 'inherit'] });
    process.on('exit', () => { try { p.kill('SIGKILL'); } catch {} });
    let out = '';
    p.on('error', reject);
    p.on('exit', (code) => { if (!/ready/.test(out)) reject(new Error(`stallers exited ${code}`)); });
    p.stdout.on('data', (d) => {
      out += d;
      if (/^ready$/m.test(out) && !p.readyDone) {
        p.readyDone = true;
        resolve({
          end: () => p.stdin.end(),
          finish: () => new Promise((res) => {
            p.stdout.on('data', () => {
              if (/^done$/m.test(out)) {
                const codes = [...out.matchAll(/^(\d+) (-?\d+) (\d+)$/gm)].map((m) => Number(m[2]));
                codes.bytes = [...out.matchAll(/^(\d+) (-?\d+) (\d+)$/gm)].map((m) => Number(m[3]));
                res(codes);
              }
            });
            p.stdin.write('go\n');
          }),
        });
      }
    });
  });
}

await t.test('max_queued_bytes: 50 clients stop reading; the budget holds, the furthest behind are cut 4001', async () => {
  const BUDGET = 16 << 20;
  const f = await startFanoutd({
    ini: ini('max_queued_bytes = 16m\nclient_queue_bytes = 4m\nmax_payload_bytes = 64k\nidle_timeout_s = 0'),
  });
  const N = 50;
  const slow = await stallers(f.port, N, '/ws?channel=q');
  const fast = await wsClient(f.ws, { maxPayload: 1 << 20 }); // keeps up with one channel
  await fast.subscribe('q7');
  await waitFor(async () => parseMetrics((await f.http('/metrics')).body).fanout_subscriptions === N + 1, { what: 'every staller subscribed' });
  const rss0 = rssKiB(f.pid);
  const pub = await wsClient(f.ws);
  // The kernel takes ~3-4 MiB per connection first (the server's send
  // buffer autotunes to 4 MiB on loopback), then the server's queues fill:
  // 50 channels x 100 x 48 KiB = 234 MiB offered, 4.7 MiB per slow client.
  const blob = 'x'.repeat(48 * 1024);
  const ROUNDS = 100;
  let maxPinned = 0, id = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < N; i++) pub.send({ type: 'publish', channel: `q${i}`, data: { r, i, blob }, id: ++id });
    await pub.next((fr) => fr.id === id, 30000, `ack of round ${r}`);
    if (r % 10 === 9) {
      const m = parseMetrics((await f.http('/metrics')).body);
      maxPinned = Math.max(maxPinned, m.fanout_queue_pinned_bytes);
      if (process.env.DEBUG_LIMITS) t.diag(`round ${r}: pinned ${m.fanout_queue_pinned_bytes} queue ${m.fanout_queue_bytes} cut ${m.fanout_queue_budget_disconnects_total} rss ${rssKiB(f.pid)}`);
      assert.ok(m.fanout_queue_pinned_bytes <= BUDGET, `pinned ${m.fanout_queue_pinned_bytes} > budget`);
    }
  }
  const m = parseMetrics((await f.http('/metrics')).body);
  const rss1 = rssKiB(f.pid);
  // The stallers read again. A cut one finds its 4001 close frame after
  // what the kernel held — or, when the server gave up on a close frame
  // nobody read (5 s), just the end of what was sent; the others are open
  // and got every message.
  const codes = await slow.finish();
  await waitFor(() => fast.all((fr) => fr.type === 'message').length === ROUNDS, { timeoutMs: 60000, what: 'the fast client got everything' });
  assert.equal(m.fanout_queue_budget_bytes, BUDGET);
  const cut = m.fanout_queue_budget_disconnects_total;
  assert.ok(cut >= 10, `${cut} cut`);
  assert.equal(m.fanout_slow_client_disconnects_total, 0, 'the per-client cap was never the limit');
  assert.ok(maxPinned > BUDGET / 2, `pinned at most ${maxPinned}: the queues did fill`);
  assert.equal(codes.length, N);
  const full = Math.max(...codes.bytes);
  const kept = codes.filter((c, i) => codes.bytes[i] === full);
  assert.equal(kept.length, N - cut, `bytes ${JSON.stringify(codes.bytes)}`);
  assert.ok(kept.every((c) => c === -1), `a client that was not cut is open: ${JSON.stringify(codes)}`);
  assert.ok(codes.every((c) => c === 4001 || c === 0 || c === -1), JSON.stringify(codes));
  assert.ok(codes.includes(4001), `no 4001 close frame seen: ${JSON.stringify(codes)} bytes ${JSON.stringify(codes.bytes)}`);
  // the server let go of every cut one: N - cut stallers, fast and pub left
  await waitFor(async () => parseMetrics((await f.http('/metrics')).body).fanout_clients === N - cut + 2, { timeoutMs: 15000, what: 'the cut clients gone' });
  assert.equal(fast.closeInfo, null);
  const seq = fast.all((fr) => fr.type === 'message' && fr.channel === 'q7').map((fr) => fr.data.r);
  assert.deepEqual(seq, [...Array(ROUNDS).keys()]);
  t.diag(`pinned at most ${maxPinned} bytes (budget ${BUDGET}); ${cut} of ${N} cut 4001; RSS ${rss0} -> ${rss1} KiB`);
  if (!ASAN) assert.ok(rss1 - rss0 < 48 * 1024, `RSS grew by ${rss1 - rss0} KiB`);
  slow.end();
  await Promise.all([fast.close(), pub.close()]);
  assert.equal(await f.stop(), 0);
}, { timeoutMs: 180000 });

t.done();
setTimeout(() => process.exit(), 500).unref();
