// nats_delivery.mjs — the delivery guarantee on NATS JetStream, counting
// every message (issues 10 and 13: recovery after an instance drain works
// on NATS exactly as on Valkey). 30 clients through nginx over three fanoutd
// with `plugin = nats`, `jetstream = yes` on one nats-server (-js, store on
// disk); a third-party publisher speaking raw NATS sends 1,000 numbered
// updates at 200/s, each a JetStream publish with a Nats-Msg-Id (resent
// after a lost connection until acknowledged; the stream drops the
// duplicate), and one message on a second channel of the same stream after
// each, so the updates' offsets (stream sequences) are not contiguous.
// During the run one instance is drained (SIGTERM: its clients resume on
// the others with `since`), nats-server is restarted (its store survives;
// the instances reconnect later than the publisher, so each misses live
// messages and must repair the hole from the stream), and four clients lose
// their TCP connection.
//
// One instance keeps no ring of recent messages, so the clients resuming
// there are served from the stream's history.
//
// Every client receives every update exactly once, in order, offsets
// strictly increasing, every resume answered recovered:true, no gap.
// Long (~20 s): registered under !ASAN.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, waitFor, sleep, haveCommand } from '../lib/harness.mjs';
import { startNats, rawNats, NATS_SERVER } from '../lib/nats.mjs';
import { NGINX, startNginx, metrics, stats, finish } from './cluster_env.mjs';
import { ResumingClient, checkExactlyOnce, resumeLatencies } from './fault_env.mjs';

const t = tap();
const CLIENTS = 30;
const UPDATES = 1000;
const RATE = 200;
const DROPPED = 4;

/*
 * Publish `count` updates {seq, ts} on subject `updates` at `rate`/s, each
 * a JetStream publish acknowledged by the stream, plus one {noise} on
 * `noise` after it. Each update is sent with Nats-Msg-Id u<seq> until a
 * PubAck for it came (a new connection after a lost one, again after a
 * timeout): the stream stores it once. Resolves {acked: [{seq, offset}],
 * resent}.
 */
async function publishJs(n, { count, rate, onSeq, deadlineMs = 60000 }) {
  const out = { acked: [], resent: 0 };
  const end = Date.now() + deadlineMs;
  let c = null;
  let waiting = null; // {reply, resolve}
  const connect = async () => {
    while (!c || c.closed) {
      if (Date.now() > end) throw new Error('publisher: nats-server unreachable until the deadline');
      try {
        c = await rawNats(n.port);
        c.sub('_INBOX.pub.*', 1);
        c.onMsg = (m) => {
          if (waiting && m.subject === waiting.reply) waiting.resolve(m);
        };
        await c.ping();
      } catch {
        c = null;
        await sleep(50);
      }
    }
  };
  const ack = (reply, ms) => new Promise((resolve) => {
    const to = setTimeout(() => resolve(null), ms);
    const conn = c;
    const onClose = () => resolve(null);
    conn.sock.once('close', onClose);
    waiting = {
      reply,
      resolve: (m) => {
        clearTimeout(to);
        conn.sock.off('close', onClose);
        resolve(m);
      },
    };
  });
  const t0 = Date.now();
  for (let seq = 1; seq <= count; seq++) {
    const wait = t0 + ((seq - 1) * 1000) / rate - Date.now();
    if (wait > 0) await sleep(wait);
    for (let attempt = 0; ; attempt++) {
      await connect();
      if (attempt) out.resent++;
      const reply = `_INBOX.pub.${seq}x${attempt}`;
      const got = ack(reply, 1000);
      c.hpub('updates', reply, { 'Nats-Msg-Id': `u${seq}` }, JSON.stringify({ seq, ts: Date.now() }));
      const m = await got;
      // A PubAck is {"stream":...,"seq":N}; a JetStream error or a status
      // (503: the stream is not back yet) means: again.
      let a = null;
      try { a = m && !m.headers ? JSON.parse(m.data) : null; } catch {}
      if (a && a.seq && !a.error) {
        out.acked.push({ seq, offset: a.seq });
        break;
      }
      if (Date.now() > end) throw new Error(`publisher: update ${seq} not acknowledged until the deadline`);
      if (!m) { try { c.close(); } catch {} c = null; } else await sleep(50);
    }
    c.pub('noise', JSON.stringify({ noise: seq }));
    if (onSeq) onSeq(seq);
  }
  c.close();
  return out;
}

const T0 = Date.now();
const el = () => `${((Date.now() - T0) / 1000).toFixed(1)} s`;

