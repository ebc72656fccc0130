/** A record: a JSON object carrying its collection's key field. */
export type TandemRecord = Record<string, unknown>;

export type TransactionState =
  | "queued"
  | "pending"
  | "persisting"
  | "persisted_awaiting_sync"
  | "completed"
  | "failed";

/**
 * A transaction of this client, as `insert`, `update`, `delete` and `mutate` return it. Its id
 * is stable across retries and reloads: the idempotency key the persist function should send.
 */
export interface Transaction {
  readonly id: string;
  /** `undefined` once pruned from history. */
  readonly state: TransactionState | undefined;
  /** The full record (seed 004's `Transaction`), `undefined` once pruned from history. */
  toJSON(): TransactionRecord | undefined;
  /**
   * Resolves with the record once the transaction completed; rejects with a
   * `TransactionFailedError` (`transactionId`, `causeTransactionId` when a transaction it was
   * queued behind failed, `cause`) once it failed.
   */
  settled(): Promise<TransactionRecord>;
}

export interface RetryOptions {
  /** Retries after the first attempt (default 4, so 5 attempts). */
  maxRetries?: number;
  /** Delay before the first retry (default 1000 ms). */
  initialDelayMs?: number;
  /** Each retry waits this many times longer (default 2)… */
  factor?: number;
  /** …up to this (default 30000 ms). */
  maxDelayMs?: number;
  /** Random fraction of each delay, 0..1 (default 0.25). */
  jitter?: number;
}

export interface HistoryOptions {
  /** Keep at most this many finished transactions (default: all, as seed 004). */
  maxFinished?: number;
  /** Drop finished transactions older than this. */
  maxAgeMs?: number;
}

export interface TandemOptions {
  /** IndexedDB database name (default "tandem"). */
  database?: string;
  /** This instance's id; random per page load by default. A given id must not be used by another live instance. */
  clientId?: string;
  retry?: RetryOptions;
  /** A persist that has not settled after this long counts as a retriable failure. */
  attemptTimeoutMs?: number;
  history?: HistoryOptions;
  /** Default "indexeddb"; "memory" keeps nothing across reloads. */
  persistence?: "indexeddb" | "memory";
  /** Give up opening IndexedDB (e.g. an upgrade blocked by an old tab) after this long (default 5000 ms). */
  openTimeoutMs?: number;
  /** How often to look for work left by closed tabs (default 10000 ms; 0 = only at start and on lock release). */
  adoptIntervalMs?: number;
}

/** `{ [collection]: { [key]: changed fields, or null for a delete } }` */
export type Changes = Record<string, Record<string, Record<string, unknown> | null>>;

export interface PersistParams {
  changes: Changes;
  /** 1-based attempt number. */
  attempt: number;
  /** The transaction's record as it is when first read (its `toJSON()`): `persisting` while this call runs. */
  transaction: TransactionRecord;
}

export interface AwaitSyncParams {
  changes: Changes;
  /** The transaction's record as it is when first read (its `toJSON()`). */
  transaction: TransactionRecord;
}

export interface MutationFn {
  /** Sends the changes; use `transaction.id` as the idempotency key. Throw (reject) to retry, or throw an error named "NonRetriableError" to fail at once. */
  persist: (params: PersistParams) => Promise<void> | void;
  /** Resolves once the sync layer has shown the transaction's data. */
  awaitSync?: (params: AwaitSyncParams) => Promise<void> | void;
}

export type SyncChange =
  | { type: "upsert"; value: TandemRecord }
  | { type: "delete"; key: string | number };

/** An array of records (upserts), or a batch. */
export type SyncUpdate =
  | TandemRecord[]
  | {
      changes?: SyncChange[];
      /** Transactions whose write this batch contains (they complete). */
      confirms?: string[];
      /** The collection's whole state: records not mentioned are deleted. */
      snapshot?: boolean;
      /** Newest HLC timestamp in the batch (Unix µs). */
      maxTimestamp?: number;
      /** Opaque sync position (e.g. server heads), stored with the cached data. */
      position?: string;
    };

export interface SyncSetupContext {
  onUpdate: (update: SyncUpdate) => void;
  /** The collection's id. */
  collection: string;
  /** The collection's key field. */
  keyField: string;
  /** The client's id. */
  clientId: string;
  /** The sync position stored with the synced cache (of the last update that carried one), to resume from. */
  position?: string;
  /** Delivers an error to the client's `onError` as it is. */
  reportError: (error: Error) => void;
}

export interface SyncConfig {
  /** Called once when the collection is created. `data`, if given, is the initial snapshot. */
  setup: (params: SyncSetupContext) => Promise<{ data?: SyncUpdate } | void> | { data?: SyncUpdate } | void;
}

