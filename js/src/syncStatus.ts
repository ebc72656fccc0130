// Sync status. A sync config may report its own (the optional `SyncStatusSource` interface,
// e.g. `tandemServer`'s connection state); for any other, the collection tracks its setup:
// 'started' until the setup resolved, then 'syncing' ('error' if it threw).
import type { SyncStatus, SyncStatusSource } from './types.js'

export function hasOwnStatus(sync: object): sync is SyncStatusSource {
  const candidate = sync as Partial<SyncStatusSource>
  return typeof candidate.status === 'function' && typeof candidate.subscribeStatus === 'function'
}

/** The status of a sync config that does not report one: follows its setup. */
export class SetupStatus implements SyncStatusSource {
  #status: SyncStatus
  readonly #listeners = new Set<(status: SyncStatus) => void>()

  constructor(initial: SyncStatus) {
    this.#status = initial
  }

  status = (): SyncStatus => this.#status

  subscribeStatus = (listener: (status: SyncStatus) => void): (() => void) => {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Follows the setup's outcome (what `sync.setup` returned, or threw). */
  follow(setup: () => unknown): unknown {
    let returned: unknown
    try {
      returned = setup()
    } catch (error) {
      this.#set('error')
      throw error
    }
    Promise.resolve(returned).then(
      () => this.#set('syncing'),
      () => this.#set('error'),
    )
    return returned
  }

  #set(status: SyncStatus): void {
    if (status === this.#status) return
    this.#status = status
    for (const listener of [...this.#listeners]) listener(status)
  }
}
