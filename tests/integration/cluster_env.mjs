// cluster_env.mjs — the cluster tests' topology on loopback: one
// redis-server (valkey-server where present), N fanoutd with the valkey
// backend (instance ids c1, c2, c3), and nginx in front, configured from the
// same template the demo uses (conf/nginx-demo.conf.in). Also a WebSocket
// client that records every session (hello instance, subscribe time, close
// code, the `seq` of every message) and reconnects with full-jitter backoff,
// like the web client and `fanout-cli sub --reconnect`.
//
// Not a test itself (not in TESTS); imported by cluster_*.mjs. Every process
// is started through tests/lib/harness.mjs, so all are killed by pid when
// the test process exits.
import fs from 'node:fs';
import path from 'node:path';
import {
  SRCDIR, FANOUTD, FANOUT_CLI, REDIS_SERVER, WebSocket, freePort, tmpDir, startProcess,
  startRedis, startFanoutd, httpGet, waitFor, run, haveCommand, pluginPath, sleep,
} from '../lib/harness.mjs';

export const NGINX =
  process.env.NGINX || (fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');

/** What is missing to run the cluster (empty list: everything is there). */
export function missing() {
  const m = [];
  if (!fs.existsSync(FANOUTD)) m.push(`fanoutd (${FANOUTD})`);
  if (!fs.existsSync(FANOUT_CLI)) m.push(`fanout-cli (${FANOUT_CLI})`);
  if (!fs.existsSync(pluginPath('valkey'))) m.push(`valkey plugin (${pluginPath('valkey')})`);
  if (!haveCommand(NGINX)) m.push('nginx');
  if (!haveCommand(REDIS_SERVER)) m.push('redis-server');
  return m;
}

/** conf/nginx-demo.conf.in with its placeholders filled. */
export function nginxConf({ prefix, listen, webRoot, upstreamPorts }) {
  webRoot = webRoot || path.join(SRCDIR, 'web');
  const tpl = fs.readFileSync(path.join(SRCDIR, 'conf/nginx-demo.conf.in'), 'utf8');
  const servers = upstreamPorts
    .map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`)
    .join('\n\t\t');
  return tpl
    .replaceAll('@PREFIX@', prefix)
    .replaceAll('@LISTEN@', listen)
    .replaceAll('@WEB_ROOT@', webRoot)
    .replaceAll('@UPSTREAM_SERVERS@', servers);
}

/** nginx, unprivileged, from a temp prefix; waits until it answers. */
export async function startNginx({ upstreamPorts, port, webRoot }) {
  port = port || (await freePort());
  const prefix = tmpDir('fanout-nginx-');
  const conf = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(conf, nginxConf({ prefix, listen: `127.0.0.1:${port}`, upstreamPorts, webRoot }));
  const base = ['-e', path.join(prefix, 'error.log'), '-p', prefix, '-c', conf];
  // nginx takes $NGINX as inherited listen sockets; make check exports it
  // as the program path, so it must not reach nginx.
  const t = await run('env', ['-u', 'NGINX', NGINX, '-t', '-q', ...base, '-g', `pid ${prefix}/nginx.pid;`]);
  if (t.code !== 0) throw new Error(`nginx -t failed:\n${t.stderr}`);
  const p = startProcess('env', ['-u', 'NGINX', NGINX, ...base, '-g', `daemon off; pid ${prefix}/nginx.pid;`]);
  let gone = null;
  p.exited.then((x) => (gone = x));
  await waitFor(async () => {
    if (gone) throw new Error(`nginx exited ${JSON.stringify(gone)}: ${p.log()}`);
    return (await httpGet(port, '/lb-healthz')).status === 200;
  }, { what: `nginx on ${port}` });
  return {
    port, pid: p.pid, prefix,
    url: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}/ws`,
    http: (p2) => httpGet(port, p2),
    errorLog: () => fs.readFileSync(path.join(prefix, 'error.log'), 'utf8'),
    async stop() {
      if (!gone) {
        try { process.kill(p.pid, 'SIGQUIT'); } catch {}
      }
      let timer;
      const x = await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(r, 10000, null)))]);
      clearTimeout(timer);
      if (!x) process.kill(p.pid, 'SIGKILL');
    },
  };
}

