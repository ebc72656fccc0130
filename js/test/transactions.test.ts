import { expect, test } from 'vitest'
import { createCollection, subscribeTransactions, transactionsStore } from '../src/index.js'
import type { TransactionEvent } from '../src/index.js'
import { deferred, memoryClient } from './helpers.js'

test('subscribers hear of every state change of every transaction', async () => {
  const client = memoryClient()
  const answer = deferred()
  const todos = createCollection({ id: 'todos', mutationFn: { persist: () => answer.promise } }, client)
  const events: TransactionEvent[] = []
  const unsubscribe = subscribeTransactions((batch) => events.push(...batch), client)
  const tx = todos.insert({ id: 'a' })
  answer.resolve()
  await tx.settled()
  unsubscribe()
  todos.insert({ id: 'b' })
  expect(events.map((e) => e.state)).toEqual(['persisting', 'completed'])
  expect(new Set(events.map((e) => e.id))).toEqual(new Set([tx.id]))
})

test('the store keeps its snapshot until a transaction changes, with attempts and errors', async () => {
  const client = memoryClient()
  let fail = true
  const todos = createCollection(
    {
      id: 'todos',
      mutationFn: {
        persist: () => {
          if (fail) {
            fail = false
            throw new Error('flaky')
          }
        },
      },
    },
    client,
  )
  const store = transactionsStore(client)
  expect(transactionsStore(client)).toBe(store)
  let notified = 0
  store.subscribe(() => notified++)
  const empty = store.getSnapshot()
  expect(empty).toEqual([])
  expect(store.getSnapshot()).toBe(empty)

  const tx = todos.insert({ id: 'a' })
  const first = store.getSnapshot()
  expect(first).not.toBe(empty)
  expect(store.getSnapshot()).toBe(first)
  await tx.settled()
  const last = store.getSnapshot()
  expect(notified).toBeGreaterThanOrEqual(3)
  expect(last[0]).toMatchObject({ id: tx.id, state: 'completed', current_attempt: 2 })
  expect(last[0]!.attempts.map((a) => a.error?.message)).toEqual(['flaky', undefined])
  expect(Object.isFrozen(last)).toBe(true)
})
