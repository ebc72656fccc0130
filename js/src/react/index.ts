// `tandem-sync/react`: hooks over the shared collections and transactions.
export { useCollection } from './useCollection.js'
export type { UseCollectionResult } from './useCollection.js'
export { useSyncStatus } from './useSyncStatus.js'
export { useTransactions } from './useTransactions.js'
