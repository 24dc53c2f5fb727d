// security_tls.mjs — TLS on the listener (tls_cert, tls_key) with a
// certificate generated here by openssl: https and wss from Node, the demo
// page over https/wss in Chromium, TLS 1.2+ and HTTP/1.1 only, the admin
// listener staying plain, the files re-read on SIGHUP (a broken pair is
// refused and the old certificate stays), --check-config on bad files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { tap } from '../lib/tap.mjs';
import {
  FANOUTD, WebSocket, freePort, httpGet, pluginPath, run, startFanoutd, tmpDir, waitFor,
} from '../lib/harness.mjs';
import { CHROMIUM, missingBrowser } from '../browser/browser.mjs';

const t = tap();
const lb = pluginPath('loopback');
const dir = tmpDir('fanout-tls-');

/** A self-signed certificate for 127.0.0.1 (EC P-256), its key and PEM. */
function makeCert(name) {
  const cert = path.join(dir, `${name}.crt`), key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key, pem: fs.readFileSync(cert) };
}

const a = makeCert('fanout-a');
const b = makeCert('fanout-b');
const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
/** Put a certificate pair in place the way an operator should: write, then rename. */
function install(c) {
  for (const k of ['cert', 'key']) {
    fs.copyFileSync(c[k], live[k] + '.new');
    fs.renameSync(live[k] + '.new', live[k]);
  }
}
install(a);

const ini = (extra = '') =>
  `[server]\ninstance = tls1\ntls_cert = ${live.cert}\ntls_key = ${live.key}\n${extra}\n[backend mem]\nplugin = ${lb}\n`;

/** GET over https trusting ca; resolves {status, body, cn, alpn}. */
function httpsGet(port, p, ca, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, ca, agent: false, timeout: 5000, ...opts }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, cn: res.socket.getPeerCertificate().subject?.CN }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The CN of the certificate the server presents to a new handshake. */
function peerCN(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

async function startTls(extra = '') {
  const f = await startFanoutd({ ini: ini(extra), wait: 'none' });
  await waitFor(async () => (await httpsGet(f.port, '/healthz', [a.pem, b.pem])).status === 200,
    { what: 'https /healthz' }).catch((e) => { throw new Error(e.message + '\n' + f.log()); });
  return f;
}

await t.test('https and wss from Node; nothing in plain text; TLS 1.2+ and HTTP/1.1 only', async () => {
  const admin = await freePort();
  const f = await startTls(`admin_listen = 127.0.0.1:${admin}`);
  const h = await httpsGet(f.port, '/healthz', a.pem);
  assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
  assert.equal(h.cn, 'fanout-a');
  const ws = new WebSocket(`wss://127.0.0.1:${f.port}/ws`, { ca: a.pem });
  const hello = await new Promise((resolve, reject) => {
    ws.on('message', (d) => resolve(JSON.parse(d)));
    ws.on('error', reject);
  });
  assert.equal(hello.type, 'hello');
  assert.equal(hello.instance, 'tls1');
  ws.close();
  // plain HTTP on the TLS port gets no HTTP answer
  const plain = await new Promise((resolve) => {
    const s = net.connect(f.port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
    setTimeout(() => s.destroy(), 3000);
  });
  assert.doesNotMatch(plain, /^HTTP\/1\.1 200/);
  // TLS 1.1 is refused; ALPN h2 is not chosen (a WebSocket over HTTP/2
  // would not pass the upgrade gate)
  await assert.rejects(new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: f.port, ca: a.pem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, resolve);
    s.on('error', reject);
  }));
  const alpn = await new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: f.port, ca: a.pem, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      resolve(s.alpnProtocol);
      s.end();
    });
    s.on('error', reject);
  });
  assert.equal(alpn, 'http/1.1');
  // the admin listener stays plain HTTP
  const m = await httpGet(admin, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /fanout_clients/);
  assert.equal(await f.stop(), 0);
});

await t.test('SIGHUP re-reads the files: new handshakes get the new certificate, open ones keep going', async () => {
  install(a);
  const f = await startTls();
  const ws = new WebSocket(`wss://127.0.0.1:${f.port}/ws`, { ca: [a.pem, b.pem] });
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d)));
  await waitFor(() => frames.length >= 1, { what: 'hello' });
  assert.equal(await peerCN(f.port), 'fanout-a');
  install(b);
  f.kill('SIGHUP');
  await waitFor(async () => (await peerCN(f.port)) === 'fanout-b', { what: 'the new certificate' });
  assert.match(f.log(), /TLS certificate and key re-read/);
  ws.send(JSON.stringify({ type: 'ping', id: 1 }));
  await waitFor(() => frames.some((x) => x.type === 'pong'), { what: 'pong on the old connection' });
  // a key that does not belong to the certificate: refused, b stays
  fs.copyFileSync(a.key, live.key);
  f.kill('SIGHUP');
  // The reload checks the pair with the rest of the file and refuses it
  // whole (reload.c); the running certificate stays.
  await waitFor(() => /tls_(cert|key): .*does not belong/.test(f.log()) &&
    /reload refused: 1 error in .*; the running configuration stays/.test(f.log()), { what: 'refusal logged' });
  assert.equal(await peerCN(f.port), 'fanout-b');
  assert.equal((await httpsGet(f.port, '/healthz', b.pem)).status, 200);
  ws.close();
  assert.equal(await f.stop(), 0);
  install(a);
});

await t.test('--check-config refuses a missing, unreadable or mismatched pair', async () => {
  const file = path.join(dir, 'c.ini');
  const check = async (body) => {
    fs.writeFileSync(file, `[server]\n${body}\n[backend mem]\nplugin = ${lb}\n`);
    return run(FANOUTD, ['-c', file, '--check-config']);
  };
  let r = await check(`tls_cert = ${a.cert}`);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /tls_cert and tls_key go together/);
  r = await check(`tls_cert = ${a.cert}\ntls_key = ${b.key}`);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /does not belong to the certificate/);
  r = await check(`tls_cert = ${path.join(dir, 'nope.crt')}\ntls_key = ${a.key}`);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /No such file/);
  r = await check(`tls_cert = ${a.key}\ntls_key = ${a.key}`);
  assert.equal(r.code, 3);
  r = await check(`tls_cert = ${a.cert}\ntls_key = ${a.key}`);
  assert.equal(r.code, 0, r.stderr);
});

const noBrowser = missingBrowser();
if (noBrowser) {
  t.skip('Chromium loads the demo page over https and connects over wss', noBrowser);
} else {
  await t.test('Chromium loads the demo page over https and connects over wss', async () => {
    install(a);
    const f = await startTls();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    try {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true }); // self-signed
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`https://127.0.0.1:${f.port}/`);
      page.on('console', (m) => errors.push(`console ${m.type()}: ${m.text()}`));
      page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
      await page.waitForFunction(() => document.getElementById('state')?.dataset.state === 'open', null, { timeout: 30000 })
        .catch((e) => { throw new Error(`${e.message}\n${errors.join('\n')}\n${f.log().slice(-3000)}`); });
      const inst = await page.evaluate(() => document.getElementById('instance').dataset.instance);
      assert.equal(inst, 'tls1');
      const proto = await page.evaluate(() => location.protocol);
      assert.equal(proto, 'https:');
      assert.deepEqual(errors.filter((e) => !e.startsWith('console log') && !e.startsWith('console info')), []);
    } finally {
      await browser.close();
    }
    assert.equal(await f.stop(), 0);
  }, { timeoutMs: 90000 });
}

t.done();
