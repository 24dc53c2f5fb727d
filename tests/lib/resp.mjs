// resp.mjs — a minimal RESP2 client over one TCP connection, for tests and
// benchmarks that must see exactly what a command did (redis-cli per call
// is too slow at hundreds of calls per second, and cannot tell "sent, no
// reply" from "not sent"). Commands are pipelined in order; each call()
// resolves with the reply (string, number, array, null) or rejects with
// an Error whose `reply` is true for an error reply and false when the
// connection went away (then the command may or may not have run).
import net from 'node:net';

export class Resp {
  constructor(port, host = '127.0.0.1') {
    this.port = port;
    this.host = host;
    this.sock = null;
    this.buf = Buffer.alloc(0);
    this.waiting = [];
  }

  connect(timeoutMs = 2000) {
    return new Promise((resolve, reject) => {
      const s = net.connect(this.port, this.host);
      const t = setTimeout(() => {
        s.destroy();
        reject(Object.assign(new Error('connect timeout'), { reply: false }));
      }, timeoutMs);
      s.setNoDelay(true); // one small command per round trip: no Nagle delay
      s.once('connect', () => {
        clearTimeout(t);
        this.sock = s;
        this.buf = Buffer.alloc(0);
        resolve(this);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(Object.assign(e, { reply: false }));
      });
      s.on('data', (d) => this.#data(d));
      s.on('close', () => this.#gone());
    });
  }

  get connected() {
    return this.sock !== null;
  }

  call(...args) {
    if (!this.sock) return Promise.reject(Object.assign(new Error('not connected'), { reply: false }));
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.sock.write(Buffer.concat(parts)); // one write per command
    });
  }

  close() {
    if (this.sock) this.sock.destroy();
  }

  #gone() {
    this.sock = null;
    for (const w of this.waiting.splice(0))
      w.reject(Object.assign(new Error('connection lost'), { reply: false }));
  }

  #data(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const r = parse(this.buf, 0);
      if (!r) return;
      this.buf = this.buf.subarray(r.end);
      const w = this.waiting.shift();
      if (!w) continue;
      if (r.error) w.reject(Object.assign(new Error(r.value), { reply: true }));
      else w.resolve(r.value);
    }
  }
}

/** Parse one reply at buf[i..]: {value, error, end} or null (incomplete). */
function parse(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: line, error: true, end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let at = next;
      for (let k = 0; k < n; k++) {
        const r = parse(buf, at);
        if (!r) return null;
        out.push(r.error ? new Error(r.value) : r.value);
        at = r.end;
      }
      return { value: out, end: at };
    }
    default:
      throw new Error(`RESP: unexpected type byte ${buf[i]}`);
  }
}
