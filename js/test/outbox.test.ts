// The runtime's outbox bookkeeping (src/js_helpers.js `Outbox`) on its own: which records a
// write puts and deletes, and what a later reader finds. Requests go to an in-memory store with
// IndexedDB's put/delete semantics; tests/outbox.rs runs the same against real IndexedDB in
// Chromium, where a failed write cannot be provoked.
import { expect, test } from 'vitest'
import { Outbox, type OutboxStore } from '../../src/js_helpers.js'

const SEP = '\u0001'

/** Records by key, as IndexedDB keeps them (array keys compared as their JSON). */
class Store implements OutboxStore {
  records = new Map<string, unknown>()
  put(value: unknown, key?: unknown) {
    this.records.set(JSON.stringify(key ?? (value as { id: unknown }).id), value)
  }
  delete(key: unknown) {
    this.records.delete(JSON.stringify(key))
  }
}

const tx = (id: string, state: string) => JSON.stringify({ id, state })

/** A new reader (the next page load) adopting everything in `store`: `{id: state}`. */
function reload(store: Store): Record<string, string> {
  const live = new Outbox().read([[...store.records.values()]], SEP)
  const out: Record<string, string> = {}
  for (let i = 0; i < live.length; i += 2) out[live[i]!] = JSON.parse(live[i + 1]!).state
  return out
}

function writer() {
  const outbox = new Outbox(), store = new Store(), owners = new Store()
  /** `ok` false: the IndexedDB transaction aborts, none of its requests takes effect. */
  const write = (put: [string, string][], erased: string[] = [], ok = true) => {
    const [to, toOwners] = ok ? [store, owners] : [new Store(), new Store()]
    const plan = outbox.write(to, toOwners, 'me', put.map(([id]) => id), put.map(([id, s]) => tx(id, s)).join(SEP), erased, SEP)
    outbox.written(plan, ok)
    return plan
  }
  return { outbox, store, owners, write }
}

test('a write is one record; one whose transactions all have a durable newer copy goes with a later write', () => {
  const { store, owners, write } = writer()
  write([['a', 'pending'], ['b', 'pending']])
  expect(store.records.size).toBe(1)
  expect([...owners.records.keys()]).toEqual(['"me"'])
  write([['a', 'completed']])
  expect(store.records.size).toBe(2) // b's pending copy is still needed
  write([['b', 'completed']])
  expect(store.records.size).toBe(3) // superseded, deleted with the next write
  write([])
  expect(store.records.size).toBe(2)
  expect(reload(store)).toEqual({ a: 'completed', b: 'completed' })
  write([])
  expect(store.records.size).toBe(2) // the newest copies stay
  expect(owners.records.size).toBe(1) // the owners entry is written once
})

test('a failed write leaves everything as it was: nothing it was to delete is lost', () => {
  const { store, write } = writer()
  write([['a', 'pending']])
  write([['a', 'persisting']])
  const failed = write([['a', 'completed']], [], false)
  expect(failed.dead).toHaveLength(1) // the pending copy's record, which the failure keeps
  expect(store.records.size).toBe(2)
  expect(reload(store)).toEqual({ a: 'persisting' })
  const retried = write([['a', 'completed']])
  expect(retried.dead).toHaveLength(1) // deleted again with the next write
  write([])
  expect(reload(store)).toEqual({ a: 'completed' })
})

test('an erased transaction stays erased while an older copy of it is stored, and its tombstone goes after', () => {
  const { store, write } = writer()
  write([['a', 'completed'], ['b', 'completed']])
  write([], ['a', 'never-stored'])
  expect(reload(store)).toEqual({ b: 'completed' })
  expect(store.records.size).toBe(2) // the first holds b: it stays, and so does a's tombstone
  write([['b', 'failed']])
  write([])
  expect(store.records.size).toBe(2) // the first went; the tombstone goes with the next write
  write([])
  expect(store.records.size).toBe(1)
  expect(reload(store)).toEqual({ b: 'failed' })
})

test('a reader keeps the newest copy across groups and records of the first schema, and numbers its writes after them', () => {
  const store = new Store()
  store.put({ id: 'a', owner: 'old', tx: tx('a', 'pending') }) // the first schema: one transaction per record
  store.put({ id: [7, 'dead'], owner: 'dead', ids: ['a', 'b'], tx: [tx('a', 'completed'), tx('b', 'pending')].join(SEP) })
  store.put({ id: [5, 'dead'], owner: 'dead', ids: ['b', 'c', 'd'], tx: [tx('b', 'old'), tx('c', 'pending'), ''].join(SEP) })
  store.put({ id: [6, 'other'], owner: 'other', ids: ['d', 'e'], tx: 'cut short' }) // texts that do not match the ids
  const outbox = new Outbox()
  const live = outbox.read([[...store.records.values()]], SEP)
  const found: Record<string, string> = {}
  for (let i = 0; i < live.length; i += 2) found[live[i]!] = live[i + 1]!
  expect(found).toEqual({ a: tx('a', 'completed'), b: tx('b', 'pending'), c: tx('c', 'pending'), d: '', e: '' })
  const plan = outbox.write(store, new Store(), 'me', ['c'], tx('c', 'completed'), [], SEP)
  expect((plan.segment as { key: [number, string] }).key[0]).toBeGreaterThan(7)
  expect(plan.dead.map((s) => (s as { key: unknown }).key)).toEqual(['a']) // its only copy is superseded
})
