// @tanstack/offline-transactions (its outbox in IndexedDB, FIFO executor), with the
// @tanstack/db version it depends on (aliased `tanstack-db-for-offline` by the page's Vite
// config, so the collections and the executor share one copy), as its README and skill show.
import { IndexedDBAdapter, startOfflineExecutor } from "@tanstack/offline-transactions";
import { createCollection, localOnlyCollectionOptions } from "tanstack-db-for-offline";
import { deleteDatabase, makeRecords, until, unsubscribe } from "./util.mjs";

let seq = 0;
const getKey = (r) => r.id;

/** Never online: transactions wait in the outbox (what "pending" means for this package). */
const offline = { subscribe: () => () => {}, notifyOnline() {}, isOnline: () => false, dispose() {} };

/** Counts the outbox writes that resolved (a custom storage adapter, as its docs allow). */
class CountingAdapter extends IndexedDBAdapter {
  stored = 0;
  async set(key, value) {
    await super.set(key, value);
    this.stored++;
  }
}

/** Through the IndexedDB outbox: 1000 offline transactions, each persisted at once (`ordered-idb`). */
export async function ordered() {
  const dbName = `bench-offline-${Date.now()}-${seq}`;
  const todos = createCollection(localOnlyCollectionOptions({ id: `todos-${seq++}`, getKey, initialData: makeRecords(100) }));
  await todos.preload();
  const sub = todos.subscribeChanges(() => {});
  const executor = startOfflineExecutor({
    collections: { todos },
    mutationFns: { save: async ({ transaction }) => { todos.utils.acceptMutations(transaction); } },
    storage: new IndexedDBAdapter(dbName, "transactions"),
  });
  await executor.waitForInit();
  const t0 = performance.now();
  const txs = [];
  for (let i = 0; i < 1000; i++) {
    const tx = executor.createOfflineTransaction({ mutationFnName: "save" });
    txs.push(tx.mutate(() => todos.update(`k${i % 100}`, (draft) => { draft.n = i; })));
  }
  await Promise.all(txs.map((tx) => tx.isPersisted.promise));
  const ms = performance.now() - t0;
  if (todos.get("k99").n !== 999) throw new Error("offline-transactions: wrong final state");
  executor.dispose();
  unsubscribe(sub);
  await todos.cleanup();
  await deleteDatabase(dbName);
  return ms;
}

const OUTBOX_DB = "bench-outbox-offline";

function outboxExecutor(todos, storage) {
  return startOfflineExecutor({
    collections: { todos },
    mutationFns: { save: () => new Promise(() => {}) },
    storage,
    onlineDetector: offline,
  });
}

export async function outboxWrite(n) {
  await deleteDatabase(OUTBOX_DB);
  const todos = createCollection(localOnlyCollectionOptions({ id: "todos", getKey }));
  await todos.preload();
  const storage = new CountingAdapter(OUTBOX_DB, "transactions");
  const executor = outboxExecutor(todos, storage);
  await executor.waitForInit();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const tx = executor.createOfflineTransaction({ mutationFnName: "save" });
    tx.mutate(() => todos.insert({ id: `k${i}`, title: `todo ${i}`, done: false, n: 0 }));
  }
  await until(() => storage.stored === n, 60_000, "the outbox writes");
  const ms = performance.now() - t0;
  executor.dispose();
  return ms;
}

export async function outboxRecover(n, t0) {
  const todos = createCollection(localOnlyCollectionOptions({ id: "todos", getKey }));
  await todos.preload();
  const executor = outboxExecutor(todos, new IndexedDBAdapter(OUTBOX_DB, "transactions"));
  await executor.waitForInit(); // outbox loaded, optimistic state restored
  await until(() => todos.size === n && executor.getPendingCount() === n, 30_000, "the recovered transactions");
  const ms = performance.now() - t0;
  executor.dispose();
  await deleteDatabase(OUTBOX_DB);
  return ms;
}
