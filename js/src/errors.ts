// Error classes and names. The runtime throws (and reports through `onError`) real `Error`s
// with a stable `name` and their context as properties; `NonRetriableError` is the one users
// throw themselves.
import type { TandemError } from '../wasm/tandem.js'

/** Throw it from `persist` to fail the transaction at once instead of retrying. */
export class NonRetriableError extends Error {
  // The runtime recognises it by name, so it works across bundles and realms too.
  override name = 'NonRetriableError' as const

  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** The `name` of every error the runtime throws or reports. */
export type TandemErrorName = TandemError['name']

const NAMES: ReadonlySet<string> = new Set<TandemErrorName>([
  'DuplicateKeyError',
  'MissingKeyError',
  'InvalidRecordError',
  'KeyFieldChangedError',
  'EmptyTransactionError',
  'UnknownMergeError',
  'UnknownCollectionError',
  'DuplicateCollectionError',
  'UnknownTransactionError',
  'StorageError',
  'InvalidArgumentError',
  'ClientClosedError',
  'ReentrancyError',
  'ClientIdInUseError',
  'TransactionFailedError',
  'SyncSetupError',
  'AwaitSyncError',
  'MergeError',
  'SubscriberError',
  'SyncError',
])

/** Whether `error` is one of Tandem's errors (of the given name, if one is given). */
export function isTandemError<N extends TandemErrorName>(
  error: unknown,
  name?: N,
): error is TandemError & { name: N } {
  if (!(error instanceof Error) || !NAMES.has(error.name)) return false
  return name === undefined || error.name === name
}

/** An error of the runtime's shape, for the few the TypeScript layer raises itself. */
export function tandemError(name: TandemErrorName, message: string, context: Partial<TandemError> = {}): TandemError {
  return Object.assign(new Error(message), context, { name }) as TandemError
}
