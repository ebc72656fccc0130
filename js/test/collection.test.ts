import { describe, expect, test, vi } from 'vitest'
import { createCollection, findCollection, isTandemError, NonRetriableError } from '../src/index.js'
import type { MergeFn, PersistParams, SyncConfig, SyncSetupParams, TandemRecord } from '../src/index.js'
import { memoryClient, recordingPersist, tick } from './helpers.js'

interface Todo {
  id: string
  title: string
  done: boolean
  tags?: string[]
  meta?: { priority: number; owner: string }
}

function syncWith(data: Todo[], id = 'todos') {
  const setup = vi.fn(async (_params: SyncSetupParams<Todo>) => ({ data }))
  const sync: SyncConfig<Todo> = { id, setup }
  return { sync, setup }
}

describe('createCollection', () => {
  test('gives one shared instance per sync id, whose setup runs once', async () => {
    const client = memoryClient()
    const { sync, setup } = syncWith([{ id: 'a', title: 'A', done: false }])
    const first = createCollection({ sync }, client)
    const second = createCollection({ sync: { ...sync, setup: vi.fn() } }, client)
    expect(second).toBe(first)
    expect(first.id).toBe('todos')
    expect(findCollection('todos', client)).toBe(first)
    await tick()
    expect(setup).toHaveBeenCalledTimes(1)
    expect(first.get('a')).toEqual({ id: 'a', title: 'A', done: false })
  })

  test('names the collection by `id` when one is given, and needs one of the two', () => {
    const client = memoryClient()
    const { sync } = syncWith([])
    expect(createCollection({ id: 'mine', sync }, client).id).toBe('mine')
    expect(createCollection({ id: 'local' }, client).id).toBe('local')
    expect(() => createCollection({} as never, client)).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
  })

  test('keeps the snapshot object until the data changes', () => {
    const todos = createCollection<Todo>({ id: 'todos' }, memoryClient())
    todos.insert({ id: 'a', title: 'A', done: false })
    const before = todos.snapshot()
    expect(todos.snapshot()).toBe(before)
    todos.update('a', { done: true })
    const after = todos.snapshot()
    expect(after).not.toBe(before)
    expect(after.a).toEqual({ id: 'a', title: 'A', done: true })
  })
})