/** The ini every instance runs with (the harness adds listen, instance, dirs). */
export function instanceIni(redisPort, extraServer = '') {
  return `[server]
shutdown_grace_ms = 3000
${extraServer}
[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${redisPort}/0
reconnect_min_ms = 100
reconnect_max_ms = 1000
`;
}

/** Broker + N fanoutd (ready) + nginx (serving webRoot, default web/). */
export async function startCluster({ names = ['c1', 'c2', 'c3'], extraServer = '', webRoot } = {}) {
  const redis = await startRedis();
  const instances = [];
  try {
    for (const name of names) {
      instances.push(await startFanoutd({
        ini: instanceIni(redis.port, extraServer), instance: name, wait: 'ready',
      }));
    }
    const nginx = await startNginx({ upstreamPorts: instances.map((f) => f.port), webRoot });
    const byName = Object.fromEntries(names.map((n, i) => [n, instances[i]]));
    return {
      redis, instances, byName, nginx, names,
      async stop() {
        await nginx.stop();
        for (const f of instances) {
          try { await f.stop('SIGTERM'); } catch {}
        }
        await redis.stop();
      },
    };
  } catch (e) {
    for (const f of instances) {
      try { f.kill('SIGKILL'); } catch {}
    }
    await redis.stop();
    throw e;
  }
}

/** `fanout-cli push` to the broker; resolves {code, stdout, stderr}. */
export function push(redis, { count, rate, channel = 'updates', timeoutMs = 60000 }) {
  return run(FANOUT_CLI, [
    'push', '--redis', redis.url, '--channel', channel, '--rate', String(rate),
    '--count', String(count), '--quiet',
  ], { timeoutMs });
}

/** Full-jitter backoff: random(0, min(cap, base * 2^attempt)). */
export const backoffMs = (attempt, base = 200, cap = 3000) =>
  Math.random() * Math.min(cap, base * 2 ** attempt);

/**
 * A client that records everything and (optionally) reconnects.
 * sessions[]: {instance, openedAt, subscribedAt, closedAt, closeCode, seqs[], ts[], bad[]}
 * where seqs/ts are data.seq/data.ts (fanout-cli push's payload: sequence
 * number, ms since the epoch at publish) of message frames in arrival order,
 * payloadBytes sums the message frames' payload sizes, and bad lists
 * message frames whose `instance` differs from the session's hello.
 */
export class TrackedClient {
  constructor(url, channel = 'updates', { reconnect = false } = {}) {
    this.url = url;
    this.channel = channel;
    this.reconnect = reconnect;
    this.sessions = [];
    this.gaps = [];
    this.errors = [];
    this.stopped = false;
    this.attempt = 0;
  }

  get current() {
    return this.sessions[this.sessions.length - 1];
  }

  /** Every seq received over all sessions, in order. */
  get seqs() {
    return this.sessions.flatMap((s) => s.seqs);
  }

