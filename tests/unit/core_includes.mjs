// core_includes.mjs — core/'s modules include each other without a circle
// (issue 12: the hub, session, plugin host, HTTP, metrics, server and
// workers used to form one). A module is a .c and its .h (gate.c +
// gate.h); an edge A -> B is an `#include "B.h"` in A.c or A.h. A lower
// module that must reach a higher one takes a callback from it instead
// (plugin_host_set_events, gate_set_endpoints, loop_count_passes,
// workers_run's server entry). On failure the circle is printed with the
// include lines that make it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';

const t = tap();
const SRCDIR = process.env.FANOUT_SRCDIR || path.resolve(new URL('../..', import.meta.url).pathname);
const core = path.join(SRCDIR, 'core');

/** { module: Map(target module -> 'file:line') } for the files in dir. */
function includeGraph(dir) {
  const files = fs.readdirSync(dir).filter((f) => /\.[ch]$/.test(f));
  const have = new Set(files);
  const mod = (f) => f.replace(/\.[ch]$/, '');
  const g = new Map();
  for (const f of files) {
    if (!g.has(mod(f))) g.set(mod(f), new Map());
    fs.readFileSync(path.join(dir, f), 'utf8').split('\n').forEach((line, i) => {
      const m = /^\s*#\s*include\s+"([^"]+)"/.exec(line);
      if (!m) return;
      const target = path.basename(m[1]);
      if (have.has(target) && mod(target) !== mod(f) && !g.get(mod(f)).has(mod(target)))
        g.get(mod(f)).set(mod(target), `${f}:${i + 1}`);
    });
  }
  return g;
}

/** One circle of g as [a, b, ..., a], or null (depth-first search). */
function findCycle(g) {
  const state = new Map(); // 1: on the current path, 2: done
  const stack = [];
  const visit = (v) => {
    state.set(v, 1);
    stack.push(v);
    for (const w of (g.get(v) || new Map()).keys()) {
      if (state.get(w) === 1) return [...stack.slice(stack.indexOf(w)), w];
      if (!state.has(w)) {
        const c = visit(w);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(v, 2);
    return null;
  };
  for (const v of [...g.keys()].sort()) {
    if (state.has(v)) continue;
    const c = visit(v);
    if (c) return c;
  }
  return null;
}

await t.test('the circle finder finds one (a.c -> b.h, b.c -> c.h, c.h -> a.h)', async () => {
  const dir = fs.mkdtempSync('/tmp/fanout-includes-');
  try {
    fs.writeFileSync(path.join(dir, 'a.c'), '#include "b.h"\n');
    fs.writeFileSync(path.join(dir, 'b.c'), '#include <stdio.h>\n#include "c.h"\n');
    fs.writeFileSync(path.join(dir, 'c.h'), '#include "a.h"\n');
    fs.writeFileSync(path.join(dir, 'a.h'), '');
    fs.writeFileSync(path.join(dir, 'b.h'), '');
    assert.deepEqual(findCycle(includeGraph(dir)), ['a', 'b', 'c', 'a']);
    fs.writeFileSync(path.join(dir, 'c.h'), '');
    assert.equal(findCycle(includeGraph(dir)), null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

await t.test('core/: no module includes one that (through others) includes it', async () => {
  const g = includeGraph(core);
  assert.ok(g.size > 30 && g.has('hub') && g.has('session'), `read ${g.size} modules from ${core}`);
  const c = findCycle(g);
  const how = c ? c.slice(1).map((to, i) => `${g.get(c[i]).get(to)}: #include "${to}.h"`) : [];
  assert.equal(c, null, c ? `circle ${c.join(' -> ')}:\n  ${how.join('\n  ')}` : '');
  t.diag(`${g.size} modules, ${[...g.values()].reduce((n, m) => n + m.size, 0)} include edges, no circle`);
});

t.done();
