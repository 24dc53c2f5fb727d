// valkey_multi.mjs — two fanoutd instances on one broker: a client publish on
// instance A reaches a subscriber on instance B (and A's own subscribers),
// each message tagged with the instance that delivered it.
import assert from 'node:assert/strict';
import { tap } from '../lib/tap.mjs';
import { startRedis, startFanoutd, wsClient, waitFor } from '../lib/harness.mjs';

const t = tap();
const ini = (r) => `[server]
allow_publish = true

[backend valkey]
plugin = valkey
url = redis://127.0.0.1:${r.port}/0
channel_prefix = t:
`;

await t.test('publish on instance A reaches subscribers on A and B', async () => {
  const r = await startRedis();
  const a = await startFanoutd({ ini: ini(r), instance: 'a', wait: 'ready' });
  const b = await startFanoutd({ ini: ini(r), instance: 'b', wait: 'ready' });
  const ca = await wsClient(a.ws);
  const cb = await wsClient(b.ws);
  await ca.subscribe('room');
  await cb.subscribe('room');
  assert.equal(await r.cli('PUBSUB', 'NUMSUB', 't:room'), 't:room\n2');
  ca.send({ type: 'publish', channel: 'room', data: { from: 'a', n: 7 }, id: 'p' });
  const rep = await waitFor(() => ca.frames.find((x) => x.id === 'p'), { what: 'publish reply' });
  assert.equal(rep.type, 'published', JSON.stringify(rep));
  const mb = await cb.next((x) => x.type === 'message' && x.channel === 'room');
  assert.deepEqual(mb.data, { from: 'a', n: 7 });
  assert.equal(mb.instance, 'b');
  const ma = await waitFor(() => ca.frames.find((x) => x.type === 'message' && x.channel === 'room'), { what: 'message on a' });
  assert.equal(ma.instance, 'a');
  // The probe traffic of one instance never reaches the other's clients.
  assert.equal(cb.all((x) => x.type === 'message').length, 1);
  await ca.close();
  await cb.close();
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
  await r.stop();
});

t.done();
