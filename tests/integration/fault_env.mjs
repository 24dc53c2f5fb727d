// fault_env.mjs — what the delivery fault tests (fault_delivery.mjs) need
// beyond the cluster topology of cluster_env.mjs:
//
// - ResumingClient: a raw protocol v1.1 client (no client-side dedup, so
//   the server's guarantee is checked, not the client's) that reconnects
//   with full-jitter backoff and resubscribes with `since` = the last
//   position it saw; it logs every event (subscribed with its `recovered`
//   answer, message offset and seq, gap, close) in arrival order.
// - Publisher: numbered updates {seq, ts} at a fixed rate through the
//   valkey backend's function (FCALL fanout_publish) on its own RESP
//   connection, exactly once per seq even across a broker restart: after a
//   lost connection it reads the channel's top to learn whether the last
//   call was applied before sending it again.
// - checkExactlyOnce / checkNoSilentHole: the verdicts over a client's log;
//   resumeLatencies: close -> resumed, per lost connection.
//
// Not a test itself (not in TESTS).
import { WebSocket, sleep } from '../lib/harness.mjs';
import { Resp } from '../lib/resp.mjs';

const backoff = (attempt, base = 100, cap = 1000) => Math.random() * Math.min(cap, base * 2 ** attempt);

export class ResumingClient {
  constructor(url, channel = 'updates') {
    this.url = url;
    this.channel = channel;
    this.log = []; // {k: 'sub'|'msg'|'gap'|'close', ...} in arrival order
    this.pos = null; // {epoch, offset}
    this.sessions = 0;
    this.instances = [];
    this.stopped = false;
    this.attempt = 0;
    this.ws = null;
  }

  /** Messages received: [{offset, seq}] in order. */
  get messages() {
    return this.log.filter((e) => e.k === 'msg');
  }

  get lastSeq() {
    const m = this.messages;
    return m.length ? m[m.length - 1].seq : 0;
  }

  /** Connect and wait for the first subscribed reply. */
  start() {
    return new Promise((resolve, reject) => {
      this.onFirst = { resolve, reject };
      this.#open();
    });
  }

  #open() {
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    this.ws = ws;
    let instance = null;
    let subscribed = false;
    ws.on('open', () => {
      const f = { type: 'subscribe', channel: this.channel, id: 's' };
      if (this.pos) f.since = { ...this.pos };
      ws.send(JSON.stringify(f));
    });
    ws.on('message', (buf) => {
      const f = JSON.parse(buf.toString('utf8'));
      if (f.type === 'hello') instance = f.instance;
      else if (f.type === 'subscribed' && f.id === 's') {
        subscribed = true;
        this.sessions++;
        this.attempt = 0;
        this.instances.push(instance);
        this.log.push({ k: 'sub', at: Date.now(), instance, since: this.pos, epoch: f.epoch, offset: f.offset, recovered: f.recovered });
        if (f.recovered !== true) this.pos = { epoch: f.epoch, offset: f.offset };
        if (this.onFirst) {
          this.onFirst.resolve();
          this.onFirst = null;
        }
      } else if (f.type === 'message') {
        this.log.push({ k: 'msg', offset: f.offset, seq: f.data && f.data.seq, instance: f.instance });
        if (this.pos) this.pos.offset = f.offset;
      } else if (f.type === 'gap') {
        this.log.push({ k: 'gap', epoch: f.epoch, offset: f.offset, reason: f.reason });
        if (f.epoch) this.pos = { epoch: f.epoch, offset: f.offset };
      } else if (f.type === 'error') {
        this.log.push({ k: 'error', f });
      }
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.log.push({ k: 'close', at: Date.now(), code, subscribed });
      if (this.stopped) return;
      setTimeout(() => this.#open(), backoff(this.attempt++));
    });
  }

  /** Cut the TCP connection without a close frame (a network loss). */
  dropTcp() {
    if (this.ws && this.ws._socket) this.ws._socket.destroy();
  }

  stop() {
    this.stopped = true;
    try {
      this.ws.close(1000);
    } catch {}
  }
}

/**
 * Publish `count` updates {seq, ts} on channel at `rate`/s through redis
 * port `port` (FCALL fanout_publish), each seq exactly once: after a lost
 * connection it reconnects (retrying until `deadline`), reads the top
 * (FCALL fanout_top) and resends only if the last call did not land.
 * Resolves {published: [{seq, epoch, offset}], reconnects, resent}.
 */
