// Browser side of `npm run bench`. Each page load runs one task (`?task=…`, parameters in the
// query string) and leaves `{ok, result}` or `{ok: false, error}` in `window.__bench`. Each
// system lives in its own module, imported on demand (its own chunk in the Vite build), so a
// page holds only the libraries it measures and a cold start includes loading them.
import { countIdbWrites, makeRecords, sleep, timerResolutionUs, yieldTask } from "./util.mjs";

// The wasm instances (for their memory): recorded as they are created.
const instances = [];
for (const name of ["instantiate", "instantiateStreaming"]) {
  const original = WebAssembly[name];
  WebAssembly[name] = async function (...args) {
    const result = await original.apply(this, args);
    instances.push(result instanceof WebAssembly.Instance ? result : result.instance);
    return result;
  };
}
const wasmBytes = () => instances.reduce((sum, i) => sum + (i.exports.memory?.buffer.byteLength ?? 0), 0);

const load = {
  "tandem": () => import("./sys-tandem.mjs"),
  "tandem-memory": () => import("./sys-tandem.mjs"),
  "tanstack-db": () => import("./sys-tanstack.mjs"),
  "tanstack-offline": () => import("./sys-offline.mjs"),
  "plain-js": () => import("./sys-plain.mjs"),
  "plain-js-idb": () => import("./sys-plain.mjs"),
};

const q = new URLSearchParams(location.search);
const num = (k, d) => Number(q.get(k) ?? d);
const systems = (q.get("systems") ?? "").split(",").filter(Boolean);

async function modules() {
  const out = {};
  for (const s of systems) out[s] = await load[s]();
  return out;
}

/** The order systems take turns in for sample `i`: rotated, so none always goes first. */
const rotated = (list, i) => list.map((_, k) => list[(k + i) % list.length]);

/** Resolves when `cond()` holds: microtasks first (a library may notify in one), then task turns. */
async function settle(cond) {
  for (let k = 0; k < 20 && !cond(); k++) await null;
  while (!cond()) await yieldTask();
}

const tasks = {
  /**
   * Scenario 1, all systems in one page, taking turns in blocks of samples. Not sample by sample:
   * what a system does after its updates (Tandem writes its outbox to IndexedDB and runs the
   * persists) would then run between, and slow, the next system's samples; plain JS measured
   * ~1.5× slower beside Tandem that way than in blocks. A block's first sample, which follows
   * another system's block, is not kept.
   */
  async update() {
    const size = num("size");
    const [samplesN, warmup, burst, block] = [num("samples", 300), num("warmup", 30), num("burst", 20), num("block", 25)];
    const mods = await modules();
    const subjects = {};
    for (const s of systems) subjects[s] = await mods[s].updateSubject(makeRecords(size), s);
    await sleep(size >= 100_000 ? 3000 : 500); // background work of the set-up (e.g. cache writes) done
    const samples = Object.fromEntries(systems.map((s) => [s, []]));
    // Each sample's first update alone (it follows a task boundary, so it runs cold): reported
    // beside the samples, which it is part of.
    const firsts = Object.fromEntries(systems.map((s) => [s, []]));
    const next = Object.fromEntries(systems.map((s) => [s, 0]));
    const writes = countIdbWrites();
    for (let start = 0, turn = 0; start < warmup + samplesN; start += block, turn++) {
      const end = Math.min(start + block, warmup + samplesN);
      for (const s of rotated(systems, turn)) {
        const subject = subjects[s];
        for (let round = start - 1; round < end; round++) {
          const t0 = performance.now();
          let first = 0;
          for (let j = 0; j < burst; j++) {
            const i = next[s]++;
            const before = subject.notified();
            subject.update(`k${(i * 7919) % size}`, i);
            if (subject.notified() === before) await settle(() => subject.notified() > before);
            if (j === 0) first = performance.now();
          }
          const us = ((performance.now() - t0) * 1000) / burst;
          if (round >= start && round >= warmup) {
            samples[s].push(us);
            firsts[s].push((first - t0) * 1000);
          }
          await yieldTask();
        }
      }
    }
    for (const s of systems) await subjects[s].dispose(); // Closing writes what is still dirty.
    writes.stop();
    // Of the systems that store something (`subject.database`).
    const idbWritesPerUpdate = Object.fromEntries(
      systems.filter((s) => subjects[s].database).map((s) => [s, (writes.counts[subjects[s].database] ?? 0) / next[s]]),
    );
    return { samples, firsts, idb_writes_per_update: idbWritesPerUpdate, timer_resolution_us: timerResolutionUs() };
  },

  /** Scenario 2: a fresh collection per sample, systems interleaved. */
  async bulk() {
    const size = num("size");
    const [samplesN, warmup] = [num("samples", 10), num("warmup", 1)];
    const mods = await modules();
    const samples = Object.fromEntries(systems.map((s) => [s, []]));
    for (let round = 0; round < warmup + samplesN; round++) {
      for (const s of rotated(systems, round)) {
        const records = makeRecords(size);
        const ms = await mods[s].bulkInsert(records);
        if (round >= warmup) samples[s].push(ms);
        await sleep(20);
      }
    }
    return { samples };
  },

  /** Scenario 3 (`mode` idb or memory): systems interleaved. */
  async ordered() {
    const mode = q.get("mode");
    const [samplesN, warmup] = [num("samples", 10), num("warmup", 1)];
    const mods = await modules();
    const samples = Object.fromEntries(systems.map((s) => [s, []]));
    for (let round = 0; round < warmup + samplesN; round++) {
      for (const s of rotated(systems, round)) {
        const ms = await mods[s].ordered(mode);
        if (round >= warmup) samples[s].push(ms);
        await sleep(20);
      }
    }
    return { samples };
  },

  /** Scenario 4, load 1 of 2 (one system). */
  async "outbox-write"() {
    const [s] = systems;
    const mod = (await modules())[s];
    return { ms: await mod.outboxWrite(num("size", 1000)) };
  },

  /** Scenario 4, load 2 of 2: from after the library's import until recovered. */
  async "outbox-recover"() {
    const [s] = systems;
    const mod = (await modules())[s];
    const t0 = performance.now();
    const result = await mod.outboxRecover(num("size", 1000), t0);
    return typeof result === "number" ? { ms: result } : result;
  },

  async "cold-prepare"() {
    const [s] = systems;
    const mod = (await modules())[s];
    await mod.coldPrepare(num("size"));
    return {};
  },

  /** Scenario 5: ms since navigation start until the subscriber has every cached record. */
  async "cold-start"() {
    const [s] = systems;
    const mod = await load[s]();
    const imported = performance.now();
    const at = await mod.coldStart(num("size"));
    return { ms: at, imported_ms: imported };
  },

  /** Scenario 6: the runner measures the heap around `window.__fill()` (and reads the wasm memory). */
  async memory() {
    const [s] = systems;
    const mod = (await modules())[s];
    const held = [];
    window.__wasmBytes = wasmBytes;
    window.__fill = async () => {
      held.push(await mod.memoryFill(num("size")));
      await sleep(1000); // background work (cache writes) done
      return wasmBytes();
    };
    return { wasm_before: wasmBytes() };
  },
};

try {
  const task = q.get("task");
  if (!tasks[task]) throw new Error(`unknown task ${task}`);
  window.__bench = { ok: true, result: await tasks[task]() };
} catch (error) {
  window.__bench = { ok: false, error: `${error?.name}: ${error?.message}\n${error?.stack}` };
}
