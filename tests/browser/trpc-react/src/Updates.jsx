// Updates.jsx — the application's component, unchanged: a live list of
// updates from a tRPC subscription (tracked events: { id, data }).
import { useState } from 'react';
import { trpc } from './trpc.js';

export function Updates() {
  const [items, setItems] = useState([]);
  const sub = trpc.onUpdates.useSubscription(undefined, {
    onData: (ev) => setItems((xs) => [...xs, ev]),
  });
  return (
    <section>
      <p id="status">{sub.status}</p>
      {sub.error && <p id="error">{sub.error.message}</p>}
      <ul id="updates">
        {items.map((ev) => (
          <li key={ev.id} data-id={ev.id}>
            {ev.data.text}
          </li>
        ))}
      </ul>
    </section>
  );
}
