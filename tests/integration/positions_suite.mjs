// positions_suite.mjs — protocol v1.1 (positions and recovery) against a
// real fanoutd, once per positioned backend: the position on
// subscribed/message/published, resuming with `since` (from the in-memory
// ring and from the backend's history), every documented answer to a resume
// that cannot be recovered (stale epoch, older than history, ahead of the
// top, over the replay cap, an unpositioned channel), bad `since` values,
// ?channel=NAME@EPOCH:OFFSET, and the recovery counters in /metrics; where
// the fixture can delay history or lose a live message (loopback), the merge
// of live messages into a replay and holes repaired from history.
//
// Each check asserts the literal contract: a client's offsets are exactly
// the offsets of the messages published after since (since+1, since+2, ...
// on a backend whose offsets are contiguous: fixture.contiguous; on the
// others, e.g. NATS JetStream's shared stream sequence, exactly the ones
// the publishes were acknowledged with), with no duplicate, and
// `recovered:false` comes with no replay at all.
//
// Not a test by itself: positions_<backend>.mjs calls runPositionsSuite()
// with a fixture from tests/lib/backends.mjs (fixture.positioned).
import assert from 'node:assert/strict';
import http from 'node:http';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, parseMetrics, pluginPath, waitFor } from '../lib/harness.mjs';

export async function runPositionsSuite(fx) {
const t = tap();
t.diag(`positions suite, backend ${fx.name}`);
await fx.start();
const lb = pluginPath('loopback');
// ini({server keys}, {backend keys}): defaults below, overridden by the
// arguments. The unpositioned channels u.* are a loopback without history.
// A test only some fixtures can run: the others say so in a diagnostic (not
// a skip: a skip fails under CI, and this is no missing environment).
const only = (cap, why) => (cap ? t.test : async (name) => t.diag(`not with ${fx.name}: ${name} (${why})`));
const kv = (o) => Object.entries(o).map(([k, v]) => `${k} = ${v}\n`).join('');
const ini = (server = {}, backend = {}) =>
  `[server]\n${kv({ instance: 'pos1', allow_publish: true, position_probe_s: 0, publish_api_key: 'positions-suite-key-1', ...server })}\n` +
  `[backend mem]\nchannels = p.* q.*\n${fx.keys(kv({ history_size: 50, ...backend }))}\n` +
  `[backend plain]\nplugin = ${lb}\nchannels = u.*\nhistory_size = 0\n`;

/** Publish n messages {seq} on channel through client p; resolves the
 * acks, their offsets strictly increasing (and consecutive where the
 * fixture says offsets are contiguous). */
async function publish(p, channel, n, from = 0) {
  const acks = [];
  for (let i = 0; i < n; i++) {
    const id = `${channel}-${from + i}-${Math.random().toString(36).slice(2)}`;
    p.send({ type: 'publish', channel, data: { seq: from + i }, id });
    acks.push(p.next((f) => f.id === id, 10000, `ack ${id}`));
  }
  const out = await Promise.all(acks);
  for (let i = 1; i < out.length; i++)
    if (fx.contiguous ? out[i].offset !== out[i - 1].offset + 1 : !(out[i].offset > out[i - 1].offset))
      assert.fail(`publish acks on ${channel}: offset ${out[i].offset} after ${out[i - 1].offset}`);
  return out;
}
/** The offsets of acks. */
const offs = (acks) => acks.map((a) => a.offset);

/** The offsets of the message frames c got on channel, in order. */
const offsets = (c, channel) => c.all((f) => f.type === 'message' && f.channel === channel).map((f) => f.offset);
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Subscribe with since and wait for the reply. */
async function resume(c, channel, since, id = 'r' + Math.random().toString(36).slice(2)) {
  c.send({ type: 'subscribe', channel, id, since });
  return c.next((f) => f.id === id, 10000, `reply to resume ${channel}`);
}

const f = await startFanoutd({ ini: ini(), wait: 'ready' });
// Epochs are per channel (valkey: each channel's own; loopback: one per
// process): each test uses the epoch of the channel it resumes.
let epoch; // of p.a
let eb; // of p.b
let ob; // the offsets of p.b's messages, by seq

await t.test('subscribed, message and published carry the position', async () => {
  const c = await wsClient(f.ws);
  const s = await c.subscribe('p.a');
  assert.match(s.epoch, /^[A-Za-z0-9_-]{1,64}$/);
  assert.equal(s.offset, 0); // nothing published yet: the epoch exists, offset 0
  assert.equal(s.recovered, undefined); // no since, no answer about it
  epoch = s.epoch;
  const p = await wsClient(f.ws);
  const acks = await publish(p, 'p.a', 3);
  assert.deepEqual(acks.map((a) => [a.type, a.epoch, a.offset]), [1, 2, 3].map((o) => ['published', epoch, o]));
  await waitFor(() => offsets(c, 'p.a').length === 3, { what: 'three messages' });
  const m = c.all((fr) => fr.type === 'message')[0];
  assert.deepEqual(m, { type: 'message', channel: 'p.a', instance: 'pos1', offset: 1, data: { seq: 0 } });
  assert.deepEqual(offsets(c, 'p.a'), [1, 2, 3]);
  // a fresh subscriber stands at the top
  const d = await wsClient(f.ws);
  const s2 = await d.subscribe('p.a');
  assert.deepEqual([s2.epoch, s2.offset], [epoch, 3]);
  // the HTTP publish API answers with the position too
  const body = JSON.stringify({ channel: 'p.a', data: { seq: 3 } });
  const res = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: f.port, path: '/api/publish', method: 'POST',
      headers: { Authorization: 'apikey positions-suite-key-1', 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
    (r) => { let b = ''; r.on('data', (x) => (b += x)); r.on('end', () => resolve({ status: r.statusCode, body: b })); });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { epoch, offset: 4 });
  const m4 = await c.next((fr) => fr.type === 'message' && fr.offset === 4);
  assert.deepEqual(m4.data, { seq: 3 });
  await Promise.all([c.close(), p.close(), d.close()]);
});

