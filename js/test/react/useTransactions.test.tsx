// @vitest-environment jsdom
import { act, cleanup, render, screen } from '@testing-library/react'
import { afterEach, expect, test, vi } from 'vitest'
import type { TransactionRecord } from '../../src/index.js'
import { useTransactions } from '../../src/react/index.js'
import { createTestCollection } from '../../src/testing/index.js'

afterEach(cleanup)

test('lists every transaction with its state, attempts and errors, re-rendering on changes only', async () => {
  const { collection, syncControl } = createTestCollection({ initialData: [{ id: 'a', n: 0 }] })
  await syncControl.loaded
  const snapshots: (readonly TransactionRecord[])[] = []
  function Monitor() {
    const transactions = useTransactions(collection.client)
    snapshots.push(transactions)
    return (
      <ul>
        {transactions.map((t) => (
          <li key={t.id}>
            {t.state} after {t.attempts.length} attempt(s){t.attempts[0]?.error ? `: ${t.attempts[0].error.message}` : ''}
          </li>
        ))}
      </ul>
    )
  }
  const { rerender } = render(<Monitor />)
  expect(screen.queryAllByRole('listitem')).toHaveLength(0)

  syncControl.failNextPersist()
  let settled: Promise<TransactionRecord> | undefined
  act(() => {
    settled = collection.update('a', { n: 1 }).settled()
  })
  expect(screen.getByRole('listitem').textContent).toBe('persisting after 1 attempt(s)')
  await act(() => settled!)
  expect(screen.getByRole('listitem').textContent).toBe('completed after 2 attempt(s): simulated network failure')

  const rendered = snapshots.length
  act(() => syncControl.emitUpdate([{ id: 'b', n: 0 }])) // Data, not transactions.
  expect(snapshots).toHaveLength(rendered)
  rerender(<Monitor />)
  expect(snapshots).toHaveLength(rendered + 1)
  expect(snapshots.at(-1)).toBe(snapshots.at(-2)) // One snapshot per change, not per render.
})

test('defaults to the default client', async () => {
  const { getTandemClient } = await import('../../src/index.js')
  const spy = vi.spyOn(getTandemClient(), 'transactions')
  function Count() {
    return <p>{useTransactions().length} transactions</p>
  }
  render(<Count />)
  expect(screen.getByText('0 transactions')).toBeTruthy()
  expect(spy).toHaveBeenCalledTimes(1)
})
