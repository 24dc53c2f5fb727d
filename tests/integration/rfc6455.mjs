#!/usr/bin/env node
// rfc6455.mjs — RFC 6455 (and RFC 7692 permessage-deflate) conformance of
// fanoutd, case by case in the categories of the Autobahn test suite, over
// raw sockets (tests/lib/rawws.mjs): what a client may send, what it must
// not, and exactly what fanoutd answers — every frame, no byte after a close
// frame, who closes TCP and when.
//
// fanoutd speaks JSON requests, not echo: a frame that carries a
// well-formed message is checked by its answer ({"type":"ping","id":X} is
// answered {"type":"pong","id":X}, so the id proves the payload arrived
// whole); anything else is checked by the close code.
//
// Prints one TAP line per case and the results table (markdown) at the end;
// the table is also written to $FANOUT_BUILDDIR/rfc6455-results.md, and
// the last test checks that README.md carries the same table.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, sleep, SRCDIR, BUILDDIR } from '../lib/harness.mjs';
import { rawConnect, frame, OP, closePayload, deflateMessage, inflateMessage, json } from '../lib/rawws.mjs';

const t = tap();
const MAX = 65536; // max_message_bytes
const ini = (extra = '') => `[server]
instance = rfc
allow_publish = true
max_message_bytes = ${MAX}
ping_interval_s = 0
${extra}
[backend mem]
plugin = loopback
`;

const f = await startFanoutd({ ini: ini() });
const z = await startFanoutd({ ini: ini('permessage_deflate = true') });
const results = [];

/** A ping request of exactly n bytes: a unique id and padding in a field
 * the server ignores (protocol v1: unknown fields are ignored). */
let seq = 0;
function pingOf(n, fill = 'x') {
  const id = `p${++seq}`;
  const base = `{"type":"ping","id":"${id}","pad":""}`;
  assert.ok(n >= base.length);
  return { text: `{"type":"ping","id":"${id}","pad":"${fill.repeat(n - base.length)}"}`, id };
}

const pongOf = (c, id, ms) => c.next((fr) => json(fr)?.type === 'pong' && json(fr).id === id, ms, `pong ${id}`);

/** Connect, wait for the hello. */
async function open(server = f, opts) {
  const c = await rawConnect(server.port, opts);
  assert.equal(c.status, 101, c.raw);
  await c.next((fr) => fr.op === OP.TEXT, 3000, 'hello');
  return c;
}

/** The connection is failed with code: a close frame with that code is the
 * last thing sent, and the server closes TCP without waiting for a reply. */
async function expectFail(c, code) {
  const d = await c.done(4000);
  assert.ok(d.close, `a close frame, not a bare TCP close; frames: ${c.describe()}`);
  assert.equal(d.close.code, code, `close code; frames: ${c.describe()}`);
  assert.equal(d.afterClose, 0, 'nothing after the close frame');
}

/** The client closes with payload; the server echoes code (null: empty)
 * and then closes TCP itself. */
async function expectEcho(c, payload, code) {
  c.send(frame(OP.CLOSE, payload));
  const d = await c.done(4000);
  assert.ok(d.close, `a close frame; frames: ${c.describe()}`);
  assert.equal(d.close.code, code);
  assert.equal(d.afterClose, 0);
}

async function kase(cat, id, what, expect, fn) {
  let ok = true;
  await t.test(`${id} ${what}`, async () => {
    try {
      await fn();
    } catch (e) {
      ok = false;
      throw e;
    }
  }, { timeoutMs: 20000 });
  results.push({ cat, id, what, expect, ok });
}

// ---- 0 Opening handshake ----
const HS = '0 Opening handshake';
await kase(HS, '0.1', 'upgrade over HTTP/1.0', 'HTTP 400, no 101', async () => {
  const c = await rawConnect(f.port, { httpVersion: '1.0' });
  assert.equal(c.status, 400, c.raw);
  c.destroy();
});
await kase(HS, '0.2', 'frames sent with the request, before the 101', 'close 1002', async () => {
  const c = await rawConnect(f.port, { extra: frame(OP.TEXT, pingOf(40).text) });
  assert.equal(c.status, 101);
  await expectFail(c, 1002);
});
await kase(HS, '0.3', 'upgrade on a path that is not a WebSocket endpoint', 'no 101', async () => {
  const c = await rawConnect(f.port, { path: '/nope' });
  assert.notEqual(c.status, 101);
  c.destroy();
});

