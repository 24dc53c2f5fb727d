// protocol_suite.mjs — client protocol v1 against a real fanoutd, once per
// backend: hello, subscribe (request and ?channel=), publish and fan-out in
// order, every error code, ping, unsubscribe, asynchronous confirmation,
// /readyz while a subscription is pending, a refused subscribe, /metrics.
//
// Not a test by itself: each protocol_<backend>.mjs entry (registered in
// the backend's local.mk) calls runProtocolSuite() with a fixture from
// tests/lib/backends.mjs, which starts the broker and writes the backend's
// keys. Tests of protocol v1.1 (positions) run when fixture.positioned.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient, parseMetrics, sleep, waitFor } from '../lib/harness.mjs';

export async function runProtocolSuite(fx) {
  const t = tap();
  t.diag(`protocol suite, backend ${fx.name}`);
  await fx.start();
  const ini = (server = '', backend = '') =>
    `[server]\ninstance = core1\nallow_publish = true\nmax_subscriptions = 4\n${server}\n[backend mem]\nchannels = news.* chat.* updates x.*\n${fx.keys(backend)}`;
  const start = (ini, args = []) => startFanoutd({ ini, args, wait: 'ready' });

  const f = await start(ini());

  await t.test('hello names the instance and version', async () => {
    const c = await wsClient(f.ws);
    const h = await c.next('hello');
    assert.deepEqual(h, { type: 'hello', instance: 'core1', version: '0.1.0' });
    await c.close();
  });

  await t.test('two subscribers get every publish from a third client, in order', async () => {
    const a = await wsClient(f.ws);
    const b = await wsClient(f.ws);
    const p = await wsClient(f.ws);
    const ra = await a.subscribe('news.eu');
    assert.equal(ra.channel, 'news.eu');
    await b.subscribe('news.eu');
    const N = 200;
    for (let i = 0; i < N; i++) p.send({ type: 'publish', channel: 'news.eu', data: { seq: i }, id: i });
    const acks = await p.next((fr) => fr.id === N - 1, 10000, 'last published');
    assert.equal(acks.type, 'published');
    for (const c of [a, b]) {
      await waitFor(() => c.all((fr) => fr.type === 'message').length >= N, { what: 'all messages' });
      const seqs = c.all((fr) => fr.type === 'message').map((fr) => fr.data.seq);
      assert.deepEqual(seqs, [...Array(N).keys()]);
      const m = c.all((fr) => fr.type === 'message')[0];
      assert.equal(m.channel, 'news.eu');
      assert.equal(m.instance, 'core1');
    }
    // the publisher is not subscribed: it got only acks
    assert.equal(p.all((fr) => fr.type === 'message').length, 0);
    assert.equal(p.all((fr) => fr.type === 'published').length, N);
    await Promise.all([a.close(), b.close(), p.close()]);
  });

  await t.test('?channel= at connect subscribes with the same confirmation', async () => {
    const c = await wsClient(f.ws + '?channel=chat.a&channel=chat.b');
    await c.next('hello');
    const s1 = await c.next('subscribed');
    const s2 = await c.next('subscribed');
    assert.deepEqual([s1.channel, s2.channel].sort(), ['chat.a', 'chat.b']);
    const p = await wsClient(f.ws);
    p.send({ type: 'publish', channel: 'chat.b', data: 'hi' });
    const m = await c.next('message');
    assert.equal(m.data, 'hi');
    await Promise.all([c.close(), p.close()]);
  });

  await t.test('bad JSON gets bad_json and the connection keeps working', async () => {
    const c = await wsClient(f.ws);
    c.send('{"type": "subscribe", ');
    const e = await c.next('error');
    assert.equal(e.code, 'bad_json');
    assert.ok(e.message.length > 0);
    c.send({ type: 'ping', id: 42 });
    assert.deepEqual(await c.next('pong'), { type: 'pong', id: 42 });
    await c.close();
  });

  await t.test('every request error code, echoing the id', async () => {
    const c = await wsClient(f.ws);
    const ask = async (req, code) => {
      c.send(req);
      const r = await c.next((fr) => fr.type === 'error', 3000, code);
      assert.equal(r.code, code, JSON.stringify(r));
      if (typeof req === 'object' && req.id !== undefined) assert.equal(r.id, req.id);
    };
    await ask({ type: 'launch', id: 1 }, 'unknown_type');
    await ask({ id: 2 }, 'bad_request');
    await ask({ type: 'subscribe', id: 3 }, 'bad_request');
    await ask({ type: 'subscribe', channel: 'spaces are bad', id: 'x4' }, 'bad_channel');
    await ask({ type: 'subscribe', channel: 'a'.repeat(201), id: 5 }, 'bad_channel');
    await ask({ type: 'subscribe', channel: '__reserved', id: 'r1' }, 'bad_channel'); // backends' namespace
    await ask({ type: 'unsubscribe', channel: '__reserved', id: 'r2' }, 'bad_channel');
    await ask({ type: 'publish', channel: '__reserved', data: 1, id: 'r3' }, 'bad_channel');
    await ask({ type: 'subscribe', channel: 'nobody.serves.this', id: 6 }, 'no_backend');
    await ask({ type: 'publish', channel: 'news.x', id: 7 }, 'bad_request'); // no data
    await ask('[1,2,3]', 'bad_json');
    await c.close();
  });

  await t.test('invalid UTF-8 in a text message closes 1007 (RFC 6455 8.1)', async () => {
    const c = await wsClient(f.ws);
    c.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    const info = await c.closed;
    assert.equal(info.code, 1007);
    assert.equal(c.all((fr) => fr.type === 'error').length, 0, 'no error frame, a close');
  });

  await t.test('too_many_subscriptions at max_subscriptions', async () => {
    const c = await wsClient(f.ws);
    for (let i = 0; i < 4; i++) await c.subscribe(`x.${i}`);
    c.send({ type: 'subscribe', channel: 'x.9', id: 'over' });
    const e = await c.next((fr) => fr.id === 'over');
    assert.equal(e.code, 'too_many_subscriptions');
    // unsubscribing frees a slot
    c.send({ type: 'unsubscribe', channel: 'x.0', id: 'u' });
    assert.deepEqual(await c.next((fr) => fr.id === 'u'), { type: 'unsubscribed', id: 'u', channel: 'x.0' });
    await c.subscribe('x.9');
    await c.close();
  });

  await t.test('unsubscribe stops delivery', async () => {
    const c = await wsClient(f.ws);
    const p = await wsClient(f.ws);
    await c.subscribe('updates');
    p.send({ type: 'publish', channel: 'updates', data: 1, id: 'a' });
    await c.next('message');
    c.send({ type: 'unsubscribe', channel: 'updates', id: 'u' });
    await c.next('unsubscribed');
    p.send({ type: 'publish', channel: 'updates', data: 2, id: 'b' });
    await p.next((fr) => fr.id === 'b');
    c.send({ type: 'ping', id: 'sync' });
    await c.next('pong');
    assert.equal(c.all((fr) => fr.type === 'message').length, 1);
    await Promise.all([c.close(), p.close()]);
  });

  await t.test('/metrics parses and counts what happened', async () => {
    const r = await f.http('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/plain/);
    const m = parseMetrics(r.body);
    assert.ok(m['fanout_messages_in_total'] >= 202, JSON.stringify(m));
    assert.ok(m['fanout_deliveries_total'] >= 402);
    assert.ok(m['fanout_protocol_errors_total{code="bad_json"}'] >= 2);
    assert.ok(m['fanout_ws_closes_total{reason="invalid_data"}'] >= 1);
    assert.equal(m['fanout_protocol_errors_total{code="no_backend"}'], 1);
    assert.equal(m['fanout_protocol_errors_total{code="too_many_subscriptions"}'], 1);
    assert.equal(m['fanout_backend_up{backend="mem"}'], 1);
    assert.equal(m['fanout_clients'], 0);
    assert.equal(m['fanout_subscriptions'], 0);
    assert.equal(m['fanout_channels'], 0);
  });

  assert.equal(await f.stop(), 0);

  await t.test('publish is forbidden unless allow_publish', async () => {
    const g = await start(ini(), ['-o', 'server.allow_publish=false']);
    const c = await wsClient(g.ws);
    c.send({ type: 'publish', channel: 'news.a', data: 1, id: 9 });
    const e = await c.next('error');
    assert.equal(e.code, 'forbidden');
    assert.equal(e.id, 9);
    await c.close();
    assert.equal(await g.stop(), 0);
  });

  await t.test('server channels globs restrict names: forbidden', async () => {
    const g = await start(ini('channels = news.*'));
    const c = await wsClient(g.ws);
    c.send({ type: 'subscribe', channel: 'chat.a', id: 1 });
    assert.equal((await c.next('error')).code, 'forbidden');
    await c.subscribe('news.a');
    await c.close();
    assert.equal(await g.stop(), 0);
  });

  await t.test('subscribed waits for the backend; /readyz is 503 meanwhile', async () => {
    const hold = await fx.holdConfirm(700);
    const g = await start(ini('', hold.keys));
    const c = await wsClient(g.ws);
    await c.next('hello');
    const t0 = Date.now();
    hold.begin();
    let ended = false;
    const timer = setTimeout(() => { ended = true; hold.end(); }, 700);
    try {
      c.send({ type: 'subscribe', channel: 'news.slow', id: 1 });
      await sleep(100);
      const r = await g.http('/readyz');
      assert.equal(r.status, 503);
      const body = JSON.parse(r.body);
      assert.equal(body.backends.mem.pending_subscriptions, 1);
      const s = await c.next('subscribed', 5000);
      assert.ok(Date.now() - t0 >= 600, `confirmed after ${Date.now() - t0} ms`);
      assert.equal(s.id, 1);
    } finally {
      clearTimeout(timer);
      if (!ended) hold.end();
    }
    await waitFor(async () => (await g.http('/readyz')).status === 200, { what: '/readyz 200 after the confirmation' });
    await c.close();
    assert.equal(await g.stop(), 0);
  });

  if (!fx.refuseSubscribe) t.diag(`${fx.name} cannot make its broker refuse a subscribe: test not run`);
  else await t.test('a refused backend subscribe answers backend_unavailable', async () => {
    const g = await start(ini('', await fx.refuseSubscribe()));
    const c = await wsClient(g.ws);
    c.send({ type: 'subscribe', channel: 'news.a', id: 'q' });
    const e = await c.next('error');
    assert.equal(e.code, 'backend_unavailable');
    assert.equal(e.id, 'q');
    const m = parseMetrics((await g.http('/metrics')).body);
    assert.equal(m['fanout_subscriptions'], 0);
    await c.close();
    assert.equal(await g.stop(), 0);
  });

  await fx.stop();
  t.done();
  // A failed test may leave a client socket open: do not hang make check.
  setTimeout(() => process.exit(), 2000).unref();
}
