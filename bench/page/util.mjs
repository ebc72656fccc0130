// Helpers for the benchmark page.

/** The records every system stores: same shape, same keys. */
export function makeRecords(n, from = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { id: `k${from + i}`, title: `todo ${from + i}`, done: false, n: 0 };
  return out;
}

/** A macrotask turn without setTimeout's 4 ms clamping of nested timers. */
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
export const yieldTask = () => new Promise((resolve) => { waiting.push(resolve); channel.port2.postMessage(0); });

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `cond()` is truthy, checking after every task turn (fails after `timeoutMs`). */
export async function until(cond, timeoutMs = 60_000, what = "condition") {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await yieldTask();
  }
}

export function deleteDatabase(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    req.onblocked = () => resolve();
  });
}

export async function deleteAllDatabases() {
  for (const db of await indexedDB.databases()) await deleteDatabase(db.name);
}

export function timerResolutionUs() {
  let smallest = Infinity;
  for (let i = 0; i < 200; i++) {
    const a = performance.now();
    let b = performance.now();
    while (b === a) b = performance.now();
    smallest = Math.min(smallest, b - a);
  }
  return smallest * 1000;
}

/** Unsubscribes whatever a library's subscribe returned (a function or a subscription object). */
export function unsubscribe(sub) {
  if (typeof sub === "function") sub();
  else sub?.unsubscribe?.();
}

/** Counts the IndexedDB write requests (`put`, `add`, `delete`) the page makes, per database, until `stop()`. */
export function countIdbWrites() {
  const counts = {};
  const originals = ["put", "add", "delete"].map((name) => [name, IDBObjectStore.prototype[name]]);
  for (const [name, original] of originals) {
    IDBObjectStore.prototype[name] = function (...args) {
      const db = this.transaction.db.name;
      counts[db] = (counts[db] ?? 0) + 1;
      return original.apply(this, args);
    };
  }
  return {
    counts,
    stop() {
      for (const [name, original] of originals) IDBObjectStore.prototype[name] = original;
    },
  };
}
