// transports_auth.mjs — access tokens ([auth]) on the tRPC and SSE
// endpoints: @trpc/client's connectionParams.token (the upgrade carries
// none), ?token= on either, the token's channel claims (FORBIDDEN /
// 403), refusals (UNAUTHORIZED then the socket closes; 401 before a
// stream), and an event stream ended when its token expires.
import assert from 'node:assert/strict';
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import { tap } from '../lib/tap.mjs';
import { sseConnect } from '../lib/sse.mjs';
import { startFanoutd, wsClient, pluginPath, waitFor, WebSocket } from '../lib/harness.mjs';
import { hs, now } from '../lib/jwt.mjs';

const t = tap();
const SECRET = 'test-secret-test-secret-test-secret-0123';
const f = await startFanoutd({
  wait: 'ready',
  ini: `[server]\nallow_publish = true\n[auth]\njwt_secret = ${SECRET}\n` +
    `[backend mem]\nplugin = ${pluginPath('loopback')}\n[trpc]\nonRoom = room.{input.roomId}\n`,
});
const token = (claims = {}) => hs(SECRET, { exp: now() + 60, sub: 'alice', channels: ['room.a*'], publish: ['room.*'], ...claims });
const trpcUrl = `ws://127.0.0.1:${f.port}/trpc`;
const publisher = await wsClient(`${f.ws}?token=${token({ channels: [] })}`);
let pubId = 0;
async function publish(channel, data) {
  const id = ++pubId;
  publisher.send({ type: 'publish', channel, data, id });
  const r = await publisher.next((fr) => fr.id === id, 5000, 'published');
  assert.equal(r.type, 'published', JSON.stringify(r));
}

function trpc(opts) {
  const ws = createWSClient({ url: trpcUrl, WebSocket, ...opts });
  const client = createTRPCClient({ links: [wsLink({ client: ws })] });
  const sub = (input) => {
    const s = { data: [], errors: [], started: 0 };
    s.handle = client.onRoom.subscribe(input, {
      onStarted: () => s.started++, onData: (d) => s.data.push(d), onError: (e) => s.errors.push(e),
    });
    return s;
  };
  return { ws, sub };
}

await t.test('tRPC: connectionParams.token opens, its claims decide each subscription', async () => {
  const c = trpc({ connectionParams: () => ({ token: token() }) });
  const ok = c.sub({ roomId: 'a1' });
  const no = c.sub({ roomId: 'b1' });
  await waitFor(() => ok.started && no.errors.length, { what: 'started and refused' });
  assert.equal(no.errors[0].data.code, 'FORBIDDEN');
  await publish('room.a1', 'hello');
  await waitFor(() => ok.data.length === 1, { what: 'data' });
  ok.handle.unsubscribe();
  c.ws.close();
});

await t.test('tRPC: ?token= in the URL works as well', async () => {
  const ws = new WebSocket(`${trpcUrl}?token=${token()}`);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  const first = new Promise((r) => ws.once('message', (d) => r(JSON.parse(String(d)))));
  ws.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'onRoom', input: { roomId: 'a2' } } }));
  assert.deepEqual(await first, { id: 1, result: { type: 'started' } });
  ws.close();
});

await t.test('tRPC: connectionParams without a valid token: UNAUTHORIZED, then closed', async () => {
  for (const params of [{}, { token: 'not.a.token' }, { token: token({ exp: now() - 10 }) }]) {
    const ws = new WebSocket(`${trpcUrl}?connectionParams=1`);
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const msgs = [];
    ws.on('message', (d) => msgs.push(JSON.parse(String(d))));
    const closed = new Promise((r) => ws.once('close', (code) => r(code)));
    ws.send(JSON.stringify({ method: 'connectionParams', data: params }));
    assert.equal(await closed, 4003);
    assert.equal(msgs.length, 1, JSON.stringify(msgs));
    assert.equal(msgs[0].id, null);
    assert.equal(msgs[0].error.data.code, 'UNAUTHORIZED');
  }
  // and without connectionParams or a token: refused at the upgrade
  const r = await new Promise((resolve) => {
    const ws = new WebSocket(trpcUrl);
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('open', () => { resolve(101); ws.close(); });
  });
  assert.equal(r, 401);
});

await t.test('SSE: ?token= opens, claims refuse other channels (403), none is 401', async () => {
  const s = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=room.a3&token=${token()}`);
  assert.equal(s.status, 200);
  await s.next('subscribed');
  await publish('room.a3', 'sse');
  assert.equal((await s.next('message')).json.data, 'sse');
  await s.close();
  const no = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=room.b3&token=${token()}`);
  assert.equal(no.status, 403);
  const none = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=room.a3`);
  assert.equal(none.status, 401);
  assert.match(none.headers['www-authenticate'], /^Bearer/);
});

await t.test('SSE: the stream ends when its token expires', async () => {
  const s = await sseConnect(`http://127.0.0.1:${f.port}/sse?channel=room.a4&token=${token({ exp: now() + 2 })}`);
  await s.next('subscribed');
  assert.equal(await Promise.race([s.ended, new Promise((r) => setTimeout(r, 8000, 'still open'))]), 'ended');
});

await f.stop();
t.done();
