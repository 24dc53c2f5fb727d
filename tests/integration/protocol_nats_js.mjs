// protocol_nats_js.mjs — the protocol suite (protocol_suite.mjs) against the
// nats backend with jetstream = yes and a real nats-server -js: channels
// are positioned (epoch = the stream, offsets = stream sequences).
import { runProtocolSuite } from './protocol_suite.mjs';
import { natsBackend } from '../lib/backends.mjs';

await runProtocolSuite(natsBackend({ js: true }));
