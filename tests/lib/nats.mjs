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
 * PONG: everything sent before was processed), close().
 */
export function rawNats(port, { user, pass } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const pongs = [];
    let opened = false;
    const c = {
      sock, msgs: [], errors: [], closed: false,
      pub(subject, payload) {
        const b = Buffer.from(payload);
        sock.write(`PUB ${subject} ${b.length}\r\n`);
        sock.write(b);
        sock.write('\r\n');
      },
      sub(subject, sid = 1) { sock.write(`SUB ${subject} ${sid}\r\n`); },
      ping() { return new Promise((res) => { pongs.push(res); sock.write('PING\r\n'); }); },
      close() { sock.end(); },
    };
    const parse = () => {
      for (;;) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = buf.subarray(0, eol).toString();
        if (line.startsWith('MSG ')) {
          const parts = line.split(' ');
          const len = Number(parts[parts.length - 1]);
          if (buf.length < eol + 2 + len + 2) return;
          c.msgs.push({ subject: parts[1], data: buf.subarray(eol + 2, eol + 2 + len).toString() });
          buf = buf.subarray(eol + 2 + len + 2);
          continue;
        }
        buf = buf.subarray(eol + 2);
        if (line.startsWith('INFO ')) {
          const o = { verbose: false, pedantic: false, lang: 'raw', version: '0', protocol: 1 };
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
