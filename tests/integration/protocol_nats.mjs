// protocol_nats.mjs — the protocol suite (protocol_suite.mjs) against the
// nats backend and a real nats-server (core NATS, no JetStream).
import { runProtocolSuite } from './protocol_suite.mjs';
import { natsBackend } from '../lib/backends.mjs';

await runProtocolSuite(natsBackend());
