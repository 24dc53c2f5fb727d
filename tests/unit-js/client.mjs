// client.mjs — unit tests (node, no browser, no network) for web/fanout.js's
// FanoutClient: request/reply matching by id, events, reconnect schedule,
// resubscription and close-code handling, access tokens (getToken before
// every connection, 4003, in-band refresh before exp), and v1.1 positions
// (resume with since after a reconnect, replay marks, gap only when not
// recovered, no duplicate offset reaching the app). The WebSocket, timers,
// clock and random source are fakes injected through the constructor.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { FanoutClient, State, tokenExpiry } from '../../web/fanout.js';

const t = tap();

// ---- fakes ----
function fakeClock() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    /** Advance time, running due timers in order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let next = null;
        for (const [id, tm] of timers) if (tm.at <= end && (!next || tm.at < next[1].at)) next = [id, tm];
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
    },
    pending: () => [...timers.values()].map((x) => x.at - now).sort((a, b) => a - b),
  };
}

function fakeWS() {
  const sockets = [];
  class WS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedBy = null;
      sockets.push(this);
    }
    send(s) {
      this.sent.push(JSON.parse(s));
    }
    close(code) {
      this.closedBy = code ?? 1005;
    }
    // test side
    open() {
      this.onopen?.({});
    }
    frame(obj) {
      this.onmessage?.({ data: JSON.stringify(obj) });
    }
    drop(code, reason = '') {
      this.onclose?.({ code, reason });
    }
    last(type) {
      return [...this.sent].reverse().find((f) => f.type === type);
    }
  }
  return { WS, sockets };
}

function setup(opts = {}) {
  const clock = fakeClock();
  const { WS, sockets } = fakeWS();
  const c = new FanoutClient('ws://test/ws', {
    WebSocket: WS,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random: () => 0.5,
    ...opts,
  });
  const events = [];
  for (const type of ['status', 'hello', 'message', 'gap', 'error', 'subscribed', 'unsubscribed', 'authed'])
    c.addEventListener(type, (e) => events.push({ type, ...e.detail }));
  const ws = () => sockets[sockets.length - 1];
  // open the current socket and answer hello + every subscribe
  const up = (instance = 'c1') => {
    ws().open();
    ws().frame({ type: 'hello', instance, version: '0.1.0' });
    for (const f of ws().sent) if (f.type === 'subscribe') ws().frame({ type: 'subscribed', channel: f.channel, id: f.id });
  };
  const settle = () => new Promise((r) => setImmediate(r));
  return { c, clock, sockets, ws, events, up, settle };
}

await t.test('connects, subscribes the initial channels and exposes the instance', async () => {
  const { c, ws, up, events } = setup({ channels: ['updates', 'news'] });
  assert.equal(c.state, State.IDLE);
  const hello = c.connect();
  assert.equal(c.state, State.CONNECTING);
  up('c7');
  assert.equal((await hello).instance, 'c7');
  assert.equal(c.instance, 'c7');
  assert.equal(c.version, '0.1.0');
  assert.equal(c.state, State.OPEN);
  const subs = ws().sent.filter((f) => f.type === 'subscribe');
  assert.deepEqual(subs.map((f) => f.channel), ['updates', 'news']);
  assert.notEqual(subs[0].id, subs[1].id);
  assert.deepEqual(events.filter((e) => e.type === 'subscribed').map((e) => e.channel), ['updates', 'news']);
  assert.deepEqual(events.filter((e) => e.type === 'status').map((e) => e.state), ['connecting', 'open']);
});

await t.test('subscribe/publish/unsubscribe resolve on the replies matched by id', async () => {
  const { c, ws, up } = setup();
  c.connect();
  up();
  const sub = c.subscribe('a');
  const sf = ws().last('subscribe');
  assert.equal(sf.channel, 'a');
  ws().frame({ type: 'subscribed', channel: 'a', id: sf.id });
  assert.deepEqual(await sub, { type: 'subscribed', channel: 'a' });

  const p1 = c.publish('a', { n: 1 });
  const p2 = c.publish('a', 'two');
  const [f1, f2] = ws().sent.filter((f) => f.type === 'publish');
  assert.deepEqual(f1.data, { n: 1 });
  assert.equal(f2.data, 'two');
  // replies out of order: each resolves its own promise
  ws().frame({ type: 'error', code: 'forbidden', message: 'publishing is disabled', id: f2.id });
  ws().frame({ type: 'published', channel: 'a', id: f1.id });
  assert.equal((await p1).type, 'published');
  await assert.rejects(p2, (e) => e.code === 'forbidden' && e.message === 'publishing is disabled');

  const u = c.unsubscribe('a');
  const uf = ws().last('unsubscribe');
  ws().frame({ type: 'unsubscribed', channel: 'a', id: uf.id });
  assert.equal((await u).type, 'unsubscribed');
  assert.deepEqual(c.channels, []);
});

await t.test('message and gap frames become events and counters; unknown frames are ignored', async () => {
  const { c, ws, up, events } = setup({ channels: ['updates'] });
  c.connect();
  up();
  ws().frame({ type: 'message', channel: 'updates', instance: 'c2', data: { x: 1 }, offset: 9 });
  ws().frame({ type: 'from-the-future', foo: 1 });
  ws().frame({ type: 'gap', channel: 'updates', reason: 'backend reconnected' });
  const m = events.find((e) => e.type === 'message');
  assert.deepEqual([m.channel, m.instance, m.data, m.frame.offset], ['updates', 'c2', { x: 1 }, 9]);
  const g = events.find((e) => e.type === 'gap');
  assert.deepEqual([g.channel, g.reason, g.local], ['updates', 'backend reconnected', false]);
  assert.equal(c.stats.messages, 1);
  assert.equal(c.stats.gaps, 1);
});

await t.test('a rejected subscribe rejects and forgets the channel', async () => {
  const { c, ws, up } = setup();
  c.connect();
  up();
  await assert.rejects(c.subscribe('bad channel!'), (e) => e.code === 'bad_channel'); // checked locally
  await assert.rejects(c.subscribe('__reserved'), (e) => e.code === 'bad_channel'); // backends' namespace
  const p = c.subscribe('secret');
  ws().frame({ type: 'error', code: 'forbidden', message: 'no', id: ws().last('subscribe').id });
  await assert.rejects(p, (e) => e.code === 'forbidden');
  assert.deepEqual(c.channels, []);
});

await t.test('on 1001 it reconnects after a jittered delay and resubscribes everything', async () => {
  const { c, clock, sockets, ws, up, events } = setup({ channels: ['a', 'b'], random: () => 0.5 });
  c.connect();
  up('c1');
  const pub = c.publish('a', 1);
  ws().drop(1001, 'going away');
  await assert.rejects(pub, (e) => e.code === 'disconnected'); // publishes are not retried
  assert.equal(c.state, State.RECONNECTING);
  const st = events.filter((e) => e.type === 'status').at(-1);
  assert.equal(st.code, 1001);
  assert.equal(st.delayMs, 250); // random 0.5 * min(cap, 500 * 2^0)
  assert.equal(sockets.length, 1);
  clock.advance(249);
  assert.equal(sockets.length, 1, 'not before the delay');
  clock.advance(1);
  assert.equal(sockets.length, 2, 'new socket after the delay');
  assert.equal(c.state, State.RECONNECTING, 'still reconnecting until open');
  up('c2');
  assert.equal(c.instance, 'c2');
  assert.deepEqual(ws().sent.filter((f) => f.type === 'subscribe').map((f) => f.channel), ['a', 'b']);
  assert.equal(c.stats.reconnects, 1);
  const gaps = events.filter((e) => e.type === 'gap');
  assert.deepEqual(gaps.map((g) => [g.channel, g.local]), [['a', true], ['b', true]]);
});

await t.test('delays grow over consecutive failures and reset after a stable connection', async () => {
  const { c, clock, ws, up, events } = setup({ random: () => 0.999, stableMs: 10000 });
  c.connect();
  const delays = () => events.filter((e) => e.type === 'status' && e.state === 'reconnecting').map((e) => e.delayMs);
  for (let i = 0; i < 8; i++) {
    ws().drop(1006);
    clock.advance(delays().at(-1));
  }
  assert.deepEqual(delays(), [499, 999, 1998, 3996, 7992, 15984, 29970, 29970]);
  up();
  clock.advance(9999);
  ws().drop(1006); // open for less than stableMs: keeps climbing
  assert.equal(delays().at(-1), 29970);
  clock.advance(29970);
  up();
  clock.advance(10000); // stable
  ws().drop(1011);
  assert.equal(delays().at(-1), 499);
});

await t.test('1008 closes for good; 1009 is reported and reconnects; 1013 backs off further', async () => {
  {
    const { c, clock, sockets, ws, up, events } = setup({ channels: ['a'] });
    const first = c.connect();
    ws().drop(1008, 'origin refused');
    assert.equal(c.state, State.CLOSED);
    await assert.rejects(first, (e) => e.code === 'policy');
    assert.ok(events.some((e) => e.type === 'error' && e.code === 'policy' && e.closeCode === 1008));
    assert.deepEqual(clock.pending(), [], 'no timer left');
    clock.advance(120000);
    assert.equal(sockets.length, 1, 'never reconnects');
    await assert.rejects(c.subscribe('b'), (e) => e.code === 'closed');
    void up;
  }
  {
    const { c, clock, sockets, ws, up, events } = setup({ channels: ['a'] });
    c.connect();
    up();
    ws().drop(1009, 'too big');
    assert.ok(events.some((e) => e.type === 'error' && e.code === 'too_big'));
    assert.equal(c.state, State.RECONNECTING);
    clock.advance(250);
    assert.equal(sockets.length, 2);
  }
  {
    const { c, ws, events } = setup({ random: () => 0.999 });
    c.connect();
    ws().drop(1013, 'full');
    assert.equal(events.filter((e) => e.type === 'status').at(-1).delayMs, 3996); // attempt >= 3
  }
});

await t.test('maxMessageBytes refuses an oversized publish before sending it', async () => {
  const { c, ws, up } = setup({ maxMessageBytes: 100 });
  c.connect();
  up();
  await assert.rejects(c.publish('a', 'x'.repeat(200)), (e) => e.code === 'too_big');
  assert.equal(ws().sent.filter((f) => f.type === 'publish').length, 0);
  await assert.rejects(setup().c.publish('a', 1), (e) => e.code === 'not_connected');
});

await t.test('a quiet connection is pinged; no answer means reconnect', async () => {
  const { c, clock, sockets, ws, up } = setup({ pingIntervalMs: 1000, pongTimeoutMs: 500 });
  c.connect();
  up();
  clock.advance(999);
  assert.equal(ws().last('ping'), undefined);
  clock.advance(1);
  const ping = ws().last('ping');
  assert.ok(ping, 'ping sent after 1 s of silence');
  ws().frame({ type: 'pong', id: ping.id });
  clock.advance(900); // answered: no reconnect
  assert.equal(sockets.length, 1);
  clock.advance(100); // second ping, never answered
  assert.equal(ws().sent.filter((f) => f.type === 'ping').length, 2);
  clock.advance(500);
  assert.equal(c.state, State.RECONNECTING);
  assert.ok(sockets[0].closedBy !== null, 'dead socket closed');
});

await t.test('subscribe while disconnected resolves after the next connection; unsubscribe is local', async () => {
  const { c, clock, ws, up } = setup({ channels: ['a'] });
  c.connect();
  up();
  ws().drop(1006);
  const p = c.subscribe('late');
  await c.unsubscribe('a');
  clock.advance(1000);
  up();
  assert.deepEqual(ws().sent.filter((f) => f.type === 'subscribe').map((f) => f.channel), ['late']);
  assert.equal((await p).channel, 'late');
});

await t.test('close() stops everything', async () => {
  const { c, clock, sockets, ws, up, events } = setup({ channels: ['a'] });
  c.connect();
  up();
  c.close();
  assert.equal(c.state, State.CLOSED);
  assert.equal(sockets[0].closedBy, 1000);
  clock.advance(100000);
  assert.equal(sockets.length, 1);
  assert.deepEqual(clock.pending(), []);
  assert.equal(events.filter((e) => e.type === 'status').at(-1).state, 'closed');
  void ws;
});

// A JWT-shaped token (unsigned: the client only reads exp).
const jwt = (claims) => 'e30.' + Buffer.from(JSON.stringify(claims)).toString('base64url') + '.sig';

await t.test('tokenExpiry reads exp from a JWT, null otherwise', async () => {
  assert.equal(tokenExpiry(jwt({ exp: 1700000000, sub: 'a' })), 1700000000);
  assert.equal(tokenExpiry(jwt({ sub: 'a' })), null);
  assert.equal(tokenExpiry('not-a-jwt'), null);
  assert.equal(tokenExpiry('a.!!!.b'), null);
});

await t.test('getToken is asked before every connection; the token goes in the URL', async () => {
  let n = 0;
  const { c, clock, sockets, ws, up, settle } = setup({ getToken: async () => `tok/${++n}+x` });
  c.connect();
  await settle();
  assert.equal(sockets.length, 1);
  assert.equal(ws().url, 'ws://test/ws?token=tok%2F1%2Bx');
  up();
  ws().drop(1006);
  clock.advance(1000); // the retry (jittered, < 1 s here); getToken answers after
  await settle();
  assert.equal(sockets.length, 2);
  assert.equal(ws().url, 'ws://test/ws?token=tok%2F2%2Bx');
  // a URL with a query already: &token=; null: no token
  const s2 = setup({ getToken: () => null });
  s2.c.connect();
  await s2.settle();
  assert.equal(s2.ws().url, 'ws://test/ws');
  void c;
});

await t.test('a failing getToken is a failed attempt: reported, then backoff', async () => {
  let fail = true;
  const { c, clock, sockets, events, settle } = setup({
    getToken: () => { if (fail) throw new Error('auth server down'); return 'ok'; },
  });
  c.connect();
  await settle();
  assert.equal(sockets.length, 0);
  assert.ok(events.some((e) => e.type === 'error' && e.code === 'token_failed' && /down/.test(e.message)));
  assert.equal(c.state, State.RECONNECTING);
  fail = false;
  clock.advance(1000);
  await settle();
  assert.equal(sockets.length, 1);
  // and one that never answers times out after connectTimeoutMs
  const s2 = setup({ getToken: () => new Promise(() => {}), connectTimeoutMs: 5000 });
  s2.c.connect();
  await s2.settle();
  s2.clock.advance(5000);
  assert.ok(s2.events.some((e) => e.type === 'error' && e.code === 'token_failed'));
  assert.equal(s2.c.state, State.RECONNECTING);
});

await t.test('4003: reconnect at once (within baseMs) with a fresh token; 1008 still ends it', async () => {
  let n = 0;
  const { c, clock, sockets, ws, up, events, settle } = setup({ getToken: () => `t${++n}`, channels: ['a'] });
  c.connect();
  await settle();
  up();
  // a few failures first: 4003 does not inherit their backoff
  for (let i = 0; i < 3; i++) {
    ws().drop(1006);
    clock.advance(5000); // past the retry delay (< 5 s for these attempts)
    await settle();
  }
  assert.equal(sockets.length, 4);
  up();
  ws().drop(4003, 'token expired');
  const st = events.filter((e) => e.type === 'status').at(-1);
  assert.equal(st.state, State.RECONNECTING);
  assert.ok(st.delayMs < 500, `delay ${st.delayMs}`);
  clock.advance(500);
  await settle();
  assert.equal(ws().url, `ws://test/ws?token=t${n}`);
  assert.equal(sockets.length, 5);
  up();
  ws().drop(1008, 'request rate too high');
  assert.equal(c.state, State.CLOSED);
});

await t.test('before exp the token is refreshed in-band: auth -> authed, then the next one', async () => {
  let n = 0;
  // the clock starts at 0: exp 100 s and 200 s
  const tokens = [jwt({ exp: 100 }), jwt({ exp: 200 }), jwt({ exp: 300 })];
  const { c, clock, ws, up, events, settle } = setup({ getToken: () => tokens[n++], refreshBeforeMs: 30000, pingIntervalMs: 0 });
  c.connect();
  await settle();
  up();
  clock.advance(69000);
  await settle();
  assert.equal(ws().last('auth'), undefined, 'not yet');
  clock.advance(1000); // exp - 30 s
  await settle();
  const a = ws().last('auth');
  assert.equal(a.token, tokens[1]);
  ws().frame({ type: 'authed', id: a.id });
  await settle();
  assert.deepEqual(events.filter((e) => e.type === 'authed'), [{ type: 'authed', expiresAt: 200 }]);
  clock.advance(100000); // 170 s: the next refresh, for the exp of the new token
  await settle();
  assert.equal(ws().last('auth').token, tokens[2]);
  // a refused refresh is reported (the server will close 4003 at exp)
  const b = ws().last('auth');
  ws().frame({ type: 'error', id: b.id, code: 'forbidden', message: 'token refused: bad signature' });
  await settle();
  assert.ok(events.some((e) => e.type === 'error' && e.code === 'forbidden' && e.id === b.id));
  assert.equal(c.state, State.OPEN);
});

// ---- positions (v1.1) ----

/** Answer the socket's subscribes as a positioned server would. */
function answerSubs(ws, { epoch = 'E1', top = 0, recovered } = {}) {
  for (const f of ws.sent.filter((x) => x.type === 'subscribe' && !x.answered)) {
    f.answered = true;
    const r = { type: 'subscribed', channel: f.channel, id: f.id, epoch, offset: top };
    if (f.since) r.recovered = typeof recovered === 'function' ? recovered(f) : recovered;
    ws.frame(r);
  }
}

