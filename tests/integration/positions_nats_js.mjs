// positions_nats_js.mjs — the positions suite (positions_suite.mjs, protocol
// v1.1) against the nats backend with JetStream (nats-server -js, started by
// the fixture): offsets are stream sequences, not contiguous per channel.
import { runPositionsSuite } from './positions_suite.mjs';
import { natsBackend } from '../lib/backends.mjs';

await runPositionsSuite(natsBackend({ js: true }));
