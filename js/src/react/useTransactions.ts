import { useSyncExternalStore } from 'react'
import type { TandemClient, TransactionRecord } from '../../wasm/tandem.js'
import { transactionsStore } from '../transactions.js'

/**
 * Every transaction of the client (the default one unless given), oldest first, with its
 * state, attempts and errors. Re-renders when a transaction changes.
 */
export function useTransactions(client?: TandemClient): readonly TransactionRecord[] {
  const store = transactionsStore(client)
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot)
}
