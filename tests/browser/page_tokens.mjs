// page_tokens.mjs — web/fanout.js with access tokens in headless Chromium
// against a real fanoutd with [auth] jwt_secret: getToken() is asked before
// every connection (the token goes in the URL); a refused upgrade (401) is
// only a failed socket to a browser, so the client backs off and asks again;
// before exp the token is refreshed in-band (auth -> authed) and the
// connection outlives the first token; a token that cannot be refreshed
// expires, the server closes 4003 and the client comes back at once with a
// fresh one. Tokens are minted by the test (node crypto) through a function
// exposed to the page.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startFanoutd, wsClient } from '../lib/harness.mjs';
import { sign, now } from '../lib/jwt.mjs';
import { launch, missingBrowser, newPage } from './browser.mjs';

const t = tap();
const why = missingBrowser();
const SECRET = 'browser-secret-browser-secret-0123';
const names = ['setup: fanoutd with tokens and chromium start',
  'getToken before every attempt: a bad token backs off, a good one connects',
  'refreshed in-band before exp: the connection outlives its first token',
  'not refreshed: 4003, then back at once with a fresh token'];
if (why) {
  for (const n of names) t.skip(n, why);
  t.done();
} else {
  let f, browser, page;
  const minted = []; // every token handed to the page: [kind, exp]
  try {
    await t.test(names[0], async () => {
      f = await startFanoutd({ ini: `[server]\nallow_publish = true\n[auth]\njwt_secret = ${SECRET}\n[backend loop]\nplugin = loopback\n` });
      browser = await launch();
      page = await newPage(browser);
      // kind: 'good' (ttl s), 'bad' (wrong secret)
      await page.exposeFunction('mintToken', (kind, ttl) => {
        const exp = now() + ttl;
        minted.push([kind, exp]);
        const claims = { exp, sub: 'u1', channels: ['news.*'] };
        return kind === 'bad' ? sign('HS256', SECRET + 'x', claims) : sign('HS256', SECRET, claims);
      });
      await page.goto(`${f.url}/healthz`); // same origin as /fanout.js and /ws
    });

    await t.test(names[1], async () => {
      const r = await page.evaluate(async (ws) => {
        const { FanoutClient } = await import('/fanout.js');
        let calls = 0;
        const statuses = [];
        const c = new FanoutClient(ws, {
          baseMs: 100, capMs: 400, channels: ['news.1'],
          getToken: () => window.mintToken(++calls < 3 ? 'bad' : 'good', 60),
        });
        c.addEventListener('status', (e) => statuses.push(e.detail.state));
        const sub = new Promise((res) => c.addEventListener('subscribed', res, { once: true }));
        await c.connect();
        await sub;
        c.close();
        return { calls, statuses, reconnecting: statuses.filter((s) => s === 'reconnecting').length };
      }, f.ws);
      assert.equal(r.calls, 3, JSON.stringify(r));
      assert.equal(r.reconnecting, 2, JSON.stringify(r));
      assert.deepEqual(minted.map((m) => m[0]).slice(0, 3), ['bad', 'bad', 'good']);
    });

    await t.test(names[2], async () => {
      const r = await page.evaluate(async (ws) => {
        const { FanoutClient } = await import('/fanout.js');
        let calls = 0;
        const closes = [];
        const c = new FanoutClient(ws, {
          channels: ['news.2'], refreshBeforeMs: 2000,
          getToken: () => window.mintToken('good', ++calls === 1 ? 3 : 60),
        });
        c.addEventListener('status', (e) => e.detail.state === 'reconnecting' && closes.push(e.detail.code));
        const authed = new Promise((res) => c.addEventListener('authed', (e) => res(e.detail), { once: true }));
        await c.connect();
        const a = await authed;
        await new Promise((res) => setTimeout(res, 4000)); // past the first token's exp
        const sub = await c.subscribe('news.9'); // still served, by the second token
        c.close();
        return { calls, closes, expiresAt: a.expiresAt, sub: sub.type };
      }, f.ws);
      assert.equal(r.calls, 2, JSON.stringify(r));
      assert.deepEqual(r.closes, [], 'no reconnect');
      assert.equal(r.sub, 'subscribed');
      assert.ok(r.expiresAt > now() + 30, JSON.stringify(r));
    });

    await t.test(names[3], async () => {
      const pub = await wsClient(`${f.ws}?token=${sign('HS256', SECRET, { exp: now() + 60, publish: ['news.*'] })}`);
      const r = await page.evaluate(async (ws) => {
        const { FanoutClient } = await import('/fanout.js');
        let calls = 0;
        const closes = [], errors = [];
        // first token: 2 s; the refresh offers a bad one (refused), so the
        // first expires; then good ones
        const c = new FanoutClient(ws, {
          channels: ['news.3'], refreshBeforeMs: 1000,
          getToken: () => (++calls === 1 ? window.mintToken('good', 2) : calls === 2 ? window.mintToken('bad', 60) : window.mintToken('good', 60)),
        });
        c.addEventListener('status', (e) => e.detail.state === 'reconnecting' && closes.push([e.detail.code, e.detail.delayMs]));
        c.addEventListener('error', (e) => errors.push(e.detail.code));
        let hellos = 0;
        const back = new Promise((res) => c.addEventListener('hello', () => ++hellos === 2 && res()));
        const got = new Promise((res) => c.addEventListener('message', (e) => res(e.detail.data), { once: true }));
        await c.connect();
        await back;
        window.fanoutSubscribed = new Promise((res) => c.addEventListener('subscribed', res, { once: true }));
        await window.fanoutSubscribed;
        window.fanoutGot = got;
        window.fanoutState = { calls, closes, errors };
        window.fanoutClient = c;
        return { calls, closes, errors };
      }, f.ws);
      assert.equal(r.calls, 3, JSON.stringify(r));
      assert.deepEqual(r.closes.map((x) => x[0]), [4003], JSON.stringify(r));
      assert.ok(r.closes[0][1] < 500, `came back after ${r.closes[0][1]} ms`);
      assert.ok(r.errors.includes('forbidden'), JSON.stringify(r)); // the refused refresh
      // and the new connection works: a message published now arrives
      pub.send({ type: 'publish', channel: 'news.3', data: { after: 4003 }, id: 1 });
      assert.equal((await pub.next((fr) => fr.id === 1)).type, 'published');
      assert.deepEqual(await page.evaluate(() => window.fanoutGot), { after: 4003 });
      await page.evaluate(() => window.fanoutClient.close());
      await pub.close();
    });
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (f) assert.equal(await f.stop(), 0);
  }
  t.done();
}
