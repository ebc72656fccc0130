import { TandemClient } from '../src/index.js'
import type { PersistParams } from '../src/index.js'

/** A fresh in-memory client: each test gets collections of its own. */
export function memoryClient(): TandemClient {
  return TandemClient.create({ persistence: 'memory', retry: { initialDelayMs: 5, jitter: 0 } })
}

/** A persist function that records its calls and answers as `answer` says. */
export function recordingPersist(answer: (params: PersistParams) => Promise<void> | void = () => {}) {
  const calls: PersistParams[] = []
  const persist = (params: PersistParams) => {
    calls.push(params)
    return answer(params)
  }
  return { calls, persist }
}

/** A promise with its resolve and reject. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Lets pending microtasks and a macrotask run (the runtime's spawned work). */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