// ---- 1 Framing ----
const FR = '1 Framing';
for (const [id, n] of [['1.1.1', 0], ['1.1.2', 125], ['1.1.3', 126], ['1.1.4', 127], ['1.1.5', 128],
  ['1.1.6', 65535], ['1.1.7', 65536]]) {
  await kase(FR, id, `text message of ${n} bytes`, n ? 'answered' : 'error bad_json, stays open', async () => {
    const c = await open();
    if (!n) {
      c.send(frame(OP.TEXT, ''));
      const e = await c.next((fr) => json(fr)?.type === 'error');
      assert.equal(json(e).code, 'bad_json');
      const p = pingOf(40);
      c.send(frame(OP.TEXT, p.text));
      await pongOf(c, p.id);
    } else {
      const p = n >= 30 ? pingOf(n) : null;
      const body = p ? p.text : 'x'.repeat(n);
      c.send(frame(OP.TEXT, body));
      if (p) await pongOf(c, p.id);
    }
    c.destroy();
  });
}
await kase(FR, '1.1.8', 'text message of 65536 bytes sent in 997-byte pieces', 'answered', async () => {
  const c = await open();
  const p = pingOf(65536, 'y');
  const fr = frame(OP.TEXT, p.text);
  for (let i = 0; i < fr.length; i += 997) c.send(fr.subarray(i, i + 997));
  await pongOf(c, p.id);
  c.destroy();
});
await kase(FR, '1.1.9', 'text message sent one byte per write', 'answered', async () => {
  const c = await open();
  const p = pingOf(300);
  const fr = frame(OP.TEXT, p.text);
  for (let i = 0; i < fr.length; i++) c.send(fr.subarray(i, i + 1));
  await pongOf(c, p.id);
  c.destroy();
});
for (const [id, n] of [['1.2.1', 0], ['1.2.2', 125], ['1.2.3', 65535]]) {
  await kase(FR, id, `binary message of ${n} bytes`, 'error bad_request, stays open', async () => {
    const c = await open();
    c.send(frame(OP.BINARY, Buffer.alloc(n, 0xfe)));
    const e = await c.next((fr) => json(fr)?.type === 'error');
    assert.equal(json(e).code, 'bad_request');
    const p = pingOf(40);
    c.send(frame(OP.TEXT, p.text));
    await pongOf(c, p.id);
    c.destroy();
  });
}
await kase(FR, '1.3.1', 'unmasked client frame', 'close 1002', async () => {
  const c = await open();
  c.send(frame(OP.TEXT, pingOf(40).text, { mask: false }));
  await expectFail(c, 1002);
});
await kase(FR, '1.3.2', 'length not in its shortest form (16-bit field for 10 bytes)', 'close 1002', async () => {
  const c = await open();
  const body = Buffer.from('{"a":"bc"}');
  const h = Buffer.from([0x81, 0xfe, 0x00, body.length, 0, 0, 0, 0]);
  c.send(Buffer.concat([h, body]));
  await expectFail(c, 1002);
});
await kase(FR, '1.3.3', 'server frames: unmasked, FIN set, no reserved bits', 'as expected', async () => {
  const c = await open();
  const p = pingOf(200);
  c.send(frame(OP.TEXT, p.text));
  await pongOf(c, p.id);
  for (const fr of c.frames) {
    assert.equal(fr.masked, 0);
    assert.equal(fr.fin, 1);
    assert.equal(fr.rsv, 0);
  }
  c.destroy();
});

