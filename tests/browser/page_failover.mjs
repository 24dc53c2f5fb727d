// page_failover.mjs — the instance serving a page is stopped with SIGTERM:
// the page shows it is reconnecting, reconnects to the other instance and
// renders updates published afterwards. Two fanoutd share a redis-server
// (valkey backend); a small TCP proxy in front of them plays the load
// balancer (first instance that accepts). While the instance drains, the
// proxy holds new connections so the "reconnecting" state can be
// photographed; releasing it lets the page through to the second instance.
// The channels are positioned (the valkey backend keeps history): the page
// resumes with its last positions, so the switch costs no gap notice.
// (page_drain.mjs counts every update across a drain.)
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { REDIS_SERVER, haveCommand, startFanoutd, startRedis } from '../lib/harness.mjs';
import { launch, missingBrowser, newPage, pageState, redisPublisher, shot, tcpProxy, waitRow, waitState, waitSubscribed } from './browser.mjs';

const t = tap();
const names = ['setup: redis, two fanoutd behind a proxy, chromium',
  'page connects through the proxy to the first instance and renders an update',
  'SIGTERM on that instance: the page shows it is reconnecting',
  'the page reconnects to the other instance and renders later updates',
  'no errors in the page'];
const why = missingBrowser() || (haveCommand(REDIS_SERVER) ? null : `no ${REDIS_SERVER} (apt install redis-server)`);
if (why) {
  for (const n of names) t.skip(n, why);
  t.done();
} else {
  let r, rp, a, b, proxy, browser, page;
  const ini = (port) => `[server]\nshutdown_grace_ms = 2000\n\n[backend valkey]\nplugin = valkey\nurl = redis://127.0.0.1:${port}/0\n`;
  try {
    await t.test(names[0], async () => {
      r = await startRedis();
      [a, b] = await Promise.all([
        startFanoutd({ ini: ini(r.port), instance: 'east', wait: 'ready' }),
        startFanoutd({ ini: ini(r.port), instance: 'west', wait: 'ready' }),
      ]);
      proxy = await tcpProxy([a.port, b.port]);
      rp = await redisPublisher(r.port);
      browser = await launch();
    });

    await t.test(names[1], async () => {
      page = await newPage(browser);
      await page.goto(proxy.url + '/?channel=updates&channel=prices');
      await waitState(page, 'open', { instance: 'east' });
      await waitSubscribed(page, ['updates', 'prices']);
      assert.equal(await rp.publish('updates', '{"before":"failover"}'), 1, 'only east has a subscriber');
      const row = await waitRow(page, '"before"', { timeoutMs: 1000 });
      assert.equal(row.instance, 'east');
    });

    let exitA;
    await t.test(names[2], async () => {
      proxy.hold();
      exitA = a.stop('SIGTERM');
      await waitState(page, 'reconnecting', { timeoutMs: 5000 });
      const s = await pageState(page);
      assert.match(s.stateText, /reconnecting/);
      assert.match(s.stateText, /1001/, 'close code 1001 (going away) shown');
      assert.ok(s.rows.some((x) => x.kind === 'status' && /connection lost/.test(x.text)));
      // While the page waits it must not give up or land anywhere.
      await page.waitForFunction(() => document.querySelectorAll('#channels li[data-state="pending"]').length === 2);
      await shot(page, 'failover-1-reconnecting');
      assert.equal(await exitA, 0, 'fanoutd exits 0 after SIGTERM');
    });

    await t.test(names[3], async () => {
      const t0 = Date.now();
      proxy.release();
      await waitState(page, 'open', { instance: 'west', timeoutMs: 15000 });
      await waitSubscribed(page, ['updates', 'prices']);
      t.diag(`reconnected and resubscribed ${Date.now() - t0} ms after the proxy let connections through`);
      assert.equal(await rp.publish('prices', '{"after":"failover"}'), 1, 'only west is left');
      const row = await waitRow(page, '"after"', { timeoutMs: 1000 });
      assert.equal(row.instance, 'west');
      assert.equal(row.channel, 'prices');
      const s = await pageState(page);
      assert.equal(s.reconnects, 1);
      assert.equal(s.gaps, 0, 'resumed with since: nothing to refetch');
      assert.equal(s.messages, 2);
      assert.equal(s.rows.filter((x) => x.kind === 'status' && /resumed .*nothing missed/.test(x.text)).length, 2,
        'one "resumed" row per channel');
      await shot(page, 'failover-2-reconnected');
    });

    await t.test(names[4], async () => {
      // A dropped socket may log a console error ("WebSocket is closed before
      // the connection is established"); anything else is a bug.
      const errs = page.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
      assert.deepEqual(errs, []);
    });
  } finally {
    if (rp) rp.close();
    if (browser) await browser.close();
    if (proxy) await proxy.close();
    for (const f of [a, b]) if (f) t.diag(`fanoutd ${f.port} exit ${await f.stop().catch((e) => e.message)}`);
    if (r) await r.stop();
  }
  t.done();
}
