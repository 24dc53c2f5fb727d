// fanout.js — the browser client for fanout's client protocol v1.1 (DESIGN.md).
//
// A dependency-free ES module: `import { FanoutClient } from './fanout.js'`.
// It owns one WebSocket at a time, the set of channels the application wants,
// the requests in flight (matched to their replies by "id") and the reconnect
// schedule. Everything runs on the caller's event loop (browser main thread,
// a worker, or node for tests); the WebSocket constructor, timers, clock and
// random source are injectable so tests can drive it deterministically.
//
// Reconnects use exponential backoff with FULL jitter:
//   delay = random(0, min(capMs, baseMs * 2^attempt))
// so a thousand clients dropped at once by a draining instance (close 1001)
// spread their reconnects over the window instead of arriving together. The
// attempt counter resets once a connection has stayed open for stableMs.
// Close codes follow DESIGN.md: reconnect on everything except 1008 (policy:
// sustained abuse) and an explicit close(); 4003 (token expired) reconnects
// at once with a fresh token; 1009 (our frame was larger than the server's
// max_message_bytes) is reported as an error, then the client reconnects like
// after any other loss.
//
// Access tokens: with a `getToken` option the client asks the application
// for a token before every connection attempt and sends it as `?token=` (a
// browser cannot set headers on a WebSocket, nor see the HTTP 401 of a
// refused upgrade: it only sees the socket fail, so a bad token backs off to
// the cap like any other failure, asking again each time). Before the token
// expires (its `exp`, read from the JWT) it asks again and refreshes the
// connection in-band: {"type":"auth","token":…} -> {"type":"authed"}.
//
// Positions (v1.1): on a positioned channel every message has an offset
// inside an epoch. The client remembers the last position per channel and
// resubscribes with `since` after every reconnect, on whichever instance it
// lands: the server replays what was published meanwhile (the message
// events carry `recovered: true`), each offset once. Only when the server
// cannot do that (`recovered: false`, or a `gap` frame) does the application
// get a `gap` event and should refetch its state. A message whose offset the
// client has already seen is dropped (counted in stats.duplicates; the
// server never sends one, this is a belt to its braces).

/** Close codes of the fanout protocol. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // shutdown or drain: reconnect elsewhere
  ABNORMAL: 1006, // network loss (no close frame)
  POLICY: 1008, // sustained abuse (request rate): do not reconnect
  TOO_BIG: 1009, // our frame exceeded max_message_bytes
  INTERNAL: 1011,
  TRY_AGAIN_LATER: 1013, // server at max_clients
  SLOW_CONSUMER: 4001, // our queue overflowed on the server
  TOKEN_EXPIRED: 4003, // our token expired: reconnect at once with a fresh one
});

/** Connection states reported by the `status` event and `client.state`. */
export const State = Object.freeze({
  IDLE: 'idle', // constructed, connect() not called yet
  CONNECTING: 'connecting', // first connection attempt
  OPEN: 'open', // socket open (hello may still be on its way)
  RECONNECTING: 'reconnecting', // lost: waiting for the backoff delay or retrying
  CLOSED: 'closed', // close() called, or refused with 1008: no more attempts
});

/**
 * The backoff delay before reconnect attempt number `attempt` (0-based), in
 * milliseconds: a uniformly random integer in [0, min(capMs, baseMs * 2^attempt)).
 * Pure; `random` must return a number in [0, 1) like Math.random.
 */
export function backoffDelay(attempt, { baseMs = 500, capMs = 30000, random = Math.random } = {}) {
  const n = Math.max(0, Math.floor(Number(attempt) || 0));
  // 2^n overflows to Infinity for huge n, and Math.min then picks the cap.
  const ceiling = Math.min(capMs, baseMs * Math.pow(2, n));
  const r = random();
  const x = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(x * ceiling);
}

/** Whether a close with this code should be followed by a reconnect. */
export function shouldReconnect(code) {
  return code !== CloseCode.POLICY;
}

/**
 * The `exp` claim of a JWT (seconds since the epoch), or null when the token
 * is not a JWT or has none. Reads the payload only: no signature check.
 */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
    const exp = JSON.parse(atob(b64)).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : null;
  } catch {
    return null;
  }
}