const msg = (channel, offset, data = offset) => ({ type: 'message', channel, instance: 'c1', offset, data });

await t.test('positions: resubscribes with since after a reconnect; the replay is marked, no gap', async () => {
  const { c, ws, events, clock } = setup({ channels: ['u'] });
  c.connect();
  ws().open();
  answerSubs(ws(), { top: 10 });
  assert.deepEqual(c.position('u'), { epoch: 'E1', offset: 10 });
  ws().frame(msg('u', 11));
  ws().frame(msg('u', 12));
  assert.deepEqual(c.position('u'), { epoch: 'E1', offset: 12 });
  ws().drop(1001, 'going away');
  clock.advance(1000);
  ws().open();
  const sub = ws().last('subscribe');
  assert.deepEqual(sub.since, { epoch: 'E1', offset: 12 });
  answerSubs(ws(), { top: 15, recovered: true });
  for (const o of [13, 14, 15, 16]) ws().frame(msg('u', o));
  const ms = events.filter((e) => e.type === 'message');
  assert.deepEqual(ms.map((e) => [e.offset, e.recovered]), [[11, false], [12, false], [13, true], [14, true], [15, true], [16, false]]);
  assert.equal(events.filter((e) => e.type === 'gap').length, 0);
  assert.equal(c.stats.resumes, 1);
  assert.equal(c.stats.recovered, 3);
  const sd = events.filter((e) => e.type === 'subscribed');
  assert.deepEqual(sd[1], { type: 'subscribed', channel: 'u', epoch: 'E1', offset: 15, recovered: true });
});

