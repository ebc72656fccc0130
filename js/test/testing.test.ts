import { describe, expect, test, vi } from 'vitest'
import { NonRetriableError } from '../src/index.js'
import { createTestCollection } from '../src/testing/index.js'
import { tick } from './helpers.js'

interface Todo {
  id: string
  title: string
  done?: boolean
}

const initialData: Todo[] = [
  { id: 'a', title: 'A' },
  { id: 'b', title: 'B' },
]

describe('createTestCollection', () => {
  test('starts with the initial data', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    expect(collection.snapshot()).toEqual({ a: initialData[0], b: initialData[1] })
    expect(collection.id).toBe('test')
    expect(collection.client.persistence).toBe('memory')
  })

  test('the server accepts a write and echoes it back, completing the transaction', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    const tx = collection.update('a', { done: true })
    const record = await tx.settled()
    expect(record.state).toBe('completed')
    expect(syncControl.serverData().get('a')).toEqual({ id: 'a', title: 'A', done: true })
    expect(collection.get('a')).toEqual({ id: 'a', title: 'A', done: true })
    collection.delete('b')
    collection.insert({ id: 'c', title: 'C' })
    await vi.waitFor(() => expect([...syncControl.serverData().keys()]).toEqual(['a', 'c']))
  })

  test('the network delay holds a write in `persisting`', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    syncControl.setNetworkDelay(40)
    const tx = collection.update('a', { title: 'A2' })
    await tick(15)
    expect(tx.state).toBe('persisting')
    expect(collection.get('a')?.title).toBe('A2') // Optimistic meanwhile.
    expect(syncControl.serverData().get('a')?.title).toBe('A')
    await tx.settled()
    expect(syncControl.serverData().get('a')?.title).toBe('A2')
  })

  test('failNextPersist fails one attempt, which is retried', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    syncControl.failNextPersist()
    const record = await collection.insert({ id: 'c', title: 'C' }).settled()
    expect(record.attempts.map((a) => a.error?.message)).toEqual(['simulated network failure', undefined])
    expect(syncControl.serverData().has('c')).toBe(true)
  })

  test('failNextPersist with a NonRetriableError fails the transaction and rolls it back', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    syncControl.failNextPersist(new NonRetriableError('forbidden'))
    const tx = collection.update('a', { title: 'nope' })
    await expect(tx.settled()).rejects.toMatchObject({ name: 'TransactionFailedError' })
    expect(tx.toJSON()?.attempts).toHaveLength(1)
    expect(collection.get('a')?.title).toBe('A')
    expect(syncControl.serverData().get('a')?.title).toBe('A')
  })

  test("emitUpdate is another client's change; one to a record being written waits for the write", async () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData })
    await syncControl.loaded
    syncControl.emitUpdate([{ id: 'c', title: 'from elsewhere' }])
    syncControl.emitUpdate({ changes: [{ type: 'delete', key: 'b' }] })
    expect(Object.keys(collection.snapshot()).sort()).toEqual(['a', 'c'])

    syncControl.setNetworkDelay(30)
    const tx = collection.update('a', { title: 'mine' })
    syncControl.emitUpdate([{ id: 'a', title: 'theirs' }])
    expect(collection.get('a')?.title).toBe('mine') // Held while `a` is locked (ordered).
    await tx.settled()
    // The server applied `theirs`, then this write: the echo is the merged result.
    expect(collection.get('a')).toEqual({ id: 'a', title: 'mine' })
  })

  test('takes a sync config (its id names the collection, its setup joins in), a key field and a strategy', async () => {
    const setup = vi.fn()
    const { collection, syncControl } = createTestCollection<{ slug: string; n: number }>({
      sync: { id: 'posts', setup },
      initialData: [{ slug: 'hello', n: 1 }],
      keyField: 'slug',
      strategy: 'parallel',
    })
    await syncControl.loaded
    expect(collection.id).toBe('posts')
    expect(setup).toHaveBeenCalledTimes(1)
    expect(collection.get('hello')).toEqual({ slug: 'hello', n: 1 })
    const tx = collection.update('hello', { n: 2 })
    expect(tx.toJSON()?.strategy.type).toBe('parallel')
    await tx.settled()
    expect(syncControl.serverData().get('hello')).toEqual({ slug: 'hello', n: 2 })
  })

  test('two harnesses never share state', async () => {
    const one = createTestCollection<Todo>({ initialData })
    const two = createTestCollection<Todo>({ initialData: [] })
    await Promise.all([one.syncControl.loaded, two.syncControl.loaded])
    one.collection.insert({ id: 'c', title: 'C' })
    expect(two.collection.size).toBe(0)
    expect(one.collection.client).not.toBe(two.collection.client)
  })
})
