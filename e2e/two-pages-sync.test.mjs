// Two devices on one workspace: what one does shows up in the other, fast.
import assert from 'node:assert/strict'
import { addTodo, renameTodo, rows, setup, todoRow, uniqueWorkspace, waitForStatus } from './harness.mjs'

const e2e = setup()

e2e.test('a todo added in one page shows up in the other page within a second, both ways', async () => {
  const workspace = uniqueWorkspace('two-pages')
  const a = await e2e.open({ workspace })
  const b = await e2e.open({ workspace })
  await Promise.all([waitForStatus(a, 'started'), waitForStatus(b, 'started')])

  await addTodo(a, 'Written in A')
  await todoRow(b, 'Written in A').waitFor({ timeout: 1_000 })
  await addTodo(b, 'Written in B')
  await todoRow(a, 'Written in B').waitFor({ timeout: 1_000 })

  const titles = (list) => list.map((row) => row.title)
  assert.deepEqual(titles(await rows(a)), ['Written in A', 'Written in B'])
  assert.deepEqual(titles(await rows(b)), ['Written in A', 'Written in B'])
  const onServer = Object.values(await e2e.server.todos(workspace)).map((todo) => todo.title).sort()
  assert.deepEqual(onServer, ['Written in A', 'Written in B'])
})

e2e.test('toggling, renaming (double-click) and deleting in one page show in the other within a second', async () => {
  const workspace = uniqueWorkspace('two-pages-edits')
  const a = await e2e.open({ workspace })
  const b = await e2e.open({ workspace })
  await Promise.all([waitForStatus(a, 'started'), waitForStatus(b, 'started')])
  await addTodo(a, 'Buy milk')
  await addTodo(a, 'Walk the dog')
  await todoRow(b, 'Walk the dog').waitFor({ timeout: 1_000 })

  await todoRow(a, 'Buy milk').getByTestId('todo-toggle').check()
  await todoRow(b, 'Buy milk').locator('[data-testid="todo-toggle"]:checked').waitFor({ timeout: 1_000 })

  await renameTodo(b, 'Walk the dog', 'Walk the cat')
  await todoRow(a, 'Walk the cat').waitFor({ timeout: 1_000 })

  await todoRow(a, 'Buy milk').getByTestId('todo-delete').click()
  await todoRow(b, 'Buy milk').waitFor({ state: 'detached', timeout: 1_000 })

  const expected = [{ title: 'Walk the cat', done: false, pending: false }]
  const strip = (list) => list.map(({ title, done, pending }) => ({ title, done, pending }))
  for (const page of [a, b]) {
    await todoRow(page, 'Walk the cat').and(page.locator('[data-pending="false"]')).waitFor()
    assert.deepEqual(strip(await rows(page)), expected)
  }
  const onServer = Object.values(await e2e.server.todos(workspace))
  assert.deepEqual(onServer.map(({ title, done }) => ({ title, done })), [{ title: 'Walk the cat', done: false }])
})
