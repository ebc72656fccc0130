// `tandem-sync`: optimistic mutations over synced collections. The runtime (WebAssembly) is
// initialised when this module is first imported; everything here is usable synchronously.
export { configureTandem, getTandemClient, resetTandemClient, TandemClient } from './client.js'
export type { TandemConfig } from './client.js'
export { Collection, createCollection, findCollection } from './collection.js'
export { isTandemError, NonRetriableError } from './errors.js'
export type { TandemErrorName } from './errors.js'
export { subscribeTransactions, transactionsStore } from './transactions.js'
export type { TransactionsStore } from './transactions.js'
export { withMutation } from './withMutation.js'
export type {
  Attempt,
  AwaitSyncParams,
  ChangeMessage,
  Changes,
  CollectionConfig,
  ErrorInfo,
  HistoryOptions,
  Key,
  MergeFn,
  MutationFn,
  MutationInput,
  MutationOptions,
  MutationStrategy,
  PendingMutation,
  PersistParams,
  RetryOptions,
  StorageErrorKind,
  StrategyOption,
  SyncChange,
  SyncConfig,
  SyncSetupParams,
  SyncSetupResult,
  SyncStatus,
  SyncStatusSource,
  SyncUpdate,
  TandemError,
  TandemOptions,
  TandemRecord,
  Transaction,
  TransactionEvent,
  TransactionRecord,
  TransactionState,
  WithMutationOptions,
} from './types.js'
export { tandemServer } from './server.js'
export type { ServerSyncError, TandemServer, TandemServerOptions, TandemServerSync } from './server.js'
