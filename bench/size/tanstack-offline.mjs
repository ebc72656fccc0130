// Minimal app for the size comparison: the same with an offline outbox (IndexedDB), using the
// @tanstack/db that @tanstack/offline-transactions depends on.
import { startOfflineExecutor } from "@tanstack/offline-transactions";
import { createCollection, localOnlyCollectionOptions } from "tanstack-db-for-offline";

const todos = createCollection(localOnlyCollectionOptions({ id: "todos", getKey: (todo) => todo.id }));
const executor = startOfflineExecutor({
  collections: { todos },
  mutationFns: {
    save: async ({ transaction, idempotencyKey }) => {
      await fetch("/api", { method: "POST", headers: { "idempotency-key": idempotencyKey }, body: JSON.stringify(transaction.mutations) });
      todos.utils.acceptMutations(transaction);
    },
  },
});
todos.subscribeChanges((changes) => { document.body.textContent = JSON.stringify(changes); });
await executor.waitForInit();
executor.createOfflineTransaction({ mutationFnName: "save" }).mutate(() => todos.insert({ id: "a", title: "Buy milk", done: false }));
executor.createOfflineTransaction({ mutationFnName: "save" }).mutate(() => todos.update("a", (draft) => { draft.done = true; }));
