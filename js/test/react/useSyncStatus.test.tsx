// @vitest-environment jsdom
import { act, cleanup, render, screen } from '@testing-library/react'
import { afterEach, expect, test } from 'vitest'
import { configureTandem, createCollection, resetTandemClient } from '../../src/index.js'
import type { SyncConfig, SyncStatus, SyncStatusSource } from '../../src/index.js'
import { useCollection, useSyncStatus } from '../../src/react/index.js'
import { deferred } from '../helpers.js'

afterEach(async () => {
  cleanup()
  await resetTandemClient()
})

function Status({ sync }: { sync: SyncConfig }) {
  useCollection({ sync })
  return <p>{useSyncStatus(sync)}</p>
}

test("a sync without a status of its own is 'started' until its setup resolved, then 'syncing'", async () => {
  const loaded = deferred<{ data: [] }>()
  const sync: SyncConfig = { id: 'todos', setup: () => loaded.promise }
  render(<Status sync={sync} />)
  expect(screen.getByRole('paragraph').textContent).toBe('started')
  await act(async () => loaded.resolve({ data: [] }))
  expect(screen.getByRole('paragraph').textContent).toBe('syncing')
})

test("a setup that fails makes it 'error'", async () => {
  const reported: string[] = []
  configureTandem({ onError: (error) => reported.push(error.name) })
  const loaded = deferred<never>()
  const sync: SyncConfig = { id: 'todos', setup: () => loaded.promise }
  render(<Status sync={sync} />)
  await act(async () => loaded.reject(new Error('offline')))
  expect(screen.getByRole('paragraph').textContent).toBe('error')
  expect(reported).toEqual(['SyncSetupError'])
})

test('a sync that reports its own status is followed', async () => {
  let status: SyncStatus = 'started'
  const listeners = new Set<(s: SyncStatus) => void>()
  class ServerSync implements SyncConfig, SyncStatusSource {
    id = 'server'
    setup = async () => ({ data: [] })
    status() {
      return status
    }
    subscribeStatus(listener: (s: SyncStatus) => void) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    }
  }
  const sync = new ServerSync()
  const { unmount } = render(<Status sync={sync} />)
  const set = (next: SyncStatus) =>
    act(() => {
      status = next
      for (const listener of listeners) listener(next)
    })
  for (const next of ['syncing', 'paused', 'error'] as const) {
    set(next)
    expect(screen.getByRole('paragraph').textContent).toBe(next)
  }
  unmount()
  expect(listeners.size).toBe(0)
})

test('takes the collection instead of its sync config', async () => {
  const collection = createCollection({ sync: { id: 'todos', setup: async () => ({ data: [] }) } })
  function ByCollection() {
    return <p>{useSyncStatus(collection)}</p>
  }
  render(<ByCollection />)
  await act(async () => {})
  expect(screen.getByRole('paragraph').textContent).toBe('syncing')
})
