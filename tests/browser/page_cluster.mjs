// page_cluster.mjs — two demo pages on two fanoutd processes that share one
// redis-server (valkey-server where present) through the valkey backend:
// an update published to the broker renders on both pages within a second,
// each page showing its own instance; a publish from one page reaches the
// other through the broker.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { REDIS_SERVER, haveCommand, startFanoutd, startRedis } from '../lib/harness.mjs';
import { launch, missingBrowser, newPage, pageState, redisPublisher, shot, waitRow, waitState, waitSubscribed } from './browser.mjs';

const t = tap();
const names = ['setup: redis, two fanoutd (valkey backend) and chromium start',
  'each page connects to its own instance',
  'an update published to the broker renders on both pages within a second',
  'a publish from one page renders on the other', 'no errors in the pages'];
const why = missingBrowser() || (haveCommand(REDIS_SERVER) ? null : `no ${REDIS_SERVER} (apt install redis-server)`);
if (why) {
  for (const n of names) t.skip(n, why);
  t.done();
} else {
  let r, rp, a, b, browser, pa, pb;
  const ini = (port) => `[server]\nallow_publish = true\nshutdown_grace_ms = 1000\n\n` +
    `[backend valkey]\nplugin = valkey\nurl = redis://127.0.0.1:${port}/0\n`;
  try {
    await t.test(names[0], async () => {
      r = await startRedis();
      [a, b] = await Promise.all([
        startFanoutd({ ini: ini(r.port), instance: 'c1', wait: 'ready' }),
        startFanoutd({ ini: ini(r.port), instance: 'c2', wait: 'ready' }),
      ]);
      rp = await redisPublisher(r.port);
      browser = await launch();
    });

    await t.test(names[1], async () => {
      pa = await newPage(browser);
      pb = await newPage(browser);
      await Promise.all([pa.goto(a.url + '/'), pb.goto(b.url + '/')]);
      await waitState(pa, 'open', { instance: 'c1' });
      await waitState(pb, 'open', { instance: 'c2' });
      await Promise.all([waitSubscribed(pa, ['updates']), waitSubscribed(pb, ['updates'])]);
    });

    await t.test(names[2], async () => {
      const t0 = Date.now();
      const receivers = await rp.publish('updates', '{"price":42,"from":"broker"}');
      assert.equal(receivers, 2, 'both instances subscribed at the broker');
      const [ra, rb] = await Promise.all([waitRow(pa, '"price":42', { timeoutMs: 1000 }), waitRow(pb, '"price":42', { timeoutMs: 1000 })]);
      const ms = Math.max(ra.t, rb.t) - t0;
      t.diag(`PUBLISH -> rendered on both pages in ${ms} ms (page clocks), test saw both after ${Date.now() - t0} ms`);
      assert.ok(ms < 1000, `${ms} ms`);
      assert.equal(ra.instance, 'c1');
      assert.equal(rb.instance, 'c2');
      assert.deepEqual(JSON.parse(ra.data), { price: 42, from: 'broker' });
      assert.equal(ra.data, rb.data);
      // Not JSON on the broker: delivered as a JSON string.
      await rp.publish('updates', 'plain text payload');
      const [pa2, pb2] = await Promise.all([waitRow(pa, 'plain text payload'), waitRow(pb, 'plain text payload')]);
      assert.equal(pa2.data, 'plain text payload');
      assert.equal(pb2.data, 'plain text payload');
    });

    await t.test(names[3], async () => {
      await pa.fill('#pub-data', '{"hello":"from c1\'s page"}');
      await pa.click('#pub-form button');
      const [x, y] = await Promise.all([waitRow(pa, 'from c1'), waitRow(pb, 'from c1')]);
      assert.equal(x.instance, 'c1');
      assert.equal(y.instance, 'c2');
      const sa = await pageState(pa);
      const sb = await pageState(pb);
      assert.equal(sa.messages, 3);
      assert.equal(sb.messages, 3);
      await shot(pa, 'cluster-1-page-on-c1');
      await shot(pb, 'cluster-2-page-on-c2');
    });

    await t.test(names[4], async () => {
      assert.deepEqual(pa.errors, []);
      assert.deepEqual(pb.errors, []);
    });
  } finally {
    if (rp) rp.close();
    if (browser) await browser.close();
    for (const f of [a, b]) if (f) t.diag(`fanoutd ${f.port} exit ${await f.stop()}`);
    if (r) await r.stop();
  }
  t.done();
}
