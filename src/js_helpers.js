// The runtime's JS helpers that are not a codec: calling the app's persist and awaitSync
// functions (src/calls.rs), reading the synced cache and keeping the outbox's segments
// (src/storage/indexeddb.rs). One module for all, not a snippet each: with a fifth snippet
// module, the wasm-bindgen test runner's page sometimes never finished loading
// (tests/facade.rs: 2 of 6 runs; 0 of 8 with four; tests/server_sync.rs: 7 of 24 against 0 of
// 20). The cause was not found.

// ---- calls (src/calls.rs) ----

export function callParams(changesJson, attempt, api, id) {
  let changes, transaction, unread = true;
  const params = {
    get changes() {
      if (changesJson !== undefined) { changes = JSON.parse(changesJson); changesJson = undefined; }
      return changes;
    },
    set changes(value) { changes = value; changesJson = undefined; },
    attempt,
    get transaction() {
      if (unread) { transaction = api.call(1, id); unread = false; }
      return transaction;
    },
    set transaction(value) { transaction = value; unread = false; },
  };
  if (attempt === undefined) delete params.attempt;
  return params;
}
export function callThen(f, params, answer, id, attempt) {
  queueMicrotask(() => {
    let returned;
    try { returned = f(params); } catch (e) { answer(id, attempt, false, e); return; }
    Promise.resolve(returned).then((v) => answer(id, attempt, true, v), (e) => answer(id, attempt, false, e));
  });
}

// ---- the synced cache (src/storage/indexeddb.rs) ----

export function readCache(synced, meta, separator, positionPrefix) {
  return new Promise((resolve, reject) => {
    const records = [], positions = [], names = [];
    let left = 2; // the positions, and the collections' names
    const fail = (request) => () => reject(request.error);
    const done = () => { if (--left === 0) resolve([records, positions]); };
    const keys = meta.getAllKeys(), values = meta.getAll();
    keys.onerror = fail(keys);
    values.onerror = fail(values);
    values.onsuccess = () => {
      // Requests of a transaction succeed in the order they were made: the keys are in.
      keys.result.forEach((key, i) => {
        if (typeof key === 'string' && key.startsWith(positionPrefix) && typeof values.result[i] === 'string') {
          positions.push(key.slice(positionPrefix.length), values.result[i]);
        }
      });
      done();
    };
    const cursor = synced.openKeyCursor();
    cursor.onerror = fail(cursor);
    cursor.onsuccess = () => {
      const found = cursor.result;
      if (found) {
        names.push(found.key[0]);
        found.continue([found.key[0], []]); // past the collection's keys: arrays sort last
        return;
      }
      left += names.length;
      for (const name of names) {
        const request = synced.getAll(IDBKeyRange.bound([name], [name, []]));
        request.onerror = fail(request);
        request.onsuccess = () => {
          // In request order, so in the collections' order. Only texts are records.
          const rows = request.result.filter((row) => typeof row === 'string');
          if (rows.length > 0) records.push(name, rows.join(separator));
          done();
        };
      }
      done();
    };
  });
}

// ---- the outbox (src/storage/indexeddb.rs) ----

// The outbox as *segments*. A write puts the transactions it saves into one record, not one
// each: the main thread's share of an IndexedDB request is a fixed ~10–30 µs in Chromium,
// whatever the value's size, and a record per transaction state made the outbox the page's
// biggest cost under a stream of updates (bench scenario 1: ~1.7 requests per update, ~50 µs,
// against ~6 µs for the update itself). A segment is `{id: [number, owner], owner, ids, tx}`:
// `tx` the transactions' JSON texts joined by the separator, an empty text a *tombstone* (an
// erased transaction). Numbers grow with every write (from the clock, and past every number
// read), so a transaction saved again has its newest copy in the highest-numbered segment. A
// segment is deleted, with a later write, once a durable newer segment holds each of its
// transactions; a tombstone is kept while an older copy of its transaction may be on disk.
// Nothing is dropped before the write that supersedes it committed, and a failed write leaves
// everything as it was. A record of the first schema (`{id, owner, tx}`, one transaction keyed
// by its id) reads as a segment numbered 0. Kept here rather than in Rust: the same logic there
// was ~4 KB of the wasm module gzipped (hash map and vector code per type, futures' state).

const WRITING = 0, DURABLE = 1, DELETING = 2;
const newer = (a, b) => a.number > b.number || (a.number === b.number && a.owner > b.owner);

export class Outbox {
  #next = Date.now() * 1000;
  #segments = new Set();
  /** Per transaction id: how many segments hold it, and the newest durable one. */
  #txs = new Map();
  /** Segments that may have become deletable. */
  #candidates = [];
  #holdsOwnGroup = false;