await t.test('resume: everything after since, in order, then live, no duplicate', async () => {
  const p = await wsClient(f.ws);
  const live = await wsClient(f.ws);
  await live.subscribe('p.b');
  const acks = await publish(p, 'p.b', 20);
  const e = (eb = acks[0].epoch);
  ob = offs(acks);
  if (fx.contiguous) assert.deepEqual(ob, range(1, 20));
  await waitFor(() => offsets(live, 'p.b').length === 20, { what: 'live copy' });
  assert.deepEqual(offsets(live, 'p.b'), ob);
  const c = await wsClient(f.ws);
  const r = await resume(c, 'p.b', { epoch: e, offset: ob[6] });
  assert.deepEqual([r.type, r.epoch, r.offset, r.recovered], ['subscribed', e, ob[19], true]);
  ob.push(...offs(await publish(p, 'p.b', 3, 20)));
  await waitFor(() => offsets(c, 'p.b').length === 16, { what: 'replay and live' });
  assert.deepEqual(offsets(c, 'p.b'), ob.slice(7, 23));
  assert.deepEqual(c.all((fr) => fr.type === 'message').map((fr) => fr.data.seq), range(7, 22));
  // at the top: recovered, nothing replayed
  const d = await wsClient(f.ws);
  const r2 = await resume(d, 'p.b', { epoch: e, offset: ob[22] });
  assert.deepEqual([r2.offset, r2.recovered], [ob[22], true]);
  await Promise.all([p.close(), live.close(), c.close(), d.close()]);
});

await t.test('since: stale epoch -> recovered false, no replay, the current position', async () => {
  const c = await wsClient(f.ws);
  const r = await resume(c, 'p.b', { epoch: 'not-this-epoch', offset: 3 });
  assert.deepEqual([r.type, r.epoch, r.offset, r.recovered], ['subscribed', eb, ob.at(-1), false]);
  c.send({ type: 'ping', id: 'sync' });
  await c.next('pong');
  assert.equal(offsets(c, 'p.b').length, 0);
  await c.close();
});

