// The tandem-server preset: `tandemServer({ url, workspace, token })` → `{ sync, mutationFn }`
// for one collection. The protocol client — reconnection with backoff and jitter, resume from
// the heads stored with the synced cache, transactions with ids (retries are idempotent),
// await-sync on the server's echo, pause/resume, status — is the runtime's `ServerSync`
// (src/server_sync.rs, driving tandem_core::session). This module types it and hands its
// refusals over as `NonRetriableError`s.
import './wasm.js' // initialises the runtime before `ServerSync` is used
import { ServerSync } from '../wasm/tandem.js'
import type { ServerSyncError, ServerSyncOptions, SyncSetupContext } from '../wasm/tandem.js'
import { NonRetriableError } from './errors.js'
import type { MutationFn, SyncConfig, SyncStatus, SyncStatusSource, TandemRecord } from './types.js'

export type { ServerSyncError } from '../wasm/tandem.js'

/**
 * `url` (`ws(s)://` or `http(s)://`, with an optional path prefix), `workspace`, `token` (a JWT,
 * or a function returning one — asked before every connection, so an expired token is
 * replaced; never logged), and optionally `collection` (keep this collection's records under the
 * keys `<collection>/<key>` so several collections share a workspace), `id` (the sync config's
 * id: default `collection`, else `workspace`) and `reconnect` (backoff).
 */
export type TandemServerOptions = ServerSyncOptions

/** The preset's sync config: seed 004's `SyncConfig`, its status, and control of the connection. */
export interface TandemServerSync<T extends object = TandemRecord> extends SyncConfig<T>, SyncStatusSource {
  /** `'started'` (live), `'syncing'` (connecting or catching up), `'paused'`, `'error'`. */
  status(): SyncStatus
  subscribeStatus(listener: (status: SyncStatus) => void): () => void
  /** What went wrong while the status is `'error'` (or what last did, while reconnecting). */
  lastError(): ServerSyncError | undefined
  /** Closes the socket; writes wait (they are not failed) until `resume()`. */
  pause(): void
  /** Reconnects at once (also after an error that stopped the sync). */
  resume(): void
  /** Closes the socket for good: call it when the client is closed. */
  close(): void
}

export interface TandemServer<T extends object = TandemRecord> {
  sync: TandemServerSync<T>
  /**
   * `persist` resolves when the server has the transaction on disk, and rejects with a
   * `NonRetriableError` when it refuses it (no `write` scope, malformed, too large);
   * `awaitSync` resolves once the collection has the server's echo of it.
   */
  mutationFn: MutationFn<T>
}

/**
 * Syncs one collection with a tandem-server workspace:
 *
 * ```ts
 * const todos = createCollection({ ...tandemServer({ url, workspace: 'team', token }), keyField: 'id' })
 * ```
 */
export function tandemServer<T extends object = TandemRecord>(options: TandemServerOptions): TandemServer<T> {
  const runtime = new ServerSync(options)
  const sync = runtime.sync
  const mutationFn = runtime.mutationFn
  return {
    sync: {
      id: sync.id,
      // The runtime passes its own setup context. The data arrives through `onUpdate` (the
      // server's `init` is a snapshot), so the setup resolves with nothing.
      setup: (params) => {
        void sync.setup(params as unknown as SyncSetupContext)
      },
      status: () => sync.status(),
      subscribeStatus: (listener) => sync.subscribeStatus(listener),
      lastError: () => sync.lastError(),
      pause: () => sync.pause(),
      resume: () => sync.resume(),
      close: () => sync.close(),
    },
    mutationFn: {
      persist: async (params) => {
        try {
          await mutationFn.persist(params)
        } catch (error) {
          throw asNonRetriable(error)
        }
      },
      awaitSync: async (params) => {
        await mutationFn.awaitSync?.(params)
      },
    },
  }
}

/** The runtime's refusal (an `Error` named `NonRetriableError`) as this package's class. */
function asNonRetriable(error: unknown): unknown {
  if (!(error instanceof Error) || error.name !== 'NonRetriableError' || error instanceof NonRetriableError) {
    return error
  }
  const { code, transactionId } = error as Error & { code?: number; transactionId?: string }
  return Object.assign(new NonRetriableError(error.message, { cause: error }), { code, transactionId, retriable: false })
}
