// Collections: one shared instance per id and client, typed for its records. Every read and
// write is one call into the runtime; what is added here is typing, draft updates, grouping
// into `withMutation`, and the sync status of configs that do not report one.
import type {
  Collection as RuntimeCollection,
  CollectionOptions,
  MutationInput,
  SyncConfig as RuntimeSyncConfig,
  TandemClient,
  TandemRecord,
} from '../wasm/tandem.js'
import { getTandemClient } from './client.js'
import { tandemError } from './errors.js'
import { normaliseOptions, normaliseStrategy } from './options.js'
import { hasOwnStatus, SetupStatus } from './syncStatus.js'
import type {
  ChangeMessage,
  CollectionConfig,
  Key,
  MutationFn,
  MutationOptions,
  SyncConfig,
  SyncStatusSource,
  Transaction,
} from './types.js'
import { collectInto, isCollecting } from './withMutation.js'

/** The collections of each client, by id. */
const registry = new WeakMap<TandemClient, Map<string, Collection<object>>>()

/**
 * The collection for `config`: created on the first call for its id (which defaults to
 * `sync.id`) — the sync setup starts then — and the same instance on every later call, whatever
 * the later config says. Uses the default client unless given one.
 */
export function createCollection<T extends object = TandemRecord>(
  config: CollectionConfig<T>,
  client: TandemClient = getTandemClient(),
): Collection<T> {
  const id = config.id ?? config.sync?.id
  if (!id) throw tandemError('InvalidArgumentError', 'a collection needs an `id` or a `sync.id`')
  let collections = registry.get(client)
  if (!collections) registry.set(client, (collections = new Map()))
  const existing = collections.get(id)
  if (existing) return existing as unknown as Collection<T>
  const collection = new Collection<T>(client, id, config)
  collections.set(id, collection as unknown as Collection<object>)
  return collection
}

/** The collection of `client` with this id, if one was created. */
export function findCollection(id: string, client: TandemClient = getTandemClient()): Collection<object> | undefined {
  return registry.get(client)?.get(id)
}

export class Collection<T extends object = TandemRecord> {
  readonly id: string
  readonly client: TandemClient
  /** The sync config it was created with (`undefined` for a local collection). */
  readonly sync: SyncConfig<T> | undefined
  /** The sync status: the config's own if it reports one, else its setup's. */
  readonly syncStatus: SyncStatusSource
  readonly #runtime: RuntimeCollection

  /** Use `createCollection`, which shares one instance per id. */
  constructor(client: TandemClient, id: string, config: CollectionConfig<T>) {
    this.id = id
    this.client = client
    this.sync = config.sync
    const sync = config.sync
    const tracked = sync && hasOwnStatus(sync) ? undefined : new SetupStatus(sync ? 'started' : 'syncing')
    this.syncStatus = tracked ?? (sync as SyncConfig<T> & SyncStatusSource)
    const options: CollectionOptions = { id, ...normaliseStrategy(config.strategy, config.merge) }
    if (config.keyField !== undefined) options.keyField = config.keyField
    if (sync) {
      const setup: RuntimeSyncConfig['setup'] = (params) => {
        const run = () => sync.setup(params as Parameters<SyncConfig<T>['setup']>[0])
        return (tracked ? tracked.follow(run) : run()) as ReturnType<RuntimeSyncConfig['setup']>
      }
      options.sync = { setup }
    }
    if (config.mutationFn) options.mutationFn = runtimeMutationFn(config.mutationFn, sync)
    this.#runtime = client.collection(options)
  }

  /**
   * Every visible record by key: synced data with the pending optimistic changes on top. The
   * same (frozen) object until the data changes, so it suits `useSyncExternalStore`.
   */
  readonly snapshot = (): Readonly<Record<string, T>> => this.#runtime.snapshot() as Readonly<Record<string, T>>

  /** Calls `listener` with the changed keys after every change of visible records. */
  readonly subscribe = (listener: (changes: ChangeMessage<T>[]) => void): (() => void) =>
    this.#runtime.subscribe(listener as (changes: ChangeMessage[]) => void)

  /** The visible record with this key. */
  get(key: Key): T | undefined {
    return this.#runtime.get(key) as T | undefined
  }

