// app.js — the demo page's logic (web/index.html). Owns the DOM of the page
// and one FanoutClient connected to the same origin's /ws. Runs on the
// browser's main thread; keeps at most MAX_ROWS rows in the update list.
//
// Page URL parameters:
//   ?channel=a&channel=b   channels to subscribe at start (default: updates)
//   ?ws=ws://host:port/ws  connect elsewhere than the same origin's /ws
//   ?base_ms=N&cap_ms=N    reconnect backoff (defaults 500 / 30000)
import { FanoutClient, State, sameOriginUrl } from './fanout.js';

const MAX_ROWS = 200;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const startChannels = params.getAll('channel').filter(Boolean);
if (startChannels.length === 0) startChannels.push('updates');

const num = (v, d) => (v !== null && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
const client = new FanoutClient(params.get('ws') || sameOriginUrl('/ws'), {
  channels: startChannels,
  baseMs: num(params.get('base_ms'), 500),
  capMs: num(params.get('cap_ms'), 30000),
});
// For tests and for poking around in the devtools console.
window.fanout = client;

const seen = new Set(); // instances that sent us something
const confirmed = new Set(); // channels the current connection has confirmed
let retryTimer = null;

// A stable hue per instance name (FNV-1a), so each instance keeps its colour
// in every tab.
function hue(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 360;
}

function instanceBadge(name, el = document.createElement('span')) {
  const n = name == null ? '?' : String(name);
  el.className = 'inst';
  el.textContent = n;
  el.dataset.instance = n;
  el.style.setProperty('--hue', hue(n));
  return el;
}

function counters() {
  $('count-messages').textContent = client.stats.messages;
  $('count-recovered').textContent = client.stats.recovered;
  $('count-reconnects').textContent = client.stats.reconnects;
  $('count-gaps').textContent = client.stats.gaps;
  $('count-instances').textContent = seen.size;
}

function time() {
  return new Date().toLocaleTimeString([], { hour12: false }) + '.' + String(Date.now() % 1000).padStart(3, '0');
}

function addRow(kind, build) {
  const li = document.createElement('li');
  li.className = `row-${kind}`;
  li.dataset.kind = kind;
  li.dataset.t = Date.now(); // when it was rendered (tests measure latency with it)
  const t = document.createElement('time');
  t.textContent = time();
  li.append(t);
  build(li);
  const list = $('updates');
  list.prepend(li);
  while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
  $('empty').hidden = true;
}

function render(data) {
  if (typeof data === 'string') return data;
  try {
    return JSON.stringify(data);
  } catch {
    return String(data);
  }
}

function setState(state, text) {
  const el = $('state');
  el.dataset.state = state;
  $('state-text').textContent = text;
}

client.addEventListener('status', (ev) => {
  const d = ev.detail;
  clearInterval(retryTimer);
  retryTimer = null;
  switch (d.state) {
    case State.CONNECTING:
      setState('connecting', 'connecting…');
      break;
    case State.OPEN:
      setState('open', 'connected');
      break;
    case State.RECONNECTING: {
      confirmed.clear();
      drawChannels();
      const why = d.code ? ` (${d.code}${d.reason ? ' ' + d.reason : ''})` : '';
      const tick = () => {
        const left = Math.max(0, d.retryAt - Date.now());
        const when = left > 0 ? ` in ${(left / 1000).toFixed(1)} s` : '…';
        setState('reconnecting', `reconnecting${when}${why}`);
      };
      tick();
      retryTimer = setInterval(tick, 100);
      $('instance').classList.add('stale');
      if (d.prev === State.OPEN)
        addRow('status', (li) => li.append(text(`connection lost${why}; reconnecting`)));
      break;
    }
    case State.CLOSED:
      confirmed.clear();
      drawChannels();
      setState('closed', `closed${d.code ? ` (${d.code})` : ''}`);
      break;
  }
  counters();
});

function text(s, cls) {
  const span = document.createElement('span');
  span.textContent = s;
  if (cls) span.className = cls;
  return span;
}

client.addEventListener('hello', (ev) => {
  const { instance, version } = ev.detail;
  const el = instanceBadge(instance, $('instance'));
  el.classList.remove('stale');
  el.title = `fanoutd ${version || ''}`.trim();
  addRow('status', (li) => {
    li.append(text('connected to '), instanceBadge(instance));
  });
  if (typeof ev.detail.frame.allow_publish === 'boolean') publishAllowed(ev.detail.frame.allow_publish);
  counters();
});

client.addEventListener('message', (ev) => {
  const { channel, instance, data, offset, recovered } = ev.detail;
  if (instance != null) seen.add(String(instance));
  addRow('message', (li) => {
    if (offset !== undefined) li.dataset.offset = offset;
    if (recovered) {
      // Published while this page was between instances; replayed on
      // reconnect from the history, in order, once.
      li.classList.add('recovered');
      li.dataset.recovered = '1';
      li.title = 'missed while reconnecting, recovered from history';
    }
    li.append(instanceBadge(instance), text(channel, 'chan'));
    if (recovered) li.append(text('recovered', 'tag rec'));
    li.append(text(render(data), 'data'));
  });
  counters();
});

client.addEventListener('gap', (ev) => {
  const { channel, reason, local } = ev.detail;
  addRow('gap', (li) => {
    const why = local
      ? 'reconnected and could not recover: updates may have been missed (refetch)'
      : `may have missed updates: ${reason}`;
    li.append(text('gap', 'tag'), text(channel, 'chan'), text(why));
  });
  counters();
});

client.addEventListener('error', (ev) => {
  const { code, message } = ev.detail;
  if (code === 'forbidden') return; // shown by the publish box
  addRow('error', (li) => li.append(text(code, 'tag'), text(message || '')));
});

client.addEventListener('subscribed', (ev) => {
  const { channel, recovered, offset } = ev.detail;
  confirmed.add(channel);
  drawChannels();
  if (recovered === true)
    addRow('status', (li) => li.append(text(`resumed ${channel} at ${offset}: nothing missed`)));
});
client.addEventListener('unsubscribed', drawChannels);

function drawChannels() {
  const ul = $('channels');
  ul.replaceChildren();
  for (const ch of client.channels) {
    const li = document.createElement('li');
    li.dataset.channel = ch;
    li.dataset.state = confirmed.has(ch) ? 'ok' : 'pending';
    li.title = confirmed.has(ch) ? 'subscribed' : 'waiting for the server to confirm';
    li.append(text(ch));
    const x = document.createElement('button');
    x.type = 'button';
    x.className = 'x';
    x.title = `unsubscribe from ${ch}`;
    x.setAttribute('aria-label', x.title);
    x.textContent = '×';
    x.addEventListener('click', () => {
      confirmed.delete(ch);
      client.unsubscribe(ch).catch(() => {});
      drawChannels();
    });
    li.append(x);
    ul.append(li);
  }
}

$('sub-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('sub-channel');
  const ch = input.value.trim();
  if (!ch) return;
  input.value = '';
  client.subscribe(ch).then(drawChannels, (e) => {
    addRow('error', (li) => li.append(text(e.code, 'tag'), text(`${ch}: ${e.message}`)));
    drawChannels();
  });
  drawChannels();
});

function publishAllowed(ok, why) {
  $('pub-form').hidden = !ok;
  const note = $('pub-note');
  note.hidden = ok;
  if (!ok) note.textContent = why || 'Publishing is disabled on this server (allow_publish = false).';
}

$('pub-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const ch = $('pub-channel').value.trim() || client.channels[0] || 'updates';
  const raw = $('pub-data').value;
  let data = raw;
  try {
    data = JSON.parse(raw);
  } catch {
    /* plain text is sent as a JSON string */
  }
  client.publish(ch, data).then(
    () => {
      $('pub-data').value = '';
    },
    (e) => {
      if (e.code === 'forbidden') {
        publishAllowed(false);
        $('pub-note').title = `server: ${e.message}`;
      }
      else addRow('error', (li) => li.append(text(e.code, 'tag'), text(`publish to ${ch}: ${e.message}`)));
    },
  );
});

window.addEventListener('online', () => client.retryNow());

$('pub-channel').placeholder = startChannels[0];
drawChannels();
counters();
client.connect().catch(() => {});
