// protocol_loopback.mjs — the protocol suite (protocol_suite.mjs) against
// the in-process loopback backend.
import { runProtocolSuite } from './protocol_suite.mjs';
import { loopbackBackend } from '../lib/backends.mjs';

await runProtocolSuite(loopbackBackend());