// ---- 2 Pings and pongs ----
const PP = '2 Ping/pong';
await kase(PP, '2.1', 'ping without payload', 'pong without payload', async () => {
  const c = await open();
  c.send(frame(OP.PING));
  const pong = await c.next((fr) => fr.op === OP.PONG);
  assert.equal(pong.payload.length, 0);
  c.destroy();
});
await kase(PP, '2.2', 'ping with 125 bytes of binary payload', 'pong with the same payload', async () => {
  const c = await open();
  const pl = Buffer.from([...Array(125).keys()].map((i) => (i * 7) & 255));
  c.send(frame(OP.PING, pl));
  const pong = await c.next((fr) => fr.op === OP.PONG);
  assert.deepEqual(pong.payload, pl);
  c.destroy();
});
await kase(PP, '2.3', 'ping with 126 bytes', 'close 1002 (a close frame, not a TCP drop)', async () => {
  const c = await open();
  c.send(frame(OP.PING, Buffer.alloc(126, 0x61)));
  await expectFail(c, 1002);
});
await kase(PP, '2.4', 'unsolicited pongs, empty and with payload', 'ignored', async () => {
  const c = await open();
  c.send([frame(OP.PONG), frame(OP.PONG, 'unsolicited')]);
  const p = pingOf(40);
  c.send(frame(OP.TEXT, p.text));
  await pongOf(c, p.id);
  assert.equal(c.frames.filter((fr) => fr.op === OP.PONG || fr.op === OP.CLOSE).length, 0);
  c.destroy();
});
await kase(PP, '2.5', 'ten pings in one write', 'answered for the latest one', async () => {
  const c = await open();
  c.send(Buffer.concat([...Array(10).keys()].map((i) => frame(OP.PING, `ping-${i}`))));
  await c.next((fr) => fr.op === OP.PONG && fr.payload.toString() === 'ping-9', 3000, 'pong ping-9');
  c.destroy();
});
await kase(PP, '2.6', 'ping sent one byte per write', 'pong', async () => {
  const c = await open();
  const fr = frame(OP.PING, 'chopped');
  for (let i = 0; i < fr.length; i++) c.send(fr.subarray(i, i + 1));
  const pong = await c.next((x) => x.op === OP.PONG);
  assert.equal(pong.payload.toString(), 'chopped');
  c.destroy();
});
await kase(PP, '2.7', 'ping after the client\'s close frame', 'no pong: only the close reply', async () => {
  const c = await open();
  c.send(Buffer.concat([frame(OP.CLOSE, closePayload(1000)), frame(OP.PING, 'late')]));
  const d = await c.done();
  assert.equal(d.close.code, 1000);
  assert.equal(c.frames.filter((fr) => fr.op === OP.PONG).length, 0);
});

// ---- 3 Reserved bits ----
const RB = '3 Reserved bits';
for (const [id, rsv, op, what] of [['3.1', 4, OP.TEXT, 'RSV1 on a text frame (no extension)'],
  ['3.2', 2, OP.TEXT, 'RSV2 on a text frame'], ['3.3', 1, OP.TEXT, 'RSV3 on a text frame'],
  ['3.4', 3, OP.BINARY, 'RSV2+RSV3 on a binary frame'], ['3.5', 1, OP.PING, 'RSV3 on a ping'],
  ['3.6', 7, OP.CLOSE, 'all reserved bits on a close frame']]) {
  await kase(RB, id, what, 'close 1002', async () => {
    const c = await open();
    c.send(frame(op, op === OP.CLOSE ? closePayload(1000) : 'x', { rsv }));
    await expectFail(c, 1002);
  });
}
await kase(RB, '3.7', 'a good message, then RSV2, then a ping, in one write', 'the good one answered; close 1002; nothing else', async () => {
  const c = await open();
  const p = pingOf(40);
  c.send(Buffer.concat([frame(OP.TEXT, p.text), frame(OP.TEXT, 'x', { rsv: 2 }), frame(OP.PING, 'no')]));
  await expectFail(c, 1002);
  assert.equal(c.text((m) => m.type === 'pong' && m.id === p.id).length, 1);
  assert.equal(c.frames.filter((fr) => fr.op === OP.PONG).length, 0);
});

// ---- 4 Opcodes ----
const OC = '4 Opcodes';
for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
  await kase(OC, `4.${op < 8 ? 1 : 2}.${op}`, `reserved ${op < 8 ? 'non-control' : 'control'} opcode ${op}`, 'close 1002', async () => {
    const c = await open();
    c.send(Buffer.concat([frame(op, op < 8 ? 'payload' : ''), frame(OP.PING, 'no')]));
    await expectFail(c, 1002);
    assert.equal(c.frames.filter((fr) => fr.op === OP.PONG).length, 0);
  });
}

