// nats.mjs — nats-server for fanout's tests: start one on free loopback
// ports (client + monitoring; JetStream with -js), stop it by PID, and talk
// raw NATS to it from a plain TCP socket (the wire protocol is text:
// CONNECT, PUB subject len, SUB, PING), so a test publishes exactly as a
// third-party publisher would, with no client library in between.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startProcess, freePort, tmpDir, waitFor, httpGet } from './harness.mjs';

export const NATS_SERVER = process.env.NATS_SERVER || 'nats-server';

/**
 * Start nats-server. js: JetStream on (store in a temp dir, kept across
 * restart() so streams survive); conf: extra config file text (users,
 * permissions). Resolves { port, url, pid, stop(), kill(sig), restart(),
 * varz(), jsz() }.
 */
export async function startNats({ js = false, conf = '', port, storeDir } = {}) {
  port = port || (await freePort());
  const mport = await freePort();
  const dir = tmpDir('fanout-nats-');
  const sd = storeDir || path.join(dir, 'js');
  const confFile = path.join(dir, 'nats.conf');
  fs.writeFileSync(confFile, conf);
  const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(mport), '-c', confFile];
  if (js) args.push('-js', '-sd', sd);
  let p;
  const s = {
    port, mport, dir, storeDir: sd, url: `nats://127.0.0.1:${port}`,
    get pid() { return p.pid; },
    log: () => p.log(),
    async start() {
      p = startProcess(NATS_SERVER, args);
      await waitFor(async () => {
        const r = await httpGet(mport, '/varz').catch(() => null);
        return r && r.status === 200;
      }, { what: `nats-server on ${port}`, timeoutMs: 10000 }).catch((e) => {
        throw new Error(e.message + '\n' + p.log());
      });
      return s;
    },
    kill(sig) { process.kill(p.pid, sig); },
    async stop(sig = 'SIGTERM') {
      try { process.kill(p.pid, sig); } catch {}
      const x = await p.exited;
      return x.code;
    },
    /** Stop (SIGKILL by default) and start again on the same ports and store. */
    async restart(sig = 'SIGKILL') {
      await s.stop(sig);
      return s.start();
    },
    async varz() { return JSON.parse((await httpGet(mport, '/varz')).body); },
    async jsz() { return JSON.parse((await httpGet(mport, '/jsz?streams=true&config=true')).body); },
    async subsz() { return JSON.parse((await httpGet(mport, '/subsz?subs=1')).body); },
  };
  return s.start();
}

/**
 * A raw NATS client on a TCP socket: connect({user, pass}), pub(subject,
 * payload), sub(subject) (messages collected in .msgs), ping() (resolves on
 * PONG: everything sent before was processed), request(subject, payload)
 * (resolves the reply), close(). hpub(subject,
 * reply, headers, payload) sends a message with headers (HPUB) and a reply
 * subject, e.g. a JetStream publish with Nats-Msg-Id; messages with headers
 * (HMSG: JetStream status replies) land in .msgs with their header block
 * as .headers. onMsg(m), when set, is called for each message too.
 */