  /** Open, wait for hello + subscribed. Resolves the session. */
  connect(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const s = {
        instance: null, openedAt: null, subscribedAt: null, closedAt: null, closeCode: null,
        seqs: [], ts: [], bad: [], payloadBytes: 0,
      };
      const ws = new WebSocket(this.url, { perMessageDeflate: false });
      this.ws = ws;
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(s);
      };
      const timer = setTimeout(() => {
        finish(new Error(`no subscribed reply within ${timeoutMs} ms from ${this.url}`));
        ws.terminate();
      }, timeoutMs);
      ws.on('open', () => {
        s.openedAt = Date.now();
        this.sessions.push(s);
        ws.send(JSON.stringify({ type: 'subscribe', channel: this.channel, id: 'sub1' }));
      });
      ws.on('message', (buf) => {
        let f;
        try { f = JSON.parse(buf.toString('utf8')); } catch { this.errors.push(String(buf)); return; }
        if (f.type === 'hello') s.instance = f.instance;
        else if (f.type === 'message') {
          if (f.instance !== s.instance) s.bad.push(f);
          s.payloadBytes += buf.length;
          const d = f.data && typeof f.data === 'object' ? f.data : {};
          s.seqs.push(d.seq);
          s.ts.push(d.ts);
        } else if (f.type === 'subscribed' && f.id === 'sub1') {
          s.subscribedAt = Date.now();
          this.attempt = 0;
          finish();
        } else if (f.type === 'gap') this.gaps.push({ at: Date.now(), instance: s.instance, f });
        else if (f.type === 'error') {
          this.errors.push(f);
          if (f.id === 'sub1') finish(new Error('subscribe refused: ' + JSON.stringify(f)));
        }
      });
      ws.on('error', (e) => finish(e));
      ws.on('close', (code) => {
        s.closedAt = Date.now();
        s.closeCode = code;
        const established = s.subscribedAt !== null;
        finish(new Error(`closed (${code}) before subscribed`));
        // A session that never got its subscribed reply failed connect(),
        // whose caller (#again) retries; only an established one starts over.
        if (established && this.reconnect && !this.stopped && code !== 1008) this.#again();
      });
    });
  }

  async #again() {
    for (;;) {
      await sleep(backoffMs(this.attempt++));
      if (this.stopped) return;
      try {
        await this.connect();
        return;
      } catch {
        // refused, or closed before subscribed: back off and try again
      }
    }
  }

  close() {
    this.stopped = true;
    try { this.ws.close(1000); } catch {}
  }
}

/** Stricter than harness parseMetrics: checks the exposition format itself. */
export function parsePrometheus(text) {
  const types = new Map();
  const samples = new Map();
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '') throw new Error('metrics text must end with a newline');
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let m;
    if ((m = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/))) {
      if (types.has(m[1])) throw new Error(`line ${i + 1}: second TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line) || /^#( |$)/.test(line)) continue;
    m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)( -?\d+)?$/);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${JSON.stringify(line)}`);
    const [, name, labels = '', value] = m;
    if (!/^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?Inf|NaN)$/.test(value))
      throw new Error(`line ${i + 1}: bad value ${value}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`line ${i + 1}: ${name} has no # TYPE before it`);
    if (types.get(family) === 'counter' && !name.endsWith('_total'))
      throw new Error(`line ${i + 1}: counter ${name} should end in _total`);
    const key = name + labels;
    if (samples.has(key)) throw new Error(`line ${i + 1}: duplicate series ${key}`);
    samples.set(key, Number(value));
  }
  return { types, samples, get: (k) => samples.get(k) };
}

export async function metrics(f) {
  const r = await f.http('/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parsePrometheus(r.body);
}

/**
 * End the test process once TAP is written. The harness's stop() races the
 * exit against an uncleared sleep(20000), which would keep node alive for
 * 20 s after the last test; stdout is a pipe (synchronous on Linux), so
 * exiting here loses no output.
 */
export function finish(t) {
  t.done();
  process.exit(process.exitCode ?? 0);
}

/** Numbers for the report: min/p50/p90/max of a list. */
export function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], p50: q(0.5), p90: q(0.9), max: s[s.length - 1] };
}

/** Is xs exactly [from, from+1, ..., to]? Returns a reason string or ''. */
export function checkRun(xs, from, to) {
  if (xs.length !== to - from + 1) {
    const seen = new Set(xs);
    const lost = [];
    for (let i = from; i <= to && lost.length < 10; i++) if (!seen.has(i)) lost.push(i);
    return `expected ${to - from + 1} seqs ${from}..${to}, got ${xs.length} (first missing: ${lost.join(',')})`;
  }
  for (let i = 0; i < xs.length; i++)
    if (xs[i] !== from + i) return `position ${i}: expected seq ${from + i}, got ${xs[i]}`;
  return '';
}
