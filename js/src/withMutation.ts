// Grouping: the mutations made inside `withMutation(fn)`, on any collections of one client,
// become one all-or-nothing transaction (the runtime's `client.mutate`).
import type { MutationInput, TandemClient, TransactionRecord, TransactionState } from '../wasm/tandem.js'
import { tandemError } from './errors.js'
import { normaliseOptions } from './options.js'
import type { Transaction, WithMutationOptions } from './types.js'

interface Group {
  client: TandemClient | undefined
  mutations: MutationInput[]
  transaction: GroupedTransaction
}

let active: Group | undefined

/**
 * Runs `fn` and makes every mutation it makes one transaction: applied together, persisted
 * together (by the mutation function of the first mutation's collection), rolled back together.
 * `fn` must be synchronous. Inside it, mutations return the grouped transaction; a nested
 * `withMutation` joins the outer group. Throws, and applies nothing, if `fn` throws or a
 * mutation is invalid.
 */
export function withMutation(fn: () => void, options?: WithMutationOptions): Transaction {
  if (active) {
    fn()
    return active.transaction
  }
  const group: Group = { client: undefined, mutations: [], transaction: new GroupedTransaction() }
  try {
    active = group
    let result: unknown
    try {
      result = fn()
    } finally {
      // Closed before the runtime runs: subscribers it notifies may mutate on their own.
      active = undefined
    }
    if (isThenable(result)) {
      throw tandemError('InvalidArgumentError', 'withMutation() takes a synchronous function')
    }
    if (!group.client) {
      throw tandemError('EmptyTransactionError', 'withMutation(): the function made no mutation')
    }
    group.transaction.bind(group.client.mutate(group.mutations, normaliseOptions(options)))
    return group.transaction
  } catch (error) {
    group.transaction.fail(error)
    throw error
  }
}

/** Whether a `withMutation` is running: mutations are then added to its group. */
export function isCollecting(): boolean {
  return active !== undefined
}

/** Adds mutations to the running group; returns the grouped transaction. */
export function collectInto(client: TandemClient, mutations: MutationInput[]): Transaction {
  if (!active) throw new Error('collectInto() outside withMutation()')
  if (active.client && active.client !== client) {
    throw tandemError('InvalidArgumentError', 'withMutation(): every collection must belong to the same client')
  }
  active.client = client
  active.mutations.push(...mutations)
  return active.transaction
}

/** The grouped transaction, handed out before it exists: it forwards once `fn` returned. */
class GroupedTransaction implements Transaction {
  #runtime: Transaction | undefined
  #settled: Promise<TransactionRecord>
  #resolve!: (runtime: Transaction) => void
  #reject!: (error: unknown) => void

  constructor() {
    const bound = new Promise<Transaction>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.#settled = bound.then((runtime) => runtime.settled())
    this.#settled.catch(() => {}) // Rejections reach whoever calls settled(), not the console.
  }

  bind(runtime: Transaction): void {
    this.#runtime = runtime
    this.#resolve(runtime)
  }

  fail(error: unknown): void {
    this.#reject(error)
  }

  get id(): string {
    if (!this.#runtime) {
      throw tandemError('InvalidArgumentError', 'the grouped transaction has an id once withMutation() returned')
    }
    return this.#runtime.id
  }

  get state(): TransactionState | undefined {
    return this.#runtime?.state
  }

  toJSON(): TransactionRecord | undefined {
    return this.#runtime?.toJSON()
  }

  settled(): Promise<TransactionRecord> {
    return this.#settled
  }
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}