export async function publishNumbered(port, { channel = 'updates', count, rate, deadlineMs = 60000, onSeq }) {
  const key = `fanout:{${channel}}`;
  // resentAfterLoss: seqs sent again after the broker came back with another
  // epoch: whether the first copy ran (and reached someone) is unknowable.
  const out = { published: [], reconnects: 0, resent: 0, retries: 0, resentAfterLoss: new Set() };
  const end = Date.now() + deadlineMs;
  let r = null;
  let last = null; // {epoch, offset} of the last confirmed publish
  const ensure = async () => {
    while (!r || !r.connected) {
      if (Date.now() > end) throw new Error('publisher: broker unreachable until the deadline');
      try {
        r = await new Resp(port).connect(500);
      } catch {
        await sleep(50);
      }
    }
  };
  const t0 = Date.now();
  for (let seq = 1; seq <= count; seq++) {
    const due = t0 + ((seq - 1) * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    const payload = JSON.stringify({ seq, ts: Date.now() });
    for (;;) {
      await ensure();
      try {
        const [epoch, offset] = await r.call('FCALL', 'fanout_publish', 1, key, payload);
        last = { epoch, offset };
        out.published.push({ seq, epoch, offset });
        break;
      } catch (e) {
        if (e.reply) {
          // "ERR Function not found": a broker restarted without
          // persistence; a fanoutd reloads the library on reconnect.
          out.retries++;
          await sleep(50);
          continue;
        }
        out.reconnects++;
        // Did the call land before the connection went? Ask the top.
        let top = null;
        for (;;) {
          await ensure();
          try {
            top = await r.call('FCALL', 'fanout_top', 1, key);
            break;
          } catch (e2) {
            if (e2.reply) {
              await sleep(50);
              continue;
            }
          }
        }
        if (last && top[0] === last.epoch && top[1] === last.offset + 1) {
          last = { epoch: top[0], offset: top[1] };
          out.published.push({ seq, epoch: top[0], offset: top[1] });
          break;
        }
        out.resent++;
        if (last && top[0] !== last.epoch) out.resentAfterLoss.add(seq);
      }
    }
    if (onSeq) onSeq(seq);
  }
  r.close();
  return out;
}

/**
 * Exactly once, in order: the client's messages are seqs 1..count with
 * offsets strictly consecutive within one epoch (contiguous: false, for
 * backends whose offsets skip: strictly increasing), every resume
 * recovered, no gap. Returns '' or the first problem.
 */
export function checkExactlyOnce(c, count, { contiguous = true } = {}) {
  const m = c.messages;
  const seqs = m.map((x) => x.seq);
  for (let i = 0; i < seqs.length; i++)
    if (seqs[i] !== i + 1) {
      const around = c.log.slice(Math.max(0, c.log.indexOf(m[i]) - 3), c.log.indexOf(m[i]) + 2);
      return `message ${i}: seq ${seqs[i]}, expected ${i + 1} (${seqs.length} messages); ` +
        `around it: ${JSON.stringify(around.map(({ k, seq, offset, epoch, recovered }) => ({ k, seq, offset, epoch, recovered })))}`;
    }
  if (seqs.length !== count) return `${seqs.length} messages, expected ${count}`;
  for (let i = 1; i < m.length; i++)
    if (contiguous ? m[i].offset !== m[i - 1].offset + 1 : !(m[i].offset > m[i - 1].offset))
      return `offsets ${m[i - 1].offset} then ${m[i].offset}`;
  const gaps = c.log.filter((e) => e.k === 'gap');
  if (gaps.length) return `gap frames: ${JSON.stringify(gaps)}`;
  const resumes = c.log.filter((e) => e.k === 'sub' && e.since);
  const bad = resumes.filter((e) => e.recovered !== true);
  if (bad.length) return `resumes not recovered: ${JSON.stringify(bad)}`;
  return '';
}

/**
 * Never a silent hole: wherever the seqs jump, a gap frame or a resume
 * answered recovered:false came first; no seq twice (except one the
 * publisher had to send again after the broker lost its data, right after
 * the loss was announced: `again`); the last seq arrived. Returns '' or the
 * first problem.
 */
export function checkNoSilentHole(c, count, again = new Set()) {
  let last = 0;
  let excused = true; // the first subscribe
  for (const e of c.log) {
    if (e.k === 'gap' || (e.k === 'sub' && e.recovered !== true)) excused = true;
    if (e.k !== 'msg') continue;
    if (e.seq <= last && !(excused && again.has(e.seq) && e.seq === last))
      return `seq ${e.seq} after ${last}: a duplicate`;
    if (e.seq !== last + 1 && !excused) return `silent hole: seq ${last} then ${e.seq}, no gap or recovered:false between`;
    last = e.seq;
    excused = false;
  }
  if (last !== count) return `last seq ${last}, expected ${count}`;
  return '';
}

/** Per lost connection of each client: ms from its close to the answer of
 * the resume that followed. */
export function resumeLatencies(clients) {
  return clients.flatMap((c) => {
    const out = [];
    for (let k = 0; k < c.log.length; k++)
      if (c.log[k].k === 'close') {
        const next = c.log.slice(k).find((e) => e.k === 'sub');
        if (next) out.push(next.at - c.log[k].at);
      }
    return out;
  });
}
