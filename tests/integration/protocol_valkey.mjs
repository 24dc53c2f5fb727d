// protocol_valkey.mjs — the protocol suite (protocol_suite.mjs) against the
// valkey backend and a real redis-server/valkey-server.
import { runProtocolSuite } from './protocol_suite.mjs';
import { valkeyBackend } from '../lib/backends.mjs';

await runProtocolSuite(valkeyBackend());
