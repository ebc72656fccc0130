// The public types. Records, transactions and options are the runtime's (generated from the
// wasm crate, see src/types.d.ts); what is defined here adds the record type `T` to the
// collection-facing ones and seed 004's names.
import type {
  AwaitSyncParams as RuntimeAwaitSyncParams,
  PendingMutation,
  PersistParams,
  SyncConfig as RuntimeSyncConfig,
  TandemRecord,
  TransactionRecord,
  TransactionState,
} from '../wasm/tandem.js'

export type {
  Attempt,
  ChangeMessage as RuntimeChangeMessage,
  Changes,
  ErrorInfo,
  HistoryOptions,
  MutationInput,
  PendingMutation,
  PersistParams,
  RetryOptions,
  StorageErrorKind,
  TandemError,
  TandemOptions,
  TandemRecord,
  TransactionEvent,
  TransactionRecord,
  TransactionState,
} from '../wasm/tandem.js'

/** A record key: the value of the collection's key field. */
export type Key = string | number

/**
 * A transaction as its creator holds it. Its `id` is stable across retries and reloads: the
 * idempotency key to send to the server.
 */
export interface Transaction {
  readonly id: string
  /** `undefined` once pruned from history. */
  readonly state: TransactionState | undefined
  /** Seed 004's `Transaction` record, with its full attempt history. */
  toJSON(): TransactionRecord | undefined
  /** Resolves with the record once completed; rejects with a `TransactionFailedError` once failed. */
  settled(): Promise<TransactionRecord>
}

/** One changed key, as collection subscribers get it. `value` is absent for a delete. */
export interface ChangeMessage<T extends object = TandemRecord> {
  type: 'insert' | 'update' | 'delete'
  key: string
  value?: T
}

/** One change from the sync layer. */
export type SyncChange<T extends object = TandemRecord> =
  | { type: 'upsert'; value: T }
  | { type: 'delete'; key: Key }

/** What a sync layer delivers: an array of records (upserts), or a batch. */
export type SyncUpdate<T extends object = TandemRecord> =
  | readonly T[]
  | {
      changes?: readonly SyncChange<T>[]
      /** Transactions whose write this batch contains: they complete. */
      confirms?: readonly string[]
      /** The collection's whole state: records not mentioned are deleted. */
      snapshot?: boolean
      /** Newest hybrid-logical-clock timestamp in the batch (Unix µs). */
      maxTimestamp?: number
      /** Opaque sync position (e.g. server heads), stored with the cached data. */
      position?: string
    }

/** What `sync.setup` is called with: the runtime's parameters, with `onUpdate` typed for `T`. */
export type SyncSetupParams<T extends object = TandemRecord> = Omit<
  Parameters<RuntimeSyncConfig['setup']>[0],
  'onUpdate'
> & {
  /** Delivers a change from the server; throws a typed error for a malformed update. */
  onUpdate: (update: SyncUpdate<T>) => void
}

export type SyncSetupResult<T extends object = TandemRecord> = { data?: SyncUpdate<T> } | void

/** Seed 004's sync configuration: where a collection's data comes from. */
export interface SyncConfig<T extends object = TandemRecord> {
  /** Identifies the collection: one shared instance per id. */
  id: string
  /** Called once, when the collection is created. `data`, if given, is the initial snapshot. */
  setup: (params: SyncSetupParams<T>) => Promise<SyncSetupResult<T>> | SyncSetupResult<T>
}

export type SyncStatus = 'started' | 'syncing' | 'paused' | 'error'

/** Optional interface of a sync config that knows its connection state (e.g. `tandemServer`). */
export interface SyncStatusSource {
  status(): SyncStatus
  subscribeStatus(listener: (status: SyncStatus) => void): () => void
}

export interface AwaitSyncParams<T extends object = TandemRecord> extends RuntimeAwaitSyncParams {
  /** The sync config of the collection whose mutation function this is. */
  sync: SyncConfig<T> | undefined
}

/** Seed 004's mutation function: how a collection's changes reach the server. */
export interface MutationFn<T extends object = TandemRecord> {
  /**
   * Sends the changes; use `transaction.id` as the idempotency key. Throw (reject) to retry,
   * or throw a `NonRetriableError` to fail at once.
   */
  persist: (params: PersistParams) => Promise<void> | void
  /** Resolves once the sync layer has shown the transaction's data. */
  awaitSync?: (params: AwaitSyncParams<T>) => Promise<void> | void
}

/**
 * Computes the visible record of a key touched by parallel transactions. Called synchronously
 * while the engine recomputes: it must not call back into Tandem.
 */
export type MergeFn<T extends object = TandemRecord> = (
  synced: T | undefined,
  pending: PendingMutation[],
) => T | undefined | null

/** Seed 004's strategy object; a bare `'ordered' | 'parallel'` works too. */
export interface MutationStrategy<T extends object = TandemRecord> {
  type: 'ordered' | 'parallel'
  /** Makes the transactions parallel with this merge. Pass a stable function. */
  merge?: MergeFn<T>
}

export type StrategyOption<T extends object = TandemRecord> = 'ordered' | 'parallel' | MutationStrategy<T>

/** Options of one `insert` / `update` / `delete`. */
export interface MutationOptions<T extends object = TandemRecord> {
  strategy?: StrategyOption<T>
  /** Merge for this transaction (makes it parallel). Pass a stable function. */
  merge?: MergeFn<T>
  metadata?: unknown
}

/** Options of `withMutation`: the grouped transaction's. */
export type WithMutationOptions = MutationOptions<TandemRecord>

interface CollectionSettings<T extends object> {
  /** The field holding each record's key (default `"id"`). */
  keyField?: keyof T & string
  /** Without one, the collection is local: transactions complete at once. */
  mutationFn?: MutationFn<T>
  /** Strategy of `insert`/`update`/`delete` (default `'ordered'`). */
  strategy?: StrategyOption<T>
  /** Merge for this collection's parallel transactions. */
  merge?: MergeFn<T>
}

/**
 * A collection's configuration. Its id defaults to `sync.id`; the first configuration given
 * for an id creates the collection, later ones get the same instance.
 */
export type CollectionConfig<T extends object = TandemRecord> = CollectionSettings<T> &
  ({ id?: string; sync: SyncConfig<T> } | { id: string; sync?: undefined })
