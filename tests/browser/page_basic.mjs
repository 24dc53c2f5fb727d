// page_basic.mjs — the demo page in headless Chromium against one real
// fanoutd (loopback backend): it loads from web_root, connects, shows its
// instance, renders a published update within a second, subscribes and
// unsubscribes through the channel box, publishes through the publish box,
// hides the publish box where allow_publish = false, caps its list.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { SRCDIR, startFanoutd, wsClient } from '../lib/harness.mjs';
import { launch, missingBrowser, newPage, pageState, shot, waitRow, waitState, waitSubscribed } from './browser.mjs';

const t = tap();
const why = missingBrowser();
const names = ['web_root serves every page file intact, several on one keep-alive connection',
  'page loads from web_root, connects and shows its instance',
  'an update published through the loopback backend renders within a second',
  'the publish box publishes; the channel box subscribes and unsubscribes',
  '?channel= in the page URL picks the channels',
  'the list keeps the newest 200 updates, newest first',
  'allow_publish = false: the publish box gives way to a note',
  'dark colour scheme renders', 'no errors in the page'];
if (why) {
  for (const n of names) t.skip(n, why);
  t.done();
} else {
  const ini = (publish) => `[server]\nallow_publish = ${publish}\nshutdown_grace_ms = 1000\n\n[backend loop]\nplugin = loopback\n`;
  let f, browser, page, pub;
  const pages = [];
  try {
    await t.test('setup: fanoutd and chromium start', async () => {
      f = await startFanoutd({ ini: ini(true), instance: 'alpha' });
      browser = await launch();
    });
    await t.test(names[0], async () => {
      // Browsers reuse connections: a second file on the same socket must
      // arrive whole (a short body shows up as ERR_CONTENT_LENGTH_MISMATCH).
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let n = 0;
      const get = (p) => new Promise((resolve, reject) => {
        n += 1;
        http.get({ host: '127.0.0.1', port: f.port, path: p, agent }, (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), socket: res.socket }));
          res.on('error', reject);
        }).on('error', reject).setTimeout(3000, function () { this.destroy(new Error(`GET ${p} (request ${n} on a kept-alive connection): no complete answer within 3 s`)); });
      });
      const types = { 'index.html': /text\/html/, 'app.js': /javascript/, 'fanout.js': /javascript/, 'style.css': /text\/css/ };
      const sockets = new Set();
      try {
        for (const [file, type] of Object.entries(types)) {
          const r = await get('/' + file);
          sockets.add(r.socket);
          assert.equal(r.status, 200, file);
          assert.match(r.headers['content-type'] || '', type, file);
          assert.ok(r.body.equals(fs.readFileSync(path.join(SRCDIR, 'web', file))), `${file}: body differs from the file (${r.body.length} bytes)`);
        }
        const root = await get('/');
        assert.equal(root.status, 200);
        assert.match(root.body.toString(), /<title>fanout/);
      } finally {
        agent.destroy();
      }
      t.diag(`${sockets.size} connection(s) for 5 requests`);
    });

    await t.test(names[1], async () => {
      page = await newPage(browser);
      pages.push(page);
      const r = await page.goto(f.url + '/');
      assert.equal(r.status(), 200);
      assert.match(await page.title(), /fanout/);
      await waitState(page, 'open', { instance: 'alpha' });
      await waitSubscribed(page, ['updates']);
      const s = await pageState(page);
      assert.equal(s.instance, 'alpha');
      assert.equal(s.stateText, 'connected');
      assert.deepEqual(s.channels, ['updates']);
      assert.ok(s.publishVisible);
      await shot(page, 'basic-1-connected');
    });

    await t.test(names[2], async () => {
      pub = await wsClient(f.ws);
      await pub.next('hello');
      const t0 = Date.now();
      pub.send({ type: 'publish', channel: 'updates', data: { text: 'hello from the test', n: 1 }, id: 1 });
      const row = await waitRow(page, 'hello from the test', { timeoutMs: 1000 });
      const ms = row.t - t0;
      t.diag(`publish -> rendered in ${ms} ms (page clock), test saw it after ${Date.now() - t0} ms`);
      assert.ok(ms < 1000, `${ms} ms`);
      assert.equal(row.instance, 'alpha');
      assert.equal(row.channel, 'updates');
      assert.deepEqual(JSON.parse(row.data), { text: 'hello from the test', n: 1 });
      assert.equal((await pub.next((x) => x.id === 1)).type, 'published');
      assert.equal((await pageState(page)).messages, 1);
    });

    await t.test(names[3], async () => {
      await page.fill('#pub-data', '{"from":"the page","ok":true}');
      await page.click('#pub-form button');
      const row = await waitRow(page, '"from":"the page"');
      assert.deepEqual(JSON.parse(row.data), { from: 'the page', ok: true });
      await page.waitForFunction(() => document.getElementById('pub-data').value === '');

      await page.fill('#sub-channel', 'news');
      await page.press('#sub-channel', 'Enter');
      await waitSubscribed(page, ['updates', 'news']);
      pub.send({ type: 'publish', channel: 'news', data: 'breaking', id: 2 });
      const news = await waitRow(page, 'breaking');
      assert.equal(news.channel, 'news');
      await shot(page, 'basic-2-two-channels');

      await page.click('#channels li[data-channel="news"] .x');
      await page.waitForFunction(() => !document.querySelector('#channels li[data-channel="news"]'));
      // Let the unsubscribe reach the server: a ping sent after it is answered after it.
      await page.evaluate(() => new Promise((res) => {
        const c = window.fanout;
        c.unsubscribe('news').then(res, res);
      }));
      pub.send({ type: 'publish', channel: 'news', data: 'after unsubscribe', id: 3 });
      pub.send({ type: 'publish', channel: 'updates', data: 'sentinel', id: 4 });
      await waitRow(page, 'sentinel');
      const s = await pageState(page);
      assert.ok(!s.rows.some((r) => r.data && r.data.includes('after unsubscribe')), 'unsubscribed channel still delivered');
      assert.deepEqual(s.channels, ['updates']);
    });

    await t.test(names[4], async () => {
      const p2 = await newPage(browser);
      pages.push(p2);
      await p2.goto(f.url + '/?channel=alpha.1&channel=beta');
      await waitSubscribed(p2, ['alpha.1', 'beta']);
      assert.deepEqual((await pageState(p2)).channels, ['alpha.1', 'beta']);
      pub.send({ type: 'publish', channel: 'updates', data: 'not for p2', id: 5 });
      pub.send({ type: 'publish', channel: 'beta', data: 'for p2', id: 6 });
      await waitRow(p2, 'for p2');
      assert.ok(!(await pageState(p2)).rows.some((r) => r.data === '"not for p2"' || r.data === 'not for p2'));
    });

    await t.test(names[5], async () => {
      const before = (await pageState(page)).messages;
      for (let i = 1; i <= 230; i++) pub.send({ type: 'publish', channel: 'updates', data: { seq: i } });
      await waitRow(page, '"seq":230', { timeoutMs: 5000 });
      const s = await pageState(page);
      assert.equal(s.messages, before + 230);
      assert.equal(s.rows.length, 200);
      const seqs = s.rows.filter((r) => r.kind === 'message').map((r) => JSON.parse(r.data).seq);
      assert.deepEqual(seqs.slice(0, 3), [230, 229, 228]); // newest first
      assert.equal(seqs.at(-1), 31);
    });

    await t.test(names[6], async () => {
      const g = await startFanoutd({ ini: ini(false), instance: 'readonly' });
      try {
        const p3 = await newPage(browser);
        pages.push(p3);
        await p3.goto(g.url + '/');
        await waitState(p3, 'open', { instance: 'readonly' });
        await p3.fill('#pub-data', 'try');
        await p3.click('#pub-form button');
        await p3.waitForFunction(() => document.getElementById('pub-form').hidden);
        const s = await pageState(p3);
        assert.ok(!s.publishVisible);
        assert.match(s.publishNote, /disabled/i);
        await shot(p3, 'basic-3-publish-forbidden');
        await p3.close();
      } finally {
        assert.equal(await g.stop(), 0);
      }
    });

    await t.test(names[7], async () => {
      const dark = await newPage(browser, { colorScheme: 'dark' });
      pages.push(dark);
      await dark.goto(f.url + '/');
      await waitSubscribed(dark, ['updates']);
      pub.send({ type: 'publish', channel: 'updates', data: { theme: 'dark' } });
      await waitRow(dark, 'dark');
      const bg = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const [r, gg, b] = bg.match(/\d+/g).map(Number);
      assert.ok(r + gg + b < 150, `dark background expected, got ${bg}`);
      await shot(dark, 'basic-4-dark');
    });

    await t.test(names[8], async () => {
      for (const p of pages) assert.deepEqual(p.errors, []);
    });
  } finally {
    if (pub) await pub.close();
    if (browser) await browser.close();
    if (f) {
      const code = await f.stop();
      if (code !== 0) t.diag(`fanoutd exit code ${code}`);
    }
  }
  t.done();
}
