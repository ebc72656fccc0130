import { describe, expect, test } from 'vitest'
import { createCollection, NonRetriableError, withMutation } from '../src/index.js'
import type { PersistParams, Transaction } from '../src/index.js'
import { deferred, memoryClient, recordingPersist } from './helpers.js'

function twoCollections(persist?: (p: PersistParams) => Promise<void> | void) {
  const client = memoryClient()
  const mutationFn = persist && { persist }
  const lists = createCollection({ id: 'lists', ...(mutationFn && { mutationFn }) }, client)
  const todos = createCollection({ id: 'todos' }, client)
  return { client, lists, todos }
}

describe('withMutation', () => {
  test('makes the mutations on several collections one transaction, persisted once', async () => {
    const { calls, persist } = recordingPersist()
    const { client, lists, todos } = twoCollections(persist)
    let inner: Transaction[] = []
    const tx = withMutation(() => {
      inner = [lists.insert({ id: 'l1', name: 'Groceries' }), todos.insert([{ id: 't1' }, { id: 't2' }])]
      todos.update('t1', { list: 'l1' }) // Sees nothing yet: validated with the group, at the end.
    })
    expect(inner).toEqual([tx, tx])
    expect(client.transactions()).toHaveLength(1)
    expect(tx.toJSON()?.mutations.map((m) => `${m.type} ${m.collection}/${m.key}`)).toEqual([
      'insert lists/l1',
      'insert todos/t1',
      'insert todos/t2',
      'update todos/t1',
    ])
    expect(todos.get('t1')).toEqual({ id: 't1', list: 'l1' })
    await tx.settled()
    expect(calls).toHaveLength(1)
    expect(Object.keys(calls[0]!.changes)).toEqual(['lists', 'todos'])
  })

  test('is all or nothing: a failing persist rolls back every collection', async () => {
    const { lists, todos } = twoCollections(() => {
      throw new NonRetriableError('no')
    })
    const tx = withMutation(() => {
      lists.insert({ id: 'l1' })
      todos.insert({ id: 't1' })
    })
    await expect(tx.settled()).rejects.toMatchObject({ name: 'TransactionFailedError' })
    expect(lists.size + todos.size).toBe(0)
  })

  test('applies nothing when the function throws or a mutation is invalid', () => {
    const { client, lists, todos } = twoCollections()
    todos.insert({ id: 't1' })
    expect(() =>
      withMutation(() => {
        lists.insert({ id: 'l1' })
        throw new Error('changed my mind')
      }),
    ).toThrow('changed my mind')
    expect(() =>
      withMutation(() => {
        lists.insert({ id: 'l1' })
        todos.insert({ id: 't1' }) // Already there.
      }),
    ).toThrow(expect.objectContaining({ name: 'DuplicateKeyError' }))
    expect(lists.size).toBe(0)
    expect(client.transactions()).toHaveLength(1)
  })

  test('takes the strategy and metadata of the group', () => {
    const { lists, todos } = twoCollections(() => new Promise(() => {}))
    const tx = withMutation(
      () => {
        lists.insert({ id: 'l1' })
        todos.insert({ id: 't1' })
      },
      { strategy: 'parallel', metadata: { reason: 'import' } },
    )
    expect(tx.toJSON()?.strategy).toEqual({ type: 'parallel' })
    expect(tx.toJSON()?.metadata).toEqual({ reason: 'import' })
  })

  test('a subscriber that mutates when the group is applied makes a transaction of its own', () => {
    const { client, lists, todos } = twoCollections()
    const log = createCollection({ id: 'log' }, client)
    todos.subscribe(() => {
      if (log.size === 0) log.insert({ id: 'seen' })
    })
    const tx = withMutation(() => {
      lists.insert({ id: 'l1' })
      todos.insert({ id: 't1' })
    })
    expect(tx.toJSON()?.mutations).toHaveLength(2)
    expect(log.get('seen')).toEqual({ id: 'seen' })
    expect(client.transactions()).toHaveLength(2)
  })

  test('a nested withMutation joins the outer group', () => {
    const { client, lists, todos } = twoCollections()
    let nested: Transaction | undefined
    const outer = withMutation(() => {
      lists.insert({ id: 'l1' })
      nested = withMutation(() => todos.insert({ id: 't1' }))
    })
    expect(nested).toBe(outer)
    expect(client.transactions()).toHaveLength(1)
    expect(outer.toJSON()?.mutations).toHaveLength(2)
  })

  test('refuses an async function, an empty group and collections of two clients', async () => {
    const { lists } = twoCollections()
    expect(() =>
      withMutation((async () => {
        lists.insert({ id: 'l1' })
      }) as () => void),
    ).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    expect(lists.size).toBe(0)
    expect(() => withMutation(() => {})).toThrow(expect.objectContaining({ name: 'EmptyTransactionError' }))
    const other = createCollection({ id: 'elsewhere' }, memoryClient())
    const failed = deferred<unknown>()
    let handed: Transaction | undefined
    expect(() =>
      withMutation(() => {
        handed = lists.insert({ id: 'l2' })
        other.insert({ id: 'o1' })
      }),
    ).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    handed!.settled().catch(failed.resolve)
    expect(await failed.promise).toMatchObject({ name: 'InvalidArgumentError' })
    expect(lists.size + other.size).toBe(0)
  })
})