await t.test('positions: not recovered -> one local gap with the new position, stream continues there', async () => {
  const { c, ws, events, clock } = setup({ channels: ['u'] });
  c.connect();
  ws().open();
  answerSubs(ws(), { top: 5 });
  ws().frame(msg('u', 6));
  ws().drop(1006);
  clock.advance(1000);
  ws().open();
  answerSubs(ws(), { epoch: 'E2', top: 3, recovered: false });
  const gaps = events.filter((e) => e.type === 'gap');
  assert.equal(gaps.length, 1);
  assert.deepEqual([gaps[0].local, gaps[0].reason, gaps[0].epoch, gaps[0].offset], [true, 'not recovered', 'E2', 3]);
  assert.deepEqual(c.position('u'), { epoch: 'E2', offset: 3 });
  ws().frame(msg('u', 4));
  assert.equal(events.filter((e) => e.type === 'message').pop().offset, 4);
});

await t.test('positions: a duplicate offset never reaches the app; a gap frame moves the position', async () => {
  const { c, ws, events } = setup({ channels: ['u'] });
  c.connect();
  ws().open();
  answerSubs(ws(), { top: 0 });
  for (const o of [1, 2, 2, 1, 3]) ws().frame(msg('u', o));
  assert.deepEqual(events.filter((e) => e.type === 'message').map((e) => e.offset), [1, 2, 3]);
  assert.equal(c.stats.duplicates, 2);
  ws().frame({ type: 'gap', channel: 'u', reason: 'messages lost', epoch: 'E1', offset: 9 });
  ws().frame(msg('u', 10));
  const g = events.find((e) => e.type === 'gap');
  assert.deepEqual([g.local, g.epoch, g.offset], [false, 'E1', 9]);
  assert.deepEqual(c.position('u'), { epoch: 'E1', offset: 10 });
});

await t.test('positions: unpositioned channels keep the v1 behaviour (local gap on reconnect)', async () => {
  const { c, ws, events, clock, up } = setup({ channels: ['plain'] });
  c.connect();
  up();
  assert.equal(c.position('plain'), null);
  ws().drop(1001);
  clock.advance(1000);
  up();
  assert.equal(ws().last('subscribe').since, undefined);
  const gaps = events.filter((e) => e.type === 'gap');
  assert.deepEqual(gaps.map((g) => [g.local, g.reason]), [[true, 'reconnected']]);
});

await t.test('positions: subscribe(channel, {since}) starts after a kept position', async () => {
  const { c, ws } = setup();
  c.connect();
  ws().open();
  const p = c.subscribe('u', { since: { epoch: 'E1', offset: 7 } });
  assert.deepEqual(ws().last('subscribe').since, { epoch: 'E1', offset: 7 });
  answerSubs(ws(), { top: 9, recovered: true });
  const r = await p;
  assert.deepEqual([r.recovered, r.offset], [true, 9]);
  await assert.rejects(c.subscribe('v', { since: { epoch: 'E1', offset: -1 } }), /since must be/);
});

t.done();
