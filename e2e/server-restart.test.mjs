// tandem-server is SIGKILLed mid-session and restarted: nothing it acknowledged is lost, nothing
// is applied twice, and the pages reconnect by themselves.
import assert from 'node:assert/strict'
import { addTodo, rows, setup, todoRow, uniqueWorkspace, waitFor, waitForStatus } from './harness.mjs'

const e2e = setup()

e2e.test('after a SIGKILL and restart of the server nothing acknowledged is lost and the pages reconnect and sync again', async () => {
  const workspace = uniqueWorkspace('restart')
  const a = await e2e.open({ workspace })
  const b = await e2e.open({ workspace })
  await Promise.all([waitForStatus(a, 'started'), waitForStatus(b, 'started')])

  // A writes steadily; the server is killed while writes are in flight, and A keeps writing.
  const titles = Array.from({ length: 8 }, (_, i) => `Todo ${i + 1}`)
  for (const title of titles.slice(0, 3)) await addTodo(a, title)
  await todoRow(b, 'Todo 3').waitFor()
  for (const title of titles.slice(3, 5)) await addTodo(a, title)
  await e2e.server.kill()
  // What the server had acknowledged: every row B shows came from its broadcasts (sent only
  // once committed), and every row of A that is no longer pending was confirmed by it.
  const acknowledged = new Map()
  for (const row of await rows(b)) acknowledged.set(row.id, row.title)
  for (const row of await rows(a)) if (!row.pending) acknowledged.set(row.id, row.title)
  assert.ok(acknowledged.size >= 3, `the server acknowledged todos before it died: ${[...acknowledged.values()]}`)
  for (const title of titles.slice(5)) await addTodo(a, title)
  await Promise.all([a, b].map((page) => page.locator('[data-testid="sync-status"]:not([data-status="started"])').waitFor()))
  assert.ok((await rows(a)).some((row) => row.pending), 'writes made while the server is down are pending')
  assert.deepEqual((await rows(a)).map((row) => row.title), titles, 'A still shows all its writes')

  await e2e.server.start()
  const onServer = await e2e.server.todos(workspace)
  for (const [id, title] of acknowledged) {
    assert.equal(onServer[id]?.title, title, `acknowledged todo "${title}" survived the SIGKILL`)
  }

  // Both pages reconnect; A's pending writes are sent again and applied exactly once.
  await Promise.all([waitForStatus(a, 'started', 20_000), waitForStatus(b, 'started', 20_000)])
  await todoRow(b, 'Todo 8').waitFor()
  await waitFor(async () => (await rows(a)).every((row) => !row.pending), { message: "A's writes to be confirmed" })
  const byTitle = (list) => list.map((row) => row.title)
  assert.deepEqual(byTitle(await rows(a)), titles)
  assert.deepEqual(byTitle(await rows(b)), titles, 'B shows every todo exactly once')
  const server = await e2e.server.todos(workspace)
  assert.deepEqual(Object.values(server).map((todo) => todo.title).sort(), [...titles].sort())
  const history = await e2e.server.history(workspace)
  for (const [id, todo] of Object.entries(server)) {
    const changes = history.filter((change) => change.keys.includes(`todos/${id}`))
    assert.equal(changes.length, 1, `"${todo.title}" was written exactly once: ${JSON.stringify(changes)}`)
  }

  // New edits flow again, both ways.
  await addTodo(b, 'After the restart')
  await todoRow(a, 'After the restart').waitFor({ timeout: 1_000 })
  await todoRow(a, 'Todo 1').getByTestId('todo-toggle').check()
  await todoRow(b, 'Todo 1').locator('[data-testid="todo-toggle"]:checked').waitFor({ timeout: 1_000 })
})
