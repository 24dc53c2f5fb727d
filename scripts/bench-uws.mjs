// scripts/bench-uws.mjs — the reference peer of scripts/bench.sh: the same
// fan-out job as fanoutd, done by uWebSockets.js (the npm package
// @trufflesuite/uws-js-unofficial 20.30, a published build with Node 20
// binaries) fed by ioredis, so `fanout-cli bench` can drive both the same
// way. It speaks just enough of protocol v1 for the bench: hello on open,
// subscribe -> ws.subscribe(channel) + subscribed, and every broker message
// -> app.publish(channel, {"type":"message",...}) (uWS corks each socket and
// writes it once per loop pass). Payloads that look like JSON objects are
// embedded as they are (no validation; fanoutd validates), others as JSON
// strings. Compression off, as fanoutd's default.
//
// Not part of the test path: bench.sh installs the two packages into a
// folder of their own and runs this with NODE_PATH pointing there.
//
//   node scripts/bench-uws.mjs PORT REDIS_URL
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.UWS_DIR || process.cwd(), 'node_modules', 'x.js'));
const uWS = require('@trufflesuite/uws-js-unofficial');
const Redis = require('ioredis');

const [port, redisUrl] = [Number(process.argv[2]), process.argv[3]];
let ready = false;
const app = uWS.App();
const enc = (s) => JSON.stringify(s);

app.ws('/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 4 * 1024 * 1024, // fanoutd's client_queue_bytes default
  closeOnBackpressureLimit: true,
  idleTimeout: 0,
  open: (ws) => ws.send('{"type":"hello","instance":"uws","version":"reference"}'),
  message: (ws, msg) => {
    let r;
    try { r = JSON.parse(Buffer.from(msg).toString()); } catch { return; }
    const id = r.id === undefined ? '' : `,"id":${enc(r.id)}`;
    if (r.type === 'subscribe' && typeof r.channel === 'string') {
      ws.subscribe(r.channel);
      ws.send(`{"type":"subscribed","channel":${enc(r.channel)}${id}}`);
    } else if (r.type === 'ping') {
      ws.send(`{"type":"pong"${id}}`);
    }
  },
});
app.get('/readyz', (res) => { res.writeStatus(ready ? '200 OK' : '503 Service Unavailable').end(ready ? 'ready' : 'not ready'); });
app.listen('127.0.0.1', port, (t) => { if (!t) { console.error(`bench-uws: cannot listen on ${port}`); process.exit(1); } });

const sub = new Redis(redisUrl, { enableAutoPipelining: false });
sub.psubscribe('*').then(() => { ready = true; });
sub.on('pmessageBuffer', (_p, ch, msg) => {
  const channel = ch.toString();
  const data = msg.length && msg[0] === 0x7b ? msg.toString() : enc(msg.toString());
  app.publish(channel, `{"type":"message","channel":${enc(channel)},"instance":"uws","data":${data}}`, false);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
