import { describe, expectTypeOf, test } from 'vitest'
import {
  Collection,
  createCollection,
  getTandemClient,
  isTandemError,
  NonRetriableError,
  subscribeTransactions,
  withMutation,
} from '../src/index.js'
import type {
  ChangeMessage,
  CollectionConfig,
  Key,
  MergeFn,
  MutationFn,
  PendingMutation,
  PersistParams,
  SyncConfig,
  SyncSetupParams,
  SyncStatus,
  TandemError,
  TandemRecord,
  Transaction,
  TransactionEvent,
  TransactionRecord,
  TransactionState,
} from '../src/index.js'
import { useCollection, useSyncStatus, useTransactions } from '../src/react/index.js'
import type { UseCollectionResult } from '../src/react/index.js'
import { createTestCollection } from '../src/testing/index.js'
import type { SyncControl } from '../src/testing/index.js'

interface Todo {
  id: string
  title: string
  done: boolean
}

declare const todoSync: SyncConfig<Todo>

describe('collections are typed by their records', () => {
  test('reads', () => {
    const todos = createCollection<Todo>({ sync: todoSync })
    expectTypeOf(todos).toEqualTypeOf<Collection<Todo>>()
    expectTypeOf(todos.get).returns.toEqualTypeOf<Todo | undefined>()
    expectTypeOf(todos.snapshot).returns.toEqualTypeOf<Readonly<Record<string, Todo>>>()
    expectTypeOf(todos.subscribe).parameter(0).parameter(0).toEqualTypeOf<ChangeMessage<Todo>[]>()
  })

  test('writes', () => {
    const todos = createCollection<Todo>({ sync: todoSync })
    expectTypeOf(todos.insert).toBeCallableWith({ id: 'a', title: 'A', done: false })
    expectTypeOf(todos.insert).toBeCallableWith([{ id: 'a', title: 'A', done: false }])
    expectTypeOf(todos.update).toBeCallableWith('a', { done: true })
    expectTypeOf(todos.update).toBeCallableWith('a', (draft: Todo) => {
      draft.done = true
    })
    expectTypeOf(todos.delete).toBeCallableWith(['a', 1])
    expectTypeOf(todos.insert).returns.toEqualTypeOf<Transaction>()
    // @ts-expect-error a field the record type does not have
    todos.update('a', { colour: 'red' })
    // @ts-expect-error an insert must be a whole record
    todos.insert({ id: 'a' })
  })

  test('configuration', () => {
    // @ts-expect-error a collection needs an id or a sync
    createCollection<Todo>({ keyField: 'id' })
    // @ts-expect-error the key field is a field of the record
    createCollection<Todo>({ sync: todoSync, keyField: 'colour' })
    createCollection<Todo>({ id: 'local', strategy: { type: 'parallel', merge: (synced) => synced } })
    expectTypeOf<MergeFn<Todo>>().parameter(0).toEqualTypeOf<Todo | undefined>()
    expectTypeOf<SyncSetupParams<Todo>['onUpdate']>().toBeCallableWith([{ id: 'a', title: 'A', done: true }])
    expectTypeOf<CollectionConfig<Todo>>().toHaveProperty('mutationFn').toEqualTypeOf<MutationFn<Todo> | undefined>()
  })
})

describe('transactions', () => {
  test('handles and records', () => {
    expectTypeOf<Transaction['state']>().toEqualTypeOf<TransactionState | undefined>()
    expectTypeOf<Transaction['settled']>().returns.resolves.toEqualTypeOf<TransactionRecord>()
    expectTypeOf<TransactionRecord['mutations']>().toEqualTypeOf<PendingMutation[]>()
    expectTypeOf<TransactionRecord['error']>().exclude<undefined>().toHaveProperty('transaction_id')
    expectTypeOf<PersistParams['transaction']>().toEqualTypeOf<TransactionRecord>()
    expectTypeOf(withMutation).returns.toEqualTypeOf<Transaction>()
    expectTypeOf(subscribeTransactions).parameter(0).parameter(0).toEqualTypeOf<TransactionEvent[]>()
  })

  test('errors', () => {
    expectTypeOf(new NonRetriableError('x')).toMatchTypeOf<Error>()
    expectTypeOf(new NonRetriableError('x').name).toEqualTypeOf<'NonRetriableError'>()
    const error: unknown = null
    if (isTandemError(error, 'StorageError')) {
      expectTypeOf(error.name).toEqualTypeOf<'StorageError'>()
      expectTypeOf(error).toMatchTypeOf<TandemError>()
    }
  })
})

describe('hooks and the harness', () => {
  test('useCollection', () => {
    expectTypeOf(useCollection<Todo>).returns.toEqualTypeOf<UseCollectionResult<Todo>>()
    expectTypeOf<UseCollectionResult<Todo>['data']>().toEqualTypeOf<Readonly<Record<string, Todo>>>()
    expectTypeOf(useTransactions).returns.toEqualTypeOf<readonly TransactionRecord[]>()
    expectTypeOf(useSyncStatus<Todo>).returns.toEqualTypeOf<SyncStatus>()
    expectTypeOf<SyncStatus>().toEqualTypeOf<'started' | 'syncing' | 'paused' | 'error'>()
  })

  test('createTestCollection', () => {
    const { collection, syncControl } = createTestCollection<Todo>({ initialData: [] })
    expectTypeOf(collection).toEqualTypeOf<Collection<Todo>>()
    expectTypeOf(syncControl).toEqualTypeOf<SyncControl<Todo>>()
    expectTypeOf(syncControl.emitUpdate).toBeCallableWith([{ id: 'a', title: 'A', done: true }])
    expectTypeOf(syncControl.failNextPersist).toBeCallableWith(new NonRetriableError('no'))
  })
})

describe('no `any` in the public types', () => {
  test('records, keys and results', () => {
    expectTypeOf<TandemRecord[string]>().not.toBeAny()
    expectTypeOf<Key>().not.toBeAny()
    expectTypeOf<ReturnType<Collection['get']>>().not.toBeAny()
    expectTypeOf<ReturnType<Collection['snapshot']>[string]>().not.toBeAny()
    expectTypeOf<UseCollectionResult['data'][string]>().not.toBeAny()
    expectTypeOf<ChangeMessage['value']>().not.toBeAny()
  })

  test('transactions and errors', () => {
    expectTypeOf<TransactionRecord['metadata']>().not.toBeAny()
    expectTypeOf<PendingMutation['changes'][string]>().not.toBeAny()
    expectTypeOf<PersistParams['changes'][string]>().not.toBeAny()
    expectTypeOf<TandemError['cause']>().not.toBeAny()
    expectTypeOf<ReturnType<typeof getTandemClient>['transactions']>().returns.not.toBeAny()
  })

  test('callbacks', () => {
    expectTypeOf<Parameters<SyncSetupParams['onUpdate']>[0]>().not.toBeAny()
    expectTypeOf<Parameters<MergeFn>[1][number]>().not.toBeAny()
    expectTypeOf<Parameters<SyncControl['emitUpdate']>[0]>().not.toBeAny()
  })
})
