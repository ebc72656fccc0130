// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import { StrictMode } from 'react'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { Collection, createCollection, getTandemClient, resetTandemClient } from '../../src/index.js'
import { Collection as RuntimeCollection } from '../../wasm/tandem.js'
import type { SyncConfig, SyncSetupParams } from '../../src/index.js'
import { useCollection } from '../../src/react/index.js'
import { createTestCollection } from '../../src/testing/index.js'

interface Todo {
  id: string
  title: string
  done: boolean
}

afterEach(async () => {
  cleanup()
  await resetTandemClient()
})

function todosSync(data: Todo[] = [{ id: 'a', title: 'Buy milk', done: false }]) {
  let onUpdate: SyncSetupParams<Todo>['onUpdate'] | undefined
  const setup = vi.fn(async (params: SyncSetupParams<Todo>) => {
    onUpdate = params.onUpdate
    return { data }
  })
  const sync: SyncConfig<Todo> = { id: 'todos', setup }
  return { sync, setup, push: (update: Parameters<SyncSetupParams<Todo>['onUpdate']>[0]) => onUpdate!(update) }
}

function TodoList({ sync, onRender }: { sync: SyncConfig<Todo>; onRender?: () => void }) {
  onRender?.()
  const { data, insert, update } = useCollection<Todo>({ sync })
  return (
    <div>
      <ul>
        {Object.values(data).map((todo) => (
          <li key={todo.id} data-testid="todo">
            {todo.title}
            {todo.done ? ' ✓' : ''}
          </li>
        ))}
      </ul>
      <button onClick={() => insert({ id: 'b', title: 'Walk the dog', done: false })}>add</button>
      <button
        onClick={() =>
          update('a', (draft) => {
            draft.done = true
          })
        }
      >
        done
      </button>
    </div>
  )
}

const titles = () => screen.queryAllByTestId('todo').map((li) => li.textContent)

describe('useCollection', () => {
  test('renders the synced data and every mutation at once', async () => {
    const { sync, push } = todosSync()
    render(<TodoList sync={sync} />)
    expect(await screen.findByText('Buy milk')).toBeTruthy()
    fireEvent.click(screen.getByText('add'))
    expect(titles()).toEqual(['Buy milk', 'Walk the dog'])
    fireEvent.click(screen.getByText('done'))
    expect(titles()).toEqual(['Buy milk ✓', 'Walk the dog'])
    act(() => push([{ id: 'c', title: 'From the server', done: false }]))
    expect(titles()).toEqual(['Buy milk ✓', 'Walk the dog', 'From the server'])
  })

  test('components with the same sync share one collection', async () => {
    const { sync, setup } = todosSync()
    render(
      <>
        <TodoList sync={sync} />
        <TodoList sync={{ ...sync }} />
      </>,
    )
    await screen.findAllByText('Buy milk')
    fireEvent.click(screen.getAllByText('add')[0]!)
    expect(titles()).toEqual(['Buy milk', 'Walk the dog', 'Buy milk', 'Walk the dog'])
    expect(setup).toHaveBeenCalledTimes(1)
  })

  test('re-renders only when its own data changes', async () => {
    const { sync } = todosSync()
    const notes = createCollection({ id: 'notes' })
    const onRender = vi.fn()
    render(<TodoList sync={sync} onRender={onRender} />)
    await screen.findByText('Buy milk')
    const renders = onRender.mock.calls.length
    act(() => {
      notes.insert({ id: 'n1' })
    })
    expect(onRender).toHaveBeenCalledTimes(renders)
    fireEvent.click(screen.getByText('add'))
    expect(onRender).toHaveBeenCalledTimes(renders + 1)
  })

  test('returns stable functions and the same result until the data changes', async () => {
    const { sync } = todosSync()
    const results: ReturnType<typeof useCollection<Todo>>[] = []
    function Probe({ label }: { label: string }) {
      results.push(useCollection<Todo>({ sync }))
      return <span>{label}</span>
    }
    const { rerender } = render(<Probe label="one" />)
    await act(async () => {})
    rerender(<Probe label="two" />)
    const [before, after] = results.slice(-2)
    expect(after).toBe(before) // Same data: same object.
    act(() => {
      after!.insert({ id: 'z', title: 'Z', done: false })
    })
    const latest = results.at(-1)!
    expect(latest).not.toBe(after)
    expect(latest.insert).toBe(after!.insert)
    expect(latest.update).toBe(after!.update)
    expect(latest.delete).toBe(after!.delete)
    expect(latest.collection).toBeInstanceOf(Collection)
  })

  test('accepts a collection, e.g. from the test harness', async () => {
    const { collection, syncControl } = createTestCollection<Todo>({
      initialData: [{ id: 'a', title: 'Buy milk', done: false }],
    })
    function Count() {
      const { data } = useCollection(collection)
      return <p>{Object.keys(data).length} todos</p>
    }
    render(<Count />)
    await act(() => syncControl.loaded)
    expect(screen.getByText('1 todos')).toBeTruthy()
    act(() => syncControl.emitUpdate([{ id: 'b', title: 'B', done: false }]))
    expect(screen.getByText('2 todos')).toBeTruthy()
  })
})

describe('under StrictMode', () => {
  test('double render and mount create one collection and leave no subscription behind', async () => {
    const { sync, setup } = todosSync()
    const createRuntime = vi.spyOn(getTandemClient(), 'collection')
    // Counts the live runtime subscriptions (those of useSyncExternalStore).
    let active = 0
    const subscribe = RuntimeCollection.prototype.subscribe
    vi.spyOn(RuntimeCollection.prototype, 'subscribe').mockImplementation(function (
      this: RuntimeCollection,
      listener,
    ) {
      active++
      const unsubscribe = subscribe.call(this, listener)
      return () => {
        active--
        unsubscribe()
      }
    })
    let renders = 0
    function Strict() {
        renders++
      const { data } = useCollection<Todo>({ sync })
      return <p>{Object.values(data).map((t) => t.title).join(',') || 'empty'}</p>
    }
    const { unmount } = render(
      <StrictMode>
        <Strict />
      </StrictMode>,
    )
    expect(await screen.findByText('Buy milk')).toBeTruthy()
    expect(renders).toBeGreaterThan(1) // StrictMode did render twice.
    expect(createRuntime).toHaveBeenCalledTimes(1)
    expect(setup).toHaveBeenCalledTimes(1)
    expect(active).toBe(1)
    unmount()
    expect(active).toBe(0)
    vi.restoreAllMocks()
  })
})
