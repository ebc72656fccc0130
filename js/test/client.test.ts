import { afterEach, expect, test } from 'vitest'
import { configureTandem, createCollection, getTandemClient, resetTandemClient } from '../src/index.js'

afterEach(() => resetTandemClient())

test('the default client is created once, on first use, with the configured options', () => {
  configureTandem({ database: 'my-app', clientId: 'device-7' })
  const client = getTandemClient()
  expect(getTandemClient()).toBe(client)
  expect(client.database).toBe('my-app')
  expect(client.clientId).toBe('device-7')
  expect(client.persistence).toBe('memory') // No IndexedDB in Node.
  expect(() => configureTandem({ database: 'too-late' })).toThrow(/before the default Tandem client is first used/)
})

test('collections without an explicit client share the default one', () => {
  const todos = createCollection({ id: 'todos' })
  expect(todos.client).toBe(getTandemClient())
  expect(createCollection({ id: 'todos' })).toBe(todos)
})

test('resetTandemClient closes the default client and the next use starts afresh', async () => {
  const first = getTandemClient()
  createCollection({ id: 'todos' }).insert({ id: 'a' })
  await resetTandemClient()
  expect(() => first.mutate([{ type: 'insert', collection: 'todos', value: { id: 'b' } }])).toThrow(
    expect.objectContaining({ name: 'ClientClosedError' }),
  )
  const second = getTandemClient()
  expect(second).not.toBe(first)
  expect(createCollection({ id: 'todos' }).size).toBe(0)
})