// ---- 5 Fragmentation ----
const FG = '5 Fragmentation';
await kase(FG, '5.1', 'fragmented ping', 'close 1002', async () => {
  const c = await open();
  c.send([frame(OP.PING, 'frag', { fin: false }), frame(OP.CONT, 'ment')]);
  await expectFail(c, 1002);
});
await kase(FG, '5.2', 'fragmented pong', 'close 1002', async () => {
  const c = await open();
  c.send([frame(OP.PONG, 'frag', { fin: false }), frame(OP.CONT, 'ment')]);
  await expectFail(c, 1002);
});
await kase(FG, '5.3', 'text message in two fragments', 'answered', async () => {
  const c = await open();
  const p = pingOf(100);
  c.send([frame(OP.TEXT, p.text.slice(0, 50), { fin: false }), frame(OP.CONT, p.text.slice(50))]);
  await pongOf(c, p.id);
  c.destroy();
});
await kase(FG, '5.4', 'text message in one-byte fragments with empty ones between', 'answered', async () => {
  const c = await open();
  const p = pingOf(60);
  const parts = [];
  for (let i = 0; i < p.text.length; i++) {
    parts.push(frame(i ? OP.CONT : OP.TEXT, p.text[i], { fin: false }));
    parts.push(frame(OP.CONT, '', { fin: false }));
  }
  parts.push(frame(OP.CONT, ''));
  c.send(Buffer.concat(parts));
  await pongOf(c, p.id);
  c.destroy();
});
await kase(FG, '5.5', 'pings between the fragments of a message', 'pongs, then the answer', async () => {
  const c = await open();
  const p = pingOf(80);
  c.send(Buffer.concat([frame(OP.TEXT, p.text.slice(0, 30), { fin: false }), frame(OP.PING, 'a'),
    frame(OP.CONT, p.text.slice(30, 60), { fin: false }), frame(OP.PING, 'b'), frame(OP.CONT, p.text.slice(60))]));
  await pongOf(c, p.id);
  assert.ok(c.frames.some((fr) => fr.op === OP.PONG && fr.payload.toString() === 'b'));
  c.destroy();
});
await kase(FG, '5.6', 'continuation with no message started', 'close 1002', async () => {
  const c = await open();
  c.send(frame(OP.CONT, 'orphan'));
  await expectFail(c, 1002);
});
await kase(FG, '5.7', 'a new text message inside a fragmented one', 'close 1002', async () => {
  const c = await open();
  c.send([frame(OP.TEXT, '{"type":', { fin: false }), frame(OP.TEXT, '"ping"}')]);
  await expectFail(c, 1002);
});
await kase(FG, '5.8', 'fragmented message with pings, sent one byte per write', 'pongs and the answer', async () => {
  const c = await open();
  const p = pingOf(50);
  const all = Buffer.concat([frame(OP.TEXT, p.text.slice(0, 25), { fin: false }), frame(OP.PING, 'mid'), frame(OP.CONT, p.text.slice(25))]);
  for (let i = 0; i < all.length; i++) c.send(all.subarray(i, i + 1));
  await pongOf(c, p.id);
  assert.ok(c.frames.some((fr) => fr.op === OP.PONG));
  c.destroy();
});

