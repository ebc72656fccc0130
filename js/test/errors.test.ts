import { expect, test } from 'vitest'
import { createCollection, isTandemError, NonRetriableError } from '../src/index.js'
import { memoryClient } from './helpers.js'

test('NonRetriableError is a real Error named for the runtime to recognise', () => {
  const error = new NonRetriableError('no', { cause: 'validation' })
  expect(error).toBeInstanceOf(Error)
  expect(error.name).toBe('NonRetriableError')
  expect(error.message).toBe('no')
  expect(error.cause).toBe('validation')
  expect(isTandemError(error)).toBe(false)
})

test('the runtime throws real Errors with a stable name and their context', () => {
  const todos = createCollection({ id: 'todos' }, memoryClient())
  todos.insert({ id: 'a' })
  let thrown: unknown
  try {
    todos.insert({ id: 'a' })
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(Error)
  expect(isTandemError(thrown, 'DuplicateKeyError')).toBe(true)
  expect(isTandemError(thrown, 'MissingKeyError')).toBe(false)
  expect(thrown).toMatchObject({ collection: 'todos', key: 'a' })
})
