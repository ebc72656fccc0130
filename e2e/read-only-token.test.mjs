// A page whose token has only the `read` scope: its writes are refused by the server, rolled
// back in the page, and listed as failed.
import assert from 'node:assert/strict'
import { addTodo, rows, setup, todoRow, transactions, uniqueWorkspace, waitFor, waitForStatus } from './harness.mjs'

const e2e = setup()

e2e.test('with a read-only token a write is rejected by the server, rolled back and shown as failed', async () => {
  const workspace = uniqueWorkspace('read-only')
  const seed = { id: 'seed', title: 'Seeded by the server', done: false, createdAt: 1 }
  await e2e.server.put(workspace, 'todos/seed', seed)
  const page = await e2e.open({ workspace, token: e2e.server.token('read') })
  await waitForStatus(page, 'started')
  await todoRow(page, seed.title).waitFor()
  // Every title the page ever renders, to see the optimistic row that is then rolled back.
  await page.evaluate(() => {
    window.shownTitles = new Set()
    const record = () => {
      for (const el of document.querySelectorAll('[data-testid="todo-title"]')) window.shownTitles.add(el.textContent)
    }
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true })
  })

  await addTodo(page, 'Not allowed')
  await page.locator('[data-testid="transaction"][data-state="failed"]').waitFor()
  assert.ok(await page.evaluate(() => window.shownTitles.has('Not allowed')), 'the new todo was shown at once (optimistically)')
  await todoRow(page, 'Not allowed').waitFor({ state: 'detached' })

  await todoRow(page, seed.title).getByTestId('todo-toggle').click() // not check(): the rollback is quick
  await waitFor(async () => (await transactions(page)).filter((tx) => tx.state === 'failed').length === 2, {
    message: 'the toggle to fail too',
  })
  await todoRow(page, seed.title).locator('[data-testid="todo-toggle"]:not(:checked)').waitFor()

  const failed = await transactions(page)
  assert.equal(failed.length, 2, `only the two failed transactions are listed: ${JSON.stringify(failed)}`)
  for (const tx of failed) {
    assert.equal(tx.state, 'failed')
    assert.match(tx.text, /write/, `the failure says why: ${tx.text}`)
  }
  assert.match(failed[0].text, /Not allowed/)
  assert.deepEqual(
    (await rows(page)).map(({ title, done, pending }) => ({ title, done, pending })),
    [{ title: seed.title, done: false, pending: false }],
    'both writes rolled back',
  )
  // The server stored nothing, and the page is still connected.
  assert.deepEqual(await e2e.server.todos(workspace), { seed })
  assert.equal((await e2e.server.history(workspace)).length, 1)
  await waitForStatus(page, 'started')
})
