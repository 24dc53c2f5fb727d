// scripts/bench-summary.mjs — the summary of scripts/bench.sh's reports as
// the markdown BENCHMARKS.md quotes: each measure as the median of the
// runs with their range, next to issue 14's target, and whether it is met.
//
//   node scripts/bench-summary.mjs RESULTS_DIR
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const rep = {}; // scenario -> [report of each run]
for (const f of fs.readdirSync(dir).sort()) {
  const m = f.match(/^([A-Z][A-Z0-9]*(?:-[a-z]+)?)-(\d+)\.json$/);
  if (!m) continue;
  try { (rep[m[1]] ||= []).push(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))); } catch {}
}
const med = (v) => { const s = v.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); const n = s.length; return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN; };
const fmt = (x, d = 2) => (Number.isFinite(x) ? (Math.abs(x) >= 1e5 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d)) : '—');
const mr = (v, d) => { const f = v.filter(Number.isFinite); return f.length ? `${fmt(med(f), d)} (${f.map((x) => fmt(x, d)).join(', ')})` : '—'; };
const rows = [];
const row = (what, values, d, target, ok) => rows.push(`| ${what} | ${mr(values, d)} | ${target} | ${ok === undefined ? '' : ok ? 'met' : '**missed**'} |`);
const step0 = (k) => (rep[k] || []).map((r) => r.steps?.[0]).filter(Boolean);

