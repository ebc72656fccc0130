// Minimal app for the size comparison: a document, a change, an update — with Automerge's
// documented Vite set-up (the slim entry and the .wasm file as an asset).
import * as Automerge from "@automerge/automerge/slim";
import wasmUrl from "@automerge/automerge/automerge.wasm?url";

await Automerge.initializeWasm(wasmUrl);
let doc = Automerge.from({ todos: {} });
doc = Automerge.change(doc, (d) => { d.todos.a = { id: "a", title: "Buy milk", done: false }; });
doc = Automerge.change(doc, (d) => { d.todos.a.done = true; });
document.body.textContent = JSON.stringify(doc);
