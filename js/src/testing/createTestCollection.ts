// A deterministic stand-in for a server, for testing code that uses Tandem: a collection on its
// own in-memory client, whose persist "sends" to a simulated server that accepts the write and
// echoes it back through sync (confirming the transaction), after a configurable network delay,
// or fails on demand.
import type { PersistParams, RetryOptions, TandemRecord } from '../../wasm/tandem.js'
import { Collection, createCollection } from '../collection.js'
import { TandemClient } from '../wasm.js'
import type { StrategyOption, SyncChange, SyncConfig, SyncUpdate } from '../types.js'

export interface TestCollectionOptions<T extends object = TandemRecord> {
  /** The server's data at the start: the collection's initial snapshot. */
  initialData?: readonly T[]
  /**
   * Names the collection (`sync.id`, default `"test"`); its `setup`, if any, is called too and
   * gets the same `onUpdate`. Without `initialData`, the data its setup resolves with is the
   * initial snapshot.
   */
  sync?: SyncConfig<T>
  keyField?: keyof T & string
  strategy?: StrategyOption<T>
  /** Retry policy; default: retries after 10, 20, 40, 80 ms, without jitter. */
  retry?: RetryOptions
}

export interface SyncControl<T extends object = TandemRecord> {
  /** Simulates another client's change: the server applies it and syncs it to the collection. */
  emitUpdate(update: SyncUpdate<T>): void
  /** Makes every later persist (and its echo) take this long. Default 0. */
  setNetworkDelay(ms: number): void
  /**
   * Makes the next persist fail with `error` (default: a retriable network error; pass a
   * `NonRetriableError` to fail the transaction at once). Only that attempt fails.
   */
  failNextPersist(error?: Error): void
  /** The server's records, by key. */
  serverData(): ReadonlyMap<string, T>
  /** Resolves once the initial data is in the collection. */
  readonly loaded: Promise<void>
}

export interface TestCollection<T extends object = TandemRecord> {
  collection: Collection<T>
  syncControl: SyncControl<T>
}

const FAST_RETRIES: RetryOptions = { initialDelayMs: 10, factor: 2, jitter: 0 }

/** A collection over a simulated server, on a fresh in-memory client. */
export function createTestCollection<T extends object = TandemRecord>(
  options: TestCollectionOptions<T> = {},
): TestCollection<T> {
  const keyField = options.keyField ?? 'id'
  const id = options.sync?.id ?? 'test'
  const server = new Map<string, T>()
  let onUpdate: ((update: SyncUpdate<T>) => void) | undefined
  let delayMs = 0
  let nextFailure: Error | undefined
  let markLoaded: () => void = () => {}
  const loaded = new Promise<void>((resolve) => (markLoaded = resolve))

  const keyOf = (record: T): string => String((record as Record<string, unknown>)[keyField])
  const applyOnServer = (changes: readonly SyncChange<T>[]): void => {
    for (const change of changes) {
      if (change.type === 'delete') server.delete(String(change.key))
      else server.set(keyOf(change.value), change.value)
    }
  }
  const asChanges = (update: SyncUpdate<T>): readonly SyncChange<T>[] =>
    isRecordList(update) ? update.map((value) => ({ type: 'upsert', value })) : (update.changes ?? [])

  const sync: SyncConfig<T> = {
    id,
    async setup(params) {
      onUpdate = params.onUpdate
      const own = await options.sync?.setup(params)
      const initial: SyncUpdate<T> = options.initialData ?? (own ? (own.data ?? []) : [])
      server.clear()
      applyOnServer(asChanges(initial))
      // Delivered before setup returns, so `loaded` means the data is in the collection.
      params.onUpdate({ changes: [...server.values()].map((value) => ({ type: 'upsert', value })), snapshot: true })
      markLoaded()
    },
  }

  const persist = async ({ changes, transaction }: PersistParams): Promise<void> => {
    if (delayMs > 0) await sleep(delayMs)
    if (nextFailure) {
      const failure = nextFailure
      nextFailure = undefined
      throw failure
    }
    // The server accepts: it applies the write and syncs the result back, naming the
    // transaction so it completes.
    const synced: SyncChange<T>[] = []
    for (const [key, fields] of Object.entries(changes[id] ?? {})) {
      if (fields === null) {
        server.delete(key)
        synced.push({ type: 'delete', key })
        continue
      }
      const record = { ...(server.get(key) ?? {}), ...fields } as T
      server.set(key, record)
      synced.push({ type: 'upsert', value: record })
    }
    onUpdate?.({ changes: synced, confirms: [transaction.id] })
  }

  const client = TandemClient.create({ persistence: 'memory', retry: { ...FAST_RETRIES, ...options.retry } })
  const collection = createCollection<T>(
    {
      sync,
      mutationFn: { persist },
      ...(options.keyField !== undefined && { keyField: options.keyField }),
      ...(options.strategy !== undefined && { strategy: options.strategy }),
    },
    client,
  )

  const syncControl: SyncControl<T> = {
    emitUpdate(update) {
      if (!onUpdate) throw new Error('emitUpdate(): the sync has not started yet (await syncControl.loaded)')
      if (!isRecordList(update) && update.snapshot) server.clear()
      applyOnServer(asChanges(update))
      onUpdate(update)
    },
    setNetworkDelay(ms) {
      delayMs = ms
    },
    failNextPersist(error = new Error('simulated network failure')) {
      nextFailure = error
    },
    serverData: () => new Map(server),
    loaded,
  }
  return { collection, syncControl }
}

function isRecordList<T extends object>(update: SyncUpdate<T>): update is readonly T[] {
  return Array.isArray(update)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

