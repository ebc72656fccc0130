// The runtime's JS helpers that are neither a class nor a codec: calling the app's persist and
// awaitSync functions (src/calls.rs) and reading the synced cache (src/storage/indexeddb.rs).
// One module for both, not a snippet each: with a fifth snippet module, the wasm-bindgen test
// runner's page sometimes never finished loading (tests/facade.rs: 2 of 6 runs; 0 of 8 with
// four; tests/server_sync.rs: 7 of 24 against 0 of 20). The cause was not found.

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
