// harness.mjs — starts real servers for fanout's integration tests and
// stops them by PID: redis-server (or valkey-server), fanoutd, and gives a
// small WebSocket client (the `ws` package) with frame waiting.
//
// Everything binds to 127.0.0.1 on free ports. Every child started here is
// killed when the test process exits, even on failure.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import WebSocket from 'ws';

export const SRCDIR = process.env.FANOUT_SRCDIR || path.resolve(new URL('../..', import.meta.url).pathname);
export const BUILDDIR = process.env.FANOUT_BUILDDIR || SRCDIR;
export const FANOUTD = process.env.FANOUTD || path.join(BUILDDIR, 'core/fanoutd');
export const FANOUT_CLI = process.env.FANOUT_CLI || path.join(BUILDDIR, 'tools/fanout-cli');
export const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
export const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';
export const ASAN = process.env.FANOUT_ASAN === 'yes';
export { WebSocket };

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll fn() until it returns a truthy value or the deadline passes. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await sleep(intervalMs);
  }
}

// Ports are taken from below the kernel's ephemeral range: a port the kernel
// hands out for listen(0) is in that range, where the local end of any
// outgoing connection may take it before the server we start binds it
// (EADDRINUSE on a busy machine). Below it only listeners compete.
const EPHEMERAL_LOW = (() => {
  try {
    const lo = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
    return lo > 12000 ? lo : 32768;
  } catch {
    return 32768;
  }
})();
const handedOut = new Set();

/** A free TCP port on 127.0.0.1 (not handed out before by this process). */
export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = 10000 + Math.floor(Math.random() * (EPHEMERAL_LOW - 10000));
    if (handedOut.has(port)) continue;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.unref();
      s.on('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port below the ephemeral range');
}

export function tmpDir(prefix = 'fanout-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Run a program to completion; resolves {code, stdout, stderr}. */
export function run(cmd, args, { input, env, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(p);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(t); children.delete(p); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(t);
      children.delete(p);
      resolve({ code, signal, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Start a child process we track; returns {proc, pid, log(), exited: Promise<{code, signal}>}. */
export function startProcess(cmd, args, { env, cwd } = {}) {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    });
  });
  return { proc, pid: proc.pid, log: () => out, exited };
}

/** GET a path; resolves {status, body, headers}. */
export function httpGet(port, p, { host = '127.0.0.1', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: p, headers, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('http timeout')));
    req.on('error', reject);
  });
}

/** Start redis-server (valkey-server where present) on a free loopback port. */
export async function startRedis({ port, args = [] } = {}) {
  port = port || (await freePort());
  const dir = tmpDir('fanout-redis-');
  const p = startProcess(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no', ...args,
  ]);
  const auth = [];
  const ai = args.indexOf('--requirepass');
  if (ai >= 0) auth.push('--no-auth-warning', '-a', args[ai + 1]);
  const cli = async (...a) => {
    const r = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...auth, ...a]);
    return r.stdout.trim();
  };
  await waitFor(async () => (await cli('PING')) === 'PONG', { what: `redis on ${port}`, timeoutMs: 10000 });
  const r = {
    port, pid: p.pid, dir, cli, log: p.log, exited: p.exited, url: `redis://127.0.0.1:${port}/0`,
    async stop(sig = 'SIGTERM') {
      try { process.kill(p.pid, sig); } catch {}
      const { code } = await p.exited;
      return code;
    },
    kill(sig) { process.kill(p.pid, sig); },
  };
  return r;
}

/** A plugin dir of symlinks to the built backends (plugins/NAME/.libs/NAME.so). */
export function pluginDir() {
  const dir = tmpDir('fanout-plugins-');
  const base = path.join(BUILDDIR, 'plugins');
  if (fs.existsSync(base)) {
    for (const name of fs.readdirSync(base)) {
      const so = path.join(base, name, '.libs', name + '.so');
      if (fs.existsSync(so)) fs.symlinkSync(so, path.join(dir, name + '.so'));
    }
  }
  return dir;
}

/** Path of a built plugin by name. */
export const pluginPath = (name) => path.join(BUILDDIR, 'plugins', name, '.libs', name + '.so');

/**
 * Start fanoutd with an ini text (written to a temp file). The harness adds
 * -o server.listen=127.0.0.1:PORT, server.plugin_dir (built plugins),
 * server.web_root (source web/) and server.instance unless opts override.
 * wait: 'listen' (default: /healthz answers), 'ready' (/readyz 200), 'none'.
 */