await t.test('since: older than the history -> recovered false, no partial replay', async () => {
  const p = await wsClient(f.ws);
  // history_size 50: the oldest 13 of p.b are gone (kept per channel), or
  // more (NATS: 50 messages for the whole stream)
  ob.push(...offs(await publish(p, 'p.b', 40, 23)));
  const c = await wsClient(f.ws);
  const r = await resume(c, 'p.b', { epoch: eb, offset: ob[4] });
  assert.deepEqual([r.epoch, r.offset, r.recovered], [eb, ob.at(-1), false]);
  c.send({ type: 'ping', id: 'sync' });
  await c.next('pong');
  assert.equal(offsets(c, 'p.b').length, 0);
  await Promise.all([p.close(), c.close()]);
});

await t.test('since: ahead of the top -> recovered false once the broker says so', async () => {
  const c = await wsClient(f.ws);
  const r = await resume(c, 'p.b', { epoch: eb, offset: ob.at(-1) + 1000 });
  assert.deepEqual([r.epoch, r.offset, r.recovered], [eb, ob.at(-1), false]);
  await c.close();
});

await t.test('since: huge, negative, fractional, wrong types -> bad_request naming the field', async () => {
  const c = await wsClient(f.ws);
  const cases = [
    [{ epoch, offset: -1 }, /since.offset/],
    [{ epoch, offset: 1.5 }, /since.offset/],
    [{ epoch, offset: 9007199254740992 }, /9007199254740991/],
    [{ epoch, offset: '5' }, /since.offset/],
    [{ epoch: 'a:b', offset: 1 }, /since.epoch/],
    [{ offset: 1 }, /since.epoch/],
    ['E:1', /since must be an object/],
  ];
  let i = 0;
  for (const [since, msg] of cases) {
    const id = `bad${i++}`;
    c.send({ type: 'subscribe', channel: 'p.b', id, since });
    const e = await c.next((fr) => fr.id === id);
    assert.equal(e.type, 'error', JSON.stringify(e));
    assert.equal(e.code, 'bad_request');
    assert.match(e.message, msg);
  }
  // beyond 64 bits: valid JSON, still a bad_request (no id: it never parsed)
  c.send(`{"type":"subscribe","channel":"p.b","id":"huge","since":{"epoch":"${epoch}","offset":123456789012345678901234567890}}`);
  const e = await c.next('error');
  assert.equal(e.code, 'bad_request');
  assert.match(e.message, /number out of range/);
  // none of these subscribed
  assert.equal(c.all((fr) => fr.type === 'subscribed').length, 0);
  await c.close();
});

await t.test('since on an unpositioned channel -> recovered false, no position', async () => {
  const c = await wsClient(f.ws);
  const r = await resume(c, 'u.x', { epoch, offset: 3 });
  assert.deepEqual(r, { type: 'subscribed', id: r.id, channel: 'u.x', recovered: false });
  const p = await wsClient(f.ws);
  const [ack] = await publish(p, 'u.x', 1);
  assert.deepEqual(Object.keys(ack).sort(), ['channel', 'id', 'type']);
  const m = await c.next('message');
  assert.equal(m.offset, undefined);
  await Promise.all([c.close(), p.close()]);
});

