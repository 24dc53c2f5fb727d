// security_http.mjs — the HTTP side of fanoutd attacked with raw sockets:
// pipelined requests (each answered once, nothing leaked: run under ASan
// with leak checking in the sanitizer suite), empty frames.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, pluginPath } from '../lib/harness.mjs';
import { rawRequest, req } from '../lib/rawhttp.mjs';

const t = tap();
const lb = pluginPath('loopback');
const ini = (server = '') => `[server]\ninstance = sec1\n${server}\n[backend mem]\nplugin = ${lb}\n`;

await t.test('pipelined requests: each answered once, in order, with its own body', async () => {
  const f = await startFanoutd({ ini: ini() });
  const routes = ['/metrics', '/healthz', '/readyz'];
  for (const n of [2, 3]) {
    for (const first of routes) {
      const paths = [first, ...routes.filter((r) => r !== first)].slice(0, n);
      const r = await rawRequest(f.port, paths.map((p) => req('GET', p)).join(''), { want: n });
      assert.equal(r.responses.length, n, `${paths}: ${n} responses, got ${JSON.stringify(r.raw.slice(0, 600))}`);
      r.responses.forEach((res, i) => {
        assert.equal(res.status, 200, paths[i]);
        if (paths[i] === '/healthz') assert.deepEqual(JSON.parse(res.body), { status: 'ok' });
        if (paths[i] === '/readyz') assert.equal(JSON.parse(res.body).status, 'ready');
        if (paths[i] === '/metrics') assert.match(res.body, /^# HELP fanout_clients /);
      });
      assert.equal(r.rest.length, 0, 'nothing after the last response');
    }
  }
  // many connections each pipelining /metrics twice: under ASan the
  // leak checker at exit sees any body that was never freed
  await Promise.all(Array.from({ length: 20 }, () =>
    rawRequest(f.port, req('GET', '/metrics') + req('GET', '/metrics'), { want: 2 }).then((r) =>
      assert.equal(r.responses.length, 2))));
  assert.equal(await f.stop(), 0); // throws on a sanitizer report
});

await t.test('an empty text frame is error bad_json; the connection stays', async () => {
  const f = await startFanoutd({ ini: ini() });
  const c = await wsClient(f.ws);
  await c.next('hello');
  c.ws.send('');
  const e = await c.next('error');
  assert.equal(e.code, 'bad_json');
  assert.match(e.message, /empty/);
  c.send({ type: 'ping', id: 7 });
  assert.equal((await c.next((fr) => fr.id === 7)).type, 'pong');
  await c.close();
  assert.equal(await f.stop(), 0);
});

t.done();
