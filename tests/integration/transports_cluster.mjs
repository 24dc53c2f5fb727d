// transports_cluster.mjs — tRPC and Server-Sent Events clients through
// nginx to three fanoutd instances sharing a redis-server (valkey backend,
// history on), while `fanout-cli push` publishes positioned updates:
//
//  - the real @trpc/client (createWSClient + wsLink + createTRPCClient,
//    with connectionParams and keepalive) subscribes in one batch with an
//    unknown procedure (NOT_FOUND) and a subscription it stops, its
//    serving instance drains mid-stream, the client gets
//    tRPC's reconnect notification, resubscribes on another instance with
//    lastEventId and ends with every update exactly once, in order;
//  - an event stream over raw HTTP does the same with Last-Event-ID after
//    its stream ends (as EventSource does), two channels in one stream;
//  - a resume that history cannot serve is said, never silent: tRPC's
//    PRECONDITION_FAILED, an event stream's gap.
import assert from 'node:assert/strict';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { tap } from '../lib/tap.mjs';
import { sseConnect } from '../lib/sse.mjs';
import { parseMetrics, waitFor, WebSocket } from '../lib/harness.mjs';
import { missing, startCluster, push, checkRun } from './cluster_env.mjs';
import { recordingWebSocket } from '../lib/trpc.mjs';

const t = tap();
const UPDATES = 300;
const RATE = 100;
const lacking = missing();
const TRPC = '[trpc]\nonUpdates = updates\nonRoom = room.{input.roomId}\n';

/** The instance (name) serving transport's one client, once there is one. */
async function serving(cl, transport) {
  return waitFor(async () => {
    for (const n of cl.names) {
      if (!cl.byName[n]) continue;
      const r = await cl.byName[n].http('/metrics').catch(() => null);
      if (r && parseMetrics(r.body)[`fanout_transport_clients{transport="${transport}"}`] === 1)
        return n;
    }
    return null;
  }, { what: `the instance serving the ${transport} client` });
}

/** Stop instance name with SIGTERM; resolves its exit code. */
async function drain(cl, name) {
  const f = cl.byName[name];
  const code = await f.stop('SIGTERM');
  cl.byName[name] = null;
  return code;
}