export function rawNats(port, { user, pass } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true); // a PUB is often two writes: no Nagle wait between
    let buf = Buffer.alloc(0);
    const pongs = [];
    const waiters = new Map(); // request inbox -> resolve
    let reqs = 0;
    let opened = false;
    const c = {
      sock, msgs: [], errors: [], closed: false,
      pub(subject, payload, reply) {
        const b = Buffer.from(payload);
        sock.write(`PUB ${subject}${reply ? ' ' + reply : ''} ${b.length}\r\n`);
        sock.write(b);
        sock.write('\r\n');
      },
      hpub(subject, reply, headers, payload) {
        const h = Buffer.from('NATS/1.0\r\n' +
          Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
        const b = Buffer.from(payload);
        sock.write(Buffer.concat([Buffer.from(`HPUB ${subject} ${reply} ${h.length} ${h.length + b.length}\r\n`),
          h, b, Buffer.from('\r\n')]));
      },
      sub(subject, sid = 1) { sock.write(`SUB ${subject} ${sid}\r\n`); },
      /** Request/reply (e.g. the JetStream API): resolves the reply
       * message, or null after timeoutMs. */
      request(subject, payload, timeoutMs = 2000) {
        const inbox = `_INBOX.raw.${++reqs}`;
        sock.write(`SUB ${inbox} ${1000 + reqs}\r\nUNSUB ${1000 + reqs} 1\r\n`);
        c.pub(subject, payload, inbox);
        return new Promise((res) => {
          const to = setTimeout(() => { waiters.delete(inbox); res(null); }, timeoutMs);
          waiters.set(inbox, (m) => { clearTimeout(to); waiters.delete(inbox); res(m); });
        });
      },
      ping() { return new Promise((res) => { pongs.push(res); sock.write('PING\r\n'); }); },
      close() { sock.end(); },
    };
    const parse = () => {
      for (;;) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = buf.subarray(0, eol).toString();
        if (line.startsWith('MSG ') || line.startsWith('HMSG ')) {
          // MSG subject sid [reply] len; HMSG subject sid [reply] hdrlen len
          const parts = line.split(' ');
          const len = Number(parts[parts.length - 1]);
          const hlen = line[0] === 'H' ? Number(parts[parts.length - 2]) : 0;
          if (buf.length < eol + 2 + len + 2) return;
          const body = buf.subarray(eol + 2, eol + 2 + len);
          const m = { subject: parts[1], data: body.subarray(hlen).toString() };
          if (hlen) m.headers = body.subarray(0, hlen).toString();
          const w = waiters.get(m.subject);
          if (w) w(m);
          else c.msgs.push(m);
          if (c.onMsg) c.onMsg(m);
          buf = buf.subarray(eol + 2 + len + 2);
          continue;
        }
        buf = buf.subarray(eol + 2);
        if (line.startsWith('INFO ')) {
          const o = { verbose: false, pedantic: false, lang: 'raw', version: '0', protocol: 1, headers: true };
          if (user) { o.user = user; o.pass = pass; }
          sock.write(`CONNECT ${JSON.stringify(o)}\r\n`);
          opened = true;
          resolve(c);
        } else if (line === 'PING') sock.write('PONG\r\n');
        else if (line === 'PONG') { const r = pongs.shift(); if (r) r(); }
        else if (line.startsWith('-ERR')) c.errors.push(line);
      }
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
    // After the handshake a dead server just closes the client: pending
    // PINGs never resolve (what they covered is not known to be accepted).
    sock.on('error', (e) => { if (!opened) reject(e); });
    sock.on('close', () => { c.closed = true; if (!opened) reject(new Error('closed before INFO')); });
  });
}

/**
 * Every message the JetStream stream keeps on subject, in order: [{seq,
 * data}] (direct gets, as a third party reads the stream).
 */
export async function streamMessages(port, subject, stream = 'FANOUT') {
  const c = await rawNats(port);
  const out = [];
  try {
    for (let from = 1; ;) {
      const m = await c.request(`$JS.API.DIRECT.GET.${stream}`, JSON.stringify({ seq: from, next_by_subj: subject }));
      if (!m) throw new Error(`direct get from ${from} on ${subject}: no answer`);
      const h = m.headers || '';
      if (/^NATS\/1\.0 404/.test(h)) break;
      const seq = Number((h.match(/\r\nNats-Sequence: (\d+)/) || [])[1]);
      if (!seq) throw new Error(`direct get from ${from} on ${subject}: ${h.split('\r\n')[0]}`);
      out.push({ seq, data: m.data });
      from = seq + 1;
    }
  } finally {
    c.close();
  }
  return out;
}

/**
 * A TCP proxy on a free loopback port to 127.0.0.1:targetPort, to cut the
 * link between fanoutd and nats-server while others keep publishing:
 * cut() drops every connection and refuses new ones until restore().
 * Resolves { port, url, cut(), restore(), close() }.
 */
export async function tcpProxy(targetPort) {
  const port = await freePort();
  const conns = new Set();
  let refusing = false;
  const server = net.createServer((a) => {
    if (refusing) { a.destroy(); return; }
    const b = net.connect(targetPort, '127.0.0.1');
    const pair = [a, b];
    conns.add(pair);
    const end = () => { a.destroy(); b.destroy(); conns.delete(pair); };
    a.on('error', end); b.on('error', end); a.on('close', end); b.on('close', end);
    a.pipe(b); b.pipe(a);
  });
  await new Promise((res) => server.listen(port, '127.0.0.1', res));
  return {
    port, url: `nats://127.0.0.1:${port}`,
    cut() {
      refusing = true;
      for (const [a, b] of conns) { a.destroy(); b.destroy(); }
      conns.clear();
    },
    restore() { refusing = false; },
    close() { this.cut(); return new Promise((res) => server.close(res)); },
  };
}
