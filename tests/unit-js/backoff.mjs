// backoff.mjs — unit tests (node, no browser) for web/fanout.js's pure
// reconnect policy: backoffDelay() (exponential, capped, FULL jitter) and
// shouldReconnect() (DESIGN.md close codes).
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { backoffDelay, shouldReconnect, CloseCode } from '../../web/fanout.js';

const t = tap();
const base = 500;
const cap = 30000;
const ceiling = (n) => Math.min(cap, base * 2 ** n);

// A seeded PRNG (mulberry32) so a failure is reproducible.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

await t.test('delays stay within [0, min(cap, base*2^attempt))', async () => {
  const random = rng(1);
  for (let n = 0; n <= 40; n++) {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n, { baseMs: base, capMs: cap, random });
      assert.ok(Number.isInteger(d), `integer delay, got ${d}`);
      assert.ok(d >= 0 && d < ceiling(n), `attempt ${n}: ${d} not in [0, ${ceiling(n)})`);
    }
  }
});

await t.test('the upper bound grows exponentially, then stays at the cap', async () => {
  const top = (n) => backoffDelay(n, { baseMs: base, capMs: cap, random: () => 0.999999 });
  const tops = Array.from({ length: 12 }, (_, n) => top(n));
  for (let n = 1; n < tops.length; n++) {
    if (ceiling(n) < cap) assert.ok(tops[n] > tops[n - 1] * 1.9, `attempt ${n}: ${tops[n]} vs ${tops[n - 1]}`);
    else assert.ok(tops[n] <= cap && tops[n] >= cap - 1, `attempt ${n} capped: ${tops[n]}`);
  }
  assert.equal(top(0), 499);
  assert.equal(top(1), 999);
  assert.equal(top(6), 29999); // 500*64 = 32000 > cap
  assert.equal(top(1000), 29999); // 2^1000 does not overflow past the cap
});

await t.test('the mean delay grows with the attempt number', async () => {
  const random = rng(7);
  const mean = (n) => {
    let s = 0;
    for (let i = 0; i < 2000; i++) s += backoffDelay(n, { baseMs: base, capMs: cap, random });
    return s / 2000;
  };
  const m = [0, 1, 2, 3, 4, 5].map(mean);
  for (let n = 1; n < m.length; n++) assert.ok(m[n] > m[n - 1], `mean(${n})=${m[n]} <= mean(${n - 1})=${m[n - 1]}`);
});

await t.test('full jitter: delays are spread uniformly over the whole window', async () => {
  const n = 5; // window 16 s
  const w = ceiling(n);
  const random = rng(42);
  const N = 4000;
  const buckets = [0, 0, 0, 0];
  const distinct = new Set();
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const d = backoffDelay(n, { baseMs: base, capMs: cap, random });
    buckets[Math.floor((d / w) * 4)] += 1;
    distinct.add(d);
    sum += d;
  }
  // Not a fixed delay, not "delay + small jitter": values reach near 0 and near the top.
  assert.ok(distinct.size > N * 0.8, `only ${distinct.size} distinct delays of ${N}`);
  for (const b of buckets) assert.ok(b > N * 0.2 && b < N * 0.3, `quartiles uneven: ${buckets}`);
  assert.ok(Math.abs(sum / N - w / 2) < w * 0.05, `mean ${sum / N} far from ${w / 2}`);
});

await t.test('uses Math.random by default and tolerates bad random sources', async () => {
  const a = new Set(Array.from({ length: 50 }, () => backoffDelay(8)));
  assert.ok(a.size > 40, 'default random source jitters');
  assert.equal(backoffDelay(3, { random: () => 1 }), 3999); // clamped below the window
  assert.equal(backoffDelay(3, { random: () => -5 }), 0);
  assert.equal(backoffDelay(3, { random: () => NaN }), 0);
  assert.equal(backoffDelay(-2, { random: () => 0.5 }), 250); // negative attempt = 0
});

await t.test('a thousand clients drained at once spread their reconnects', async () => {
  // Clients on their first retry (attempt 0) after a 1001 from a draining instance.
  const random = rng(99);
  const perTenth = new Array(5).fill(0);
  for (let i = 0; i < 1000; i++) perTenth[Math.floor(backoffDelay(0, { random }) / 100)] += 1;
  for (const c of perTenth) assert.ok(c < 260, `burst of ${c} reconnects in one 100 ms slice`);
});

await t.test('close codes: reconnect on all but 1008', async () => {
  for (const code of [1000, 1001, 1006, 1009, 1011, 1013, 4001, 3000]) assert.equal(shouldReconnect(code), true, String(code));
  assert.equal(shouldReconnect(CloseCode.POLICY), false);
  assert.equal(CloseCode.POLICY, 1008);
});

t.done();
