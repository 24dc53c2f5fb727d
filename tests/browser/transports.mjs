// transports.mjs — fanoutd's tRPC and Server-Sent Events endpoints from a
// real browser (Debian's Chromium through playwright-core), through nginx
// to three instances with a shared redis-server (valkey backend, history):
//
//  - a React page using tRPC's React Query integration
//    (trpc.onUpdates.useSubscription, @trpc/react-query 11.19), bundled
//    here with esbuild from tests/browser/trpc-react/ (the shipped demo has
//    no build step): the list updates live, and when the instance serving
//    it drains, the page moves to another one and the list ends with every
//    update exactly once, in order;
//  - EventSource on two channels: the stream ends on drain, the browser
//    reconnects with Last-Event-ID and misses nothing; a position that
//    cannot be resumed reaches the page as `event: gap` per channel.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { tap } from '../lib/tap.mjs';
import { SRCDIR, parseMetrics, tmpDir, waitFor } from '../lib/harness.mjs';
import { launch, missingBrowser, newPage, shot } from './browser.mjs';
import { missing, startCluster, push, checkRun } from '../integration/cluster_env.mjs';

const t = tap();
const UPDATES = 200;
const RATE = 80;
const names = ['setup: bundle the React page, redis, three fanoutd, nginx, chromium',
  'React + tRPC: the list updates live and survives a drain (every update once, in order)',
  'EventSource: two channels, a drain, Last-Event-ID: every update once, in order',
  'EventSource: a Last-Event-ID that cannot be resumed arrives as event: gap, one per channel',
  'no errors in the pages'];
const why = missingBrowser() || (missing().length ? 'missing: ' + missing().join(', ') : null);

/** Bundle the React page into dir (app.js + index.html) with esbuild. */
async function bundle(dir) {
  const src = path.join(SRCDIR, 'tests/browser/trpc-react');
  const require = createRequire(path.join(src, 'package.json'));
  const esbuild = require('esbuild');
  await esbuild.build({
    entryPoints: [path.join(src, 'src/main.jsx')],
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    outfile: path.join(dir, 'app.js'),
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(src, 'index.html'), path.join(dir, 'index.html'));
  fs.writeFileSync(path.join(dir, 'sse.html'), `<!doctype html><meta charset="utf-8"><title>sse</title><link rel="icon" href="data:,">
<script>
window.got = []; window.gaps = []; window.opens = 0; window.subscribed = [];
const es = new EventSource('/sse?channel=updates&channel=room.1');
es.onopen = () => window.opens++;
es.onmessage = (e) => window.got.push(JSON.parse(e.data));
es.addEventListener('subscribed', (e) => window.subscribed.push(JSON.parse(e.data)));
es.addEventListener('gap', (e) => window.gaps.push(JSON.parse(e.data)));
</script>`);
  // nginx's workers (not root) read these
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
}

async function serving(cl, transport) {
  return waitFor(async () => {
    for (const n of cl.names) {
      if (!cl.byName[n]) continue;
      const r = await cl.byName[n].http('/metrics').catch(() => null);
      if (r && parseMetrics(r.body)[`fanout_transport_clients{transport="${transport}"}`] >= 1)
        return n;
    }
    return null;
  }, { what: `the instance serving the ${transport} page` });
}

if (why) {
  for (const n of names) t.skip(n, why);
} else {
  let cl, browser;
  const pages = [];
  try {
    await t.test(names[0], async () => {
      const web = tmpDir('fanout-trpc-page-');
      await bundle(web);
      cl = await startCluster({
        webRoot: web,
        extraServer: '[trpc]\nonUpdates = updates\n',
      });
      browser = await launch();
    }, { timeoutMs: 90000 });

    await t.test(names[1], async () => {
      const page = await newPage(browser);
      pages.push(page);
      await page.goto(cl.nginx.url + '/');
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'pending');
      const victim = await serving(cl, 'trpc');
      const pushing = push(cl.redis, { count: UPDATES, rate: RATE });
      const items = () => page.$$eval('#updates li', (lis) => lis.map((li) => li.textContent));
      await waitFor(async () => (await items()).length >= 50, { what: '50 items', timeoutMs: 10000 });
      await shot(page, 'trpc-react-live');
      const code = await cl.byName[victim].stop('SIGTERM');
      cl.byName[victim] = null;
      assert.equal(code, 0);
      assert.equal((await pushing).code, 0);
      await waitFor(async () => (await items()).length >= UPDATES, { what: `${UPDATES} items`, timeoutMs: 20000 });
      await shot(page, 'trpc-react-after-drain');
      const texts = await items();
      const ids = await page.$$eval('#updates li', (lis) => lis.map((li) => li.dataset.id));
      assert.equal(texts.length, UPDATES);
      assert.equal(new Set(ids).size, UPDATES, 'no update twice');
      // push's demo text carries no seq: the ids' offsets say the order
      const offs = ids.map((id) => Number(id.split(':')[1]));
      for (let i = 1; i < offs.length; i++) assert.equal(offs[i], offs[i - 1] + 1);
      assert.equal(await page.$eval('#status', (e) => e.textContent), 'pending');
      assert.notEqual(await serving(cl, 'trpc'), victim);
    }, { timeoutMs: 60000 });

    await t.test(names[2], async () => {
      const page = await newPage(browser);
      pages.push(page);
      await page.goto(cl.nginx.url + '/sse.html');
      await page.waitForFunction(() => window.subscribed.length === 2);
      const victim = await serving(cl, 'sse');
      const pushing = push(cl.redis, { count: UPDATES, rate: RATE });
      await page.waitForFunction(() => window.got.length >= 50, null, { timeout: 10000 });
      const code = await cl.byName[victim].stop('SIGTERM');
      cl.byName[victim] = null;
      assert.equal(code, 0);
      assert.equal((await pushing).code, 0);
      await page.waitForFunction((n) => window.got.length >= n, UPDATES, { timeout: 20000 });
      const st = await page.evaluate(() => ({ got: window.got, gaps: window.gaps, opens: window.opens, subscribed: window.subscribed }));
      assert.deepEqual(st.gaps, []);
      assert.equal(st.opens, 2);
      assert.equal(checkRun(st.got.map((m) => m.data.seq), 1, UPDATES), '');
      assert.ok(st.subscribed.slice(2).every((s) => s.recovered === true), JSON.stringify(st.subscribed));
    }, { timeoutMs: 60000 });

    await t.test(names[3], async () => {
      const page = pages[pages.length - 1];
      // ?lastEventId= (EventSource cannot set the header itself): an id of another channel list
      const gaps = await page.evaluate(() => new Promise((resolve) => {
        const got = [];
        const es = new EventSource('/sse?channel=updates&channel=room.1&lastEventId=' + encodeURIComponent('v1;00000000;x:1,y:2'));
        const done = () => { es.close(); resolve(got); };
        es.addEventListener('gap', (e) => { got.push(JSON.parse(e.data)); if (got.length === 2) done(); });
        setTimeout(done, 10000);
      }));
      assert.deepEqual(gaps.map((g) => g.channel).sort(), ['room.1', 'updates'], JSON.stringify(gaps));
      assert.ok(gaps.every((g) => g.type === 'gap' && /cannot resume/.test(g.reason)), JSON.stringify(gaps));
    }, { timeoutMs: 30000 });

    await t.test(names[4], async () => {
      for (const p of pages) assert.deepEqual(p.errors, []);
    });
  } finally {
    await browser?.close().catch(() => {});
    await cl?.stop().catch(() => {});
  }
}
t.done();
