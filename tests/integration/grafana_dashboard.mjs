// grafana_dashboard.mjs — conf/grafana/fanout.json against the metrics a
// running fanoutd really exports. A real fanoutd (valkey backend on a real
// redis-server) gets a subscriber, a broker message and a refused
// connection, so its counters carry samples; then every PromQL expression of
// the dashboard is checked: each fanout_* metric it names is a family in
// /metrics, and each label it groups or filters by is a label that metric's
// samples carry (or one Prometheus adds when it scrapes: instance, job). The
// series the dashboard exists for are there, and the JSON is a dashboard
// Grafana imports (unique panel ids, a grid position each, the data source
// an input, the instance variable).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { SRCDIR, startFanoutd, startRedis, wsClient, httpGet } from '../lib/harness.mjs';

const t = tap();
const dash = JSON.parse(fs.readFileSync(path.join(SRCDIR, 'conf/grafana/fanout.json'), 'utf8'));
const panels = dash.panels.flatMap((p) => [p, ...(p.panels || [])]);
const exprs = panels.flatMap((p) => (p.targets || []).map((x) => ({ panel: p.title, expr: x.expr })));
const SCRAPE_LABELS = new Set(['instance', 'job']);

await t.test('a dashboard Grafana imports', async () => {
  assert.equal(typeof dash.title, 'string');
  assert.ok(dash.uid && dash.schemaVersion >= 30);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
  for (const p of panels) {
    assert.ok(p.gridPos && ['x', 'y', 'w', 'h'].every((k) => Number.isInteger(p.gridPos[k])), `${p.title}: gridPos`);
    if (p.type === 'row') continue;
    assert.ok(p.targets && p.targets.length, `${p.title}: targets`);
    assert.equal(p.datasource.uid, '${datasource}', `${p.title}: the data source variable`);
    for (const x of p.targets) assert.ok(x.expr && x.refId, `${p.title}: expr and refId`);
  }
  assert.deepEqual(dash.__inputs.map((i) => i.name), ['DS_PROMETHEUS']);
  assert.deepEqual(dash.templating.list.map((v) => v.name), ['datasource', 'instance']);
});

/** {family: Set(label names)} from Prometheus text. */
function families(text) {
  const fam = new Map();
  for (const line of text.split('\n')) {
    let m = line.match(/^# TYPE (\S+) (\S+)$/);
    if (m) { if (!fam.has(m[1])) fam.set(m[1], new Set()); continue; }
    if (!line || line.startsWith('#')) continue;
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s/);
    assert.ok(m, `bad metrics line: ${line}`);
    const labels = fam.get(m[1]) || new Set();
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
    fam.set(m[1], labels);
  }
  return fam;
}

await t.test('every series and label of the dashboard is in a running fanoutd\'s /metrics', async () => {
  let redis, f;
  try {
    redis = await startRedis();
    f = await startFanoutd({
      ini: `[server]\nallowed_origins = https://good.example\n[backend valkey]\nplugin = valkey\nurl = ${redis.url}\n`,
      wait: 'ready',
    });
    const c = await wsClient(f.ws);
    await c.subscribe('dash');
    await redis.cli('PUBLISH', 'dash', '{"n":1}');
    await c.next('message');
    // A refused upgrade, so fanout_refused_total has a sample worth a label.
    await wsClient(f.ws, { headers: { Origin: 'https://evil.example' } }).then((x) => x.close(), () => {});
    const m = await httpGet(f.port, '/metrics');
    assert.equal(m.status, 200);
    const fam = families(m.body);
    assert.ok(fam.size > 10, 'fanoutd exports metrics');
    const problems = [];
    for (const { panel, expr } of exprs) {
      const names = [...new Set(expr.match(/\bfanout_[a-z0-9_]+\b/g) || [])];
      if (!names.length) problems.push(`${panel}: no fanout_ metric in ${expr}`);
      for (const n of names) if (!fam.has(n)) problems.push(`${panel}: ${n} is not exported`);
      const used = new Set();
      for (const g of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
        for (const l of g[1].split(',').map((s) => s.trim()).filter(Boolean)) used.add(l);
      for (const g of expr.matchAll(/\{([^}]*)\}/g))
        for (const l of g[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) used.add(l[1]);
      for (const l of used) {
        if (SCRAPE_LABELS.has(l)) continue;
        if (!names.some((n) => fam.get(n)?.has(l)))
          problems.push(`${panel}: label ${l} is on none of ${names.join(', ')}`);
      }
    }
    assert.deepEqual(problems, [], problems.join('\n'));
    // What the dashboard is for (issue 15): clients, deliveries/s, queued
    // bytes, slow-consumer cuts, backend state, recoveries and what clients
    // missed.
    const all = exprs.map((x) => x.expr).join('\n');
    for (const n of ['fanout_clients', 'fanout_deliveries_total', 'fanout_queue_bytes',
      'fanout_slow_client_disconnects_total', 'fanout_queue_budget_disconnects_total',
      'fanout_queue_pinned_bytes', 'fanout_backend_up', 'fanout_gaps_total',
      'fanout_recovery_results_total', 'fanout_holes_total'])
      assert.ok(all.includes(n), `the dashboard shows ${n}`);
    t.diag(`${exprs.length} expressions over ${new Set(all.match(/\bfanout_[a-z0-9_]+\b/g)).size} metrics checked against ${fam.size} exported families`);
    await c.close();
  } finally {
    if (f) assert.equal(await f.stop(), 0);
    if (redis) await redis.stop();
  }
});

t.done();
