// Minimal app for the size comparison: a collection, a subscriber, an insert and an update.
import { createCollection, localOnlyCollectionOptions } from "@tanstack/db";

const todos = createCollection(localOnlyCollectionOptions({
  id: "todos",
  getKey: (todo) => todo.id,
  onInsert: async ({ transaction }) => { await fetch("/api", { method: "POST", body: JSON.stringify(transaction.mutations) }); },
  onUpdate: async ({ transaction }) => { await fetch("/api", { method: "POST", body: JSON.stringify(transaction.mutations) }); },
}));
todos.subscribeChanges((changes) => { document.body.textContent = JSON.stringify(changes); });
todos.insert({ id: "a", title: "Buy milk", done: false });
todos.update("a", (draft) => { draft.done = true; });
