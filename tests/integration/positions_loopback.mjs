// positions_loopback.mjs — the positions suite (positions_suite.mjs, protocol
// v1.1) against the in-process loopback backend and its in-memory history.
import { runPositionsSuite } from './positions_suite.mjs';
import { loopbackBackend } from '../lib/backends.mjs';

await runPositionsSuite(loopbackBackend());
