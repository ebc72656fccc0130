// Browser side of the benchmark. Each phase runs on its own page load (`?phase=NAME`) and
// leaves `{ok, result}` or `{ok: false, error}` in `window.__bench`.
import init, { TandemClient } from "./tmp/pkg/tandem.js";

const phases = {
  // One optimistic update on a 100k-record collection: from the call until the subscriber has
  // the change. Against the floor a plain JS Map + callback sets.
  async update() {
    const N = 100_000;
    const data = Array.from({ length: N }, (_, i) => ({ id: `k${i}`, title: `todo ${i}`, done: false, n: 0 }));
    const client = await TandemClient.open({ database: `bench-update-${Date.now()}` });
    const todos = client.collection({
      id: "todos",
      sync: { setup: async () => ({ data }) },
      mutationFn: { persist: async () => {} },
    });
    await settle();
    if (todos.size !== N) throw new Error(`loaded ${todos.size} records`);
    let received = 0;
    todos.subscribe(() => { received = performance.now(); });
    const samples = await timeEach(2_000, (i) => todos.update(`k${(i * 7919) % N}`, { n: i, done: i % 2 === 0 }), () => received);
    const batchedMean = await meanOf(1_000, (i) => todos.update(`k${(i * 104729) % N}`, { n: -i }));
    await client.close();

    // The floor: a Map with an object per record and one callback.
    const map = new Map(data.map((r) => [r.id, r]));
    let seen = 0;
    const listeners = [() => { seen = performance.now(); }];
    const plain = (key, changes) => {
      const next = { ...map.get(key), ...changes };
      map.set(key, next);
      for (const l of listeners) l([{ type: "update", key, value: next }]);
    };
    const mapSamples = await timeEach(2_000, (i) => plain(`k${(i * 7919) % N}`, { n: i, done: i % 2 === 0 }), () => seen);
    const mapMean = await meanOf(1_000, (i) => plain(`k${(i * 104729) % N}`, { n: -i }));
    return {
      records: N,
      tandem_us: { p50: pct(samples, 50), p99: pct(samples, 99), mean_batched: batchedMean },
      js_map_us: { p50: pct(mapSamples, 50), p99: pct(mapSamples, 99), mean_batched: mapMean },
      timer_resolution_us: timerResolution(),
    };
  },

  // Profiling aid (not in the default run): the update path alone, many times.
  async "update-loop"() {
    const data = Array.from({ length: 1_000 }, (_, i) => ({ id: `k${i}`, title: `todo ${i}`, done: false, n: 0 }));
    const client = await TandemClient.open({ persistence: new URLSearchParams(location.search).get("persistence") ?? "memory" });
    const todos = client.collection({ id: "todos", sync: { setup: async () => ({ data }) }, mutationFn: { persist: async () => {} } });
    await settle();
    todos.subscribe(() => {});
    const mean = await meanOf(20_000, (i) => todos.update(`k${i % 1_000}`, { n: i }));
    return { mean_us: mean };
  },

  // 10k records inserted in one transaction.
  async batch() {
    const client = await TandemClient.open({ database: `bench-batch-${Date.now()}` });
    const todos = client.collection({ id: "todos", mutationFn: { persist: async () => {} } });
    let received = 0;
    todos.subscribe(() => { received = performance.now(); });
    const records = Array.from({ length: 10_000 }, (_, i) => ({ id: `k${i}`, title: `todo ${i}`, done: false }));
    const t0 = performance.now();
    const tx = todos.insert(records);
    const visible = received - t0;
    await tx.settled();
    const completed = performance.now() - t0;
    await client.close();
    return { records: records.length, visible_ms: visible, completed_ms: completed };
  },

  // Page load 1 of 2: 1000 pending transactions, persisted to IndexedDB; the page then goes
  // away with all of them still pending (persist never answers).
  async "recovery-write"() {
    const client = await TandemClient.open({ database: "bench-recovery" });
    const todos = client.collection({ id: "todos", mutationFn: { persist: () => new Promise(() => {}) } });
    const t0 = performance.now();
    for (let i = 0; i < 1_000; i++) todos.insert({ id: `k${i}`, title: `todo ${i}`, done: false });
    const mutated = performance.now() - t0;
    await client.close(); // resolves once the outbox write is on disk
    return { transactions: 1_000, mutate_ms: mutated, on_disk_ms: performance.now() - t0 };
  },

  // Page load 2 of 2: open the same database and recover the 1000 transactions.
  async "recovery-read"() {
    let calls = 0;
    let resumed = 0;
    const t0 = performance.now();
    const client = await TandemClient.open({ database: "bench-recovery" });
    const opened = performance.now() - t0;
    const todos = client.collection({ id: "todos", mutationFn: { persist: () => { if (++calls === 1_000) resumed = performance.now() - t0; return new Promise(() => {}); } } });
    const recovered = performance.now() - t0;
    const pending = client.transactions().filter((t) => t.state === "persisting").length;
    if (todos.size !== 1_000 || pending !== 1_000) throw new Error(`recovered ${todos.size} records, ${pending} pending`);
    // Resumed: every transaction's new attempt stored, then sent (same id) to persist.
    while (calls < 1_000) await settle();
    await client.close();
    indexedDB.deleteDatabase("bench-recovery");
    return { transactions: pending, open_ms: opened, recovered_ms: recovered, resumed_ms: resumed };
  },
};

/** Times `op(i)` one call at a time, letting microtasks and IndexedDB run between calls. */
async function timeEach(n, op, doneAt) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    op(i);
    samples.push((doneAt() - t0) * 1000);
    if (i % 50 === 49) await settle();
  }
  return samples;
}

/** Mean of `n` back-to-back calls, timed together (exact where single calls are below the timer's resolution). */
async function meanOf(n, op) {
  await settle();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) op(i);
  const mean = ((performance.now() - t0) * 1000) / n;
  await settle();
  return mean;
}

function pct(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function timerResolution() {
  let smallest = Infinity;
  for (let i = 0; i < 1_000; i++) {
    const a = performance.now();
    let b = performance.now();
    while (b === a) b = performance.now();
    smallest = Math.min(smallest, b - a);
  }
  return smallest * 1000;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

const phase = new URLSearchParams(location.search).get("phase");
try {
  await init();
  window.__bench = { ok: true, result: await phases[phase]() };
} catch (error) {
  window.__bench = { ok: false, error: `${error.name}: ${error.message}\n${error.stack}` };
}
