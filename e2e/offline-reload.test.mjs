// Offline, reload, online: edits made offline survive a reload in IndexedDB and reach the server
// and the other page exactly once when the page comes back online.
import assert from 'node:assert/strict'
import {
  addTodo, renameTodo, rows, setup, todoRow, transactions, uniqueWorkspace, waitFor, waitForStatus,
} from './harness.mjs'

const e2e = setup()

e2e.test('edits made offline survive a reload and reach the server and the other page exactly once when back online', async () => {
  const workspace = uniqueWorkspace('offline')
  const a = await e2e.open({ workspace })
  const b = await e2e.open({ workspace })
  await Promise.all([waitForStatus(a, 'started'), waitForStatus(b, 'started')])
  for (const title of ['Rename me', 'Toggle me', 'Delete me']) await addTodo(a, title)
  await todoRow(b, 'Delete me').waitFor()
  await waitFor(async () => (await transactions(a)).length === 0, { message: 'the online writes to complete' })
  const serverBefore = await e2e.server.todos(workspace)
  const historyBefore = await e2e.server.history(workspace)
  assert.equal(Object.keys(serverBefore).length, 3)

  // Offline: four edits, pending.
  await a.getByTestId('offline-toggle').check()
  await waitForStatus(a, 'paused')
  await addTodo(a, 'Added offline')
  await todoRow(a, 'Toggle me').getByTestId('todo-toggle').check()
  await renameTodo(a, 'Rename me', 'Renamed offline')
  await todoRow(a, 'Delete me').getByTestId('todo-delete').click()
  const expected = [
    { title: 'Renamed offline', done: false },
    { title: 'Toggle me', done: true },
    { title: 'Added offline', done: false },
  ]
  const visible = async (page) => (await rows(page)).map(({ title, done }) => ({ title, done }))
  assert.deepEqual(await visible(a), expected)
  const offlineTxs = await transactions(a)
  assert.equal(offlineTxs.length, 4, `one pending transaction per edit: ${JSON.stringify(offlineTxs)}`)
  assert.ok(offlineTxs.every((tx) => tx.state !== 'failed' && tx.state !== 'completed'), JSON.stringify(offlineTxs))

  // Reload: still offline, the edits still shown (from IndexedDB), still pending, same transactions.
  await a.reload()
  await waitForStatus(a, 'paused')
  assert.equal(await a.getByTestId('offline-toggle').isChecked(), true)
  await todoRow(a, 'Added offline').waitFor()
  await waitFor(async () => (await transactions(a)).length === 4, { message: 'the pending transactions after the reload' })
  assert.deepEqual(await visible(a), expected)
  assert.deepEqual((await transactions(a)).map((tx) => tx.id).sort(), offlineTxs.map((tx) => tx.id).sort())
  assert.ok((await rows(a)).every((row) => row.pending), 'every edited row is shown as pending')
  // Nothing has left the page: the server and the other page are as before.
  assert.deepEqual(await e2e.server.todos(workspace), serverBefore)
  assert.equal((await e2e.server.history(workspace)).length, historyBefore.length)
  assert.deepEqual((await rows(b)).map((row) => row.title), ['Rename me', 'Toggle me', 'Delete me'])

  // Online: every edit reaches the server and the other page, once.
  await a.getByTestId('offline-toggle').uncheck()
  await waitForStatus(a, 'started')
  await todoRow(b, 'Added offline').waitFor()
  await waitFor(async () => JSON.stringify(await visible(b)) === JSON.stringify(expected), {
    message: `the other page to show ${JSON.stringify(expected)}`,
  })
  await waitFor(async () => (await transactions(a)).length === 0, { message: 'the offline writes to complete' })
  assert.deepEqual(await visible(a), expected)

  const history = await e2e.server.history(workspace)
  for (const tx of offlineTxs) {
    const changes = history.filter((change) => change.tx === tx.id)
    assert.equal(changes.length, 1, `transaction ${tx.id} (${tx.text}) is exactly one change on the server: ${JSON.stringify(changes)}`)
  }
  assert.equal(history.length, historyBefore.length + 4, 'no other change reached the server')
  const serverAfter = Object.values(await e2e.server.todos(workspace))
    .sort((x, y) => x.createdAt - y.createdAt)
    .map(({ title, done }) => ({ title, done }))
  assert.deepEqual(serverAfter, expected)
  const ids = (await rows(b)).map((row) => row.id)
  assert.equal(new Set(ids).size, ids.length, 'no duplicate rows in the other page')
})
