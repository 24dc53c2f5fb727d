// positions_example.mjs — the positions suite (positions_suite.mjs, protocol
// v1.1) against the example backend (plugins/example): the tutorial third
// parties copy must keep the contract it teaches.
import { runPositionsSuite } from './positions_suite.mjs';
import { exampleBackend } from '../lib/backends.mjs';

await runPositionsSuite(exampleBackend());