// ---- 6 UTF-8 ----
const U8 = '6 UTF-8';
await kase(U8, '6.1', 'multi-byte text (κόσμε, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF)', 'answered', async () => {
  const c = await open();
  const id = 'κόσμε\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}';
  c.send(frame(OP.TEXT, JSON.stringify({ type: 'ping', id })));
  await pongOf(c, id);
  c.destroy();
});
await kase(U8, '6.2', 'valid UTF-8 split between fragments at every byte', 'answered', async () => {
  const c = await open();
  const id = '€𝄞ü';
  const b = Buffer.from(JSON.stringify({ type: 'ping', id }));
  const parts = [];
  for (let i = 0; i < b.length; i++) parts.push(frame(i ? OP.CONT : OP.TEXT, b.subarray(i, i + 1), { fin: i === b.length - 1 }));
  c.send(Buffer.concat(parts));
  await pongOf(c, id);
  c.destroy();
});
const badUtf8 = [
  ['6.3.1', 'overlong "/" (C0 AF)', [0xc0, 0xaf]],
  ['6.3.2', 'overlong 3-byte (E0 80 AF)', [0xe0, 0x80, 0xaf]],
  ['6.3.3', 'UTF-16 surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
  ['6.3.4', 'above U+10FFFF (F4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
  ['6.3.5', 'lone continuation byte (80)', [0x80]],
  ['6.3.6', 'FE and FF', [0xfe, 0xff]],
  ['6.3.7', 'a character cut off at the end (E2 82)', [0xe2, 0x82]],
];
for (const [id, what, bytes] of badUtf8) {
  await kase(U8, id, `invalid UTF-8: ${what}`, 'close 1007', async () => {
    const c = await open();
    c.send(frame(OP.TEXT, Buffer.concat([Buffer.from('{"type":"ping","id":"'), Buffer.from(bytes), Buffer.from('"}')].slice(0, id === '6.3.7' ? 2 : 3))));
    await expectFail(c, 1007);
  });
}
await kase(U8, '6.4', 'fail fast: the first fragment is invalid, the rest is never sent', 'close 1007 at once', async () => {
  const c = await open();
  c.send(frame(OP.TEXT, Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80]), { fin: false }));
  await expectFail(c, 1007);
});
await kase(U8, '6.5', 'fail fast inside a frame: 10 of its 100 bytes sent, one invalid', 'close 1007 at once', async () => {
  const c = await open();
  const whole = frame(OP.TEXT, Buffer.concat([Buffer.from('{"id":"'), Buffer.from([0xff]), Buffer.alloc(92, 0x61)]));
  c.send(whole.subarray(0, 2 + 4 + 10)); // header, key, 10 payload bytes
  await expectFail(c, 1007);
});
await kase(U8, '6.6', 'close reason with invalid UTF-8', 'close 1007', async () => {
  const c = await open();
  c.send(frame(OP.CLOSE, closePayload(1000, Buffer.from([0x61, 0xed, 0xa0, 0x80]))));
  await expectFail(c, 1007);
});

// ---- 7 Close handling ----
const CL = '7 Close handling';
await kase(CL, '7.1', 'close without payload', 'empty close echoed; server closes TCP', async () => {
  const c = await open();
  await expectEcho(c, Buffer.alloc(0), null);
});
await kase(CL, '7.2', 'close 1000 with a reason', '1000 echoed; server closes TCP', async () => {
  const c = await open();
  await expectEcho(c, closePayload(1000, 'bye now'), 1000);
});
await kase(CL, '7.3', 'close with a 1-byte payload', 'close 1002', async () => {
  const c = await open();
  c.send(frame(OP.CLOSE, Buffer.from([0x03])));
  await expectFail(c, 1002);
});
for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
  await kase(CL, `7.4.${code}`, `close with valid code ${code}`, `${code} echoed`, async () => {
    const c = await open();
    await expectEcho(c, closePayload(code), code);
  });
}
for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
  await kase(CL, `7.5.${code}`, `close with invalid code ${code}`, 'close 1002', async () => {
    const c = await open();
    c.send(frame(OP.CLOSE, closePayload(code)));
    await expectFail(c, 1002);
  });
}
await kase(CL, '7.6', 'close with a 123-byte reason (125-byte payload)', 'echoed', async () => {
  const c = await open();
  await expectEcho(c, closePayload(1000, 'r'.repeat(123)), 1000);
});
await kase(CL, '7.7', 'close with a 126-byte payload', 'close 1002', async () => {
  const c = await open();
  c.send(frame(OP.CLOSE, closePayload(1000, 'r'.repeat(124))));
  await expectFail(c, 1002);
});
await kase(CL, '7.8', 'a message after the close frame', 'ignored: only the close reply', async () => {
  const c = await open();
  const p = pingOf(40);
  c.send(Buffer.concat([frame(OP.CLOSE, closePayload(1000)), frame(OP.TEXT, p.text)]));
  const d = await c.done();
  assert.equal(d.close.code, 1000);
  assert.equal(c.text((m) => m.type === 'pong').length, 0);
});
await kase(CL, '7.9', 'server-initiated close (SIGTERM drain, 1001)', 'waits for the client\'s reply, then closes TCP', async () => {
  const g = await startFanoutd({ ini: ini('shutdown_grace_ms = 5000') });
  const c = await open(g);
  process.kill(g.pid, 'SIGTERM');
  const cl = await c.next((fr) => fr.op === OP.CLOSE, 4000, 'close 1001');
  assert.equal(cl.payload.readUInt16BE(0), 1001);
  await sleep(300);
  assert.equal(c.eof, false, 'the server waits for the close reply before closing TCP');
  c.send(frame(OP.CLOSE, closePayload(1001)));
  const d = await c.done(2000);
  assert.equal(d.afterClose, 0);
  assert.equal(await g.stop(), 0);
});
await kase(CL, '7.10', 'server-initiated close, the client never replies', 'TCP closed after the close timeout', async () => {
  const g = await startFanoutd({ ini: ini('shutdown_grace_ms = 20000') });
  const c = await open(g);
  process.kill(g.pid, 'SIGTERM');
  await c.next((fr) => fr.op === OP.CLOSE, 4000, 'close 1001');
  const d = await c.done(9000); // WSCONN_CLOSE_TIMEOUT_S (5 s) after the close frame
  assert.equal(d.close.code, 1001);
  assert.equal(await g.stop(), 0);
});

