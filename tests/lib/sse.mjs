// sse.mjs — a Server-Sent Events client for the tests, over raw HTTP
// (node:http): parses the stream as the EventSource spec does (fields
// event, data, id, retry; comments; CR, LF or CRLF line ends) and records
// every event and comment, so a test can wait for one.
import http from 'node:http';

/**
 * GET url as an event stream. Resolves once the response head arrived:
 * {status, headers, body (non-200: the whole body), events, comments,
 *  next(pred, ms), ended (Promise), close(), lastEventId}.
 */
export function sseConnect(url, { headers = {}, method = 'GET' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { accept: 'text/event-stream', ...headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      const s = {
        status: res.statusCode, headers: res.headers, body: '', events: [], comments: [],
        lastEventId: '', res, req,
      };
      const waiters = [];
      let endResolve;
      s.ended = new Promise((r) => (endResolve = r));
      let buf = '', ev = { event: '', data: [], id: undefined };
      const check = () => {
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i];
          const j = s.events.findIndex((e, k) => k >= w.from && w.pred(e));
          if (j >= 0) { waiters.splice(i, 1); clearTimeout(w.timer); w.resolve(s.events[j]); }
        }
      };
      const line = (l) => {
        if (l === '') {
          if (ev.id !== undefined) s.lastEventId = ev.id;
          if (ev.data.length) {
            const data = ev.data.join('\n');
            let json;
            try { json = JSON.parse(data); } catch {}
            s.events.push({ event: ev.event || 'message', data, json, id: s.lastEventId });
            check();
          }
          ev = { event: '', data: [], id: undefined };
          return;
        }
        if (l.startsWith(':')) { s.comments.push(l.slice(1).trim()); return; }
        const c = l.indexOf(':');
        const name = c < 0 ? l : l.slice(0, c);
        let value = c < 0 ? '' : l.slice(c + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'event') ev.event = value;
        else if (name === 'data') ev.data.push(value);
        else if (name === 'id' && !value.includes('\0')) ev.id = value;
        else if (name === 'retry' && /^\d+$/.test(value)) s.retry = Number(value);
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (res.statusCode !== 200) { s.body += d; return; }
        buf += d;
        for (;;) {
          const m = buf.match(/\r\n|\r|\n/);
          if (!m || (m[0] === '\r' && m.index === buf.length - 1)) break; // CR at the end: wait for a LF
          line(buf.slice(0, m.index));
          buf = buf.slice(m.index + m[0].length);
        }
      });
      const done = (how) => {
        endResolve(how);
        for (const w of waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error(`stream ${how} while waiting for ${w.what}`)); }
      };
      res.on('end', () => done('ended'));
      res.on('error', () => done('failed'));
      res.on('close', () => done('closed'));
      s.next = (pred = () => true, ms = 5000, what = 'event') => {
        if (typeof pred === 'string') { const t = pred; pred = (e) => e.event === t; what = t; }
        return new Promise((res2, rej2) => {
          const w = { pred, resolve: res2, reject: rej2, from: s.cursor || 0, what };
          w.timer = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            rej2(new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(s.events.slice(-3))}`));
          }, ms);
          waiters.push(w);
          check();
        }).then((e) => { s.cursor = s.events.indexOf(e) + 1; return e; });
      };
      s.close = () => { req.destroy(); return s.ended; };
      if (res.statusCode !== 200) res.on('end', () => resolve(s));
      else resolve(s);
    });
    req.end();
  });
}