await t.test('?channel=NAME@EPOCH:OFFSET resumes at connect time', async () => {
  const p = await wsClient(f.ws);
  const aq = await publish(p, 'p.q', 5);
  const eq = aq[0].epoch;
  const oq = offs(aq);
  const c = await wsClient(`${f.ws}?channel=${encodeURIComponent(`p.q@${eq}:${oq[1]}`)}&channel=p.a`);
  const subs = [await c.next('subscribed'), await c.next('subscribed')];
  const q = subs.find((s) => s.channel === 'p.q');
  assert.deepEqual([q.offset, q.recovered], [oq[4], true]);
  assert.equal(subs.find((s) => s.channel === 'p.a').recovered, undefined);
  await waitFor(() => offsets(c, 'p.q').length === 3, { what: 'replay' });
  assert.deepEqual(offsets(c, 'p.q'), oq.slice(2));
  const bad = await wsClient(`${f.ws}?channel=p.q@nope`);
  const e = await bad.next('error');
  assert.equal(e.code, 'bad_request');
  assert.match(e.message, /NAME@EPOCH:OFFSET/);
  await Promise.all([p.close(), c.close(), bad.close()]);
});

await t.test('/metrics counts resumes by result', async () => {
  const m = parseMetrics((await f.http('/metrics')).body);
  assert.equal(m['fanout_recoveries_total'], 7, JSON.stringify(m));
  assert.ok(m['fanout_recovery_results_total{result="recovered",reason=""}'] >= 3);
  assert.equal(m['fanout_recovery_results_total{result="failed",reason="epoch"}'], 1);
  assert.equal(m['fanout_recovery_results_total{result="failed",reason="truncated"}'], 1);
  assert.equal(m['fanout_recovery_results_total{result="failed",reason="ahead"}'], 1);
  assert.equal(m['fanout_recovery_results_total{result="failed",reason="unpositioned"}'], 1);
  assert.equal(m['fanout_recovered_messages_total'], 16); // 13 + 0 + 3
  assert.equal(m['fanout_recovery_ring_hits_total'], 2); // p.q was cold: history
  // every channel is gone with its clients: so are the rings
  assert.equal(m['fanout_recovery_ring_messages'], 0);
});

assert.equal(await f.stop(), 0);

await only(fx.delayKeys, 'the fixture cannot delay history answers')('history replay (ring off) merges live messages published meanwhile', async () => {
  // The backend answers history 300 ms late; messages published during the
  // wait are held for the resuming client and follow the replay.
  const g = await startFanoutd({
    ini: ini({ recovery_ring_messages: 0 }, fx.delayKeys(300)),
  });
  const p = await wsClient(g.ws);
  const acks = await publish(p, 'p.h', 10);
  const e = acks[0].epoch;
  const c = await wsClient(g.ws);
  c.send({ type: 'subscribe', channel: 'p.h', id: 'r', since: { epoch: e, offset: 4 } });
  const more = publish(p, 'p.h', 5, 10); // during the history request
  const r = await c.next((fr) => fr.id === 'r', 10000);
  assert.equal(r.recovered, true);
  await more;
  await waitFor(() => offsets(c, 'p.h').length === 11, { what: 'replay + live' });
  assert.deepEqual(offsets(c, 'p.h'), range(5, 15));
  const m = parseMetrics((await g.http('/metrics')).body);
  assert.equal(m['fanout_recovery_ring_hits_total'], 0);
  assert.ok(m['fanout_history_requests_total{kind="recover"}'] >= 1);
  await Promise.all([p.close(), c.close()]);
  assert.equal(await g.stop(), 0);
});

await t.test('replay cap: more than recovery_max_messages behind -> recovered false', async () => {
  const g = await startFanoutd({ ini: ini({ recovery_max_messages: 5 }), wait: 'ready' });
  const p = await wsClient(g.ws);
  // (Nothing else is published meanwhile: p.c's offsets are consecutive
  // on every backend, so "messages behind" is the same count everywhere.)
  const acks = await publish(p, 'p.c', 10);
  const oc = offs(acks);
  assert.deepEqual(oc, range(oc[0], oc[0] + 9));
  const c = await wsClient(g.ws);
  const r = await resume(c, 'p.c', { epoch: acks[0].epoch, offset: oc[3] });
  assert.deepEqual([r.offset, r.recovered], [oc[9], false]);
  const d = await wsClient(g.ws);
  const r2 = await resume(d, 'p.c', { epoch: acks[0].epoch, offset: oc[4] });
  assert.deepEqual([r2.offset, r2.recovered], [oc[9], true]); // exactly 5 behind: replayed
  await waitFor(() => offsets(d, 'p.c').length === 5, { what: 'replay' });
  assert.deepEqual(offsets(d, 'p.c'), oc.slice(5));
  // subscribing again while subscribed is no resume: recovered false
  const r3 = await resume(d, 'p.c', { epoch: acks[0].epoch, offset: oc[4] });
  assert.deepEqual([r3.offset, r3.recovered], [oc[9], false]);
  await Promise.all([p.close(), c.close(), d.close()]);
  assert.equal(await g.stop(), 0);
});

