// Minimal app for the size comparison: a collection, a subscriber, an insert and an update.
import { createCollection } from "tandem-sync";

const todos = createCollection({ id: "todos", mutationFn: { persist: async ({ changes }) => { await fetch("/api", { method: "POST", body: JSON.stringify(changes) }); } } });
todos.subscribe((changes) => { document.body.textContent = JSON.stringify(changes); });
todos.insert({ id: "a", title: "Buy milk", done: false });
todos.update("a", { done: true });
