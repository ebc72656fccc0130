// Types of src/js_helpers.js, for the tests that exercise it on its own (js/test/outbox.test.ts).

export function callParams(changesJson: string, attempt: number | undefined, api: unknown, id: string): object
export function callThen(f: (params: object) => unknown, params: object, answer: Function, id: string, attempt: number): void
export function readCache(synced: IDBObjectStore, meta: IDBObjectStore, separator: string, positionPrefix: string): Promise<[unknown[], unknown[]]>

/** What `Outbox.write` issued, for `Outbox.written`. */
export interface OutboxPlan {
  readonly segment: object | null
  readonly dead: readonly object[]
}

/** Where the outbox's requests go: an `IDBObjectStore`, or anything with its `put` and `delete`. */
export interface OutboxStore {
  put(value: unknown, key?: unknown): unknown
  delete(key: unknown): unknown
}

export class Outbox {
  write(outbox: OutboxStore, owners: OutboxStore, writer: string, ids: string[], texts: string, erased: string[], separator: string): OutboxPlan
  written(plan: OutboxPlan, ok: boolean): void
  read(groups: unknown[][], separator: string): string[]
}
