// The default client: created on first use, so components can share collections without a
// provider. `configureTandem` sets its options beforehand.
import type { TandemError, TandemOptions } from '../wasm/tandem.js'
import { TandemClient } from './wasm.js'

export { TandemClient }

export interface TandemConfig extends TandemOptions {
  /**
   * Receives the errors Tandem cannot throw to a caller (storage failures, a sync setup that
   * threw, …). Default: `console.error`.
   */
  onError?: (error: TandemError) => void
}

let config: TandemConfig = {}
let defaultClient: TandemClient | undefined

/**
 * Sets the options of the default client (database name, retry policy, …). Call it before
 * anything uses the client: its options cannot change once it exists.
 */
export function configureTandem(options: TandemConfig): void {
  if (defaultClient) {
    throw new Error('configureTandem() must be called before the default Tandem client is first used')
  }
  config = { ...options }
}

/** The default client, created (synchronously; storage opens in the background) on first use. */
export function getTandemClient(): TandemClient {
  if (!defaultClient) {
    const { onError = reportToConsole, ...options } = config
    // Where there is no IndexedDB (Node, tests), memory is what the app gets anyway: choose it
    // rather than report a storage failure.
    const persistence = typeof indexedDB === 'undefined' ? 'memory' : 'indexeddb'
    defaultClient = TandemClient.create({ persistence, ...options })
    defaultClient.onError(onError)
  }
  return defaultClient
}

/**
 * Closes the default client (its outbox stays for the next one) and forgets it and its
 * options: the next use creates a new one. Meant for tests.
 */
export async function resetTandemClient(): Promise<void> {
  const client = defaultClient
  defaultClient = undefined
  config = {}
  await client?.close()
}

function reportToConsole(error: TandemError): void {
  console.error(`[tandem] ${error.name}: ${error.message}`, error)
}