// ---- 9 Limits ----
const LM = '9 Limits';
await kase(LM, '9.1', `message of exactly max_message_bytes (${MAX})`, 'answered', async () => {
  const c = await open();
  const p = pingOf(MAX, 'm');
  c.send(frame(OP.TEXT, p.text));
  await pongOf(c, p.id, 5000);
  c.destroy();
});
await kase(LM, '9.2', 'a frame header announcing max_message_bytes + 1', 'close 1009 before any payload is sent', async () => {
  const c = await open();
  c.send(frame(OP.TEXT, Buffer.alloc(0), { len: MAX + 1 }));
  await expectFail(c, 1009);
});
await kase(LM, '9.3', 'fragments adding up to more than max_message_bytes', 'close 1009', async () => {
  const c = await open();
  c.send([frame(OP.TEXT, Buffer.alloc(MAX / 2, 0x61), { fin: false }), frame(OP.CONT, Buffer.alloc(MAX / 2 + 1, 0x61))]);
  await expectFail(c, 1009);
});
await kase(LM, '9.4', '1000 requests in one write', '1000 answers in order', async () => {
  const c = await open();
  c.send(Buffer.concat([...Array(1000).keys()].map((i) => frame(OP.TEXT, JSON.stringify({ type: 'ping', id: i })))));
  await c.next((fr) => json(fr)?.id === 999, 10000, 'pong 999');
  const ids = c.text((m) => m.type === 'pong').map((m) => m.id);
  assert.deepEqual(ids, [...Array(1000).keys()]);
  c.destroy();
});
await kase(LM, '9.5', '64-bit length with the top bit set', 'close 1002', async () => {
  const c = await open();
  const h = Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  c.send(h);
  await expectFail(c, 1002);
});

