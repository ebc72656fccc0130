// bench/results.json, bench/RESULTS.md and bench/results.png: written by both `npm run bench`
// (the client part) and `npm run bench:server` (the server part). Each command replaces its own
// part and keeps the other's, then renders the Markdown and the chart from the whole. The layout
// is fixed by the catalogue below (scenarios, sizes, systems, in this order), so a re-run changes
// figures and dates, never the shape.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { BENCH, CHROMIUM, CHROMIUM_ARGS } from "./common.mjs";

export const SYSTEMS = {
  "tandem": "tandem-sync",
  "tandem-memory": "tandem-sync (memory)",
  "tanstack-db": "@tanstack/db",
  "tanstack-offline": "@tanstack/offline-transactions",
  "automerge": "@automerge/automerge",
  "plain-js": "plain JS",
  "plain-js-idb": "plain JS + IndexedDB outbox",
  "tandem-server": "tandem-server",
  "tandem-server-tmpfs": "tandem-server on tmpfs",
  "hocuspocus": "@hocuspocus/server",
  "raw": "raw broadcast (limit)",
};

/** Every scenario: its part, sizes, systems (Tandem's first, the peers, then the limit), unit, and direction. */
export const SCENARIOS = [
  {
    id: "update", short: "1. update → notified", part: "client", title: "1. One optimistic update → subscriber notified",
    sizes: [1_000, 10_000, 100_000], sizeLabel: "records", unit: "µs",
    systems: ["tandem", "tandem-memory", "tanstack-db", "plain-js", "plain-js-idb"],
    how: "Collection of N records (`{id, title, done, n}`), one subscriber; the time from the update call until the subscriber has the change. One sample = the mean of 20 consecutive updates of spread keys (each notified before the next call), because Chromium's cross-origin-isolated timer has 5 µs steps. The systems take turns in blocks of 25 samples, not sample by sample, so that what one does after its updates (Tandem writes its outbox and runs the persists) does not run between another's samples; each block's first sample is not kept. tandem-sync: `update(key, {n, done})`, `subscribe`, with its IndexedDB outbox (the default); tandem-sync (memory): the same with `persistence: 'memory'`, nothing stored, as @tanstack/db's local-only collection stores nothing; @tanstack/db: `localOnlyCollectionOptions` (the value stays after its instant `onUpdate`, as Tandem's does), `update(key, draft => …)`, `subscribeChanges`; plain JS: `Map` + spread + one callback; plain JS + IndexedDB outbox: the same, and the turn's updates written to IndexedDB as one record in one strict transaction issued in a microtask, as Tandem writes its outbox (an IndexedDB commit between samples leaves the next updates' code and data cold in this 2-core VM, more so the more of them an update touches — one issued by the page made Tandem's first update of a sample 30 µs against 10 — and Tandem has one write in flight at a time, so under this stream most samples have none between them).",
  },
  {
    id: "bulk-insert", short: "2. bulk insert → notified", part: "client", title: "2. Bulk insert in one transaction → subscriber notified",
    sizes: [10_000, 100_000], sizeLabel: "records", unit: "ms",
    systems: ["tandem", "tanstack-db", "plain-js"],
    how: "An empty collection; `insert(array)` of N records as one transaction, timed until the subscriber has them. A fresh collection (and client) per sample.",
  },
  {
    id: "ordered-idb", short: "3a. 1000 ordered tx, IndexedDB", part: "client", title: "3a. 1000 ordered transactions over 100 keys, IndexedDB outbox → all complete",
    sizes: [1_000], sizeLabel: "transactions", unit: "ms",
    systems: ["tandem", "tanstack-offline", "plain-js"],
    how: "1000 single-record updates over 100 keys, an instant persist (`async () => {}`), timed until every transaction completed. Each system stores pending transactions in IndexedDB first. tandem-sync: default client (ordered strategy, per-key locks, outbox in IndexedDB); @tanstack/offline-transactions: `createOfflineTransaction` per update (its FIFO executor, outbox in IndexedDB), local-only collection of the @tanstack/db it depends on, `acceptMutations` in the mutation function; plain JS: Map + callback, a per-key promise chain, the pending records put in one IndexedDB transaction per burst (strict durability) before their persist runs and deleted after.",
  },
  {
    id: "ordered-memory", short: "3b. 1000 ordered tx, in memory", part: "client", title: "3b. 1000 ordered transactions over 100 keys, in memory → all complete",
    sizes: [1_000], sizeLabel: "transactions", unit: "ms",
    systems: ["tandem-memory", "tanstack-db", "plain-js"],
    how: "As 3a without storage. tandem-sync: `configureTandem({ persistence: 'memory' })`; @tanstack/db: `createPacedMutations` with `queueStrategy()` (its documented way to persist every mutation in order) over a local-only collection; plain JS: Map + callback + per-key promise chain.",
  },
  {
    id: "outbox-write", short: "4a. 1000 pending → IndexedDB", part: "client", title: "4a. 1000 pending transactions → written to IndexedDB",
    sizes: [1_000], sizeLabel: "transactions", unit: "ms",
    systems: ["tandem", "tanstack-offline", "plain-js"],
    how: "1000 single-record inserts whose persist never answers (tandem-sync) / while offline (@tanstack/offline-transactions, custom `onlineDetector`), from the first call until the library reports all of them stored: Tandem's `close()` (resolves when its outbox write completed, strict durability); TanStack: its storage adapter's `set()` resolved 1000 times (a request's success, before its IndexedDB transaction commits); plain JS: 1000 `put`s in one transaction, strict durability, until `complete`.",
  },
  {
    id: "outbox-recover", short: "4b. 1000 pending recovered", part: "client", title: "4b. …then recovered after a reload",
    sizes: [1_000], sizeLabel: "transactions", unit: "ms",
    systems: ["tandem", "tanstack-offline", "plain-js"],
    how: "The next page load (same browser profile): from after the library's import until the 1000 records are visible again and the 1000 transactions pending. tandem-sync: `createCollection`, until its subscriptions report the records and the pending transactions; TanStack: `startOfflineExecutor` + `waitForInit()`; plain JS: open + `getAll` + Map + callback.",
  },
  {
    id: "cold-start", short: "5. cold start, first data", part: "client", title: "5. Cold start: time to first data, 100k records cached in IndexedDB",
    sizes: [100_000], sizeLabel: "records", unit: "ms",
    systems: ["tandem", "tanstack-db", "plain-js"],
    how: "A page load with 100k records stored by the previous load; from navigation start (so HTML, script, wasm compile, IndexedDB open and read are in) until the subscriber has all of them, while the network sync never answers. tandem-sync: the synced-data cache of a collection whose `sync.setup` never resolves; @tanstack/db: `indexedDBCollectionOptions` (its IndexedDB collection); plain JS: `getAll` into a Map.",
  },
  {
    id: "memory", short: "6. memory (JS + wasm)", part: "client", title: "6. Memory at 100k records (JS heap + wasm memory)",
    sizes: [100_000], sizeLabel: "records", unit: "MB",
    systems: ["tandem", "tanstack-db", "plain-js"],
    how: "A page load per sample: JS heap used (CDP `Runtime.getHeapUsage` after `HeapProfiler.collectGarbage`) plus the wasm linear memory, after the collection holds 100k records and the source array is gone, minus the same before it was created.",
  },
  {
    id: "size", short: "7. app size, gzipped", part: "client", title: "7. Size: what an app imports, gzipped (JS + wasm)",
    sizes: [null], sizeLabel: "", unit: "KB",
    systems: ["tandem", "tanstack-db", "tanstack-offline", "automerge"],
    how: "A minimal app (create a collection or document, subscribe, insert, update) bundled by Vite in production mode; every output file gzipped (level 9). Automerge through its documented Vite set-up (`/slim` + the `.wasm` file). @tanstack/offline-transactions includes the @tanstack/db it depends on.",
  },
  {
    id: "broadcast", short: "server: broadcast p50/p99", part: "server", title: "Server: broadcast latency, one writer at 1000 ops/s",
    sizes: [10, 100, 500], sizeLabel: "clients", unit: "ms",
    systems: ["tandem-server", "tandem-server-tmpfs", "hocuspocus", "raw"],
    how: "N clients in one workspace/document on loopback and one writer at a fixed rate; latency from the writer's send to each client's receipt (all clients, all ops). Server pinned to core 0, load generator (tandem-bench, Rust) to core 1, a fresh server process per measurement. tandem-server: seed-001 JSON ops, each stored (redb, immediate durability) before it is broadcast; the tmpfs column is the same server with its store in `/dev/shm`, where a commit's `fdatasync` reaches no disk: the difference between the two is what waiting for the disk costs (a diagnostic, not a way to run it); Hocuspocus: Yjs map updates, in memory (no storage extension); raw: a tokio-tungstenite server forwarding every frame to everyone.",
  },
  {
    id: "committed", short: "server: committed ops/s", part: "server", title: "Server: committed ops/s (the writer's echoes)",
    sizes: [10, 100, 500], sizeLabel: "clients", unit: "ops/s", higherIsBetter: true,
    systems: ["tandem-server", "tandem-server-tmpfs", "hocuspocus", "raw"],
    how: "Ops the writer got back from the server per second of the run (the writer offers 1000/s).",
  },
  {
    id: "max-clients", short: "server: largest N, p95 < 50 ms", part: "server", title: "Server: largest N with p95 < 50 ms",
    sizes: [null], sizeLabel: "", unit: "clients", higherIsBetter: true,
    systems: ["tandem-server", "hocuspocus", "raw"],
    how: "From the measured N (10, 100, 500), then doubling above the largest passing N or bisecting below the smallest failing one; a run passes when p95 < 50 ms and ≥ 99% of the expected messages arrived.",
  },
];

