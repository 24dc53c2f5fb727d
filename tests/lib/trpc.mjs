// trpc.mjs — for the tests that drive fanoutd with the real @trpc/client:
// a WebSocket class (the `ws` package's) that records every URL opened and
// every text frame each way, to pass as createWSClient's WebSocket option.
import { WebSocket } from './harness.mjs';

/** log gets {url}, {out: text} and {in: text} entries, in order. */
export function recordingWebSocket(log) {
  return class extends WebSocket {
    constructor(u, ...rest) {
      super(u, ...rest);
      log.push({ url: u });
      this.addEventListener('message', (e) => log.push({ in: String(e.data) }));
    }
    send(d) {
      log.push({ out: String(d) });
      super.send(d);
    }
  };
}
