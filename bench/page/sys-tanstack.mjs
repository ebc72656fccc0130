// @tanstack/db (latest), used as its docs (packages/db skills and guides) recommend: local-only
// collections for in-memory data whose writes stay after an instant handler, `subscribeChanges`,
// draft updates, `createPacedMutations` + `queueStrategy` for ordered persistence, and its
// IndexedDB collection for data stored in the browser.
import {
  createCollection,
  createIndexedDB,
  createPacedMutations,
  indexedDBCollectionOptions,
  localOnlyCollectionOptions,
  queueStrategy,
} from "@tanstack/db";
import { deleteDatabase, makeRecords, until, unsubscribe } from "./util.mjs";

let seq = 0;
const getKey = (r) => r.id;

export async function updateSubject(data) {
  const todos = createCollection(localOnlyCollectionOptions({ id: `todos-${seq++}`, getKey, initialData: data, onUpdate: async () => {} }));
  await todos.preload();
  if (todos.size !== data.length) throw new Error(`tanstack: ${todos.size} records loaded`);
  let notified = 0;
  const sub = todos.subscribeChanges(() => { notified++; });
  return {
    update: (key, i) => todos.update(key, (draft) => { draft.n = i; draft.done = i % 2 === 0; }),
    notified: () => notified,
    dispose: async () => { unsubscribe(sub); await todos.cleanup(); },
  };
}

export async function bulkInsert(records) {
  const todos = createCollection(localOnlyCollectionOptions({ id: `todos-${seq++}`, getKey, onInsert: async () => {} }));
  await todos.preload();
  let at = 0;
  const sub = todos.subscribeChanges(() => { at = performance.now(); });
  const t0 = performance.now();
  const tx = todos.insert(records);
  if (!at) await until(() => at, 60_000, "the notification");
  const ms = at - t0;
  if (todos.size !== records.length) throw new Error(`tanstack: ${todos.size} records after the insert`);
  await tx.isPersisted.promise;
  unsubscribe(sub);
  await todos.cleanup();
  return ms;
}

/** In memory: every mutation persisted in order through a queue (the `ordered-memory` peer). */
export async function ordered() {
  const todos = createCollection(localOnlyCollectionOptions({ id: `todos-${seq++}`, getKey, initialData: makeRecords(100) }));
  await todos.preload();
  const sub = todos.subscribeChanges(() => {});
  const mutate = createPacedMutations({
    onMutate: ({ key, i }) => todos.update(key, (draft) => { draft.n = i; }),
    // The instant persist; local-only collections keep a manual transaction's writes this way.
    mutationFn: async ({ transaction }) => { todos.utils.acceptMutations(transaction); },
    strategy: queueStrategy({ wait: 0 }),
  });
  const t0 = performance.now();
  const txs = [];
  for (let i = 0; i < 1000; i++) txs.push(mutate({ key: `k${i % 100}`, i }));
  await Promise.all(txs.map((tx) => tx.isPersisted.promise));
  const ms = performance.now() - t0;
  if (todos.get("k99").n !== 999) throw new Error("tanstack: wrong final state");
  unsubscribe(sub);
  await todos.cleanup();
  return ms;
}

const COLD_DB = "bench-cold-tanstack";
const openCold = () => createIndexedDB({ name: COLD_DB, version: 1, stores: ["todos"] });

export async function coldPrepare(n) {
  await deleteDatabase(COLD_DB);
  const db = await openCold();
  const todos = createCollection(indexedDBCollectionOptions({ db, name: "todos", getKey }));
  await todos.preload();
  const tx = todos.insert(makeRecords(n));
  await tx.isPersisted.promise;
  await todos.cleanup();
  db.close();
}

export async function coldStart(n) {
  const db = await openCold();
  const todos = createCollection(indexedDBCollectionOptions({ db, name: "todos", getKey }));
  return new Promise((resolve) => {
    const check = () => { if (todos.size >= n) resolve(performance.now()); };
    todos.subscribeChanges(check);
    todos.preload();
    check();
  });
}

export async function memoryFill(n) {
  const todos = createCollection(localOnlyCollectionOptions({ id: `todos-${seq++}`, getKey, initialData: makeRecords(n), onUpdate: async () => {} }));
  await todos.preload();
  if (todos.size !== n) throw new Error(`tanstack: ${todos.size} records loaded`);
  todos.subscribeChanges(() => {});
  return todos;
}
