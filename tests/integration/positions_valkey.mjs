// positions_valkey.mjs — the positions suite (positions_suite.mjs, protocol
// v1.1) against the valkey backend, whose history lives in the broker
// (redis-server, started by the fixture).
import { runPositionsSuite } from './positions_suite.mjs';
import { valkeyBackend } from '../lib/backends.mjs';

await runPositionsSuite(valkeyBackend());
