// backends.mjs — one fixture per backend for the tests that run once per
// backend (tests/integration/protocol_suite.mjs). A fixture starts the
// broker the backend needs (none for loopback), writes the backend's keys
// for a [backend NAME] section, and knows how to make the backend hold back
// or refuse a subscribe confirmation, so one test text covers every backend.
//
// A fixture is:
//   name                 'loopback', 'valkey', ...
//   positioned           true when the backend's channels carry positions
//                        (ABI 1.1: epoch/offset); the v1.1 protocol tests
//                        (positions_suite.mjs) run only there
//   contiguous           positioned fixtures: offsets go up by exactly one
//                        per channel (FANOUT_POS_CONTIGUOUS); false: they
//                        only increase (NATS JetStream: a shared stream
//                        sequence)
//   delayKeys(ms)        positioned fixtures that can: section keys (an
//                        object) making history answers come ~ms late;
//                        null: cannot (the suite says so in a diagnostic)
//   dropKeys(n)          positioned fixtures that can: section keys making
//                        every nth publish miss its live delivery (still in
//                        history), a lost broker message; null: cannot
//   start()              start the broker (idempotent); resolves the fixture
//   keys(extra)          the section's lines (plugin, url, ...) + extra lines
//   holdConfirm(ms)      make the next subscribe confirmation wait ~ms:
//                        resolves { keys, begin(), end() }: section keys to
//                        add, begin() before the subscribe is sent, end()
//                        after ms (loopback: a config key; brokers: SIGSTOP
//                        and SIGCONT of the broker process)
//   refuseSubscribe()    resolves section keys that make the broker refuse
//                        every client channel subscribe (null: the fixture
//                        cannot, and the suite says so in a diagnostic)
//   stop()               stop the broker
import { startRedis, pluginPath } from './harness.mjs';
import { startNats } from './nats.mjs';
import fs from 'node:fs';

/* SIGSTOP takes effect asynchronously: return once every thread of pid is
 * stopped (state T), so nothing sent afterwards is answered. */
export function stopProcess(pid) {
  process.kill(pid, 'SIGSTOP');
  const end = Date.now() + 5000;
  const stopped = () => fs.readdirSync(`/proc/${pid}/task`).every((t) => {
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      return st[st.lastIndexOf(')') + 2] === 'T';
    } catch { return true; }
  });
  while (!stopped()) if (Date.now() > end) throw new Error(`process ${pid} did not stop`);
}

export function loopbackBackend() {
  return {
    name: 'loopback',
    positioned: true,
    contiguous: true,
    delayKeys: (ms) => ({ delay_confirm_ms: ms }),
    dropKeys: (n) => ({ drop_every: n }),
    async start() { return this; },
    keys: (extra = '') => `plugin = ${pluginPath('loopback')}\n${extra}\n`,
    async holdConfirm(ms) {
      return { keys: `delay_confirm_ms = ${ms}`, begin() {}, end() {} };
    },
    async refuseSubscribe() { return 'fail_subscribe = true'; },
    async stop() {},
  };
}

/** The example backend (plugins/example): positions and history in memory,
 * like loopback, but nothing to delay or lose. */
export function exampleBackend() {
  return {
    name: 'example',
    positioned: true,
    contiguous: true,
    delayKeys: null,
    dropKeys: null,
    async start() { return this; },
    keys: (extra = '') => `plugin = ${pluginPath('example')}\n${extra}\n`,
    async holdConfirm() { return null; },
    async refuseSubscribe() { return null; },
    async stop() {},
  };
}

export function valkeyBackend() {
  let r = null;
  return {
    name: 'valkey',
    positioned: true,
    contiguous: true,
    // History answers and live deliveries share the broker: neither can be
    // delayed or lost alone (the fault tests lose messages for real).
    delayKeys: null,
    dropKeys: null,
    get redis() { return r; },
    async start() {
      if (!r) r = await startRedis();
      return this;
    },
    keys: (extra = '') => `plugin = valkey\nurl = redis://127.0.0.1:${r.port}/0\n${extra}\n`,
    async holdConfirm() {
      // A stopped broker answers nothing: the SUBSCRIBE waits in the
      // socket buffer until SIGCONT.
      return {
        keys: '',
        begin() { stopProcess(r.pid); },
        end() { r.kill('SIGCONT'); },
      };
    },
    // An ACL user that may subscribe to nothing but the backend's probe
    // channel: every client channel's SUBSCRIBE gets -NOPERM.
    async refuseSubscribe() {
      await r.cli('ACL', 'SETUSER', 'nosub', 'reset', 'on', '>nosubpw', '~*', '+@all',
        'resetchannels', '&__fanout_probe:*');
      return 'username = nosub\npassword = nosubpw';
    },
    async stop() {
      if (r) await r.stop();
      r = null;
    },
  };
}

// nats-server users: `fan` (also every connection without credentials) may
// do anything; `nosub` may not subscribe to the suite's channels (nor to
// their JetStream republished copies).
const NATS_USERS = `authorization {
  users = [
    { user: fan, password: fanpw }
    { user: nosub, password: nosubpw,
      permissions: { subscribe: { deny: ["news.>", "chat.>", "updates", "x.>", "_fanout.rp.>"] } } }
  ]
}
no_auth_user: fan
`;

/** The nats backend; js: with JetStream (positions from a stream). */
export function natsBackend({ js = false } = {}) {
  let n = null;
  return {
    name: js ? 'nats-jetstream' : 'nats',
    positioned: js,
    contiguous: false,
    // A live message can be lost for real (a link cut, a broker restart:
    // nats_delivery.mjs), not on request; history answers cannot be delayed.
    delayKeys: null,
    dropKeys: null,
    get nats() { return n; },
    async start() {
      if (!n) n = await startNats({ js, conf: NATS_USERS });
      return this;
    },
    keys: (extra = '') => `plugin = nats\nurl = nats://127.0.0.1:${n.port}\n${js ? 'jetstream = yes\n' : ''}${extra}\n`,
    async holdConfirm() {
      // A stopped server answers no PING: the confirmation (a flush)
      // waits until SIGCONT.
      return {
        keys: '',
        begin() { stopProcess(n.pid); },
        end() { n.kill('SIGCONT'); },
      };
    },
    async refuseSubscribe() { return 'user = nosub\npassword = nosubpw'; },
    async stop() {
      if (n) await n.stop();
      n = null;
    },
  };
}