async function scenario() {
  const n = await startNats({ js: true });
  // reconnect_min_ms 300: the publisher is back before the instances, so
  // every instance misses live messages after the broker restart.
  const ini = `[server]\nposition_probe_s = 2\n\n[backend nats]\nplugin = nats\nurl = ${n.url}\n` +
    'channels = updates noise\njetstream = yes\nreconnect_min_ms = 300\nreconnect_max_ms = 600\n' +
    'ping_interval_ms = 1000\n';
  const names = ['c1', 'c2', 'c3'];
  const inst = {};
  // c3 keeps no recent messages in memory: the clients that resume there
  // are served from the stream's history (JetStream direct gets).
  for (const x of names) {
    const args = x === 'c3' ? ['-o', 'server.recovery_ring_messages=0'] : [];
    inst[x] = await startFanoutd({ ini, instance: x, args, wait: 'ready' });
  }
  const nginx = await startNginx({ upstreamPorts: names.map((x) => inst[x].port) });
  const clients = [];
  const victim = 'c2';
  let drained = null, restart = null, restartMs = 0;
  t.diag(`${el()}: nats-server (JetStream), 3 fanoutd, nginx up`);

  await t.test(`${CLIENTS} resuming clients through nginx`, async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const c = new ResumingClient(nginx.ws);
      clients.push(c);
      await c.start();
    }
    const on = (x) => clients.filter((c) => c.instances[0] === x).length;
    t.diag(`clients per instance: ${names.map((x) => `${x} ${on(x)}`).join(', ')}`);
    assert.ok(on(victim) > 0);
  });

  await t.test(`${UPDATES} updates at ${RATE}/s through a drain, a nats-server restart and dropped connections`, async () => {
    const pub = await publishJs(n, {
      count: UPDATES,
      rate: RATE,
      onSeq: (seq) => {
        if (seq === 150) drained = inst[victim].stop('SIGTERM');
        if (seq === 400) {
          // The publisher waits for its acknowledgement meanwhile.
          restart = (async () => {
            const t0 = Date.now();
            await n.restart('SIGTERM');
            restartMs = Date.now() - t0;
          })();
        }
        if (seq === 650) for (const c of clients.slice(0, DROPPED)) c.dropTcp();
      },
    });
    await restart;
    assert.equal(await drained, 0, `${victim} exits 0 after draining`);
    t.diag(`${el()}: publisher: ${pub.acked.length} updates acknowledged, ${pub.resent} sent again; ` +
      `nats-server down ${restartMs} ms`);
    const offs = pub.acked.map((a) => a.offset);
    assert.ok(offs.every((o, i) => !i || o > offs[i - 1]), 'the stream stored each update once, in order');
    assert.ok(offs.some((o, i) => i && o !== offs[i - 1] + 1), 'offsets on the channel are not contiguous');
    await waitFor(() => clients.every((c) => c.lastSeq === UPDATES), {
      timeoutMs: 30000, what: 'the last update at every client',
    }).catch((e) => {
      const behind = clients.filter((c) => c.lastSeq !== UPDATES).map((c) => c.lastSeq);
      throw new Error(`${e.message}; clients behind at: ${behind.join(',')}`);
    });
  }, { timeoutMs: 90000 });

  await t.test('every client got every update exactly once, in order; every resume recovered', async () => {
    const problems = [];
    for (const [i, c] of clients.entries()) {
      const why = checkExactlyOnce(c, UPDATES, { contiguous: false });
      if (why) problems.push(`client ${i} (${c.instances.join('>')}): ${why}`);
    }
    assert.deepEqual(problems, []);
    const moved = clients.filter((c) => c.instances[0] === victim);
    assert.ok(moved.every((c) => c.sessions >= 2 && !c.instances.slice(1).includes(victim)),
      `${victim}'s clients resumed elsewhere`);
    assert.ok(clients.slice(0, DROPPED).every((c) => c.sessions >= 2), 'the dropped clients reconnected');
    const resumes = clients.flatMap((c) => c.log.filter((e) => e.k === 'sub' && e.since));
    const s = stats(resumeLatencies(clients));
    t.diag(`${resumes.length} resumes, all recovered; reconnect -> resumed ms: p50 ${s.p50} p90 ${s.p90} max ${s.max}`);
    let holes = 0;
    for (const x of names.filter((y) => y !== victim)) {
      const m = await metrics(inst[x]);
      holes += m.get('fanout_holes_total');
      t.diag(`${x}: recoveries ${m.get('fanout_recoveries_total')}, ring hits ${m.get('fanout_recovery_ring_hits_total')}, ` +
        `history requests ${m.get('fanout_history_requests_total{kind="recover"}')}, holes ${m.get('fanout_holes_total')} ` +
        `(repaired ${m.get('fanout_holes_repaired_total')}, ${m.get('fanout_hole_messages_repaired_total')} messages), ` +
        `gaps ${m.get('fanout_position_gaps_total')}`);
    }
    // The restart made the instances miss live messages: the exactly-once
    // above came from repairs, not from luck; and c3's resumes from history.
    assert.ok(holes > 0, 'the instances repaired holes after the broker restart');
    const c3 = await metrics(inst.c3);
    assert.ok(c3.get('fanout_history_requests_total{kind="recover"}') > 0, 'c3 resumed clients from history');
  });

  for (const c of clients) c.stop();
  await nginx.stop();
  for (const x of names.filter((y) => y !== victim)) assert.equal(await inst[x].stop('SIGTERM'), 0);
  await n.stop();
  t.diag(`${el()}: stopped`);
}

const lacking = [NGINX, NATS_SERVER].filter((c) => !haveCommand(c));
if (lacking.length) t.skip('delivery on NATS JetStream', 'missing: ' + lacking.join(', '));
else await scenario();
finish(t);