await only(fx.dropKeys, 'the fixture cannot lose a live message')('holes the instance sees are repaired from history before later messages', async () => {
  // Every third publish never reaches the hub live.
  const g = await startFanoutd({ ini: ini({}, fx.dropKeys(3)) });
  const c = await wsClient(g.ws);
  await c.subscribe('p.hole');
  const p = await wsClient(g.ws);
  await publish(p, 'p.hole', 31); // 3, 6, ..., 30 never arrive live
  await waitFor(() => offsets(c, 'p.hole').length === 31, { what: 'the repaired stream' });
  assert.deepEqual(offsets(c, 'p.hole'), range(1, 31));
  assert.equal(c.all((fr) => fr.type === 'gap').length, 0);
  const m = parseMetrics((await g.http('/metrics')).body);
  assert.ok(m['fanout_holes_repaired_total'] >= 10, JSON.stringify(m));
  assert.equal(m['fanout_position_gaps_total'], 0);
  await Promise.all([p.close(), c.close()]);
  assert.equal(await g.stop(), 0);
});

await only(fx.dropKeys, 'the fixture cannot lose a live message')('a hole history cannot fill is one gap frame with the new position', async () => {
  // history_size 1, every second publish lost: the lost message is pushed
  // out of history by the next one before the repair asks.
  const g = await startFanoutd({ ini: ini({}, { ...fx.dropKeys(2), history_size: 1 }) });
  const c = await wsClient(g.ws);
  const s = await c.subscribe('p.g');
  const p = await wsClient(g.ws);
  await publish(p, 'p.g', 3); // 1 live, 2 dropped, 3 live (history has only 3)
  const gap = await c.next('gap');
  assert.deepEqual([gap.epoch, gap.offset], [s.epoch, 2]);
  await waitFor(() => offsets(c, 'p.g').length === 2, { what: 'messages' });
  assert.deepEqual(offsets(c, 'p.g'), [1, 3]);
  // order on the wire: 1, gap (at 2), 3
  assert.deepEqual(c.frames.filter((fr) => fr.type === 'message' || fr.type === 'gap').map((fr) => fr.type === 'gap' ? 'g' + fr.offset : fr.offset), [1, 'g2', 3]);
  await Promise.all([p.close(), c.close()]);
  assert.equal(await g.stop(), 0);
});

await only(fx.dropKeys, 'the fixture cannot lose a live message')('a quiet channel is probed: a lost last message arrives', async () => {
  const g = await startFanoutd({ ini: ini({ position_probe_s: 1 }, fx.dropKeys(2)) });
  const c = await wsClient(g.ws);
  await c.subscribe('p.quiet');
  const p = await wsClient(g.ws);
  await publish(p, 'p.quiet', 2); // 2 is lost and nothing follows
  await waitFor(() => offsets(c, 'p.quiet').length === 2, { what: 'the probe to repair 2', timeoutMs: 8000 });
  assert.deepEqual(offsets(c, 'p.quiet'), [1, 2]);
  const m = parseMetrics((await g.http('/metrics')).body);
  assert.ok(m['fanout_position_probes_total'] >= 1);
  await Promise.all([p.close(), c.close()]);
  assert.equal(await g.stop(), 0);
});

t.done();
await fx.stop();
}
