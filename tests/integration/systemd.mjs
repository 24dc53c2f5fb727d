// systemd.mjs — fanoutd.service and fanoutd's side of the systemd protocol.
//
//  - the built unit passes `systemd-analyze verify` (ExecStart pointed at
//    the built fanoutd, its Documentation= man pages found in the build);
//  - READY=1 comes only once every backend is up (a Valkey that is not there
//    yet keeps it back, STATUS= says so), WATCHDOG=1 keep-alives follow
//    WATCHDOG_USEC, STOPPING=1 on SIGTERM — through a real notify socket
//    (notify-sink), every message from fanoutd's own pid;
//  - with workers = 2 the supervisor alone speaks, READY=1 once both are up;
//  - started without its config file: exit 3 naming the file, an exit
//    status the unit does not restart on;
//  - fanoutd runs inside the unit's sandbox as far as it can be rebuilt
//    without systemd as PID 1 (none runs on these machines): an unknown uid
//    (DynamicUser), no capabilities, no new privileges, a read-only file
//    system (ProtectSystem=strict), a private /tmp — a subscribe/publish
//    round trip through Valkey under strace, and every syscall it made is
//    in the unit's SystemCallFilter, every socket in RestrictAddressFamilies,
//    no memory both writable and executable (MemoryDenyWriteExecute).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tap } from '../lib/tap.mjs';
import {
  BUILDDIR, FANOUTD, run, startProcess, startRedis, startFanoutd, freePort, tmpDir, waitFor,
  wsClient, haveCommand, pluginPath, sleep,
} from '../lib/harness.mjs';

const t = tap();
const CI = process.env.CI === 'true';
const UNIT = path.join(BUILDDIR, 'conf/fanoutd.service');
const SINK = path.join(BUILDDIR, 'tests/integration/notify-sink');
const unit = fs.readFileSync(UNIT, 'utf8');
const directive = (k) => [...unit.matchAll(new RegExp(`^${k}=(.*)$`, 'gm'))].map((m) => m[1]);
const notifyBuilt = directive('Type')[0] === 'notify';

/** Skip (fail under CI=true) when a prerequisite is missing. */
function need(ok, what) {
  if (ok) return true;
  if (CI) throw new Error(`missing on this CI machine: ${what}`);
  console.log(`# SKIP: ${what}`);
  return false;
}

/** The notify socket: lines "PID MESSAGE" as fanoutd sends them. */
async function notifySink() {
  const dir = tmpDir('fanout-notify-');
  const sock = path.join(dir, 'notify');
  const p = spawn(SINK, [sock], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (l !== 'listening') {
        const sp = l.indexOf(' ');
        lines.push({ pid: Number(l.slice(0, sp)), msg: l.slice(sp + 1) });
      }
    }
  });
  await waitFor(() => fs.existsSync(sock), { what: 'notify socket' });
  return {
    sock, lines,
    msgs: () => lines.map((l) => l.msg),
    has: (m) => lines.some((l) => l.msg === m || l.msg.startsWith(m)),
    stop() { p.stdin.end(); p.kill('SIGTERM'); },
  };
}

