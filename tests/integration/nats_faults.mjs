// nats_faults.mjs — the nats backend under broker faults, counting every
// message. Two fanoutd instances, 8 clients split over them, one channel; a
// third-party publisher speaking raw NATS sends numbered messages at
// ~200/s, each followed by a PING: a message is *accepted* once its PONG
// came back (the server processed it). During the run nats-server is
// killed (SIGKILL) and restarted, then SIGSTOPped for 1.5 s.
//
// Every client must: get messages in strictly increasing order, none twice;
// get every accepted message, or else a `gap` frame after the last message
// before the hole (never a silent hole); and get every message accepted
// while nothing was failing (before the kill, after the last fault). Run for
// core NATS and with JetStream. With JetStream the hub repairs holes from
// the stream, so more is required: every message the stream kept reaches
// every client, with no gap at all (an accepted message the stream does not
// have was lost by the killed server before it stored it: allowed only in
// the fault window, and reported). Long (~15 s): registered under !ASAN.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, waitFor, sleep } from '../lib/harness.mjs';
import { startNats, rawNats, streamMessages } from '../lib/nats.mjs';
import { stopProcess } from '../lib/backends.mjs';

const t = tap();
const CH = 'fault.c';

/* A publisher that keeps going across server faults. */
function publisher(n, total, rateHz) {
  const accepted = new Set();
  const sent = [];
  let conn = null;
  let stop = false;
  const connect = async () => {
    try {
      const c = await rawNats(n.port);
      c.sock.on('close', () => { if (conn === c) conn = null; });
      conn = c;
    } catch { conn = null; }
  };
  const done = (async () => {
    for (let i = 0; i < total && !stop; i++) {
      const t0 = Date.now();
      if (!conn) await connect();
      if (conn) {
        const c = conn;
        c.pub(CH, JSON.stringify({ i }));
        sent.push(i);
        c.ping().then(() => accepted.add(i));
      }
      const wait = 1000 / rateHz - (Date.now() - t0);
      if (wait > 0) await sleep(wait);
    }
  })();
  return { accepted, sent, done, close() { stop = true; if (conn) conn.close(); } };
}

async function scenario(js) {
  const n = await startNats({ js });
  const ini = `[server]\n\n[backend nats]\nplugin = nats\nchannels = fault.*\nurl = ${n.url}\n` +
    `reconnect_min_ms = 50\nreconnect_max_ms = 500\nping_interval_ms = 1000\n${js ? 'jetstream = yes\n' : ''}`;
  const fs = [await startFanoutd({ ini, wait: 'ready' }), await startFanoutd({ ini, wait: 'ready' })];
  const clients = [];
  for (let k = 0; k < 8; k++) {
    const c = await wsClient(fs[k % 2].ws);
    await c.subscribe(CH);
    clients.push(c);
  }
  const TOTAL = 1200;
  const p = publisher(n, TOTAL, 200);
  const phase = { killAt: null, lastFaultEnd: null };
  await sleep(1000);
  phase.killAt = p.sent.length;
  await n.stop('SIGKILL');
  await sleep(300);
  await n.start();
  await Promise.all(fs.map((f) => waitFor(async () => (await f.http('/readyz')).status === 200,
    { what: 'ready after the restart', timeoutMs: 15000 })));
  await sleep(1000);
  stopProcess(n.pid);
  await sleep(1500);
  n.kill('SIGCONT');
  await Promise.all(fs.map((f) => waitFor(async () => (await f.http('/readyz')).status === 200,
    { what: 'ready after SIGCONT', timeoutMs: 15000 })));
  phase.lastFaultEnd = p.sent.length + 200; // a second of margin after the last fault
  await p.done;
  // The last message is accepted and delivered everywhere: all in.
  await waitFor(() => p.accepted.has(TOTAL - 1), { what: 'the last message accepted', timeoutMs: 15000 });
  for (const c of clients)
    await waitFor(() => c.frames.some((x) => x.type === 'message' && x.data.i === TOTAL - 1),
      { what: 'the last message at every client', timeoutMs: 15000 });
  p.close();

  // JetStream: what the stream kept is what must arrive, all of it.
  const stored = js ? new Set((await streamMessages(n.port, CH)).map((m) => JSON.parse(m.data).i)) : null;
  const report = [];
  for (const [k, c] of clients.entries()) {
    const seq = []; // message numbers, and 'G' for gaps, in arrival order
    for (const x of c.frames) {
      if (x.type === 'message') seq.push(x.data.i);
      else if (x.type === 'gap') seq.push('G');
    }
    const got = seq.filter((x) => x !== 'G');
    for (let j = 1; j < got.length; j++)
      assert.ok(got[j] > got[j - 1], `client ${k}: ${got[j]} after ${got[j - 1]} (order/duplicate)`);
    const have = new Set(got);
    let silent = 0, covered = 0;
    if (js) {
      const missed = [...stored].filter((i) => !have.has(i));
      assert.deepEqual(missed, [], `client ${k}: messages the stream kept but the client never got`);
      assert.ok(got.every((i) => stored.has(i)), `client ${k}: a message the stream does not have`);
      assert.equal(seq.filter((x) => x === 'G').length, 0, `client ${k}: a gap although the stream had everything`);
    }
    for (const i of p.accepted) {
      if (have.has(i)) continue;
      // the last message before the hole, then a gap somewhere after it
      const before = got.filter((x) => x < i).pop();
      const pos = before === undefined ? -1 : seq.indexOf(before);
      if (seq.slice(pos + 1).includes('G')) covered++;
      else silent++;
      assert.ok(i >= phase.killAt && i < phase.lastFaultEnd,
        `client ${k}: message ${i} lost outside the fault window [${phase.killAt}, ${phase.lastFaultEnd})`);
    }
    assert.equal(silent, 0, `client ${k}: ${silent} accepted messages lost without a gap`);
    report.push(`client ${k}: ${got.length} delivered, ${covered} lost under a gap, ` +
      `${seq.filter((x) => x === 'G').length} gaps`);
  }
  t.diag(`${js ? 'jetstream' : 'core'}: ${p.sent.length} sent, ${p.accepted.size} accepted` +
    (js ? `, ${stored.size} kept by the stream` : '') + '; ' + report.join('; '));
  for (const c of clients) await c.close();
  for (const f of fs) assert.equal(await f.stop(), 0);
  await n.stop();
}

await t.test('core NATS: kill + restart and SIGSTOP, every message counted', () => scenario(false),
  { timeoutMs: 90000 });
await t.test('JetStream: kill + restart and SIGSTOP, every message counted', () => scenario(true),
  { timeoutMs: 90000 });
t.done();