// ---- 12/13 permessage-deflate (RFC 7692) ----
const PD = '12 permessage-deflate';
const OFFER = 'permessage-deflate; client_max_window_bits';
await kase(PD, '12.1', 'the offer browsers send', 'accepted: server_no_context_takeover; client_no_context_takeover', async () => {
  const c = await open(z, { extensions: OFFER });
  assert.equal(c.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  c.destroy();
});
await kase(PD, '12.2', 'server_max_window_bits=10 / =8 / an unknown parameter', '10 honoured; 8 and unknown declined', async () => {
  const a = await open(z, { extensions: 'permessage-deflate; server_max_window_bits=10' });
  assert.match(a.headers['sec-websocket-extensions'], /server_max_window_bits=10/);
  a.destroy();
  const b = await open(z, { extensions: 'permessage-deflate; server_max_window_bits=8' });
  assert.equal(b.headers['sec-websocket-extensions'], undefined);
  b.destroy();
  const d = await open(z, { extensions: 'permessage-deflate; foo=1' });
  assert.equal(d.headers['sec-websocket-extensions'], undefined);
  d.destroy();
  const off = await open(f, { extensions: OFFER }); // permessage_deflate = false
  assert.equal(off.headers['sec-websocket-extensions'], undefined);
  off.destroy();
});
await kase(PD, '12.3', 'a compressed request (RSV1), whole and in fragments', 'answered', async () => {
  const c = await open(z, { extensions: OFFER });
  const p = pingOf(500, 'q');
  c.send(frame(OP.TEXT, deflateMessage(p.text), { rsv: 4 }));
  await pongOf(c, p.id);
  const q = pingOf(300, 'r');
  const zq = deflateMessage(q.text);
  c.send([frame(OP.TEXT, zq.subarray(0, 5), { rsv: 4, fin: false }), frame(OP.CONT, zq.subarray(5))]);
  await pongOf(c, q.id);
  c.destroy();
});
await kase(PD, '12.4', 'a 1 KiB JSON message to a deflate subscriber', 'sent compressed (RSV1), inflates to the message', async () => {
  const c = await open(z, { extensions: OFFER });
  c.send(frame(OP.TEXT, JSON.stringify({ type: 'subscribe', channel: 'zz', id: 's' })));
  await c.next((fr) => json(fr)?.type === 'subscribed');
  const data = { items: [...Array(40).keys()].map((i) => ({ id: i, name: `item-${i}`, price: i * 1.5 })) };
  c.send(frame(OP.TEXT, JSON.stringify({ type: 'publish', channel: 'zz', data })));
  const m = await c.next((fr) => fr.rsv === 4, 3000, 'compressed frame');
  const msg = JSON.parse(inflateMessage(m.payload).toString());
  assert.equal(msg.type, 'message');
  assert.deepEqual(msg.data, data);
  assert.ok(m.payload.length * 3 < JSON.stringify(msg).length, `${m.payload.length} compressed bytes`);
  c.destroy();
});
await kase(PD, '12.5', 'a decompression bomb (1 MiB of zeros, ~1 KiB compressed)', 'close 1009', async () => {
  const c = await open(z, { extensions: OFFER });
  c.send(frame(OP.TEXT, deflateMessage(Buffer.alloc(1 << 20)), { rsv: 4 }));
  await expectFail(c, 1009);
});
await kase(PD, '12.6', 'compressed data that is not deflate', 'close 1007', async () => {
  const c = await open(z, { extensions: OFFER });
  c.send(frame(OP.TEXT, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x12]), { rsv: 4 }));
  await expectFail(c, 1007);
});
await kase(PD, '12.7', 'RSV1 on a continuation frame', 'close 1002', async () => {
  const c = await open(z, { extensions: OFFER });
  const zz = deflateMessage(pingOf(100).text);
  c.send([frame(OP.TEXT, zz.subarray(0, 4), { rsv: 4, fin: false }), frame(OP.CONT, zz.subarray(4), { rsv: 4 })]);
  await expectFail(c, 1002);
});
await kase(PD, '12.8', 'a compressed text message with invalid UTF-8 inside', 'close 1007', async () => {
  const c = await open(z, { extensions: OFFER });
  c.send(frame(OP.TEXT, deflateMessage(Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d])), { rsv: 4 }));
  await expectFail(c, 1007);
});

// ---- results ----
function table() {
  const cats = [...new Set(results.map((r) => r.cat))];
  const lines = ['| category | cases | passed |', '| --- | --- | --- |'];
  for (const cat of cats) {
    const rs = results.filter((r) => r.cat === cat);
    lines.push(`| ${cat} | ${rs.length} | ${rs.filter((r) => r.ok).length} |`);
  }
  lines.push('', '<details><summary>Every case</summary>', '', '| case | what the client does | fanoutd must | result |', '| --- | --- | --- | --- |');
  for (const r of results) lines.push(`| ${r.id} | ${r.what.replace(/\|/g, '\\|')} | ${r.expect} | ${r.ok ? 'pass' : 'FAIL'} |`);
  lines.push('', '</details>');
  return lines.join('\n');
}
const md = table();
t.diag(md);
try { fs.writeFileSync(path.join(BUILDDIR, 'rfc6455-results.md'), md + '\n'); } catch {}
await t.test('README.md carries this results table', async () => {
  const readme = fs.readFileSync(path.join(SRCDIR, 'README.md'), 'utf8');
  const a = readme.indexOf('<!-- rfc6455-results:begin -->');
  const b = readme.indexOf('<!-- rfc6455-results:end -->');
  assert.ok(a >= 0 && b > a, 'README.md has the rfc6455-results markers');
  assert.equal(readme.slice(a + '<!-- rfc6455-results:begin -->'.length, b).trim(), md.trim(),
    'README.md\'s table differs from this run (copy rfc6455-results.md from the build dir)');
});

assert.equal(await f.stop(), 0);
assert.equal(await z.stop(), 0);
t.done();
