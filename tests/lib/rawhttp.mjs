// rawhttp.mjs — a raw-socket HTTP/1.1 client for the security tests: it
// writes exactly the bytes it is given (pipelined requests, oversized or
// malformed heads, odd upgrade headers) and parses what comes back into
// responses by Content-Length, without any of node:http's normalisation.
import net from 'node:net';
import tls from 'node:tls';

/** Parse as many complete responses as bytes holds (HEAD answers: pass
 * the request methods in order so their bodies are taken as empty). */
export function parseResponses(buf, methods = []) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const [statusLine, ...lines] = head.split('\r\n');
    const m = statusLine.match(/^HTTP\/1\.[01] (\d{3})/);
    if (!m) throw new Error('bad status line: ' + JSON.stringify(statusLine));
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      if (k in headers) headers[k] += ', ' + v;
      else headers[k] = v;
    }
    const status = Number(m[1]);
    const noBody = methods[out.length] === 'HEAD' || status === 101 || status === 204 || status === 304;
    const len = noBody ? 0 : Number(headers['content-length'] || 0);
    if (end + 4 + len > buf.length) break;
    const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    out.push({ status, headers, body, head });
    off = end + 4 + len;
  }
  return { responses: out, rest: buf.subarray(off) };
}

/**
 * Connect to 127.0.0.1:port, write data (string or Buffer, or an array of
 * chunks written one after the other), and collect bytes until the server
 * closes, `want` responses are complete, or timeoutMs passes. Resolves
 * { responses, raw, closed, rest }.
 */
export function rawRequest(port, data, { want = Infinity, timeoutMs = 5000, methods = [], tlsOpts } = {}) {
  return new Promise((resolve, reject) => {
    const s = tlsOpts
      ? tls.connect({ port, host: '127.0.0.1', ...tlsOpts })
      : net.connect(port, '127.0.0.1');
    let raw = Buffer.alloc(0);
    let closed = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      let parsed;
      try {
        parsed = parseResponses(raw, methods);
      } catch (e) {
        s.destroy();
        reject(e);
        return;
      }
      s.destroy();
      resolve({ ...parsed, raw: raw.toString('latin1'), closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    s.on(tlsOpts ? 'secureConnect' : 'connect', () => {
      for (const chunk of Array.isArray(data) ? data : [data]) s.write(chunk);
    });
    s.on('data', (d) => {
      raw = Buffer.concat([raw, d]);
      if (want !== Infinity && parseResponses(raw, methods).responses.length >= want) finish();
    });
    s.on('error', () => { closed = true; finish(); });
    s.on('close', () => { closed = true; finish(); });
  });
}

/** An HTTP/1.1 request head (CRLF line ends). */
export function req(method, path, headers = {}) {
  let s = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) s += `${k}: ${one}\r\n`;
  }
  return s + '\r\n';
}

/** The headers of a WebSocket upgrade request (merge in more). */
export function upgradeHeaders(extra = {}) {
  return {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
}
