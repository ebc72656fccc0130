import { useRef, useState, type FormEvent } from 'react'
import type { SyncStatus, TransactionRecord } from 'tandem-sync'
import { useCollection, useSyncStatus, useTransactions } from 'tandem-sync/react'
import { addTodo, server, setOffline, todos, workspace, type Todo } from './todos'

export function App() {
  return (
    <main>
      <header>
        <h1>Todos</h1>
        <ConnectionBadge />
        <OfflineToggle />
      </header>
      <NewTodo />
      <TodoList />
      <Transactions />
      <footer>
        Workspace <code>{workspace}</code> · double-click a todo to rename it
      </footer>
    </main>
  )
}

const STATUS_LABELS: Record<SyncStatus, string> = {
  started: 'Live',
  syncing: 'Connecting…',
  paused: 'Offline',
  error: 'Disconnected',
}

function ConnectionBadge() {
  const status = useSyncStatus(server.sync)
  const error = status === 'error' ? server.sync.lastError() : undefined
  return (
    <span data-testid="sync-status" data-status={status} className={`badge ${status}`} title={error?.message}>
      {STATUS_LABELS[status]}
    </span>
  )
}

function OfflineToggle() {
  const status = useSyncStatus(server.sync)
  return (
    <label className="offline">
      <input
        type="checkbox"
        data-testid="offline-toggle"
        checked={status === 'paused'}
        onChange={(event) => setOffline(event.target.checked)}
      />
      Work offline
    </label>
  )
}

function NewTodo() {
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault()
    const title = String(new FormData(event.currentTarget).get('title') ?? '').trim()
    if (title) addTodo(title)
    event.currentTarget.reset()
  }
  return (
    <form onSubmit={submit}>
      <input name="title" data-testid="new-todo" placeholder="What needs to be done?" autoComplete="off" autoFocus />
    </form>
  )
}

/** Transactions the server has not confirmed yet. */
const UNFINISHED = new Set<TransactionRecord['state']>(['queued', 'pending', 'persisting', 'persisted_awaiting_sync'])

function TodoList() {
  const { data, update, delete: remove } = useCollection(todos)
  const transactions = useTransactions()
  // Rows with a write on its way are shown as such (and tagged for the e2e tests).
  const unconfirmed = new Set(
    transactions
      .filter((tx) => UNFINISHED.has(tx.state))
      .flatMap((tx) => tx.mutations.filter((m) => m.collection === todos.id).map((m) => m.key)),
  )
  const list = Object.values(data).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
  return (
    <ul className="todos">
      {list.map((todo) => (
        <TodoItem
          key={todo.id}
          todo={todo}
          pending={unconfirmed.has(todo.id)}
          onToggle={(done) => update(todo.id, { done })}
          onRename={(title) => update(todo.id, { title })}
          onDelete={() => remove(todo.id)}
        />
      ))}
    </ul>
  )
}

interface TodoItemProps {
  todo: Todo
  pending: boolean
  onToggle: (done: boolean) => void
  onRename: (title: string) => void
  onDelete: () => void
}

function TodoItem({ todo, pending, onToggle, onRename, onDelete }: TodoItemProps) {
  const [editing, setEditing] = useState(false)
  const saved = useRef(false) // Enter, then the blur of the removed input: save once
  function startEditing() {
    saved.current = false
    setEditing(true)
  }
  function save(value: string) {
    if (saved.current) return
    saved.current = true
    setEditing(false)
    const title = value.trim()
    if (title && title !== todo.title) onRename(title)
  }
  return (
    <li data-testid="todo-item" data-id={todo.id} data-pending={pending} className={pending ? 'pending' : undefined}>
      <input type="checkbox" data-testid="todo-toggle" checked={todo.done} onChange={(e) => onToggle(e.target.checked)} />
      {editing ? (
        <input
          data-testid="todo-edit"
          defaultValue={todo.title}
          autoFocus
          onBlur={(e) => save(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') save(e.currentTarget.value)
            if (e.key === 'Escape') {
              saved.current = true
              setEditing(false)
            }
          }}
        />
      ) : (
        <span data-testid="todo-title" className={todo.done ? 'done' : undefined} onDoubleClick={startEditing}>
          {todo.title}
        </span>
      )}
      <button data-testid="todo-delete" aria-label={`Delete ${todo.title}`} onClick={onDelete}>
        ×
      </button>
    </li>
  )
}

/** What the app is waiting for, and what the server refused (rolled back). */
function Transactions() {
  const transactions = useTransactions()
  const pending = transactions.filter((tx) => UNFINISHED.has(tx.state))
  const failed = transactions.filter((tx) => tx.state === 'failed')
  return (
    <section className="transactions">
      <h2>Pending ({pending.length})</h2>
      <ul>
        {pending.map((tx) => (
          <TransactionRow key={tx.id} tx={tx} />
        ))}
      </ul>
      {failed.length > 0 && (
        <>
          <h2>Failed ({failed.length})</h2>
          <ul>
            {failed.map((tx) => (
              <TransactionRow key={tx.id} tx={tx} />
            ))}
          </ul>
        </>
      )}
    </section>
  )
}

function TransactionRow({ tx }: { tx: TransactionRecord }) {
  return (
    <li data-testid="transaction" data-id={tx.id} data-state={tx.state} className={tx.state}>
      {tx.mutations.map(describe).join('; ')} <span className="state">{tx.state.replaceAll('_', ' ')}</span>
      {tx.attempts.length > 1 && <span className="state"> · attempt {tx.attempts.length}</span>}
      {tx.error && <div className="error">{tx.error.message}</div>}
    </li>
  )
}

function describe(mutation: TransactionRecord['mutations'][number]): string {
  const title = String(mutation.modified.title ?? mutation.original.title ?? mutation.key)
  switch (mutation.type) {
    case 'insert':
      return `add “${title}”`
    case 'delete':
      return `delete “${title}”`
    default:
      return `update “${title}”: ${Object.keys(mutation.changes).join(', ')}`
  }
}