/** An Event with a `detail` payload (CustomEvent is not global on node 18). */
export class FanoutEvent extends Event {
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

/** Error raised by rejected requests; `code` is the server's error code or a local one. */
export class FanoutError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.name = 'FanoutError';
    this.code = code;
    Object.assign(this, extra);
  }
}

// 1-200 bytes of [A-Za-z0-9_.:/-]; a leading "__" is reserved for backends.
const CHANNEL_RE = /^(?!__)[A-Za-z0-9_.:/-]{1,200}$/;

/**
 * A fanout connection that stays up: it reconnects on loss and resubscribes.
 *
 * Events (all FanoutEvent, payload in `event.detail`):
 *   hello    {instance, version, frame}          every (re)connection
 *   status   {state, prev, code, reason, delayMs, attempt}
 *   message  {channel, instance, data, offset, recovered, frame}
 *            offset: the message's position (positioned channels, else undefined);
 *            recovered: true when it was replayed after a reconnect
 *   gap      {channel, reason, local, epoch, offset}  refetch state for that channel;
 *            local=true: the client itself was disconnected and the server could
 *            not replay what it missed (never sent when the replay succeeded);
 *            epoch/offset: where the stream continues (positioned channels)
 *   error    {code, message, id, closeCode}       server error frames and local problems
 *            (token_failed: getToken() threw or timed out)
 *   authed   {expiresAt}                          an in-band token refresh was accepted
 *   subscribed {channel, epoch, offset, recovered}  (recovered: only after a resume)
 *   unsubscribed {channel}
 */
export class FanoutClient extends EventTarget {
  /**
   * @param {string|(() => string)} url  ws:// or wss:// URL, or a function
   *        called before every attempt (e.g. to rotate between endpoints).
   * @param {object} [opts]
   * @param {string[]} [opts.channels]  channels to subscribe on connect
   * @param {number} [opts.baseMs=500]  backoff base
   * @param {number} [opts.capMs=30000] backoff cap
   * @param {number} [opts.stableMs=10000] open this long = stable: reset the backoff
   * @param {number} [opts.connectTimeoutMs=10000] give up on a socket that does not open
   * @param {number} [opts.requestTimeoutMs=10000] reject a request with no reply
   * @param {number} [opts.pingIntervalMs=25000] app-level ping when idle (0: off)
   * @param {number} [opts.pongTimeoutMs=10000] no frame this long after a ping: reconnect
   * @param {number} [opts.maxMessageBytes=0] refuse to send bigger frames (0: no check)
   * @param {() => (string|null|Promise<string|null>)} [opts.getToken] asked for an
   *        access token before every connection attempt (sent as ?token=) and
   *        before the current one expires (sent in-band); null: no token
   * @param {number} [opts.refreshBeforeMs=30000] refresh this long before `exp`
   * @param {Function} [opts.WebSocket] constructor (default globalThis.WebSocket)
   * @param {Function} [opts.random] [0,1) source (default Math.random)
   * @param {Function} [opts.setTimeout] / [opts.clearTimeout] / [opts.now]
   */
  constructor(url, opts = {}) {
    super();
    this._url = url;
    this._o = {
      baseMs: 500,
      capMs: 30000,
      stableMs: 10000,
      connectTimeoutMs: 10000,
      requestTimeoutMs: 10000,
      pingIntervalMs: 25000,
      pongTimeoutMs: 10000,
      maxMessageBytes: 0,
      refreshBeforeMs: 30000,
      ...opts,
    };
    this._WS = opts.WebSocket || globalThis.WebSocket;
    this._random = opts.random || Math.random;
    this._setTimeout = opts.setTimeout || ((f, ms) => setTimeout(f, ms));
    this._clearTimeout = opts.clearTimeout || ((h) => clearTimeout(h));
    this._now = opts.now || (() => Date.now());

    this._channels = new Set(); // what the app wants, survives reconnects
    this._waiters = new Map(); // channel -> [{resolve, reject}] awaiting "subscribed"
    this._pending = new Map(); // id -> {kind, channel, resolve, reject, timer}
    this._nextId = 1;
    this._ws = null;
    this._state = State.IDLE;
    this._attempt = 0;
    this._everOpened = false;
    this._instance = null;
    this._version = null;
    this._timers = { retry: null, connect: null, stable: null, ping: null, pong: null, refresh: null };
    this._token = null; // the token of the current connection
    this._firstOpen = null; // {promise, resolve, reject} for connect()
    this._resubscribing = new Set(); // channels to re-confirm after a reconnect
    this._pos = new Map(); // channel -> {epoch, offset}: the last position seen
    this._replayTo = new Map(); // channel -> offset up to which messages are a replay
    this._sinceSent = new Map(); // channel -> the since of the subscribe in flight
    this._lastRx = 0; // time of the last frame received
    this.stats = { messages: 0, reconnects: 0, gaps: 0, connects: 0, recovered: 0, resumes: 0, duplicates: 0 };
    for (const ch of opts.channels || []) this._channels.add(String(ch));
  }