/**
 * Computes the visible record of a key touched by parallel transactions. Called synchronously
 * while the engine recomputes: it must not call back into the client.
 */
export type MergeFn = (synced: TandemRecord | undefined, pending: PendingMutation[]) => TandemRecord | undefined | null;

export interface CollectionOptions {
  id: string;
  /** Default "id". */
  keyField?: string;
  sync?: SyncConfig;
  /** Without one, the collection is local: transactions complete at once. */
  mutationFn?: MutationFn;
  /** Strategy of insert/update/delete (default "ordered"). */
  strategy?: "ordered" | "parallel";
  /** Merge for this collection's parallel transactions. */
  merge?: MergeFn;
}

export interface MutationOptions {
  strategy?: "ordered" | "parallel";
  /** Merge for this transaction (makes it parallel). Pass a stable function. */
  merge?: MergeFn;
  metadata?: unknown;
}

export type MutateOptions = MutationOptions;

export type MutationInput =
  | { type: "insert"; collection: string; value: TandemRecord; metadata?: unknown }
  | { type: "update"; collection: string; key: string | number; changes: Record<string, unknown>; metadata?: unknown }
  | { type: "delete"; collection: string; key: string | number; metadata?: unknown };

/** One changed key, as given to collection subscribers. `value` is absent for a delete. */
export interface ChangeMessage {
  type: "insert" | "update" | "delete";
  key: string;
  value?: TandemRecord;
}

export interface TransactionEvent {
  id: string;
  state: TransactionState;
}

export interface ErrorInfo {
  name: string;
  message: string;
  retriable: boolean;
}

/** Seed 004's Attempt; times are Unix ms. */
export interface Attempt {
  id: string;
  number: number;
  started_at: number;
  completed_at?: number;
  error?: ErrorInfo;
  retry_scheduled_for?: number;
  /** The page went away while it ran; not counted against the retry budget. */
  interrupted?: boolean;
}

/** Seed 004's PendingMutation; times are Unix ms, `timestamp` is the HLC (Unix µs). */
export interface PendingMutation {
  mutation_id: string;
  type: "insert" | "update" | "delete";
  collection: string;
  key: string;
  original: TandemRecord;
  modified: TandemRecord;
  changes: TandemRecord;
  metadata: unknown;
  timestamp: number;
  created_at: number;
  updated_at: number;
  state: "created" | "persisting" | "synced";
}

/** Seed 004's Transaction, as stored; times are Unix ms, `timestamp` is the HLC (Unix µs). */
export interface TransactionRecord {
  id: string;
  /** Client that created it (with `id`, what a server deduplicates retries by). */
  client: string;
  state: TransactionState;
  strategy: { type: "ordered" } | { type: "parallel"; merge?: string };
  await_sync: boolean;
  created_at: number;
  updated_at: number;
  timestamp: number;
  mutations: PendingMutation[];
  attempts: Attempt[];
  current_attempt: number;
  queued_behind?: string;
  error?: { transaction_id?: string; message: string; error: ErrorInfo };
  metadata: unknown;
}

export type StorageErrorKind =
  | "unavailable"
  | "quota"
  | "blocked"
  | "connection_lost"
  | "version_change"
  | "write_failed"
  | "read_failed"
  | "locks_unavailable";

/** What a `SyncError` of the tandem-server preset is about. */
export type SyncErrorKind = "invalid_value" | "server_error" | "bad_message" | "token" | "update_refused" | "subscriber";

/** Errors thrown or reported by Tandem: `name` is stable, context is in properties. */
export interface TandemError extends Error {
  name:
    | "DuplicateKeyError"
    | "MissingKeyError"
    | "InvalidRecordError"
    | "KeyFieldChangedError"
    | "EmptyTransactionError"
    | "UnknownMergeError"
    | "UnknownCollectionError"
    | "DuplicateCollectionError"
    | "UnknownTransactionError"
    | "StorageError"
    | "InvalidArgumentError"
    | "ClientClosedError"
    | "ReentrancyError"
    | "ClientIdInUseError"
    | "TransactionFailedError"
    | "SyncSetupError"
    | "AwaitSyncError"
    | "MergeError"
    | "SubscriberError"
    /** Reported by the tandem-server preset (`kind`; `key` of a skipped value, `code` of a server error). */
    | "SyncError";
  collection?: string;
  key?: string;
  transactionId?: string;
  /** StorageError: which failure; SyncError: which problem. */
  kind?: StorageErrorKind | SyncErrorKind;
  /** StorageError of a write: the transactions not stored (they still run in memory). */
  transactionIds?: string[];
  causeTransactionId?: string;
  cause?: unknown;
}
