// rawws.mjs — a WebSocket client on a raw TCP socket, for conformance
// tests that must send what a library client never would (bad opcodes,
// reserved bits, unmasked or fragmented control frames, invalid UTF-8,
// frames split at any byte) and see exactly what the server sends back:
// every frame, any byte after a close frame, and when the TCP stream ends.
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';

/** A client frame (masked unless mask: false). payload: Buffer|string. */
export function frame(op, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true, len } = {}) {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const n = len === undefined ? p.length : len;
  let h;
  if (n < 126) h = Buffer.from([0, n]);
  else if (n < 65536) { h = Buffer.alloc(4); h[1] = 126; h.writeUInt16BE(n, 2); }
  else { h = Buffer.alloc(10); h[1] = 127; h.writeBigUInt64BE(BigInt(n), 2); }
  h[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (op & 0x0f);
  if (!mask) return Buffer.concat([h, p]);
  h[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(p.length);
  for (let i = 0; i < p.length; i++) body[i] = p[i] ^ key[i & 3];
  return Buffer.concat([h, key, body]);
}

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

/** A close payload: code (+ reason). */
export function closePayload(code, reason = '') {
  const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason);
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

/** Raw deflate as permessage-deflate sends it (sync flush, tail removed). */
export function deflateMessage(data) {
  const z = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}
export function inflateMessage(data) {
  return zlib.inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]),
    { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/** A server text frame's payload as a string (inflated when RSV1 is set). */
export function decode(fr) {
  return (fr.rsv & 4 ? inflateMessage(fr.payload) : fr.payload).toString();
}

/** The JSON of a server text frame, or null. */
export function json(fr) {
  if (fr.op !== 1) return null;
  try { return JSON.parse(decode(fr)); } catch { return null; }
}

/**
 * Open a TCP connection and send an upgrade request. Resolves a client:
 *   status, headers           the HTTP response
 *   frames                    server frames so far: {fin, rsv, op, payload}
 *   send(buf | [bufs])        raw bytes (one write each)
 *   next(pred, ms)            the next frame matching pred (after the cursor)
 *   done(ms)                  resolves when the server closed TCP:
 *                             {close: {code, reason} | null, afterClose, eof}
 * Options: path, httpVersion ('1.1'), extensions (header value), extra
 * (raw bytes appended to the request, in the same write), headers, ca (a
 * PEM: connect with TLS and trust it).
 */
export function rawConnect(port, { path = '/ws', httpVersion = '1.1', extensions, extra, headers = {}, ca } = {}) {
  return new Promise((resolve, reject) => {
    const sock = ca ? tls.connect({ host: '127.0.0.1', port, ca, servername: undefined }) : net.connect({ host: '127.0.0.1', port });
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const c = {
      sock, frames: [], status: 0, headers: {}, raw: '', eof: false, afterClose: 0, closeFrame: null,
      waiters: [], cursor: 0, eofWaiters: [],
      send(b) { for (const x of Array.isArray(b) ? b : [b]) sock.write(x); },
      next(pred = () => true, ms = 3000, what = 'frame') {
        return new Promise((res, rej) => {
          const w = { pred, res, rej, what };
          w.timer = setTimeout(() => { c.waiters.splice(c.waiters.indexOf(w), 1); rej(new Error(`timed out waiting for ${what}; frames: ${c.describe()}`)); }, ms);
          c.waiters.push(w);
          c.check();
        });
      },
      done(ms = 3000) {
        return new Promise((res, rej) => {
          const finish = () => res({ close: c.closeFrame, afterClose: c.afterClose, eof: c.eof });
          if (c.eof) return finish();
          const t = setTimeout(() => rej(new Error(`server did not close TCP within ${ms} ms; frames: ${c.describe()}`)), ms);
          c.eofWaiters.push(() => { clearTimeout(t); finish(); });
        });
      },
      check() {
        for (const w of [...c.waiters]) {
          for (let i = c.cursor; i < c.frames.length; i++) {
            if (w.pred(c.frames[i])) {
              c.cursor = i + 1;
              clearTimeout(w.timer);
              c.waiters.splice(c.waiters.indexOf(w), 1);
              w.res(c.frames[i]);
              break;
            }
          }
        }
        if (c.eof) for (const w of c.waiters.splice(0)) { clearTimeout(w.timer); w.rej(new Error(`TCP closed while waiting for ${w.what}; frames: ${c.describe()}`)); }
      },
      describe() {
        return JSON.stringify(c.frames.map((f) => (f.op === 8 ? { close: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null } : { op: f.op, rsv: f.rsv, len: f.payload.length, text: f.op === 1 && f.rsv === 0 ? f.payload.toString().slice(0, 80) : undefined })));
      },
      text(pred) { return c.frames.filter((f) => f.op === 1).map((f) => JSON.parse(decode(f))).filter(pred || (() => true)); },
      destroy() { sock.destroy(); },
    };
    const parse = () => {
      for (;;) {
        if (c.closeFrame) { c.afterClose += buf.length; buf = Buffer.alloc(0); return; }
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf[1] & 0x80) off += 4; // a server must not mask; recorded via .masked
        if (buf.length < off + len) return;
        const f = { fin: buf[0] >> 7, rsv: (buf[0] >> 4) & 7, op: buf[0] & 0x0f, masked: buf[1] >> 7, payload: buf.subarray(off, off + len) };
        buf = buf.subarray(off + len);
        c.frames.push(f);
        if (f.op === 8) c.closeFrame = { code: len >= 2 ? f.payload.readUInt16BE(0) : null, reason: f.payload.subarray(2).toString() };
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        c.raw = buf.subarray(0, i).toString();
        const lines = c.raw.split('\r\n');
        c.status = Number(lines[0].split(' ')[1]);
        for (const l of lines.slice(1)) {
          const k = l.indexOf(':');
          c.headers[l.slice(0, k).trim().toLowerCase()] = l.slice(k + 1).trim();
        }
        buf = buf.subarray(i + 4);
        upgraded = true;
        resolve(c);
      }
      parse();
      c.check();
    });
    sock.on('end', () => { c.eof = true; c.check(); for (const w of c.eofWaiters.splice(0)) w(); if (!upgraded) resolve(c); });
    sock.on('close', () => { c.eof = true; c.check(); for (const w of c.eofWaiters.splice(0)) w(); if (!upgraded) resolve(c); });
    sock.on('error', (e) => { if (!upgraded) reject(e); });
    const h = [`GET ${path} HTTP/${httpVersion}`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'];
    if (extensions) h.push(`Sec-WebSocket-Extensions: ${extensions}`);
    for (const [k, v] of Object.entries(headers)) h.push(`${k}: ${v}`);
    const req = Buffer.from(h.join('\r\n') + '\r\n\r\n');
    sock.write(extra ? Buffer.concat([req, extra]) : req);
  });
}
