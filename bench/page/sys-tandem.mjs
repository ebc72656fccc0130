// tandem-sync, through the package's public API (the default client, createCollection), as
// pkg-template/README.md shows it.
import { configureTandem, createCollection, getTandemClient, resetTandemClient, TandemClient } from "tandem-sync";
import { deleteDatabase, makeRecords, until } from "./util.mjs";

let seq = 0;
const onError = (e) => console.error(`[tandem] ${e.name}: ${e.message}`);

/** A new default client; `database` is deleted when `drop()`ped. */
function fresh(persistence = "indexeddb", database = `bench-tandem-${Date.now()}-${seq++}`) {
  configureTandem({ database, persistence, onError });
  return getTandemClient();
}

async function drop() {
  const name = getTandemClient().database;
  await resetTandemClient();
  await deleteDatabase(name);
}

const instantPersist = { persist: async () => {} };

/**
 * `tandem-memory` (`persistence: 'memory'`, no outbox) gets a client of its own, so both can be
 * measured in one page beside the default one.
 */
export async function updateSubject(data, system = "tandem") {
  const inMemory = system === "tandem-memory";
  const client = inMemory ? TandemClient.create({ database: `bench-tandem-memory-${seq++}`, persistence: "memory", onError }) : fresh();
  const todos = createCollection({ id: "todos", sync: { id: "todos", setup: async () => ({ data }) }, mutationFn: instantPersist }, client);
  await client.ready;
  await until(() => todos.size === data.length, 60_000, "the initial data");
  let notified = 0;
  todos.subscribe(() => { notified++; });
  return {
    update: (key, i) => todos.update(key, { n: i, done: i % 2 === 0 }),
    notified: () => notified,
    database: inMemory ? undefined : client.database,
    dispose: inMemory ? () => client.close() : drop,
  };
}

export async function bulkInsert(records) {
  const client = fresh();
  const todos = createCollection({ id: "todos", mutationFn: instantPersist });
  await client.ready;
  let at = 0;
  todos.subscribe(() => { at = performance.now(); });
  const t0 = performance.now();
  const tx = todos.insert(records);
  if (!at) await until(() => at, 60_000, "the notification");
  const ms = at - t0;
  if (todos.size !== records.length) throw new Error(`tandem: ${todos.size} records after the insert`);
  await tx.settled();
  await drop();
  return ms;
}

export async function ordered(mode) {
  const client = fresh(mode === "memory" ? "memory" : "indexeddb");
  const todos = createCollection({ id: "todos", sync: { id: "todos", setup: async () => ({ data: makeRecords(100) }) }, mutationFn: instantPersist });
  await client.ready;
  await until(() => todos.size === 100, 10_000, "the initial data");
  todos.subscribe(() => {});
  const t0 = performance.now();
  const txs = [];
  for (let i = 0; i < 1000; i++) txs.push(todos.update(`k${i % 100}`, { n: i }));
  await Promise.all(txs.map((tx) => tx.settled()));
  const ms = performance.now() - t0;
  if (todos.get("k99").n !== 999) throw new Error("tandem: wrong final state");
  await drop();
  return ms;
}

const OUTBOX_DB = "bench-outbox-tandem";

export async function outboxWrite(n) {
  await deleteDatabase(OUTBOX_DB);
  const client = fresh("indexeddb", OUTBOX_DB);
  const todos = createCollection({ id: "todos", mutationFn: { persist: () => new Promise(() => {}) } });
  await client.ready;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) todos.insert({ id: `k${i}`, title: `todo ${i}`, done: false, n: 0 });
  await resetTandemClient(); // resolves once the outbox write is on disk
  return performance.now() - t0;
}

export async function outboxRecover(n, t0) {
  const client = fresh("indexeddb", OUTBOX_DB);
  // Recovered = the records visible and the transactions pending, as the app sees it: told by
  // the collection and transaction subscriptions (no polling of the whole transaction list).
  const states = new Map();
  const pending = () => { let k = 0; for (const s of states.values()) if (s !== "completed" && s !== "failed") k++; return k; };
  client.subscribeTransactions((events) => { for (const e of events) states.set(e.id, e.state); });
  const todos = createCollection({ id: "todos", mutationFn: { persist: () => new Promise(() => {}) } });
  await until(() => todos.size === n && pending() === n, 30_000, "the recovered transactions");
  const ms = performance.now() - t0;
  // `ready` also waits for the resumed attempts to be written back (strict durability).
  await client.ready;
  const readyMs = performance.now() - t0;
  await drop();
  return { ms, readyMs };
}

const COLD_DB = "bench-cold-tandem";

export async function coldPrepare(n) {
  await deleteDatabase(COLD_DB);
  const client = fresh("indexeddb", COLD_DB);
  const data = makeRecords(n);
  const todos = createCollection({ id: "todos", sync: { id: "todos", setup: async () => ({ data }) } });
  await client.ready;
  await until(() => todos.size === n, 60_000, "the data");
  await resetTandemClient(); // writes the synced cache
}

/** Resolves with the time (ms since navigation start) the subscriber has all `n` cached records. */
export function coldStart(n) {
  fresh("indexeddb", COLD_DB);
  // The network never answers: what shows is the synced-data cache.
  const todos = createCollection({ id: "todos", sync: { id: "todos", setup: () => new Promise(() => {}) } });
  return new Promise((resolve) => {
    const check = () => { if (todos.size >= n) resolve(performance.now()); };
    todos.subscribe(check);
    check();
  });
}

export async function memoryFill(n) {
  const client = fresh("indexeddb");
  let data = makeRecords(n);
  const todos = createCollection({ id: "todos", sync: { id: "todos", setup: async () => ({ data }) }, mutationFn: instantPersist });
  await client.ready;
  await until(() => todos.size === n, 60_000, "the data");
  data = null;
  todos.subscribe(() => {});
  return todos;
}