const RESULTS_JSON = join(BENCH, "results.json");

function loadResults(file) {
  if (!existsSync(file)) return { client: null, server: null, rows: [] };
  return JSON.parse(readFileSync(file, "utf8"));
}

function canonical(rows) {
  const order = (r) => {
    const si = SCENARIOS.findIndex((s) => s.id === r.scenario);
    const s = SCENARIOS[si];
    return [si, s.sizes.indexOf(r.size), s.systems.indexOf(r.system)];
  };
  return [...rows].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

/** Stable key order and rounding, so that files change only where figures do. */
function normaliseRow(r) {
  // Integers (counts, byte sizes) stay exact.
  const round = (v) => (v === null || v === undefined ? null : Number.isInteger(v) ? v : Number(v.toPrecision(4)));
  const out = { scenario: r.scenario, size: r.size ?? null, system: r.system, p50: round(r.p50), p99: round(r.p99), unit: r.unit, samples: r.samples ?? 1 };
  for (const k of Object.keys(r).sort()) {
    if (!(k in out)) out[k] = typeof r[k] === "number" ? round(r[k]) : r[k];
  }
  return out;
}

/**
 * Replaces `part`'s rows and meta in `dir`/results.json (default bench/), then regenerates
 * RESULTS.md and results.png there.
 */
export async function writeResults(part, rows, meta, dir = BENCH) {
  const file = join(dir, "results.json");
  const prev = loadResults(existsSync(file) ? file : RESULTS_JSON);
  const kept = (prev.rows ?? []).filter((r) => SCENARIOS.find((s) => s.id === r.scenario)?.part !== part);
  const all = canonical([...kept, ...rows.map(normaliseRow)]);
  const results = {
    about: "Written by `npm run bench` (client) and `npm run bench:server` (server); see RESULTS.md. Rows: scenario, size, system, p50, p99, unit.",
    client: part === "client" ? meta : prev.client ?? null,
    server: part === "server" ? meta : prev.server ?? null,
    rows: all,
  };
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(dir, "RESULTS.md"), markdown(results));
  await renderChart(results, join(dir, "results.png"));
  return results;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return "–";
  if (unit === "ops/s" || unit === "clients") return String(Math.round(v));
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function ratio(a, b) {
  if (a === null || b === null || a === undefined || b === undefined || b === 0) return "–";
  const r = a / b;
  return `${r < 0.01 ? r.toPrecision(1) : r.toFixed(2)}×`;
}

function peerOf(scenario) {
  return scenario.systems.find((s) => s.startsWith("tanstack") || s === "hocuspocus");
}

function limitOf(scenario) {
  return scenario.systems.find((s) => s === "plain-js" || s === "raw");
}

function markdown(results) {
  const byKey = new Map(results.rows.map((r) => [`${r.scenario}|${r.size}|${r.system}`, r]));
  const get = (s, size, sys) => byKey.get(`${s}|${size}|${sys}`);
  const lines = [];
  lines.push("# Benchmark results", "");
  lines.push("Generated by `npm run bench` (client, headless Chromium) and `npm run bench:server` (server) —");
  lines.push("do not edit; re-run them. Machine-readable: [`results.json`](results.json). Method: [`README.md`](README.md).", "");
  lines.push("| | client (`npm run bench`) | server (`npm run bench:server`) |", "|---|---|---|");
  const c = results.client ?? {};
  const s = results.server ?? {};
  lines.push(`| date | ${c.date ?? "–"} | ${s.date ?? "–"} |`);
  lines.push(`| CPU | ${c.machine?.cpu ?? "–"} | ${s.machine?.cpu ?? "–"} |`);
  lines.push(`| cores | ${c.machine?.cores ?? "–"} | ${s.machine?.cores ?? "–"} (server on core 0, load generator on core 1) |`);
  lines.push(`| browser / runtime | ${c.chromium ?? "–"} | Node ${s.machine?.node ?? "–"}, tandem-server release build |`);
  lines.push(`| versions | ${c.versions ?? "–"} | ${s.versions ?? "–"} |`);
  lines.push(`| load average | ${c.load_average ?? "–"} | ${s.load_average ?? "–"} |`);
  lines.push(`| run | ${c.duration_s ? `${c.duration_s} s${c.quick ? ", --quick" : ""}; timer resolution ${c.timer_resolution_us ?? "–"} µs` : "–"} | ${s.duration_s ? `${s.duration_s} s${s.quick ? ", --quick" : ""}; ${s.rate} ops/s for ${s.secs} s per run, ${s.reps} runs per cell (median by p95 shown), search runs ${s.search_secs} s` : "–"} |`);
  lines.push("");
  lines.push("Each cell is **p50 / p99** over the samples (n = count). Ratios compare p50s: **Tandem ÷ peer** below 1 means");
  lines.push("Tandem is ahead for times, memory and size; for ops/s and client counts (higher is better) above 1 does.", "");
  lines.push("![chart](results.png)", "");
  lines.push(...budgets(get));
  for (const part of ["client", "server"]) {
    lines.push(part === "client" ? "## Client (headless Chromium, one run, systems interleaved)" : "## Server (loopback)", "");
    for (const sc of SCENARIOS.filter((x) => x.part === part)) {
      lines.push(`### ${sc.title}`, "");
      const peer = peerOf(sc);
      const limit = limitOf(sc);
      const tandem = sc.systems[0];
      const head = [sc.sizeLabel || " ", ...sc.systems.map((x) => SYSTEMS[x]), "unit"];
      const peers = sc.systems.filter((x) => x.startsWith("tanstack") || x === "hocuspocus" || x === "automerge");
      for (const p of peers) head.push(`Tandem ÷ ${SYSTEMS[p]}`);
      if (limit) head.push(`Tandem ÷ ${SYSTEMS[limit]}`);
      // The limit with the same storage work as Tandem's default client.
      const stored = sc.systems.filter((x) => x === "plain-js-idb");
      for (const x of stored) head.push(`Tandem ÷ ${SYSTEMS[x]}`);
      lines.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`);
      for (const size of sc.sizes) {
        const cells = [size === null ? "" : size.toLocaleString("en-US")];
        for (const sys of sc.systems) {
          const r = get(sc.id, size, sys);
          if (!r) cells.push("–");
          else if (r.p50 === r.p99 || r.samples <= 1) cells.push(`${fmt(r.p50, sc.unit)}${r.samples > 1 ? ` (n=${r.samples})` : ""}`);
          else cells.push(`${fmt(r.p50, sc.unit)} / ${fmt(r.p99, sc.unit)} (n=${r.samples})`);
        }
        cells.push(sc.unit);
        const t = get(sc.id, size, tandem)?.p50;
        for (const p of peers) cells.push(ratio(t, get(sc.id, size, p)?.p50));
        if (limit) cells.push(ratio(t, get(sc.id, size, limit)?.p50));
        for (const x of stored) cells.push(ratio(t, get(sc.id, size, x)?.p50));
        lines.push(`| ${cells.join(" | ")} |`);
      }
      const notes = sc.systems.map((x) => get(sc.id, sc.sizes[0], x)?.note).filter(Boolean);
      lines.push("");
      if (sc.id === "broadcast") {
        lines.push("p95 (ms) and delivered/expected:", "");
        for (const size of sc.sizes) {
          const parts = sc.systems.map((x) => {
            const r = get(sc.id, size, x);
            if (!r) return `${SYSTEMS[x]} –`;
            const bound = r.loadgen_cpu > 0.9 ? ", **load-generator-bound**" : "";
            return `${SYSTEMS[x]} **${fmt(r.p95, "ms")}** (runs: ${r.p95_of_runs ?? "–"}; ${(100 * r.delivered_ratio).toFixed(1)}% delivered, server CPU ${r.server_cpu === null || r.server_cpu === undefined ? "–" : Math.round(100 * r.server_cpu)}%, generator CPU ${Math.round(100 * (r.loadgen_cpu ?? 0))}%${bound})`;
          });
          lines.push(`- N = ${size}: ${parts.join("; ")}`);
        }
        lines.push("");
      }
      if (sc.id === "max-clients") {
        for (const x of sc.systems) {
          const r = get(sc.id, null, x);
          if (r?.tried) lines.push(`- ${SYSTEMS[x]}: p95 by N — ${r.tried}`);
        }
        lines.push("");
      }
      if (sc.id === "size") {
        for (const x of sc.systems) {
          const r = get(sc.id, null, x);
          if (r) lines.push(`- ${SYSTEMS[x]}: JS ${fmt(r.js_kb, "KB")} KB + wasm ${fmt(r.wasm_kb, "KB")} KB gzipped (${fmt(r.raw_kb, "KB")} KB before gzip)`);
        }
        lines.push("");
      }
      for (const n of notes) lines.push(`> ${n}`, "");
      lines.push(`<sub>${sc.how}</sub>`, "");
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * GUIDE §8's budgets that these runs measure, each against its figure in them. (The native
 * engine's and the 10k batch's are measured by `cargo bench -p tandem-core` and
 * `tandem-bench --batch`.)
 */
function budgets(get) {
  const within = (ok) => (ok === undefined ? "–" : ok ? "yes" : "**no**");
  const rows = [];
  const update = get("update", 100_000, "tandem")?.p50;
  const plainUpdate = get("update", 100_000, "plain-js")?.p50;
  if (update !== undefined && plainUpdate !== undefined) {
    rows.push(["one optimistic update, 100k records, through wasm in Chromium, p50", "≤ 50 µs", `${fmt(update, "µs")} µs`, within(update <= 50)]);
    rows.push(["…the same against a plain JS `Map` + callback", "≤ 3×", ratio(update, plainUpdate), within(update <= 3 * plainUpdate)]);
  }
  const recover = get("outbox-recover", 1_000, "tandem")?.p50;
  if (recover !== undefined) rows.push(["recover 1000 pending transactions from IndexedDB after a reload, p50", "≤ 100 ms", `${fmt(recover, "ms")} ms`, within(recover <= 100)]);
  const server = get("broadcast", 100, "tandem-server")?.p99;
  const raw = get("broadcast", 100, "raw")?.p99;
  if (server !== undefined && raw !== undefined) {
    rows.push(["tandem-server, 100 clients, 1000 ops/s, p99 broadcast latency", "< 10 ms", `${fmt(server, "ms")} ms`, within(server < 10)]);
    rows.push(["…the same against the raw broadcast server's p99", "≤ 2×", ratio(server, raw), within(server <= 2 * raw)]);
  }
  const wasm = get("size", null, "tandem")?.wasm_bytes;
  if (wasm !== undefined) rows.push(["client wasm, gzipped", "≤ 150 KB (153,600 bytes)", `${wasm.toLocaleString("en-US")} bytes`, within(wasm <= 150 * 1024)]);
  if (!rows.length) return [];
  return [
    "## Budgets (GUIDE §8)", "",
    "| what | budget | this run | within |", "|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`), "",
    "<sub>The native engine's budgets (one update ≤ 5 µs, a 10k-record batch ≤ 10 ms) are measured by `cargo bench -p tandem-core`, a 10k-record batch to the server and acked (≤ 100 ms) by `tandem-bench --batch`.</sub>", "",
  ];
}

// ---- chart -------------------------------------------------------------------------------------

const COLORS = {
  "tandem": "#2f6fde", "tandem-memory": "#2f6fde", "tandem-server": "#2f6fde", "tandem-server-tmpfs": "#8fb2ee",
  "tanstack-db": "#e8772e", "tanstack-offline": "#c44f9a", "hocuspocus": "#e8772e",
  "automerge": "#8a6bd1", "plain-js": "#7a7a7a", "plain-js-idb": "#a8a8a8", "raw": "#7a7a7a",
};

function panelSvg(sc, size, rows, x0, y0, w, h) {
  const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const title = `${sc.short}${size === null ? "" : ` — ${size.toLocaleString("en-US")} ${sc.sizeLabel}`}`;
  const vals = sc.systems.map((sys) => rows.get(sys));
  const max = Math.max(1e-9, ...vals.map((r) => (r ? Math.max(r.p50 ?? 0, r.p99 ?? 0) : 0)));
  const barH = 18;
  const gap = 8;
  const labelW = 150;
  const plotW = w - labelW - 70;
  let out = `<g transform="translate(${x0},${y0})"><rect width="${w}" height="${h}" fill="#fff" stroke="#ddd"/>`;
  out += `<text x="8" y="18" font-size="12" font-weight="600">${esc(title.length > 62 ? `${title.slice(0, 60)}…` : title)}</text>`;
  out += `<text x="${w - 8}" y="18" font-size="11" fill="#666" text-anchor="end">${esc(sc.unit)}${sc.higherIsBetter ? " ↑" : " ↓"}</text>`;
  sc.systems.forEach((sys, i) => {
    const r = rows.get(sys);
    const y = 32 + i * (barH + gap);
    out += `<text x="8" y="${y + 13}" font-size="11">${esc(SYSTEMS[sys])}</text>`;
    if (!r || r.p50 === null) {
      out += `<text x="${labelW}" y="${y + 13}" font-size="11" fill="#999">–</text>`;
      return;
    }
    const bw = Math.max(1, (r.p50 / max) * plotW);
    out += `<rect x="${labelW}" y="${y}" width="${bw.toFixed(1)}" height="${barH}" fill="${COLORS[sys]}"/>`;
    if (r.p99 !== null && r.p99 !== r.p50) {
      const px = labelW + (r.p99 / max) * plotW;
      out += `<line x1="${labelW + bw}" x2="${px.toFixed(1)}" y1="${y + barH / 2}" y2="${y + barH / 2}" stroke="#333"/>`;
      out += `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${y + 3}" y2="${y + barH - 3}" stroke="#333"/>`;
    }
    const labelX = labelW + Math.max(bw, r.p99 && r.p99 !== r.p50 ? (r.p99 / max) * plotW : 0) + 4;
    out += `<text x="${Math.min(labelX, w - 4).toFixed(1)}" y="${y + 13}" font-size="11" ${labelX > w - 60 ? 'text-anchor="end" fill="#fff"' : ""}>${esc(fmt(r.p50, sc.unit))}</text>`;
  });
  return `${out}</g>`;
}

async function renderChart(results, file) {
  const byKey = new Map(results.rows.map((r) => [`${r.scenario}|${r.size}|${r.system}`, r]));
  const panels = [];
  for (const sc of SCENARIOS) {
    for (const size of sc.sizes) {
      panels.push({ sc, size, rows: new Map(sc.systems.map((sys) => [sys, byKey.get(`${sc.id}|${size}|${sys}`)])) });
    }
  }
  const cols = 3;
  const w = 420;
  const h = 32 + Math.max(...SCENARIOS.map((x) => x.systems.length)) * 26 + 4;
  const pad = 10;
  const width = cols * (w + pad) + pad;
  const height = Math.ceil(panels.length / cols) * (h + pad) + pad + 30;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">`;
  svg += `<rect width="${width}" height="${height}" fill="#f6f6f6"/>`;
  svg += `<text x="${pad}" y="22" font-size="14" font-weight="700">Tandem vs peers vs the limit — p50 bars, p99 whiskers (see RESULTS.md)</text>`;
  panels.forEach((p, i) => {
    svg += panelSvg(p.sc, p.size, p.rows, pad + (i % cols) * (w + pad), 30 + pad + Math.floor(i / cols) * (h + pad), w, h);
  });
  svg += "</svg>";
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: file, clip: { x: 0, y: 0, width, height } });
  } finally {
    await browser.close();
  }
}
