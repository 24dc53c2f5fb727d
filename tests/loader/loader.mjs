// loader.mjs — the plugin host refuses every broken plugin with one line
// naming the file and the reason, and the documented exit code; and a
// config error names FILE:LINE. Runs the real fanoutd binary.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import { BUILDDIR, FANOUTD, run, tmpDir, pluginPath, freePort, startFanoutd, wsClient } from '../lib/harness.mjs';

const t = tap();
const bad = (kind) => path.join(BUILDDIR, 'tests/loader/.libs', `bad_${kind}.so`);
const dir = tmpDir('fanout-loader-');

async function fanoutd(ini, extra = []) {
  const port = await freePort();
  const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.ini`);
  fs.writeFileSync(file, ini);
  return run(FANOUTD, ['-c', file, '-o', `server.listen=127.0.0.1:${port}`, '-o', 'server.web_root=', ...extra], { timeoutMs: 15000 });
}
const withPlugin = (p, more = '') => `[server]\n\n[backend b]\nplugin = ${p}\n${more}`;

await t.test('a plugin built for another ABI major is refused (exit 4, both versions named)', async () => {
  const r = await fanoutd(withPlugin(bad('major')));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /bad_major\.so.*ABI 99\.0.*speaks 1\.2/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

await t.test('a plugin built for a newer ABI minor is refused (exit 4)', async () => {
  const r = await fanoutd(withPlugin(bad('minor')));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /bad_minor\.so.*ABI 1\.3.*speaks 1\.2/);
});

await t.test('a .so without the entry symbol is refused (exit 4)', async () => {
  const r = await fanoutd(withPlugin(bad('nosym')));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /bad_nosym\.so.*no symbol fanout_plugin_v1/);
});

await t.test('a plugin with a NULL mandatory op is refused (exit 4)', async () => {
  const r = await fanoutd(withPlugin(bad('nullop')));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /bad_nullop\.so.*'subscribe' is NULL/);
});

await t.test('a plugin built for an older ABI minor (1.0) loads and serves', async () => {
  const f = await startFanoutd({ ini: withPlugin(bad('oldminor')), wait: 'ready' });
  try {
    const c = await wsClient(f.ws);
    const got = await c.subscribe('old');
    assert.equal(got.channel, 'old');
    assert.equal(got.epoch, undefined, 'a 1.0 plugin has no positioned channels');
    await c.close();
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

await t.test('a missing plugin file is refused (exit 4), by path and by name', async () => {
  let r = await fanoutd(withPlugin('/nonexistent/x.so'));
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /\/nonexistent\/x\.so.*cannot open/);
  r = await fanoutd(withPlugin('nosuchbackend'), ['-o', `server.plugin_dir=${dir}`]);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /nosuchbackend\.so.*cannot open/);
});

await t.test('a plugin whose init fails stops start-up (exit 5)', async () => {
  const r = await fanoutd(withPlugin(bad('initfail')));
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /init refuses on purpose/);
  assert.match(r.stderr, /bad_initfail\.so: init failed/);
});

await t.test('a plugin whose start fails stops start-up (exit 5)', async () => {
  const r = await fanoutd(withPlugin(bad('startfail')));
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /start failed/);
});

await t.test('--check-config lets each backend judge its values: an init that refuses fails it (exit 5)', async () => {
  // init checks values and does no I/O (plugin ABI); --check-config runs it
  // and destroys the state at once, so it refuses what start-up would
  const r = await fanoutd(withPlugin(bad('initfail')), ['--check-config']);
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, /init refuses/);
  assert.doesNotMatch(r.stdout, /\[backend b\]/);
  const ok = await fanoutd(withPlugin(pluginPath('loopback')), ['--check-config']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\[backend b\]/);
});

await t.test('a plugin with a malformed option table is refused (exit 4)', async () => {
  const r = await fanoutd(withPlugin(bad('badopts')), ['--check-config']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /bad_badopts\.so.*option window: min 10 > max 1/);
});

await t.test('--check-config -v: options with their help; a flagged secret is never printed', async () => {
  const ini = withPlugin(bad('options'), 'credential = hunter2-xyz\nwindow_bytes = 128k\n');
  let r = await fanoutd(ini, ['--check-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^credential = \*\*\*$/m);
  assert.match(r.stdout, /^window_bytes = 128k$/m, 'a _bytes option takes a suffix');
  assert.doesNotMatch(r.stdout + r.stderr, /hunter2/);
  assert.doesNotMatch(r.stdout, /^; (API credential|bad 0)/m, 'help only with -v');
  r = await fanoutd(ini, ['--check-config', '-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /hunter2/);
  assert.match(r.stdout, /^; bad 0: a loader test plugin$/m);
  assert.match(r.stdout, /^; API credential for the broker \(string, no default\)\ncredential = \*\*\*$/m);
  assert.match(r.stdout, /^; receive window \(integer 1024\.\.1073741824 \(k, m, g suffixes\), default 64k\)\nwindow_bytes = 128k$/m);
  assert.match(r.stdout, /^; how hard to try \(one of slow\|fast, default fast\)\n; mode = fast$/m, 'an unset option: commented, with its default');
  assert.match(r.stdout, /^; Origin headers accepted at upgrade; \* = any \(SIGHUP applies it\)\nallowed_origins = \*$/m, 'server keys get their help, and whether a reload applies them');
  assert.match(r.stdout, /^; address:port to listen on .* \(a change needs a restart\)\nlisten = /m);
});

await t.test('an unknown backend key is a config error before init (exit 3, FILE:LINE)', async () => {
  const r = await fanoutd(withPlugin(pluginPath('loopback'), 'no_such_key = 1\n'));
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /\.ini:5: \[backend b\] no_such_key: /);
});

await t.test('a bad server value is a config error with FILE:LINE (exit 3)', async () => {
  const r = await fanoutd(`[server]\nmax_clients = lots\n\n[backend b]\nplugin = ${pluginPath('loopback')}\n`);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /\.ini:2: \[server\] max_clients: /);
});

await t.test('a usage error exits 2; --version exits 0', async () => {
  let r = await run(FANOUTD, ['--bogus']);
  assert.equal(r.code, 2);
  r = await run(FANOUTD, ['--version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /fanoutd 0\.1\.0 \(plugin ABI 1\.2\)/);
});

t.done();
