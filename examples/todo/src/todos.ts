// The todos collection, synced with tandem-server. Everything Tandem-specific in the app is in
// this file; the components use the collection through the React hooks.
import { configureTandem, createCollection, tandemServer } from 'tandem-sync'

export interface Todo {
  id: string
  title: string
  done: boolean
  createdAt: number
}

// Where the server is and who we are. scripts/start.sh passes them in the environment; a query
// parameter overrides each (`?workspace=team-2`, `?token=<jwt>`, `?server=ws://host:port`), so
// one build can open any workspace as anyone. A real app would get its token from its backend:
// `token` may be a function, asked before every connection.
const params = new URLSearchParams(location.search)
const url = params.get('server') ?? import.meta.env.VITE_TANDEM_URL ?? 'ws://127.0.0.1:8787'
export const workspace = params.get('workspace') ?? import.meta.env.VITE_TANDEM_WORKSPACE ?? 'todo'
const token = params.get('token') ?? import.meta.env.VITE_TANDEM_TOKEN

// Before anything uses the client: one IndexedDB database per workspace (its cached data and
// unsent writes stay its own), and at most 100 finished transactions kept in memory.
configureTandem({ database: `tandem-todo-${workspace}`, history: { maxFinished: 100 } })

export const server = tandemServer<Todo>({ url, workspace, token, collection: 'todos' })

// "Work offline" survives a reload: paused before the collection starts its sync, the page
// never connects. Writes made meanwhile wait in IndexedDB and are sent, once, on resume().
const offlineKey = `tandem-todo:${workspace}:offline`
if (localStorage.getItem(offlineKey) === 'true') server.sync.pause()

export function setOffline(offline: boolean) {
  localStorage.setItem(offlineKey, String(offline))
  if (offline) server.sync.pause()
  else server.sync.resume()
}

export const todos = createCollection<Todo>({ ...server, keyField: 'id' })

export function addTodo(title: string) {
  return todos.insert({ id: crypto.randomUUID(), title, done: false, createdAt: Date.now() })
}