// A: CPU per delivery against the floor
const A = step0('A');
if (A.length) {
  row('A: server µs per delivery, 1000 clients × 50 msg/s', A.map((s) => s.server.us_per_delivery), 2, '—');
  row('A: the one-write-per-frame floor, µs per write', A.map((s) => s.floor?.us_per_write), 2, '—');
  row('A: server / floor', A.map((s) => s.vs_floor), 3, '≤ 1.05', med(A.map((s) => s.vs_floor)) <= 1.05);
}
// B, U: the ladder. A step counts at the rate it offered (expected
// deliveries / its duration) when every delivery arrived (loss 0); the
// delivered/s of the ladder table is a little lower because the last
// deliveries land after the step's window.
const offered = (s) => s.expected / s.secs;
const best = (r) => {
  let b = 0;
  for (const s of r.steps || []) if (s.loss === 0 && s.latency_ms.p99 < 50) b = Math.max(b, offered(s));
  return b;
};
const bestAny = (r) => Math.max(0, ...(r.steps || []).filter((s) => s.loss === 0).map(offered));
for (const [k, name, target] of [['B', 'fanoutd', '≥ 2,500,000'], ['U', 'uWebSockets.js (reference)', '—']]) {
  if (!rep[k]) continue;
  const v = rep[k].map(best);
  row(`${k}: highest step (offered deliveries/s) with zero loss and p99 < 50 ms, ${name}`, v, 0, target, k === 'B' ? med(v) >= 2.5e6 * 0.999 : undefined);
  row(`${k}: highest step with zero loss (any latency), ${name}`, rep[k].map(bestAny), 0, '—');
}
const ladder = (k) => {
  const R = rep[k] || [];
  if (!R.length) return [];
  const out = [`| ${k} step (msg/s) | offered/s | delivered/s | loss | p50 ms | p99 ms | server µs/delivery | server CPU % | bench CPU % |`, '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (let i = 0; i < R[0].steps.length; i++) {
    const S = R.map((r) => r.steps[i]).filter(Boolean);
    const lim = S.some((s) => s.bench.bottleneck) ? ' (bench-limited)' : '';
    out.push(`| ${S[0].rate} | ${fmt(med(S.map((s) => s.expected / s.secs)), 0)} | ${mr(S.map((s) => s.deliveries_per_s), 0)} | ${mr(S.map((s) => s.loss), 0)} | ${mr(S.map((s) => s.latency_ms.p50), 1)} | ${mr(S.map((s) => s.latency_ms.p99), 1)} | ${mr(S.map((s) => s.server.us_per_delivery), 2)} | ${mr(S.map((s) => s.server.cpu_pct), 0)} | ${mr(S.map((s) => s.bench.cpu_pct), 0)}${lim} |`);
  }
  return out;
};
// C: flatness
const C = step0('C');
if (C.length) {
  row('C: server µs per delivery, 19,000 clients × 2 msg/s', C.map((s) => s.server.us_per_delivery), 2, '—');
  const aRatio = med(A.map((s) => s.vs_floor));
  const cr = C.map((s) => s.vs_floor / aRatio);
  row('C: (server / floor) at 19,000 against A\'s', cr, 3, '≤ 1.1', med(cr) <= 1.1);
  row('C: server KiB per idle connection (19,000)', (rep.C || []).map((r) => r.connect.server_kib_per_connection), 2, '—');
}
// D: latency
const D = step0('D'), UD = step0('UD');
if (D.length) {
  row('D: latency p50 ms, 100 clients × 100 msg/s', D.map((s) => s.latency_ms.p50), 3, '≤ 0.5', med(D.map((s) => s.latency_ms.p50)) <= 0.5);
  row('D: latency p99 ms', D.map((s) => s.latency_ms.p99), 3, '≤ 1', med(D.map((s) => s.latency_ms.p99)) <= 1);
  row('D: the broker hop alone, p50 ms', D.map((s) => s.broker_hop_ms?.p50), 3, '—');
  row('D: the broker hop alone, p99 ms', D.map((s) => s.broker_hop_ms?.p99), 3, '—');
  row('D: bench CPU µs per frame', D.map((s) => s.bench.us_per_frame), 2, '—');
}
const D1 = step0('D1');
if (D1.length) {
  row('D1: latency p50 ms, one client', D1.map((s) => s.latency_ms.p50), 3, '—');
  row('D1: latency p99 ms, one client', D1.map((s) => s.latency_ms.p99), 3, '—');
  row('D1: the broker hop alone, p50 ms', D1.map((s) => s.broker_hop_ms?.p50), 3, '—');
}
if (UD.length) {
  row('UD: latency p50 ms, uWebSockets.js', UD.map((s) => s.latency_ms.p50), 3, '—');
  row('UD: latency p99 ms, uWebSockets.js', UD.map((s) => s.latency_ms.p99), 3, '—');
}
// E: deflate
const Eoff = step0('E-off'), Eon = step0('E-on');
if (Eoff.length && Eon.length) {
  const n = Math.min(Eoff.length, Eon.length);
  const bytes = [...Array(n).keys()].map((i) => Eoff[i].rx_bytes_per_delivery / Eon[i].rx_bytes_per_delivery);
  const cpu = [...Array(n).keys()].map((i) => Eon[i].server.us_per_delivery / Eoff[i].server.us_per_delivery);
  row('E: bytes read per delivery, deflate off', Eoff.map((s) => s.rx_bytes_per_delivery), 1, '—');
  row('E: bytes read per delivery, deflate on', Eon.map((s) => s.rx_bytes_per_delivery), 1, '—');
  row('E: bytes off / on', bytes, 2, '≥ 3', med(bytes) >= 3);
  row('E: server µs per delivery on / off', cpu, 3, '≤ 1.2', med(cpu) <= 1.2);
}
// M: memory
if (rep.M) {
  const v = rep.M.map((r) => r.connect.server_kib_per_connection);
  row('M: server KiB per idle subscribed connection (10,000)', v, 2, '≤ 2', med(v) <= 2);
}
// S: storms
const SC = rep['S-connect'] || [], SD = rep['S-drain'] || [];
if (SC.length) {
  const v = SC.map((r) => (r.ok ? r.connect.secs : NaN));
  row('S: 10,000 connects + subscribes, one worker: seconds until all confirmed', v, 3, '≤ 1', med(v) <= 1);
  row('S: … server CPU seconds', SC.map((r) => r.server_cpu_s), 3, '—');
  row('S: … the bench\'s CPU seconds', SC.map((r) => r.bench_cpu_s ?? NaN), 3, '—');
  row('S: … handshakes dropped by the full accept queue (ListenOverflows; somaxconn caps it)', SC.map((r) => r.listen_overflows ?? NaN), 0, '—');
}
if (SD.length) {
  const v = SD.map((r) => (r.ok && r.drain ? r.drain.back.secs : NaN));
  row('S: one of 3 instances drained under 10,000 clients: seconds until all are back', v, 3, '≤ 2', med(v) <= 2);
  row('S: … clients moved', SD.map((r) => r.drain?.moved), 0, '—');
  row('S: … CPU seconds of the two instances taking them', SD.map((r) => r.drain?.servers_cpu_s ?? NaN), 3, '—');
}

const cond = fs.existsSync(path.join(dir, 'conditions.txt')) ? fs.readFileSync(path.join(dir, 'conditions.txt'), 'utf8').trim() : '';
console.log(`${cond}\n\n| measure | median (runs) | target | |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`);
for (const k of ['B', 'U']) { const l = ladder(k); if (l.length) console.log(l.join('\n') + '\n'); }
