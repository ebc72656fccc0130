// Transaction state for monitoring and debugging tools (seed 004's "State Exposure"): an event
// subscription, and a store whose snapshot keeps its identity until a transaction changes.
import type { TandemClient, TransactionEvent, TransactionRecord } from '../wasm/tandem.js'
import { getTandemClient } from './client.js'

/** Calls `listener` with `[{ id, state }]` whenever transactions change state. */
export function subscribeTransactions(
  listener: (events: TransactionEvent[]) => void,
  client: TandemClient = getTandemClient(),
): () => void {
  return client.subscribeTransactions(listener)
}

/** Every transaction of a client, as an external store (`useSyncExternalStore`'s shape). */
export interface TransactionsStore {
  subscribe(listener: () => void): () => void
  /** Every transaction, oldest first, with its attempts and errors: the same array until one changes. */
  getSnapshot(): readonly TransactionRecord[]
}

const stores = new WeakMap<TandemClient, TransactionsStore>()

/** The transactions store of a client (the default client unless given), one per client. */
export function transactionsStore(client: TandemClient = getTandemClient()): TransactionsStore {
  let store = stores.get(client)
  if (!store) stores.set(client, (store = createStore(client)))
  return store
}

function createStore(client: TandemClient): TransactionsStore {
  const listeners = new Set<() => void>()
  let snapshot: readonly TransactionRecord[] | undefined
  // Subscribed for the client's lifetime, so the snapshot is always current: a cached
  // snapshot may only be handed out while something tells us when it goes stale.
  client.subscribeTransactions(() => {
    snapshot = undefined
    for (const listener of [...listeners]) listener()
  })
  return {
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    getSnapshot() {
      snapshot ??= Object.freeze(client.transactions())
      return snapshot
    },
  }
}