if (lacking.length) {
  t.skip('transports through nginx to a cluster', 'missing: ' + lacking.join(', '));
} else {
  const cl = await startCluster({ extraServer: TRPC });

  await t.test('tRPC: drain the serving instance mid-stream, resume elsewhere: every update once, in order', async () => {
    const log = [];
    const Recording = recordingWebSocket(log);
    // as an application configures it: connection parameters (sent again on
    // every socket) and keepalive, through nginx
    const ws = createWSClient({
      url: `ws://127.0.0.1:${cl.nginx.port}/trpc`, WebSocket: Recording,
      connectionParams: async () => ({ app: 'cluster-test' }),
      keepAlive: { enabled: true, intervalMs: 1000, pongTimeoutMs: 10000 },
    });
    const client = createTRPCClient({ links: [wsLink({ client: ws })] });
    const got = [], errors = [], room = [], nope = [];
    let started = 0;
    // three requests in one tick: one batch
    const sub = client.onUpdates.subscribe(undefined, {
      onStarted: () => started++,
      onData: (ev) => got.push(ev),
      onError: (e) => errors.push(e),
    });
    const roomSub = client.onRoom.subscribe({ roomId: 1 }, { onStarted: () => room.push('started'), onComplete: () => room.push('complete') });
    client.nope.subscribe(undefined, { onError: (e) => nope.push(e) });
    await waitFor(() => started === 1 && room.length === 1 && nope.length === 1, { what: 'started, started, an error' });
    assert.deepEqual(nope[0].shape, { message: 'No "subscription"-procedure on path "nope"', code: -32004, data: { code: 'NOT_FOUND', httpStatus: 404, path: 'nope' } });
    assert.ok(log[0].url.endsWith('?connectionParams=1'));
    assert.deepEqual(JSON.parse(log.find((l) => l.out).out), { method: 'connectionParams', data: { app: 'cluster-test' } });
    assert.equal(log.filter((l) => l.out && l.out.startsWith('[')).map((l) => JSON.parse(l.out).length)[0], 3);
    // stop (the component unmounting): stopped, through nginx
    roomSub.unsubscribe();
    await waitFor(() => log.some((l) => l.in && /"result":\{"type":"stopped"\}/.test(l.in)), { what: 'stopped' });
    // keepalive: @trpc/client pings after intervalMs without a message
    await waitFor(() => log.some((l) => l.out === 'PING') && log.some((l) => l.in === 'PONG'), { what: 'PING answered PONG through nginx' });
    const victim = await serving(cl, 'trpc');
    const pushing = push(cl.redis, { count: UPDATES, rate: RATE });
    await waitFor(() => got.length >= 60, { what: '60 updates', timeoutMs: 10000 });
    assert.equal(await drain(cl, victim), 0);
    const r = await pushing;
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => got.length >= UPDATES, { what: `${UPDATES} updates`, timeoutMs: 20000 });
    assert.deepEqual(errors, []);
    assert.equal(checkRun(got.map((ev) => ev.data.seq), 1, UPDATES), '');
    // tracked: "EPOCH:OFFSET", one epoch, offsets strictly increasing by one
    const ids = got.map((ev) => ev.id.split(':'));
    assert.equal(new Set(ids.map((x) => x[0])).size, 1);
    for (let i = 1; i < ids.length; i++) assert.equal(Number(ids[i][1]), Number(ids[i - 1][1]) + 1);
    // the notification came, a second socket was opened and resubscribed with lastEventId
    assert.ok(log.some((l) => l.in === '{"id":null,"method":"reconnect"}'));
    assert.equal(log.filter((l) => l.url).length, 2);
    const resub = log.filter((l) => l.out && l.out.includes('"lastEventId"'));
    assert.ok(resub.length >= 1, 'resubscribed with lastEventId');
    assert.notEqual(await serving(cl, 'trpc'), victim);
    // the new socket began with the connection parameters too
    const sockets = log.reduce((a, l) => (l.url ? [...a, []] : (a.at(-1).push(l), a)), []);
    assert.deepEqual(JSON.parse(sockets[1].find((l) => l.out).out), { method: 'connectionParams', data: { app: 'cluster-test' } });
    sub.unsubscribe();
    ws.close();
    t.diag(`tRPC: ${got.length} updates, drained ${victim}`);
  }, { timeoutMs: 60000 });

  await t.test('SSE: the stream ends on drain, Last-Event-ID resumes both channels elsewhere', async () => {
    const url = `http://127.0.0.1:${cl.nginx.port}/sse?channel=updates&channel=room.1`;
    const all = []; // every stream, in order (EventSource's reconnects, by hand)
    const events = (kind) => all.flatMap((s) => s.events.filter((e) => e.event === kind));
    let pushing = null, victim = null;
    for (;;) {
      const last = all.length ? all[all.length - 1].lastEventId : '';
      const s = await sseConnect(url, last ? { headers: { 'last-event-id': last } } : {});
      assert.equal(s.status, 200);
      all.push(s);
      if (!victim) {
        await s.next('subscribed');
        await s.next('subscribed');
        pushing = push(cl.redis, { count: UPDATES, rate: RATE });
        await waitFor(() => events('message').length >= 60, { what: '60 updates', timeoutMs: 10000 });
        victim = await serving(cl, 'sse');
        drain(cl, victim); // the stream ends once flushed
      }
      let done = false;
      const how = await Promise.race([
        s.ended,
        waitFor(() => done || events('message').length >= UPDATES, { timeoutMs: 20000, what: 'all updates' }).then(() => 'done'),
      ]);
      done = true;
      if (how === 'done') break;
      assert.ok(all.length < 5, 'too many streams');
    }
    assert.equal((await pushing).code, 0);
    await all[all.length - 1].close();
    assert.equal(all.length, 2);
    assert.deepEqual(events('gap'), []);
    assert.equal(checkRun(events('message').map((e) => e.json.data.seq), 1, UPDATES), '');
    // the second stream's subscriptions say they resumed
    const resumed = all[1].events.filter((e) => e.event === 'subscribed').map((e) => e.json);
    assert.equal(resumed.length, 2);
    assert.ok(resumed.every((x) => x.recovered === true), JSON.stringify(resumed));
    t.diag(`SSE: ${events('message').length} updates over ${all.length} streams, drained ${victim}`);
  }, { timeoutMs: 60000 });

  await t.test('a resume history cannot serve is said: tRPC PRECONDITION_FAILED, SSE gap', async () => {
    const live = cl.names.find((n) => cl.byName[n]);
    const f = cl.byName[live];
    // tRPC: a lastEventId of an epoch the broker never had
    const ws = new WebSocket(`ws://127.0.0.1:${f.port}/trpc`);
    await new Promise((r) => ws.once('open', r));
    const reply = new Promise((r) => ws.once('message', (d) => r(JSON.parse(String(d)))));
    ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'onUpdates', lastEventId: 'nosuchepoch:5' } }));
    const m = await reply;
    assert.equal(m.error.data.code, 'PRECONDITION_FAILED', JSON.stringify(m));
    ws.close();
    // SSE: the same through Last-Event-ID (this stream's own format)
    const s0 = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=updates`);
    await s0.next('subscribed');
    await s0.close();
    const fp = s0.lastEventId || '';
    const bogus = (fp.match(/^v1;[0-9a-f]{8};/) || ['v1;00000000;'])[0] + 'nosuchepoch:5';
    const s = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=updates`, { headers: { 'last-event-id': bogus } });
    const g = await s.next('gap');
    assert.equal(g.json.channel, 'updates');
    await s.close();
  });

  await cl.stop().catch(() => {});
}
t.done();
