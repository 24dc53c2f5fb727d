// page_drain.mjs — the demo page across an instance drain shows every
// update, none twice (issue 10). Two fanoutd share a redis-server (valkey
// backend, history on); a TCP proxy plays the load balancer. A publisher
// sends 300 numbered updates at 100/s through the broker's positioned
// publish; a third of the way in the page's instance gets SIGTERM and the
// proxy holds new connections for a while, so updates are published while
// the page has no server at all. It reconnects to the other instance,
// resumes with its last position, and the updates it missed arrive,
// marked "recovered" in the list and counted; no gap, no duplicate (the
// client's own duplicate filter must never fire either).
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { REDIS_SERVER, haveCommand, startFanoutd, startRedis, sleep } from '../lib/harness.mjs';
import { launch, missingBrowser, newPage, pageState, shot, tcpProxy, waitFor, waitState, waitSubscribed } from './browser.mjs';
import { publishNumbered } from '../integration/fault_env.mjs';

const t = tap();
const UPDATES = 300;
const RATE = 100;
const names = ['setup: redis, two fanoutd behind a proxy, chromium',
  'the page counts every update across a drain: each once, in order, the missed ones recovered',
  'no errors in the page'];
const why = missingBrowser() || (haveCommand(REDIS_SERVER) ? null : `no ${REDIS_SERVER} (apt install redis-server)`);
if (why) {
  for (const n of names) t.skip(n, why);
  t.done();
} else {
  let r, a, b, proxy, browser, page;
  const ini = (port) => `[server]\nshutdown_grace_ms = 2000\n\n[backend valkey]\nplugin = valkey\nurl = redis://127.0.0.1:${port}/0\n`;
  try {
    await t.test(names[0], async () => {
      r = await startRedis();
      [a, b] = await Promise.all([
        startFanoutd({ ini: ini(r.port), instance: 'east', wait: 'ready' }),
        startFanoutd({ ini: ini(r.port), instance: 'west', wait: 'ready' }),
      ]);
      proxy = await tcpProxy([a.port, b.port]);
      browser = await launch();
    });

    await t.test(names[1], async () => {
      page = await newPage(browser);
      await page.goto(proxy.url + '/?channel=updates&base_ms=100&cap_ms=1000');
      await waitState(page, 'open', { instance: 'east' });
      await waitSubscribed(page, ['updates']);
      // Count in the page itself: the list keeps only the newest 200 rows.
      await page.evaluate(() => {
        window.__got = [];
        window.fanout.addEventListener('message', (e) =>
          window.__got.push([e.detail.data.seq, e.detail.offset, e.detail.recovered, e.detail.instance]));
      });
      let drained = null;
      const pub = publishNumbered(r.port, {
        count: UPDATES,
        rate: RATE,
        onSeq: (seq) => {
          if (seq === 100) {
            proxy.hold(); // the page finds no server for a while
            drained = a.stop('SIGTERM');
            setTimeout(() => proxy.release(), 700);
          }
        },
      });
      await waitState(page, 'reconnecting', { timeoutMs: 5000 });
      await shot(page, 'drain-1-between-instances');
      await pub;
      assert.equal(await drained, 0, 'east exits 0 after draining');
      await waitState(page, 'open', { instance: 'west', timeoutMs: 15000 });
      await waitFor(async () => (await page.evaluate(() => window.__got.length)) >= UPDATES, {
        timeoutMs: 15000, what: 'every update in the page',
      });
      await sleep(200); // anything more would be a duplicate
      const got = await page.evaluate(() => window.__got);
      assert.deepEqual(got.map((x) => x[0]), Array.from({ length: UPDATES }, (_, i) => i + 1), 'every seq once, in order');
      for (let i = 1; i < got.length; i++) assert.equal(got[i][1], got[i - 1][1] + 1, `offsets at ${i}`);
      const recovered = got.filter((x) => x[2]);
      assert.ok(recovered.length > 0, 'updates published while away arrived as recovered');
      const firstWest = got.findIndex((x) => x[3] === 'west');
      assert.ok(recovered.every((x) => x[3] === 'west'), 'replayed by the new instance');
      const s = await pageState(page);
      assert.equal(s.gaps, 0, 'no gap: nothing to refetch');
      assert.equal(s.reconnects, 1);
      assert.equal(s.messages, UPDATES);
      assert.equal(s.recovered, recovered.length, 'the recovered counter');
      assert.ok(s.rows.some((x) => x.kind === 'message' && x.recovered), 'recovered rows are marked');
      assert.equal(await page.evaluate(() => window.fanout.stats.duplicates), 0, 'the server sent nothing twice');
      t.diag(`${recovered.length} updates recovered on west (published while the page was away); ` +
        `first update from west: #${firstWest + 1}`);
      await page.evaluate(() => document.querySelector('#updates li.recovered')?.scrollIntoView());
      await shot(page, 'drain-2-recovered');
    }, { timeoutMs: 60000 });

    await t.test(names[2], async () => {
      const errs = page.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
      assert.deepEqual(errs, []);
    });
  } finally {
    if (browser) await browser.close();
    if (proxy) await proxy.close();
    for (const f of [a, b]) if (f) t.diag(`fanoutd ${f.port} exit ${await f.stop().catch((e) => e.message)}`);
    if (r) await r.stop();
  }
  t.done();
}
