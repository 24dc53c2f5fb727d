// browser.mjs — helpers for fanout's browser tests: launch Debian's Chromium
// through playwright-core (never a downloaded browser), read the demo page's
// state, write screenshots to tests/artifacts/, and a tiny TCP proxy that
// stands in for a load balancer in front of several fanoutd instances.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BUILDDIR, waitFor } from '../lib/harness.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.FANOUT_ARTIFACTS || path.join(BUILDDIR, 'tests', 'artifacts');

/** Why the browser tests cannot run here, or null. */
export function missingBrowser() {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return null;
  } catch {
    return `no Chromium at ${CHROMIUM} (apt install chromium, or set CHROMIUM)`;
  }
}

/** Launch headless Chromium with a fresh profile. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
    ], // playwright gives every launch a fresh temporary profile
  });
}

/** A page that fails the test on uncaught page errors (collected in page.errors). */
export async function newPage(browser, { colorScheme = 'light' } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 }, colorScheme });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push('console: ' + m.text());
  });
  return page;
}

/** The demo page's state as the user sees it. */
export function pageState(page) {
  return page.evaluate(() => ({
    state: document.getElementById('state').dataset.state,
    stateText: document.getElementById('state-text').textContent,
    instance: document.getElementById('instance').dataset.instance,
    messages: Number(document.getElementById('count-messages').textContent),
    reconnects: Number(document.getElementById('count-reconnects').textContent),
    gaps: Number(document.getElementById('count-gaps').textContent),
    recovered: Number(document.getElementById('count-recovered')?.textContent ?? 0),
    channels: [...document.querySelectorAll('#channels li')].map((li) => li.dataset.channel),
    rows: [...document.querySelectorAll('#updates li')].map((li) => ({
      kind: li.dataset.kind,
      instance: li.querySelector('.inst')?.dataset.instance ?? null,
      channel: li.querySelector('.chan')?.textContent ?? null,
      data: li.querySelector('.data')?.textContent ?? null,
      text: li.textContent,
      t: Number(li.dataset.t),
      offset: li.dataset.offset === undefined ? null : Number(li.dataset.offset),
      recovered: li.dataset.recovered === '1',
    })),
    publishVisible: !document.getElementById('pub-form').hidden,
    publishNote: document.getElementById('pub-note').hidden ? null : document.getElementById('pub-note').textContent,
  }));
}

/** Wait until the page shows state `state` (and optionally instance). */
export async function waitState(page, state, { instance, timeoutMs = 10000 } = {}) {
  await explain(page, `state ${state}${instance ? ' on ' + instance : ''}`, page.waitForFunction(
    ([s, i]) => {
      const el = document.getElementById('state');
      const inst = document.getElementById('instance').dataset.instance;
      return el && el.dataset.state === s && (i === null || inst === i);
    },
    [state, instance ?? null],
    { timeout: timeoutMs, polling: 20 },
  ));
}

// On a timeout, say what the page showed instead.
async function explain(page, what, promise) {
  try {
    return await promise;
  } catch (e) {
    let seen = '';
    try {
      const s = await pageState(page);
      seen = JSON.stringify({ ...s, rows: s.rows.slice(0, 5).map((r) => r.text) });
    } catch {}
    throw new Error(`waiting for ${what}: ${e.message.split('\n')[0]}\n  page: ${seen}\n  page errors: ${JSON.stringify(page.errors || [])}`);
  }
}

/** Wait until an update row whose data text contains `needle` is rendered; returns the row. */
export async function waitRow(page, needle, { timeoutMs = 5000 } = {}) {
  await explain(page, `a row with ${needle}`, page.waitForFunction(
    (n) => [...document.querySelectorAll('#updates li[data-kind="message"] .data')].some((d) => d.textContent.includes(n)),
    needle,
    { timeout: timeoutMs, polling: 10 },
  ));
  const { rows } = await pageState(page);
  return rows.find((r) => r.kind === 'message' && r.data.includes(needle));
}

/** Screenshot to tests/artifacts/NAME.png; returns the path. */
export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** Wait until the page shows every channel as confirmed by the server. */
export function waitSubscribed(page, channels, timeoutMs = 5000) {
  return explain(page, `subscribed to ${channels}`, page.waitForFunction(
    (chs) => chs.every((c) => document.querySelector(`#channels li[data-channel="${c}"][data-state="ok"]`)),
    channels,
    { timeout: timeoutMs, polling: 20 },
  ));
}

/**
 * A TCP proxy on a free loopback port: each new connection goes to the first
 * backend port that accepts it (in order). hold() makes new connections wait
 * until release() — used to photograph the page while it reconnects.
 */
export function tcpProxy(backends) {
  let held = false;
  const queue = [];
  const sockets = new Set();
  const connect = (client, i) => {
    if (i >= backends.length) return client.destroy();
    const up = net.connect(backends[i], '127.0.0.1');
    up.once('error', () => {
      up.destroy();
      connect(client, i + 1);
    });
    up.once('connect', () => {
      up.removeAllListeners('error');
      sockets.add(up);
      up.on('close', () => sockets.delete(up));
      client.pipe(up).pipe(client);
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    });
  };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    if (held) queue.push(client);
    else connect(client, 0);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        hold() {
          held = true;
        },
        release() {
          held = false;
          for (const c of queue.splice(0)) connect(c, 0);
        },
        get waiting() {
          return queue.length;
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

export { waitFor };

/**
 * A persistent RESP connection to redis/valkey for PUBLISH, so timings do not
 * include a redis-cli start-up. publish() resolves with the receiver count.
 */
export function redisPublisher(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const waiting = [];
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const w = waiting.shift();
        if (!w) continue;
        if (line[0] === ':') w.resolve(Number(line.slice(1)));
        else w.reject(new Error('redis: ' + line));
      }
    });
    sock.once('error', reject);
    sock.once('connect', () =>
      resolve({
        publish(channel, message) {
          const args = ['PUBLISH', channel, message];
          const cmd = `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');
          return new Promise((res, rej) => {
            waiting.push({ resolve: res, reject: rej });
            sock.write(cmd);
          });
        },
        close() {
          sock.end();
        },
      }),
    );
  });
}