  /** Number of visible records. */
  get size(): number {
    return this.#runtime.size
  }

  /** The sync position last stored (restored from storage after a reload). */
  get syncPosition(): string | undefined {
    return this.#runtime.syncPosition
  }

  /** Stores an opaque sync position (e.g. server heads) with the synced cache. */
  setSyncPosition(position: string | undefined): void {
    this.#runtime.setSyncPosition(position)
  }

  /** Inserts one record or several, in one transaction. */
  readonly insert = (records: T | readonly T[], options?: MutationOptions<T>): Transaction => {
    if (isCollecting()) {
      const values = (Array.isArray(records) ? records : [records]) as readonly T[]
      const mutations = values.map(
        (value): MutationInput => ({ type: 'insert', collection: this.id, value: value as TandemRecord }),
      )
      return this.#collect(mutations, options)
    }
    return this.#runtime.insert(records as TandemRecord | TandemRecord[], normaliseOptions(options))
  }

  /**
   * Updates the record with `key`: with the given fields (a shallow update), or with a draft
   * function that changes a deep copy of the record in place; the top-level fields it changed
   * are sent (a field it removed is set to `null`).
   */
  readonly update = (
    key: Key,
    changes: Partial<T> | ((draft: T) => void),
    options?: MutationOptions<T>,
  ): Transaction => {
    const fields = typeof changes === 'function' ? this.#changesFromDraft(key, changes) : (changes as TandemRecord)
    if (isCollecting()) {
      return this.#collect([{ type: 'update', collection: this.id, key, changes: fields }], options)
    }
    // Returned rather than thrown by the runtime: a call that may throw costs two more crossings.
    const transaction = this.#runtime.updateOrError(key, fields, normaliseOptions(options))
    if (transaction instanceof Error) throw transaction
    return transaction
  }

  /** Deletes one record or several, in one transaction. */
  readonly delete = (keys: Key | readonly Key[], options?: MutationOptions<T>): Transaction => {
    if (isCollecting()) {
      const list = (Array.isArray(keys) ? keys : [keys]) as readonly Key[]
      return this.#collect(list.map((key) => ({ type: 'delete', collection: this.id, key })), options)
    }
    return this.#runtime.delete(keys as Key | Key[], normaliseOptions(options))
  }

  #collect(mutations: MutationInput[], options: MutationOptions<T> | undefined): Transaction {
    if (options?.metadata !== undefined) {
      for (const mutation of mutations) mutation.metadata = options.metadata
    }
    return collectInto(this.client, mutations)
  }

  #changesFromDraft(key: Key, recipe: (draft: T) => void): TandemRecord {
    const current = this.get(key) as TandemRecord | undefined
    if (current === undefined) {
      throw tandemError('MissingKeyError', `no record with key \`${key}\` in collection \`${this.id}\``, {
        collection: this.id,
        key: String(key),
      })
    }
    const draft = structuredClone(current)
    recipe(draft as T)
    const changes: TandemRecord = {}
    for (const field of Object.keys(draft)) {
      if (!jsonEqual(current[field], draft[field])) changes[field] = draft[field]
    }
    for (const field of Object.keys(current)) {
      if (!(field in draft)) changes[field] = null
    }
    return changes
  }
}

/**
 * The runtime's mutation function: calls keep `this`, and `awaitSync` gets the sync config,
 * added to the runtime's params rather than spread into a copy, which would read (parse) the
 * transaction the runtime leaves as text until it is read.
 */
function runtimeMutationFn<T extends object>(
  mutationFn: MutationFn<T>,
  sync: SyncConfig<T> | undefined,
): NonNullable<CollectionOptions['mutationFn']> {
  const awaitSync = mutationFn.awaitSync
  return {
    persist: (params) => mutationFn.persist(params),
    ...(awaitSync && { awaitSync: (params) => mutationFn.awaitSync!(Object.assign(params, { sync })) }),
  }
}

/** Equality of JSON values (records are JSON). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const left = a as Record<string, unknown>
  const right = b as Record<string, unknown>
  const keys = Object.keys(left)
  if (keys.length !== Object.keys(right).length) return false
  return keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]))
}
