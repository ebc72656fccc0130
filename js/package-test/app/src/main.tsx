// A fresh app using the packed `tandem-sync` the way its README says: no Vite plugin, no
// await before rendering. Its "server" never answers, so an added todo stays pending — in the
// outbox, across a reload.
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { getTandemClient, type SyncConfig } from 'tandem-sync'
import { useCollection, useSyncStatus, useTransactions } from 'tandem-sync/react'

interface Todo {
  id: string
  title: string
}

declare global {
  interface Window {
    persistCalls: number
  }
}
window.persistCalls = 0

const todosSync: SyncConfig<Todo> = {
  id: 'todos',
  setup: async () => ({ data: [{ id: 'welcome', title: 'Welcome' }] }),
}

const mutationFn = {
  // Called only once the transaction is on disk (the outbox is write-ahead).
  persist: () => {
    window.persistCalls++
    return new Promise<void>(() => {})
  },
}

function App() {
  const { data, insert } = useCollection<Todo>({ sync: todosSync, mutationFn })
  const status = useSyncStatus(todosSync)
  const transactions = useTransactions()
  return (
    <main>
      <p id="status">{status}</p>
      <p id="persistence">{getTandemClient().persistence}</p>
      <ul id="todos">
        {Object.values(data).map((todo) => (
          <li key={todo.id}>{todo.title}</li>
        ))}
      </ul>
      <button id="add" onClick={() => insert({ id: 'added', title: 'Added offline' })}>
        Add
      </button>
      <p id="transactions">{transactions.map((t) => `${t.id}:${t.state}`).join(' ')}</p>
    </main>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