export async function startFanoutd({ ini = '', args = [], env = {}, port, instance, webRoot, wait = 'listen', timeoutMs = 15000 } = {}) {
  port = port || (await freePort());
  const dir = tmpDir('fanoutd-');
  const file = path.join(dir, 'fanout.ini');
  fs.writeFileSync(file, ini);
  const o = ['-o', `server.listen=127.0.0.1:${port}`, '-o', `server.plugin_dir=${pluginDir()}`];
  o.push('-o', `server.web_root=${webRoot === undefined ? path.join(SRCDIR, 'web') : webRoot}`);
  if (instance) o.push('-o', `server.instance=${instance}`);
  const senv = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', ...env };
  const p = startProcess(FANOUTD, ['-c', file, ...o, ...args], { env: senv });
  let exitInfo = null;
  p.exited.then((x) => (exitInfo = x));
  const f = {
    port, pid: p.pid, dir, file, log: p.log, exited: p.exited,
    url: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/ws`,
    http: (pth, o2) => httpGet(port, pth, o2),
    /** Send sig, wait for exit, return the exit code; throws on sanitizer reports. */
    async stop(sig = 'SIGTERM', { timeoutMs: t = 20000 } = {}) {
      if (!exitInfo) {
        try { process.kill(p.pid, sig); } catch {}
      }
      let timer;
      const x = await Promise.race([p.exited, new Promise((r) => { timer = setTimeout(() => r(null), t); })]);
      clearTimeout(timer);
      if (!x) {
        process.kill(p.pid, 'SIGKILL');
        throw new Error(`fanoutd did not exit within ${t} ms after ${sig}\n${p.log().slice(-3000)}`);
      }
      f.checkSanitizers();
      return x.code;
    },
    checkSanitizers() {
      const l = p.log();
      if (/AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer/.test(l))
        throw new Error('sanitizer report in fanoutd log:\n' + l.slice(-6000));
    },
    kill(sig) { process.kill(p.pid, sig); },
  };
  if (wait !== 'none') {
    const route = wait === 'ready' ? '/readyz' : '/healthz';
    await waitFor(async () => {
      if (exitInfo) throw new Error(`fanoutd exited (${JSON.stringify(exitInfo)}):\n${p.log()}`);
      const r = await httpGet(port, route);
      return r.status === 200;
    }, { timeoutMs, what: `fanoutd ${route} on ${port}` }).catch((e) => {
      throw new Error(e.message + '\n--- fanoutd log ---\n' + p.log().slice(-4000));
    });
  }
  return f;
}

/**
 * A WebSocket client that records every frame (parsed JSON when possible).
 * next(pred, ms) resolves with the first recorded frame after the cursor
 * matching pred; all(pred) lists matching frames.
 */
export function wsClient(url, { protocols, headers, maxPayload } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, maxPayload, perMessageDeflate: false });
    const frames = [];
    const waiters = [];
    let cursor = 0;
    let closeInfo = null;
    let resolveClosed;
    const closed = new Promise((r) => (resolveClosed = r));
    const check = () => {
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i];
        for (let j = w.from; j < frames.length; j++) {
          if (w.pred(frames[j])) {
            waiters.splice(i, 1);
            clearTimeout(w.timer);
            cursor = Math.max(cursor, j + 1);
            w.resolve(frames[j]);
            break;
          }
        }
      }
    };
    ws.on('message', (data, isBinary) => {
      let v;
      const s = isBinary ? data : data.toString('utf8');
      try { v = JSON.parse(s); } catch { v = { raw: s }; }
      frames.push(v);
      check();
    });
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      resolveClosed(closeInfo);
      for (const w of waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error(`socket closed (${code}) while waiting for ${w.what}`)); }
    });
    ws.on('error', (e) => { if (ws.readyState !== WebSocket.OPEN && !c.opened) reject(e); });
    const c = {
      ws, frames, closed, opened: false,
      get closeInfo() { return closeInfo; },
      send(obj) { ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); },
      next(pred = () => true, ms = 5000, what = 'frame') {
        if (typeof pred === 'string') { const t = pred; pred = (f) => f.type === t; what = t; }
        return new Promise((res, rej) => {
          const w = { pred, resolve: res, reject: rej, from: cursor, what };
          w.timer = setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) waiters.splice(i, 1);
            rej(new Error(`timed out after ${ms} ms waiting for ${what}; last frames: ${JSON.stringify(frames.slice(-5))}`));
          }, ms);
          waiters.push(w);
          check();
          if (closeInfo && waiters.includes(w)) { clearTimeout(w.timer); waiters.splice(waiters.indexOf(w), 1); rej(new Error(`socket closed (${closeInfo.code}) while waiting for ${what}`)); }
        });
      },
      all(pred) { return frames.filter(pred); },
      /** subscribe and wait for the confirmation */
      async subscribe(channel, ms = 5000) {
        const id = 's' + Math.random().toString(36).slice(2);
        c.send({ type: 'subscribe', channel, id });
        const r = await c.next((f) => f.id === id, ms, `reply to subscribe ${channel}`);
        if (r.type !== 'subscribed') throw new Error('subscribe failed: ' + JSON.stringify(r));
        return r;
      },
      close(code, reason) { ws.close(code, reason); return closed; },
    };
    ws.on('open', () => { c.opened = true; resolve(c); });
  });
}

/** Parse Prometheus text into {name{labels}: value}. */
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/);
    if (!m) throw new Error('bad metrics line: ' + line);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/** True when a command exists on PATH (or is an absolute executable path). */
export function haveCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v "${cmd}"`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