  /**
   * Issues a write's outbox requests: the segment of `ids` (their `texts` joined by
   * `separator`) and of tombstones for the `erased` ids that have a copy stored, the deletion of
   * segments no longer needed, and, with the first segment, the `owners` entry saying `writer`
   * holds its own group. Returns the plan to pass to `written`.
   */
  write(outbox, owners, writer, ids, texts, erased, separator) {
    const entries = ids.map((id) => ({ id, tombstone: false }));
    for (const id of erased) {
      if (!this.#txs.has(id)) continue; // never stored here: nothing to hide
      if (entries.length > 0) texts += separator;
      entries.push({ id, tombstone: true });
    }
    const plan = { segment: null, dead: [], ownerEntry: false };
    try {
      if (entries.length > 0) {
        const key = [this.#next++, writer];
        plan.segment = { key, number: key[0], owner: writer, entries, status: WRITING };
        this.#add(plan.segment);
        outbox.put({ id: key, owner: writer, ids: entries.map((e) => e.id), tx: texts });
        if (!this.#holdsOwnGroup) {
          plan.ownerEntry = true;
          owners.put(writer, writer);
        }
      }
      plan.dead = this.#takeDead();
      for (const segment of plan.dead) outbox.delete(segment.key);
    } catch (e) {
      this.written(plan, false);
      throw e;
    }
    return plan;
  }

  /** The write of `plan` committed (`ok`) or failed (its segment never existed). */
  written(plan, ok) {
    if (plan.segment) ok ? this.#durable(plan.segment) : this.#remove(plan.segment);
    if (ok && plan.ownerEntry) this.#holdsOwnGroup = true;
    for (const segment of plan.dead) {
      if (ok) this.#remove(segment);
      else if (this.#segments.has(segment)) {
        segment.status = DURABLE;
        this.#candidates.push(segment);
      }
    }
  }

  /**
   * Takes in the records of adopted groups (`groups`: an array of arrays of records), once the
   * adoption committed. Returns the live copies as `[id, text, …]`: the newest of each
   * transaction, none of an erased one. A segment whose texts do not match its ids gives each
   * id an empty text (reported as unreadable). Segments that are dead already go with the next
   * write.
   */
  read(groups, separator) {
    const read = [];
    for (const records of groups) {
      for (const record of records) {
        let segment, texts;
        if (Array.isArray(record.ids)) {
          texts = String(record.tx).split(separator);
          const matching = texts.length === record.ids.length;
          if (!matching) texts = record.ids.map(() => '');
          const entries = record.ids.map((id, i) => ({ id, tombstone: matching && texts[i] === '' }));
          segment = { key: record.id, number: record.id[0], owner: record.id[1], entries, status: WRITING };
        } else {
          texts = [record.tx];
          segment = { key: record.id, number: 0, owner: record.id, entries: [{ id: record.id, tombstone: false }], status: WRITING };
        }
        this.#next = Math.max(this.#next, segment.number + 1);
        this.#add(segment);
        this.#durable(segment);
        read.push([segment, texts]);
      }
    }
    const live = [];
    for (const [segment, texts] of read) {
      segment.entries.forEach((entry, i) => {
        // Strings whatever was stored (the reader stops at anything else): a bad text is reported as unreadable.
        if (!entry.tombstone && this.#txs.get(entry.id).durable === segment) live.push(String(entry.id), String(texts[i]));
      });
    }
    return live;
  }

  #add(segment) {
    this.#segments.add(segment);
    for (const { id } of segment.entries) {
      const copies = this.#txs.get(id);
      if (copies) copies.count++;
      else this.#txs.set(id, { count: 1, durable: null });
    }
  }

  /** On disk: the older copies of its transactions (or its own, read after newer ones) may be dead. */
  #durable(segment) {
    segment.status = DURABLE;
    this.#candidates.push(segment);
    for (const { id } of segment.entries) {
      const copies = this.#txs.get(id);
      if (copies.durable && newer(copies.durable, segment)) continue;
      if (copies.durable) this.#candidates.push(copies.durable);
      copies.durable = segment;
    }
  }

  /** Not on disk (any more): a tombstone left as the only entry of its transaction may be dead. */
  #remove(segment) {
    if (!this.#segments.delete(segment)) return;
    for (const { id } of segment.entries) {
      const copies = this.#txs.get(id);
      if (copies.durable === segment) copies.durable = null;
      if (--copies.count === 0) this.#txs.delete(id);
      else if (copies.count === 1 && copies.durable) this.#candidates.push(copies.durable);
    }
  }

  /** The candidates none of whose entries is needed: each copy superseded by the newest durable one elsewhere, each tombstone the last entry of its transaction. */
  #takeDead() {
    const dead = [];
    for (const segment of this.#candidates.splice(0)) {
      if (segment.status !== DURABLE || !this.#segments.has(segment)) continue;
      const needed = segment.entries.some(({ id, tombstone }) => {
        const copies = this.#txs.get(id);
        return !((copies.durable && copies.durable !== segment) || (tombstone && copies.count === 1));
      });
      if (needed) continue;
      segment.status = DELETING;
      dead.push(segment);
    }
    return dead;
  }
}