describe('mutations', () => {
  test('insert and delete take one record or many, each call one transaction', () => {
    const client = memoryClient()
    const todos = createCollection<Todo>({ id: 'todos' }, client)
    const inserted = todos.insert([
      { id: 'a', title: 'A', done: false },
      { id: 'b', title: 'B', done: false },
    ])
    todos.insert({ id: 'c', title: 'C', done: false })
    expect(todos.size).toBe(3)
    const deleted = todos.delete(['a', 'b'])
    expect(Object.keys(todos.snapshot())).toEqual(['c'])
    const records = client.transactions()
    expect(records).toHaveLength(3)
    expect(records.find((t) => t.id === inserted.id)?.mutations).toHaveLength(2)
    expect(records.find((t) => t.id === deleted.id)?.mutations.map((m) => m.type)).toEqual(['delete', 'delete'])
  })

  test('an update with a draft function sends only the top-level fields it changed', async () => {
    const { calls, persist } = recordingPersist()
    const todos = createCollection<Todo>({ id: 'todos', mutationFn: { persist } }, memoryClient())
    const original: Todo = {
      id: 'a',
      title: 'A',
      done: false,
      tags: ['x'],
      meta: { priority: 1, owner: 'ann' },
    }
    await todos.insert(original).settled()
    const visible = todos.get('a')

    const tx = todos.update('a', (draft) => {
      draft.done = true
      draft.meta!.priority = 2
      draft.tags!.push('y')
      delete draft.tags
    })
    await tx.settled()
    expect(calls.at(-1)?.changes).toEqual({ todos: { a: { done: true, meta: { priority: 2, owner: 'ann' }, tags: null } } })
    expect(visible).toEqual(original) // The draft was a deep copy.
    expect(todos.get('a')).toEqual({ id: 'a', title: 'A', done: true, meta: { priority: 2, owner: 'ann' }, tags: null })

    todos.update('a', (draft) => {
      draft.meta = { priority: 2, owner: 'ann' } // Equal, though a new object.
    })
    await tick()
    expect(calls.at(-1)?.changes).toEqual({ todos: { a: {} } })
  })

  test('a draft update of a missing record throws MissingKeyError, like any update', () => {
    const todos = createCollection<Todo>({ id: 'todos' }, memoryClient())
    const error = (() => {
      try {
        todos.update('nope', (draft) => {
          draft.done = true
        })
      } catch (e) {
        return e
      }
    })()
    expect(isTandemError(error, 'MissingKeyError')).toBe(true)
    expect(() => todos.update('nope', { done: true })).toThrow(expect.objectContaining({ name: 'MissingKeyError' }))
  })

  test('throwing NonRetriableError fails the transaction at once and rolls it back', async () => {
    const { calls, persist } = recordingPersist(() => {
      throw new NonRetriableError('rejected by the server')
    })
    const todos = createCollection<Todo>({ id: 'todos', mutationFn: { persist } }, memoryClient())
    const tx = todos.insert({ id: 'a', title: 'A', done: false })
    expect(todos.get('a')).toBeDefined()
    await expect(tx.settled()).rejects.toMatchObject({ name: 'TransactionFailedError', transactionId: tx.id })
    expect(calls).toHaveLength(1)
    expect(todos.get('a')).toBeUndefined()
    expect(tx.toJSON()?.error?.error).toEqual({ name: 'NonRetriableError', message: 'rejected by the server', retriable: false })
  })

  test('any other error is retried', async () => {
    let failures = 2
    const { calls, persist } = recordingPersist(() => {
      if (failures-- > 0) throw new Error('offline')
    })
    const todos = createCollection<Todo>({ id: 'todos', mutationFn: { persist } }, memoryClient())
    const record = await todos.insert({ id: 'a', title: 'A', done: false }).settled()
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3])
    expect(record.attempts.map((a) => a.error?.message)).toEqual(['offline', 'offline', undefined])
  })

  test('persist is called after the mutating call returned, never inside it', async () => {
    const { calls, persist } = recordingPersist()
    const todos = createCollection<Todo>({ id: 'todos', mutationFn: { persist } }, memoryClient())
    const tx = todos.insert({ id: 'a', title: 'A', done: false })
    expect(calls).toHaveLength(0)
    await tx.settled()
    expect(calls.map((c) => c.attempt)).toEqual([1])
  })

  test('an awaitSync that rejects is reported with its collection, and the transaction completes', async () => {
    const errors: unknown[] = []
    const client = memoryClient()
    client.onError((error) => errors.push(error))
    const mutationFn = {
      persist() {},
      awaitSync() {
        return Promise.reject(new Error('the sync went away'))
      },
    }
    const todos = createCollection<Todo>({ id: 'todos', mutationFn }, client)
    const record = await todos.insert({ id: 'a', title: 'A', done: false }).settled()
    expect(record.state).toBe('completed')
    expect(errors).toEqual([expect.objectContaining({ name: 'AwaitSyncError', collection: 'todos' })])
    expect(String((errors[0] as Error).message)).toContain('the sync went away')
  })

  test('persist keeps its object as `this`, and awaitSync gets the sync config', async () => {
    const { sync } = syncWith([])
    const seen: unknown[] = []
    const mutationFn = {
      endpoint: '/todos',
      persist(this: { endpoint: string }) {
        seen.push(this.endpoint)
      },
      awaitSync(params: { sync: SyncConfig<Todo> | undefined }) {
        seen.push(params.sync)
      },
    }
    const todos = createCollection<Todo>({ sync, mutationFn }, memoryClient())
    await todos.insert({ id: 'a', title: 'A', done: false }).settled()
    expect(seen).toEqual(['/todos', sync])
  })

  test('persist params behave as a plain object: read, copied, serialised and replaced', async () => {
    const seen: unknown[] = []
    const mutationFn = {
      persist(params: PersistParams) {
        const copy = { ...params }
        seen.push(Object.keys(params), copy.transaction.id, JSON.parse(JSON.stringify(params)).changes)
        params.changes = { replaced: {} }
        params.transaction = { ...params.transaction, id: 'mine' }
        seen.push(params.changes, params.transaction.id, params.attempt)
      },
    }
    const todos = createCollection<Todo>({ id: 'todos', mutationFn }, memoryClient())
    const tx = todos.insert({ id: 'a', title: 'A', done: false })
    await tx.settled()
    expect(seen).toEqual([
      ['changes', 'attempt', 'transaction'],
      tx.id,
      { todos: { a: { id: 'a', title: 'A', done: false } } },
      { replaced: {} },
      'mine',
      1,
    ])
  })

  test('persist params are made when first read: reading `changes` leaves the transaction unread', async () => {
    const parse = vi.spyOn(JSON, 'parse')
    const parses: number[] = []
    const states: unknown[] = []
    const mutationFn = {
      persist(params: PersistParams) {
        const before = parse.mock.calls.length
        void params.changes
        void params.changes
        parses.push(parse.mock.calls.length - before)
        void params.transaction.id
        states.push(params.transaction.state, params.transaction.attempts.length)
        parses.push(parse.mock.calls.length - before)
      },
    }
    const todos = createCollection<Todo>({ id: 'todos', mutationFn }, memoryClient())
    await todos.insert({ id: 'a', title: 'A', done: false }).settled()
    parse.mockRestore()
    expect(parses).toEqual([1, 2])
    // Read while the call runs, the record is the one it is made for.
    expect(states).toEqual(['persisting', 1])
  })

  test('strategy takes seed 004’s object form: parallel with a merge', async () => {
    const merge: MergeFn<Todo> = vi.fn((synced, pending) => {
      const base = synced ?? ({ id: pending[0]!.key, title: '', done: false } as Todo)
      return { ...base, title: `${base.title}+${pending.length}` }
    })
    const client = memoryClient()
    const todos = createCollection<Todo>(
      { id: 'todos', strategy: { type: 'parallel', merge }, mutationFn: { persist: () => new Promise(() => {}) } },
      client,
    )
    todos.insert({ id: 'a', title: 'A', done: false })
    todos.update('a', { done: true })
    expect(client.transactions().map((t) => t.strategy.type)).toEqual(['parallel', 'parallel'])
    expect(merge).toHaveBeenCalled()
    expect(todos.get('a')?.title).toMatch(/\+2$/)
  })

  test('subscribers get the changed keys only', () => {
    const todos = createCollection<Todo>({ id: 'todos' }, memoryClient())
    todos.insert([
      { id: 'a', title: 'A', done: false },
      { id: 'b', title: 'B', done: false },
    ])
    const seen: unknown[] = []
    const unsubscribe = todos.subscribe((changes) => seen.push(changes))
    todos.update('b', { done: true })
    unsubscribe()
    todos.update('a', { done: true })
    expect(seen).toEqual([[{ type: 'update', key: 'b', value: { id: 'b', title: 'B', done: true } }]])
  })
})

test('records keep their declared type through the API', () => {
  const todos = createCollection<Todo>({ id: 'typed' }, memoryClient())
  todos.insert({ id: 'a', title: 'A', done: false })
  const record: Todo | undefined = todos.get('a')
  const data: Readonly<Record<string, Todo>> = todos.snapshot()
  expect(record?.title).toBe(data.a?.title)
  // A plain record type works as well.
  const loose = createCollection<TandemRecord>({ id: 'loose' }, memoryClient())
  loose.insert({ id: 1, anything: ['goes'] })
  expect(loose.get(1)).toEqual({ id: 1, anything: ['goes'] })
})
