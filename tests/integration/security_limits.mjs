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
 * `${prefix}${i}`. Resolves once they are upgraded; finish(frames) makes
 * them read until each one ends, brings its close frame or has brought
 * `frames` data frames, and resolves with [{code, bytes, frames}] (code: the
 * close frame's, 0 for an end without one, -1 for still open). */
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
          finish: (frames) => new Promise((res) => {
            p.stdout.on('data', () => {
              if (/^done$/m.test(out))
                res([...out.matchAll(/^(\d+) (-?\d+) (\d+) (\d+)$/gm)].map((m) =>
                  ({ code: Number(m[2]), bytes: Number(m[3]), frames: Number(m[4]) })));
            });
            p.stdin.write(`go ${frames}\n`);
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
  // At least 100 rounds, then on until a round cuts someone (the ones
  // still open keep filling the budget: a cut comes every few rounds), so
  // the stallers read right after a cut, well within the 5 s the server
  // waits for a client that takes nothing.
  const MIN_ROUNDS = 100, MAX_ROUNDS = 130;
  let maxPinned = 0, id = 0, ROUNDS = 0, lastCut = 0;
  for (let r = 0; !ROUNDS; r++) {
    for (let i = 0; i < N; i++) pub.send({ type: 'publish', channel: `q${i}`, data: { r, i, blob }, id: ++id });
    await pub.next((fr) => fr.id === id, 30000, `ack of round ${r}`);
    if (r % 10 === 9 || r >= MIN_ROUNDS - 2) {
      const m = parseMetrics((await f.http('/metrics')).body);
      maxPinned = Math.max(maxPinned, m.fanout_queue_pinned_bytes);
      if (process.env.DEBUG_LIMITS) t.diag(`round ${r}: pinned ${m.fanout_queue_pinned_bytes} queue ${m.fanout_queue_bytes} cut ${m.fanout_queue_budget_disconnects_total} rss ${rssKiB(f.pid)}`);
      assert.ok(m.fanout_queue_pinned_bytes <= BUDGET, `pinned ${m.fanout_queue_pinned_bytes} > budget`);
      const cutNow = m.fanout_queue_budget_disconnects_total;
      if (r >= MIN_ROUNDS - 1 && cutNow > lastCut) ROUNDS = r + 1;
      lastCut = cutNow;
      assert.ok(r < MAX_ROUNDS, `no cut in rounds ${MIN_ROUNDS}-${MAX_ROUNDS}`);
    }
  }
  const m = parseMetrics((await f.http('/metrics')).body);
  const rss1 = rssKiB(f.pid);
  // The stallers read again. A cut one finds its 4001 close frame after
  // what the kernel had accepted before the cut (the server drops the
  // unsent queue for the close frame, but cannot take back what the
  // kernel holds); the server waits for it while the client takes bytes,
  // so the ones cut in the last 5 s (at least the last round's) get it. One that took nothing for 5 s after its cut was
  // dropped without it (0: the end of what was sent, then EOF), counted as
  // a close timeout. The others are open and got every message.
  const FRAMES = ROUNDS + 2; // hello, subscribed, then a message per round
  const st = await slow.finish(FRAMES);
  await waitFor(() => fast.all((fr) => fr.type === 'message').length === ROUNDS, { timeoutMs: 60000, what: 'the fast client got everything' });
  assert.equal(m.fanout_queue_budget_bytes, BUDGET);
  const cut = m.fanout_queue_budget_disconnects_total;
  assert.ok(cut >= 10, `${cut} cut`);
  assert.equal(m.fanout_slow_client_disconnects_total, 0, 'the per-client cap was never the limit');
  assert.ok(maxPinned > BUDGET / 2, `pinned at most ${maxPinned}: the queues did fill`);
  assert.equal(st.length, N);
  const show = JSON.stringify(st.map((s) => [s.code, s.frames]));
  const kept = st.filter((s) => s.code === -1);
  assert.equal(kept.length, N - cut, `open at the end: ${show}`);
  assert.ok(kept.every((s) => s.frames === FRAMES), `a client that was not cut got every message: ${show}`);
  const lost = st.filter((s) => s.code !== -1);
  assert.ok(lost.every((s) => s.code === 4001 || s.code === 0), show);
  assert.ok(lost.every((s) => s.frames < FRAMES), `a cut client lost its queue: ${show}`);
  const n4001 = lost.filter((s) => s.code === 4001).length;
  const dropped = cut - n4001;
  assert.ok(n4001 > 0, `no 4001 close frame seen: ${show}`);
  // the server let go of every cut one: N - cut stallers, fast and pub left
  await waitFor(async () => parseMetrics((await f.http('/metrics')).body).fanout_clients === N - cut + 2, { timeoutMs: 15000, what: 'the cut clients gone' });
  // each one dropped without its close frame was a close timeout (so was
  // each 4001 that got no reply: the stallers never answer one)
  const timeouts = parseMetrics((await f.http('/metrics')).body)['fanout_ws_closes_total{reason="close_timeout"}'];
  assert.ok(timeouts >= dropped && timeouts <= cut, `${timeouts} close timeouts, ${dropped} dropped of ${cut} cut`);
  assert.equal(fast.closeInfo, null);
  const seq = fast.all((fr) => fr.type === 'message' && fr.channel === 'q7').map((fr) => fr.data.r);
  assert.deepEqual(seq, [...Array(ROUNDS).keys()]);
  t.diag(`pinned at most ${maxPinned} bytes (budget ${BUDGET}); ${cut} of ${N} cut 4001 (${n4001} saw the close frame, ${dropped} were dropped without it); RSS ${rss0} -> ${rss1} KiB`);
  if (!ASAN) assert.ok(rss1 - rss0 < 48 * 1024, `RSS grew by ${rss1 - rss0} KiB`);
  slow.end();
  await Promise.all([fast.close(), pub.close()]);
  assert.equal(await f.stop(), 0);
}, { timeoutMs: 180000 });

t.done();
setTimeout(() => process.exit(), 500).unref();
