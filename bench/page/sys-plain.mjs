// The plain-JavaScript reference: what the job costs with nothing but a Map, a callback and,
// where storage is part of the job, raw IndexedDB batches.
import { deleteDatabase, makeRecords, until } from "./util.mjs";

function store(initial = []) {
  const map = new Map(initial.map((r) => [r.id, r]));
  const listeners = new Set();
  return {
    map,
    subscribe(l) { listeners.add(l); return () => listeners.delete(l); },
    emit(changes) { for (const l of listeners) l(changes); },
  };
}

/**
 * `plain-js-idb` also keeps a write-ahead outbox, as Tandem's default client does: the updates
 * of a turn go to IndexedDB in one record, one strict readwrite transaction issued in a
 * microtask after the first of them (Tandem's segment per write), so the same IndexedDB work
 * runs between the samples.
 */
export async function updateSubject(data, system = "plain-js") {
  const s = store(data);
  let notified = 0;
  s.subscribe(() => { notified++; });
  const name = `bench-plain-outbox-${Date.now()}`;
  const db = system === "plain-js-idb" ? await openDb(name) : null;
  let pending = [], seq = 0;
  const flush = () => {
    const batch = pending;
    pending = [];
    write(db, (records) => records.put(JSON.stringify(batch), seq++)).catch((e) => console.error(e));
  };
  return {
    update(key, i) {
      const value = { ...s.map.get(key), n: i, done: i % 2 === 0 };
      s.map.set(key, value);
      if (db) {
        if (pending.length === 0) queueMicrotask(flush);
        pending.push({ key, value });
      }
      s.emit([{ type: "update", key, value }]);
    },
    notified: () => notified,
    database: db ? name : undefined,
    dispose: async () => {
      if (!db) return;
      db.close();
      await deleteDatabase(name);
    },
  };
}

export async function bulkInsert(records) {
  const s = store();
  let at = 0;
  s.subscribe(() => { at = performance.now(); });
  const t0 = performance.now();
  const changes = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    s.map.set(r.id, r);
    changes[i] = { type: "insert", key: r.id, value: r };
  }
  s.emit(changes);
  return at - t0;
}

function openDb(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore("records");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** One readwrite transaction (strict durability); resolves on `complete`. */
function write(db, fill) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction("records", "readwrite", { durability: "strict" });
    fill(tx.objectStore("records"));
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

function readAll(db) {
  return new Promise((resolve, reject) => {
    const req = db.transaction("records", "readonly").objectStore("records").getAll();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * 1000 ordered transactions over 100 keys: applied and notified at once, each persisted after
 * the previous one on its key; with `idb`, the pending ones are first put in IndexedDB (one
 * transaction per burst) and deleted once persisted (likewise batched).
 */
export async function ordered(mode) {
  const dbName = `bench-plain-${Date.now()}`;
  const db = mode === "idb" ? await openDb(dbName) : null;
  const s = store(makeRecords(100));
  s.subscribe(() => {});
  const persist = async () => {};
  const chains = new Map();
  let toPut = [];
  let toDelete = [];
  let flushing = null;
  const flushPuts = () => {
    const batch = toPut;
    toPut = [];
    return write(db, (st) => { for (const t of batch) st.put(t, t.id); });
  };
  const flushDeletes = () => {
    const batch = toDelete;
    toDelete = [];
    write(db, (st) => { for (const id of batch) st.delete(id); }).catch((e) => console.error(e));
  };
  const run = (i) => {
    const key = `k${i % 100}`;
    const value = { ...s.map.get(key), n: i };
    s.map.set(key, value);
    s.emit([{ type: "update", key, value }]);
    const tx = { id: `tx${i}`, key, changes: { n: i } };
    let saved = Promise.resolve();
    if (db) {
      toPut.push(tx);
      if (!flushing) flushing = Promise.resolve().then(() => { flushing = null; return flushPuts(); });
      saved = flushing;
    }
    const done = Promise.all([chains.get(key), saved]).then(persist).then(() => {
      if (!db) return;
      // Completed: its outbox record goes with the next batched delete (not awaited).
      toDelete.push(tx.id);
      if (toDelete.length === 1) queueMicrotask(flushDeletes);
    });
    chains.set(key, done);
    return done;
  };
  const t0 = performance.now();
  const all = [];
  for (let i = 0; i < 1000; i++) all.push(run(i));
  await Promise.all(all);
  const ms = performance.now() - t0;
  if (s.map.get("k99").n !== 999) throw new Error("plain: wrong final state");
  db?.close();
  if (db) await deleteDatabase(dbName);
  return ms;
}

const OUTBOX_DB = "bench-outbox-plain";

export async function outboxWrite(n) {
  await deleteDatabase(OUTBOX_DB);
  const db = await openDb(OUTBOX_DB);
  const s = store();
  s.subscribe(() => {});
  const t0 = performance.now();
  const txs = [];
  for (let i = 0; i < n; i++) {
    const value = { id: `k${i}`, title: `todo ${i}`, done: false, n: 0 };
    s.map.set(value.id, value);
    s.emit([{ type: "insert", key: value.id, value }]);
    txs.push({ id: `tx${i}`, type: "insert", value });
  }
  await write(db, (st) => { for (const t of txs) st.put(t, t.id); });
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

export async function outboxRecover(n, t0) {
  const db = await openDb(OUTBOX_DB);
  const txs = await readAll(db);
  const s = store();
  let visible = 0;
  s.subscribe((changes) => { visible += changes.length; });
  const changes = txs.map((t) => { s.map.set(t.value.id, t.value); return { type: "insert", key: t.value.id, value: t.value }; });
  s.emit(changes);
  if (visible !== n || txs.length !== n) throw new Error(`plain: recovered ${txs.length}`);
  const ms = performance.now() - t0;
  db.close();
  await deleteDatabase(OUTBOX_DB);
  return ms;
}

const COLD_DB = "bench-cold-plain";

export async function coldPrepare(n) {
  await deleteDatabase(COLD_DB);
  const db = await openDb(COLD_DB);
  await write(db, (st) => { for (const r of makeRecords(n)) st.put(r, r.id); });
  db.close();
}

export async function coldStart(n) {
  const db = await openDb(COLD_DB);
  const records = await readAll(db);
  const s = store();
  let at = 0;
  s.subscribe(() => { at = performance.now(); });
  s.emit(records.map((r) => { s.map.set(r.id, r); return { type: "insert", key: r.id, value: r }; }));
  if (s.map.size < n) throw new Error(`plain: ${s.map.size} records`);
  return at;
}

export async function memoryFill(n) {
  const s = store(makeRecords(n));
  s.subscribe(() => {});
  return s;
}

export { until };