  /** Current state (see State). */
  get state() {
    return this._state;
  }
  /** The instance of the server this client is connected to (from hello), or null. */
  get instance() {
    return this._instance;
  }
  /** The server's protocol version from hello, or null. */
  get version() {
    return this._version;
  }
  /** The channels the client keeps subscribed, in insertion order. */
  get channels() {
    return [...this._channels];
  }

  /**
   * The last position seen on a positioned channel, {epoch, offset}, or null.
   * An application that keeps it (e.g. in sessionStorage) can pass it back
   * to subscribe(channel, {since}) after a page reload.
   */
  position(channel) {
    const p = this._pos.get(String(channel));
    return p ? { ...p } : null;
  }

  /**
   * Start connecting. Resolves with the hello frame of the first connection;
   * rejects only when the client is closed before that (close() or 1008).
   * Calling it again returns the same promise.
   */
  connect() {
    if (!this._firstOpen) {
      let resolve, reject;
      const promise = new Promise((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {}); // a caller that never awaits must not see an unhandled rejection
      this._firstOpen = { promise, resolve, reject };
      if (this._state === State.IDLE) this._open();
    }
    return this._firstOpen.promise;
  }

  /**
   * Subscribe to a channel; kept across reconnects until unsubscribe().
   * Resolves once the server confirms ("subscribed": nothing published after
   * that is missed). While disconnected, it resolves after the next connection
   * confirms it. Rejects with FanoutError (code bad_channel, forbidden,
   * too_many_subscriptions, no_backend, ...) and then forgets the channel.
   * opts.since = {epoch, offset}: start after that position (a position()
   * kept from an earlier page); resolves with {recovered} saying whether
   * the messages after it are replayed.
   */
  subscribe(channel, opts = {}) {
    channel = String(channel);
    if (!CHANNEL_RE.test(channel))
      return Promise.reject(new FanoutError('bad_channel', `invalid channel name: ${channel}`));
    if (opts.since && !this._channels.has(channel)) {
      const { epoch, offset } = opts.since;
      if (typeof epoch !== 'string' || !Number.isSafeInteger(offset) || offset < 0)
        return Promise.reject(new FanoutError('bad_request', 'since must be {epoch: string, offset: integer >= 0}'));
      this._pos.set(channel, { epoch, offset });
    }
    if (this._state === State.CLOSED)
      return Promise.reject(new FanoutError('closed', 'client is closed'));
    const p = new Promise((resolve, reject) => {
      const list = this._waiters.get(channel) || [];
      list.push({ resolve, reject });
      this._waiters.set(channel, list);
    });
    const already = this._channels.has(channel);
    this._channels.add(channel);
    if (this._isOpen() && !(already && this._subscribeInFlight(channel))) this._sendSubscribe(channel);
    return p;
  }

  /** Stop receiving a channel. Resolves on "unsubscribed" (at once when disconnected). */
  unsubscribe(channel) {
    channel = String(channel);
    const had = this._channels.delete(channel);
    this._pos.delete(channel);
    this._replayTo.delete(channel);
    this._rejectWaiters(channel, new FanoutError('unsubscribed', `unsubscribed from ${channel}`));
    if (!had || !this._isOpen()) return Promise.resolve({ type: 'unsubscribed', channel });
    return this._request({ type: 'unsubscribe', channel }, 'unsubscribe');
  }

  /**
   * Publish data (any JSON value) to a channel. Resolves on "published"
   * (the backend accepted it); rejects with FanoutError: the server's code
   * (forbidden when allow_publish is off, ...), or not_connected, too_big,
   * disconnected, timeout. Never retried by the client: publishing is not
   * idempotent.
   */
  publish(channel, data) {
    if (!this._isOpen())
      return Promise.reject(new FanoutError('not_connected', 'not connected'));
    return this._request({ type: 'publish', channel: String(channel), data }, 'publish');
  }

  /** Close for good: no reconnects; pending requests reject with code "closed". */
  close(code = 1000, reason = 'client closed') {
    if (this._state === State.CLOSED) return;
    const ws = this._ws;
    this._ws = null;
    this._clearAllTimers();
    if (ws) {
      this._detach(ws);
      try {
        ws.close(code, reason);
      } catch {
        /* already closing */
      }
    }
    const err = new FanoutError('closed', 'client closed');
    this._failPending(err);
    for (const ch of [...this._waiters.keys()]) this._rejectWaiters(ch, err);
    if (this._firstOpen) this._firstOpen.reject(err);
    this._setState(State.CLOSED, { code, reason });
  }

  // ---- internals ----

  _isOpen() {
    return this._ws !== null && this._state === State.OPEN;
  }

  _emit(type, detail) {
    this.dispatchEvent(new FanoutEvent(type, detail));
  }

  _setState(state, extra = {}) {
    const prev = this._state;
    this._state = state;
    this._emit('status', { state, prev, attempt: this._attempt, ...extra });
  }

  _timer(name, ms, fn) {
    this._cancel(name);
    this._timers[name] = this._setTimeout(() => {
      this._timers[name] = null;
      fn();
    }, ms);
  }

  _cancel(name) {
    if (this._timers[name] !== null) {
      this._clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _clearAllTimers() {
    for (const name of Object.keys(this._timers)) this._cancel(name);
  }

  _open() {
    if (!this._o.getToken) {
      this._connect(null);
      return;
    }
    // Ask for a token first (it may come from the network); a getToken()
    // that does not answer within connectTimeoutMs is a failed attempt.
    const gen = (this._tokenGen = (this._tokenGen || 0) + 1);
    this._timer('connect', this._o.connectTimeoutMs, () => {
      if (gen !== this._tokenGen || this._ws) return;
      this._tokenGen += 1;
      this._emit('error', { code: 'token_failed', message: 'getToken() did not answer in time' });
      this._lost(CloseCode.ABNORMAL, 'no token');
    });
    let p;
    try {
      p = Promise.resolve(this._o.getToken());
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (token) => {
        if (gen !== this._tokenGen || this._state === State.CLOSED) return;
        this._connect(token == null ? null : String(token));
      },
      (e) => {
        if (gen !== this._tokenGen || this._state === State.CLOSED) return;
        this._emit('error', { code: 'token_failed', message: String(e && e.message ? e.message : e) });
        this._lost(CloseCode.ABNORMAL, 'no token');
      },
    );
  }

  _connect(token) {
    let url;
    try {
      url = typeof this._url === 'function' ? this._url() : this._url;
      if (token) url += (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
      this._token = token;
      this._ws = new this._WS(url);
    } catch (e) {
      // A bad URL throws synchronously; treat it as a failed attempt.
      this._ws = null;
      this._emit('error', { code: 'connect_failed', message: String(e && e.message ? e.message : e) });
      this._lost(CloseCode.ABNORMAL, 'connect failed');
      return;
    }
    const ws = this._ws;
    if (!this._everOpened && this._state !== State.RECONNECTING) this._setState(State.CONNECTING);
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (ev) => this._onFrame(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // the close event that follows carries the information
    this._timer('connect', this._o.connectTimeoutMs, () => {
      if (this._ws !== ws) return;
      this._drop(ws, CloseCode.ABNORMAL, 'connect timeout');
    });
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  // Abandon a socket that is not (or no longer) working and reconnect now,
  // without waiting for a close handshake that may never come.
  _drop(ws, code, reason) {
    this._detach(ws);
    try {
      ws.close();
    } catch {
      /* ignore */
    }
    if (this._ws === ws) this._onClose(ws, code, reason, true);
  }

  _onOpen(ws) {
    if (this._ws !== ws) return;
    this._cancel('connect');
    const reconnected = this._everOpened;
    this._everOpened = true;
    this.stats.connects += 1;
    if (reconnected) this.stats.reconnects += 1;
    this._resubscribing = reconnected ? new Set(this._channels) : new Set();
    this._lastRx = this._now();
    this._setState(State.OPEN, { reconnected });
    this._timer('stable', this._o.stableMs, () => {
      this._attempt = 0;
    });
    this._armPing();
    this._armRefresh();
    for (const ch of this._channels) this._sendSubscribe(ch);
  }

  // Before the token expires: a fresh one from getToken(), sent in-band.
  // A refused refresh is reported; the server then closes 4003 at expiry
  // and the client reconnects with whatever getToken() gives then.
  _armRefresh() {
    const exp = this._token ? tokenExpiry(this._token) : null;
    if (!this._o.getToken || exp === null) return;
    const ms = Math.max(1000, exp * 1000 - this._now() - this._o.refreshBeforeMs);
    this._timer('refresh', ms, () => {
      if (!this._isOpen()) return;
      const ws = this._ws;
      Promise.resolve()
        .then(() => this._o.getToken())
        .then((token) => {
          if (this._ws !== ws || !this._isOpen() || token == null) return undefined;
          return this._request({ type: 'auth', token: String(token) }, 'auth').then(() => {
            if (this._ws !== ws) return;
            this._token = String(token);
            this._emit('authed', { expiresAt: tokenExpiry(this._token) });
            this._armRefresh();
          });
        })
        .catch((e) => {
          this._emit('error', { code: e && e.code ? e.code : 'token_failed', message: String(e && e.message ? e.message : e) });
        });
    });
  }

  // Ping only when the connection has been quiet for pingIntervalMs; a busy
  // connection proves itself alive with every frame.
  _armPing(ms = this._o.pingIntervalMs) {
    if (!this._o.pingIntervalMs) return;
    this._timer('ping', ms, () => {
      if (!this._isOpen()) return;
      const quiet = this._now() - this._lastRx;
      if (quiet < this._o.pingIntervalMs) {
        this._armPing(this._o.pingIntervalMs - quiet);
        return;
      }
      const ws = this._ws;
      this._send({ type: 'ping', id: this._nextId++ });
      this._timer('pong', this._o.pongTimeoutMs, () => {
        if (this._ws === ws) this._drop(ws, CloseCode.ABNORMAL, 'ping timeout');
      });
      this._armPing();
    });
  }

  _onFrame(ws, raw) {
    if (this._ws !== ws) return;
    // Any frame proves the connection alive.
    this._lastRx = this._now();
    this._cancel('pong');
    let f;
    try {
      f = JSON.parse(typeof raw === 'string' ? raw : String(raw));
    } catch {
      this._emit('error', { code: 'bad_frame', message: 'server sent a frame that is not JSON' });
      return;
    }
    if (!f || typeof f !== 'object') return;
    const pending = f.id !== undefined ? this._pending.get(f.id) : undefined;
    switch (f.type) {
      case 'hello':
        this._instance = f.instance ?? null;
        this._version = f.version ?? null;
        this._emit('hello', { instance: this._instance, version: this._version, frame: f });
        if (this._firstOpen) this._firstOpen.resolve(f);
        break;
      case 'message':
        this._onMessage(f);
        break;
      case 'gap':
        if (typeof f.epoch === 'string' && Number.isSafeInteger(f.offset))
          this._pos.set(f.channel, { epoch: f.epoch, offset: f.offset });
        this._replayTo.delete(f.channel);
        this.stats.gaps += 1;
        this._emit('gap', { channel: f.channel, reason: f.reason, local: false, epoch: f.epoch, offset: f.offset, frame: f });
        break;
      case 'subscribed':
        if (pending) this._settle(f.id);
        this._onSubscribed(f.channel, f);
        break;
      case 'unsubscribed':
        if (pending) this._settle(f.id, f);
        this._emit('unsubscribed', { channel: f.channel });
        break;
      case 'published':
        if (pending) this._settle(f.id, f);
        break;
      case 'pong':
      case 'authed':
        if (pending) this._settle(f.id, f);
        break;
      case 'error': {
        const err = new FanoutError(f.code || 'error', f.message, { id: f.id });
        if (pending) {
          this._settle(f.id, undefined, err);
          if (pending.kind === 'subscribe' && pending.channel) {
            this._channels.delete(pending.channel);
            this._resubscribing.delete(pending.channel);
            this._pos.delete(pending.channel);
            this._sinceSent.delete(pending.channel);
            this._rejectWaiters(pending.channel, err);
          }
        }
        this._emit('error', { code: err.code, message: err.message, id: f.id });
        break;
      }
      default:
        break; // unknown frame types are ignored (forward compatibility)
    }
  }

  _onMessage(f) {
    const p = this._pos.get(f.channel);
    let recovered = false;
    if (Number.isSafeInteger(f.offset)) {
      if (p && f.offset <= p.offset) {
        this.stats.duplicates += 1; // seen already: never twice to the app
        return;
      }
      if (p) p.offset = f.offset;
      const upTo = this._replayTo.get(f.channel);
      if (upTo !== undefined) {
        recovered = f.offset <= upTo;
        if (f.offset >= upTo) this._replayTo.delete(f.channel);
      }
    }
    this.stats.messages += 1;
    if (recovered) this.stats.recovered += 1;
    this._emit('message', { channel: f.channel, instance: f.instance, data: f.data, offset: f.offset, recovered, frame: f });
  }

  _onSubscribed(channel, f = {}) {
    if (!this._channels.has(channel)) return; // unsubscribed meanwhile
    const since = this._sinceSent.get(channel);
    this._sinceSent.delete(channel);
    const positioned = typeof f.epoch === 'string' && Number.isSafeInteger(f.offset);
    // Recovered: the replay up to f.offset follows and our position holds.
    // Otherwise (fresh, or a resume the server could not recover) the
    // stream continues after the position the server names.
    const recovered = since !== undefined && f.recovered === true;
    if (positioned && !recovered) this._pos.set(channel, { epoch: f.epoch, offset: f.offset });
    if (!positioned) this._pos.delete(channel);
    if (recovered && f.offset > since.offset) this._replayTo.set(channel, f.offset);
    else this._replayTo.delete(channel);
    const detail = { channel };
    if (positioned) Object.assign(detail, { epoch: f.epoch, offset: f.offset });
    if (since !== undefined) detail.recovered = recovered;
    const list = this._waiters.get(channel) || [];
    this._waiters.delete(channel);
    for (const w of list) w.resolve({ type: 'subscribed', ...detail });
    this._emit('subscribed', detail);
    const reconnected = this._resubscribing.delete(channel);
    if (recovered) {
      this.stats.resumes += 1;
      return; // nothing lost: the replay follows
    }
    if (reconnected || since !== undefined) {
      // Disconnected, and the server could not replay what was published
      // meanwhile (or the channel has no positions): the app must refetch.
      this.stats.gaps += 1;
      const gap = { channel, reason: since !== undefined ? 'not recovered' : 'reconnected', local: true };
      if (positioned) Object.assign(gap, { epoch: f.epoch, offset: f.offset });
      this._emit('gap', gap);
    }
  }

  _onClose(ws, code, reason, local = false) {
    if (this._ws !== ws) return;
    this._detach(ws);
    this._ws = null;
    this._cancel('connect');
    this._cancel('stable');
    this._cancel('ping');
    this._cancel('pong');
    this._cancel('refresh');
    this._failPending(new FanoutError('disconnected', `connection closed (${code})`, { closeCode: code }));
    if (code === CloseCode.TOO_BIG)
      this._emit('error', {
        code: 'too_big',
        message: 'the server closed the connection: a frame we sent exceeded its max_message_bytes',
        closeCode: code,
      });
    if (!shouldReconnect(code)) {
      const message = `refused by the server (${code}${reason ? ' ' + reason : ''})`;
      this._emit('error', { code: 'policy', message, closeCode: code });
      const err = new FanoutError('policy', 'refused by the server', { closeCode: code });
      for (const ch of [...this._waiters.keys()]) this._rejectWaiters(ch, err);
      if (this._firstOpen) this._firstOpen.reject(err);
      this._clearAllTimers();
      this._setState(State.CLOSED, { code, reason });
      return;
    }
    this._lost(code, reason || (local ? 'lost' : ''));
  }

  _lost(code, reason) {
    // 1013: the server is full; start further up the curve so we do not
    // come straight back. 4003: our token expired; come back at once (within
    // baseMs, jittered) with a fresh one.
    if (code === CloseCode.TRY_AGAIN_LATER) this._attempt = Math.max(this._attempt, 3);
    if (code === CloseCode.TOKEN_EXPIRED) this._attempt = 0;
    const delayMs = backoffDelay(this._attempt, {
      baseMs: this._o.baseMs,
      capMs: this._o.capMs,
      random: this._random,
    });
    this._attempt += 1;
    this._setState(State.RECONNECTING, { code, reason, delayMs, retryAt: this._now() + delayMs });
    this._timer('retry', delayMs, () => this._open());
  }

  /** Reconnect now instead of waiting for the backoff delay (e.g. on `online`). */
  retryNow() {
    if (this._state !== State.RECONNECTING || this._ws) return;
    this._cancel('retry');
    this._open();
  }

  _subscribeInFlight(channel) {
    for (const p of this._pending.values()) if (p.kind === 'subscribe' && p.channel === channel) return true;
    return false;
  }

  _sendSubscribe(channel) {
    const frame = { type: 'subscribe', channel };
    const p = this._pos.get(channel);
    if (p) {
      frame.since = { epoch: p.epoch, offset: p.offset };
      this._sinceSent.set(channel, frame.since);
    } else {
      this._sinceSent.delete(channel);
    }
    this._request(frame, 'subscribe').catch(() => {
      /* outcome reaches the channel's waiters */
    });
  }

  _request(frame, kind) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const text = JSON.stringify({ ...frame, id });
      const max = this._o.maxMessageBytes;
      if (max && byteLength(text) > max) {
        reject(new FanoutError('too_big', `frame of ${byteLength(text)} bytes exceeds ${max}`));
        return;
      }
      const timer = this._setTimeout(() => {
        if (!this._pending.has(id)) return;
        this._pending.delete(id);
        reject(new FanoutError('timeout', `no reply to ${kind} within ${this._o.requestTimeoutMs} ms`));
      }, this._o.requestTimeoutMs);
      this._pending.set(id, { kind, channel: frame.channel, resolve, reject, timer });
      this._sendText(text);
    });
  }

  _settle(id, value, err) {
    const p = this._pending.get(id);
    if (!p) return;
    this._pending.delete(id);
    this._clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  _failPending(err) {
    // Subscribe requests are not failed: their channels stay wanted and are
    // sent again on the next connection (their waiters stay too).
    for (const [id, p] of [...this._pending]) {
      this._pending.delete(id);
      this._clearTimeout(p.timer);
      if (p.kind !== 'subscribe') p.reject(err);
    }
  }

  _rejectWaiters(channel, err) {
    const list = this._waiters.get(channel);
    if (!list) return;
    this._waiters.delete(channel);
    for (const w of list) w.reject(err);
  }

  _send(obj) {
    this._sendText(JSON.stringify(obj));
  }

  _sendText(text) {
    try {
      this._ws.send(text);
    } catch (e) {
      this._emit('error', { code: 'send_failed', message: String(e && e.message ? e.message : e) });
    }
  }
}

function byteLength(s) {
  if (typeof TextEncoder !== 'undefined') return new TextEncoder().encode(s).length;
  return s.length;
}

/**
 * The WebSocket URL of the same origin as the page: ws(s)://host/path, with
 * `?channel=` for each given channel omitted (the client subscribes itself).
 */
export function sameOriginUrl(path = '/ws', loc = globalThis.location) {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}${path}`;
}