await t.test('fanoutd.service passes systemd-analyze verify', async () => {
  if (!need(haveCommand('systemd-analyze'), 'systemd-analyze (apt install systemd)')) return;
  const dir = tmpDir('fanout-unit-');
  // The unit as installed names $(sbindir)/fanoutd: point it at this build,
  // and let `man` find the Documentation= pages in the build tree.
  const text = unit.replace(/^ExecStart=\S+/m, `ExecStart=${FANOUTD}`);
  fs.writeFileSync(path.join(dir, 'fanoutd.service'), text);
  for (const [sec, page] of [['8', 'man/fanoutd.8'], ['5', 'man/fanout.ini.5']]) {
    fs.mkdirSync(path.join(dir, 'man', 'man' + sec), { recursive: true });
    fs.symlinkSync(path.join(BUILDDIR, page), path.join(dir, 'man', 'man' + sec, path.basename(page)));
  }
  const r = await run('systemd-analyze', ['verify', path.join(dir, 'fanoutd.service')],
    { env: { MANPATH: path.join(dir, 'man'), SYSTEMD_LOG_LEVEL: 'notice' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stderr.trim(), '', 'no warnings');
  // What the unit promises.
  assert.deepEqual(directive('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.match(directive('RestartPreventExitStatus')[0], /\b3\b/);
  for (const [k, v] of [['DynamicUser', 'yes'], ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'],
    ['PrivateTmp', 'yes'], ['MemoryDenyWriteExecute', 'yes'], ['CapabilityBoundingSet', '']])
    assert.deepEqual(directive(k), [v], k);
  if (notifyBuilt) assert.deepEqual(directive('WatchdogSec'), ['30s']);
});

await t.test('READY=1 once the backend is up; STATUS while waiting; WATCHDOG=1; STOPPING=1', async () => {
  if (!need(notifyBuilt, 'fanoutd built with libsystemd (apt install libsystemd-dev)')) return;
  const sink = await notifySink();
  const rport = await freePort();
  const f = await startFanoutd({
    ini: `[backend v]\nplugin = valkey\nurl = redis://127.0.0.1:${rport}/0\nreconnect_max_ms = 200\n`,
    env: { NOTIFY_SOCKET: sink.sock, WATCHDOG_USEC: '400000' },
  });
  let redis;
  try {
    await waitFor(() => sink.has('STATUS=waiting: v down'), { what: 'STATUS=waiting' });
    assert.equal((await f.http('/readyz')).status, 503);
    assert.ok(!sink.has('READY=1'), 'no READY=1 while the broker is missing');
    await waitFor(() => sink.msgs().filter((m) => m === 'WATCHDOG=1').length >= 2,
      { what: 'watchdog keep-alives (every 200 ms)' });
    redis = await startRedis({ port: rport });
    await waitFor(() => sink.has('READY=1'), { what: 'READY=1', timeoutMs: 15000 });
    assert.equal((await f.http('/readyz')).status, 200, 'READY=1 means /readyz answers 200');
    assert.ok(sink.has('STATUS=serving'));
    assert.equal(sink.msgs().filter((m) => m === 'READY=1').length, 1);
    assert.ok(sink.lines.every((l) => l.pid === f.pid), 'every message from fanoutd itself');
    assert.equal(await f.stop(), 0);
    // sent before fanoutd exited, but read by the sink and piped to us
    // after: the exit can be seen first
    await waitFor(() => sink.has('STOPPING=1'), { what: 'STOPPING=1' });
  } finally {
    sink.stop();
    if (redis) await redis.stop();
  }
});

await t.test('workers = 2: the supervisor alone says READY=1, once both workers are up', async () => {
  if (!need(notifyBuilt, 'fanoutd built with libsystemd')) return;
  const sink = await notifySink();
  const f = await startFanoutd({
    ini: `[server]\nworkers = 2\n[backend m]\nplugin = loopback\n`,
    env: { NOTIFY_SOCKET: sink.sock },
  });
  try {
    await waitFor(() => sink.has('READY=1'), { what: 'READY=1', timeoutMs: 15000 });
    assert.equal((await f.http('/readyz')).status, 200);
    assert.ok(sink.has('STATUS=serving (2 workers)'), sink.msgs().join('\n'));
    assert.ok(sink.lines.every((l) => l.pid === f.pid), 'no worker speaks to systemd');
    assert.equal(await f.stop(), 0);
    // sent before fanoutd exited, but read by the sink and piped to us
    // after: the exit can be seen first
    await waitFor(() => sink.has('STOPPING=1'), { what: 'STOPPING=1' });
  } finally {
    sink.stop();
  }
});

await t.test('started without its config: exit 3 naming the file; the unit does not restart on 3', async () => {
  const conf = path.join(tmpDir('fanout-noconf-'), 'etc/fanout/fanout.ini');
  // The unit's command line, with this build's fanoutd and a config path that is not there.
  const exec = directive('ExecStart')[0].split(/\s+/);
  assert.equal(exec[1], '-c');
  const r = await run(FANOUTD, ['-c', conf]);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stderr.trim(), `${conf}: cannot open: No such file or directory`);
  assert.ok(directive('RestartPreventExitStatus')[0].split(/\s+/).includes('3'));
});

/** Every syscall group of `systemd-analyze syscall-filter`, expanded. */
async function syscallGroups() {
  const r = await run('systemd-analyze', ['syscall-filter']);
  assert.equal(r.code, 0, r.stderr);
  const groups = {};
  let cur = null;
  for (const line of r.stdout.split('\n')) {
    const g = line.match(/^(@[a-z-]+)$/);
    if (g) { cur = groups[g[1]] = []; continue; }
    const m = line.match(/^\s+([@a-z0-9_-]+)$/);
    if (m && cur) cur.push(m[1]);
  }
  const expand = (name, seen = new Set()) => {
    if (!name.startsWith('@')) return [name];
    if (seen.has(name)) return [];
    seen.add(name);
    return (groups[name] || []).flatMap((x) => expand(x, seen));
  };
  return expand;
}

await t.test("fanoutd runs in the unit's sandbox: round trip, syscalls, address families, W^X", async () => {
  const root = process.getuid && process.getuid() === 0;
  if (!need(root && haveCommand('unshare') && haveCommand('setpriv') && haveCommand('strace') &&
    haveCommand('systemd-analyze'), 'root, unshare, setpriv (util-linux), strace, systemd-analyze')) return;
  const redis = await startRedis();
  // Config and plugins where the sandbox can read them: not under /tmp
  // (private there), in a world-readable directory of the build tree.
  const dir = fs.mkdtempSync(path.join(BUILDDIR, 'tests/integration/sandbox-'));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const ini = path.join(dir, 'fanout.ini');
  fs.writeFileSync(ini, `[server]\nlisten = 127.0.0.1:${port}\nallow_publish = true\nweb_root =\n` +
    `[backend v]\nplugin = ${pluginPath('valkey')}\nurl = ${redis.url}\n`, { mode: 0o644 });
  const script = [
    'set -e',
    'mount -o remount,bind,ro /', // ProtectSystem=strict
    // A build tree under /tmp (a CI clone there) stays visible through the
    // private /tmp, read-only, as a unit's ExecStart binary would be.
    'case "$2" in /tmp/*) mount --bind "$2" /mnt ;; esac',
    'mount -t tmpfs -o mode=1777 tmpfs /tmp', // PrivateTmp=yes
    'case "$2" in /tmp/*) mkdir -p "$2" && mount --bind /mnt "$2" && mount -o remount,bind,ro "$2" ;; esac',
    // DynamicUser=yes, CapabilityBoundingSet=, NoNewPrivileges=yes
    'setpriv --reuid=61234 --regid=61234 --clear-groups --no-new-privs --inh-caps=-all ' +
      '--bounding-set=-all -- strace -f -qq -o /tmp/trace -- "$0" -c "$1" & pid=$!',
    'echo "strace $pid"',
    'wait $pid && rc=0 || rc=$?',
    'echo "exit $rc"',
    'sed "s/^/T /" /tmp/trace',
  ].join('\n');
  const p = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, FANOUTD, ini, BUILDDIR],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => p.on('exit', r));
  let fanoutdPid = 0, done = false;
  try {
    const stracePid = Number((await waitFor(() => out.match(/^strace (\d+)$/m), { what: 'strace pid' }))[1]);
    // strace's child running fanoutd (strace forks short-lived probes first).
    // Ends early when the sandboxed shell reports the exit (fanoutd never
    // came up); either way a failure shows what the sandbox printed.
    const said = () => `\nstdout:\n${out.slice(-2000)}\nstderr:\n${err.slice(-3000)}`;
    fanoutdPid = await waitFor(() => {
      if (/^exit \d+$/m.test(out)) return 'exited';
      let kids = [];
      try { kids = fs.readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim().split(/\s+/); } catch {}
      return kids.map(Number).find((k) => {
        try { return fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0')[0] === FANOUTD; } catch { return false; }
      });
    }, { what: 'fanoutd pid', timeoutMs: 30000 }).catch((e) => assert.fail(e.message + said()));
    if (fanoutdPid === 'exited') {
      fanoutdPid = 0;
      assert.fail(`fanoutd ended in the sandbox before it was seen${said()}`);
    }
    const status = fs.readFileSync(`/proc/${fanoutdPid}/status`, 'utf8');
    assert.match(status, /^Uid:\s+61234\s/m, 'runs as the unprivileged uid');
    assert.match(status, /^CapEff:\s+0+$/m, 'no capabilities');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    await waitFor(async () => {
      try { return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200; } catch { return false; }
    }, { what: 'fanoutd ready in the sandbox', timeoutMs: 20000 });
    const c = await wsClient(`ws://127.0.0.1:${port}/ws`);
    await c.subscribe('sandboxed');
    c.send({ type: 'publish', channel: 'sandboxed', data: { n: 1 } });
    const m = await c.next((x) => x.type === 'message', 10000);
    assert.deepEqual(m.data, { n: 1 });
    await c.close();
    process.kill(fanoutdPid, 'SIGTERM');
    await exited;
    done = true;
  } finally {
    if (!done) {
      if (fanoutdPid) try { process.kill(fanoutdPid, 'SIGKILL'); } catch {}
      p.kill('SIGKILL');
    }
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.match(out, /^exit 0$/m, `fanoutd exit status in the sandbox\n${err.slice(-3000)}`);
  const trace = out.split('\n').filter((l) => l.startsWith('T ')).map((l) => l.slice(2));
  assert.ok(trace.length > 100, 'strace saw fanoutd');
  const used = new Set();
  for (const l of trace) {
    const m = l.match(/^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)/);
    if (m) used.add(m[1]);
  }
  const expand = await syscallGroups();
  const allowed = new Set(expand('@system-service'));
  for (const s of expand('@privileged')) allowed.delete(s);
  const refused = [...used].filter((s) => !allowed.has(s));
  assert.deepEqual(refused, [], `syscalls outside SystemCallFilter=@system-service ~@privileged (used: ${[...used].sort().join(' ')})`);
  const families = new Set(trace.map((l) => l.match(/\bsocket\((AF_[A-Z0-9]+)/)).filter(Boolean).map((m) => m[1]));
  assert.deepEqual([...families].filter((f) => !['AF_INET', 'AF_INET6', 'AF_UNIX'].includes(f)), [],
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX');
  const wx = trace.filter((l) => /\b(mmap|mprotect|pkey_mprotect)\(.*PROT_EXEC/.test(l) &&
    (/PROT_WRITE/.test(l) || /^\d+\s+(pkey_)?mprotect\(/.test(l)));
  assert.deepEqual(wx, [], 'MemoryDenyWriteExecute: no W+X mapping, no mprotect(PROT_EXEC)');
  console.log(`# ${trace.length} syscalls traced, ${used.size} distinct, all allowed: ${[...used].sort().join(' ')}`);
});

t.done();
