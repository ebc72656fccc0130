#!/usr/bin/env node
// `npm run bench`: client benchmarks of tandem-sync against @tanstack/db (and
// @tanstack/offline-transactions where it applies) and a plain-JavaScript reference, in one
// headless Chromium run (Debian's /usr/bin/chromium through playwright-core).
//
// It builds the npm package as it ships (scripts/build-package.sh → bench/tmp/tandem-sync),
// bundles the benchmark page (bench/page/) with Vite from that package, serves it on a loopback
// port with COOP/COEP headers (cross-origin isolated: 5 µs timers), and runs every scenario with
// the systems interleaved (in-page sample by sample, or page load by page load in rotated order),
// warm-ups first. Chromium runs on an on-disk profile (bench/tmp/profile), so IndexedDB is real
// storage. Scenario 7 bundles minimal apps (bench/size/) with Vite and gzips the output. Writes the
// client part of bench/results.json, then bench/RESULTS.md and bench/results.png.
//
//   npm run bench                      the full run (~10 minutes on 2 cores)
//   npm run bench -- --quick           smoke run: few samples; writes to bench/tmp/ instead
//   npm run bench -- --only=update,size     some scenarios (ids as in bench/lib/report.mjs)
//   npm run bench -- --no-build        reuse bench/tmp/tandem-sync
//   npm run bench -- --profile=update [--profile-params="size=1000&systems=tandem"]
//                                      CPU-profile one page task (names kept); prints the top functions
//   npm run bench -- --profile=outbox-recover --profile-setup=outbox-write --profile-params="size=1000"
//                                      …after an unprofiled task that prepares it
//   npm run bench -- --profile=update --profile-root=update   only the time under calls of `update`,
//                                      self and inclusive (the raw profile: bench/tmp/last.cpuprofile)
//   npm run bench -- --profile=update --no-profiler   the task alone, with its figures (p50, mean)
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { build } from "vite";
import { BENCH, CHROMIUM, CHROMIUM_ARGS, chromiumVersion, log, machine, parseArgs, pct, pkgVersion, ROOT, TMP } from "./lib/common.mjs";
import { SYSTEMS, writeResults } from "./lib/report.mjs";
import { serveStatic } from "../scripts/lib/serve-static.mjs";

const args = parseArgs();
const quick = Boolean(args.quick);
const profiled = typeof args.profile === "string" ? args.profile : null;
const only = args.only ? new Set(String(args.only).split(",")) : null;
const wanted = (id) => (!only || only.has(id)) && !profiled;

const PKG = join(TMP, "tandem-sync");
const PAGE_DIST = join(TMP, "page-dist");
const started = Date.now();
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadStart = loadavg();
if (Number(loadStart.split(" ")[0]) > 1) log(`warning: load average ${loadStart} — other work on this machine will show in the figures`);

// ---- build ---------------------------------------------------------------------------------------
mkdirSync(TMP, { recursive: true });
if (!args["no-build"]) {
  log("building the package (scripts/build-package.sh bench/tmp/tandem-sync)");
  execFileSync(join(ROOT, "scripts", "build-package.sh"), [PKG], { stdio: "inherit" });
  if (profiled) {
    // Profiles want the wasm function names; what ships has none.
    const named = join(TMP, "wasm-names");
    execFileSync(join(ROOT, "scripts", "build-wasm.sh"), [named, "--keep-names", "--target", "web", "--no-pack"], { stdio: "inherit" });
    cpSync(join(named, "tandem_bg.wasm"), join(PKG, "wasm", "tandem_bg.wasm"));
    cpSync(join(named, "tandem.js"), join(PKG, "wasm", "tandem.js"));
    cpSync(join(named, "snippets"), join(PKG, "wasm", "snippets"), { recursive: true });
  }
}
if (!existsSync(join(PKG, "dist", "index.js"))) throw new Error(`${PKG} is not built: run without --no-build`);

/** The @tanstack/db that @tanstack/offline-transactions imports (its own copy if npm nested one). */
function offlineDbEntry() {
  const nested = join(ROOT, "node_modules/@tanstack/offline-transactions/node_modules/@tanstack/db");
  const dir = existsSync(join(nested, "package.json")) ? nested : join(ROOT, "node_modules/@tanstack/db");
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  return { dir, version: pkg.version, entry: join(dir, pkg.exports["."].import.default) };
}
const offlineDb = offlineDbEntry();
const alias = [
  { find: /^tandem-sync$/, replacement: join(PKG, "dist", "index.js") },
  { find: /^tanstack-db-for-offline$/, replacement: offlineDb.entry },
];

async function bundle(root, input, outDir) {
  await build({
    configFile: false,
    root,
    base: "./",
    logLevel: "warn",
    mode: "production",
    resolve: { alias },
    build: {
      outDir,
      emptyOutDir: true,
      target: "esnext",
      minify: !profiled,
      modulePreload: false,
      reportCompressedSize: false,
      ...(input ? { rollupOptions: { input } } : {}),
    },
  });
}

log("bundling the page with Vite (bench/page → bench/tmp/page-dist)");
await bundle(join(BENCH, "page"), null, PAGE_DIST);

// ---- the browser -------------------------------------------------------------------------------
// Cross-origin isolation: performance.now() at 5 µs resolution instead of 100 µs.
const server = await serveStatic(PAGE_DIST, {
  headers: { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" },
});
const base = `http://127.0.0.1:${server.address().port}/index.html`;

// An on-disk profile: IndexedDB in an incognito-like context would live in memory.
const profileDir = join(TMP, "profile");
rmSync(profileDir, { recursive: true, force: true });
const context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
const page = context.pages()[0] ?? (await context.newPage());
page.on("pageerror", (e) => log("page error:", e.message));
page.on("console", (m) => { if (m.type() === "error") log("page console:", m.text()); });
const cdp = await context.newCDPSession(page);

async function task(params, timeout = 600_000) {
  await page.goto(`${base}?${new URLSearchParams(params)}`);
  await page.waitForFunction(() => window.__bench !== undefined, null, { timeout, polling: 100 });
  const outcome = await page.evaluate(() => window.__bench);
  if (!outcome.ok) throw new Error(`task ${JSON.stringify(params)}: ${outcome.error}`);
  return outcome.result;
}

async function heapUsed() {
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("HeapProfiler.collectGarbage");
  return (await cdp.send("Runtime.getHeapUsage")).usedSize;
}

// ---- scenarios -----------------------------------------------------------------------------------
const rows = [];
const row = (scenario, size, system, samples, unit, extra = {}) => {
  rows.push({ scenario, size, system, p50: pct(samples, 50), p99: pct(samples, 99), unit, samples: samples.length, ...extra });
  log(`${scenario} ${size ?? ""} ${system}: p50 ${pct(samples, 50)?.toFixed(3)} p99 ${pct(samples, 99)?.toFixed(3)} ${unit} (n=${samples.length})`);
};
const rotated = (list, i) => list.map((_, k) => list[(k + i) % list.length]);
const meta = {};

async function inPage(scenario, params, systems, unit, size) {
  const result = await task({ ...params, systems: systems.join(",") });
  for (const s of systems) row(scenario, size, s, result.samples[s], unit);
  return result;
}

try {
  if (profiled) {
    // --profile=TASK [--profile-params="size=1000&systems=tanstack-db&samples=2000"] (the page's query parameters)
    const params = { task: profiled, systems: "tandem", size: "100000", ...Object.fromEntries(new URLSearchParams(args["profile-params"] ?? "")) };
    // --profile-setup=TASK runs first, unprofiled (e.g. outbox-write before outbox-recover).
    if (typeof args["profile-setup"] === "string") await task({ ...params, task: args["profile-setup"] });
    const sampling = !args["no-profiler"]; // --no-profiler: the task's own figures, undisturbed
    if (sampling) {
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
      await cdp.send("Profiler.start");
    }
    const result = await task(params);
    if (sampling) {
      const { profile } = await cdp.send("Profiler.stop");
      writeFileSync(join(TMP, "last.cpuprofile"), JSON.stringify(profile)); // for DevTools' Performance panel
      printProfile(profile, typeof args["profile-root"] === "string" ? args["profile-root"] : null);
    }
    for (const [system, samples] of Object.entries(result.samples ?? {})) {
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      const first = result.firsts?.[system] ? `; first update of a sample p50 ${pct(result.firsts[system], 50)?.toFixed(3)}` : "";
      log(`${system}: p50 ${pct(samples, 50)?.toFixed(3)} p90 ${pct(samples, 90)?.toFixed(3)} mean ${mean.toFixed(3)} (n=${samples.length})${first}`);
    }
    for (const [system, writes] of Object.entries(result.idb_writes_per_update ?? {})) {
      log(`${system}: ${writes.toFixed(2)} IndexedDB write requests per update`);
    }
  }

  if (wanted("update")) {
    const systems = ["tandem", "tandem-memory", "tanstack-db", "plain-js", "plain-js-idb"];
    const sizes = [1_000, 10_000, 100_000];
    const firsts = [];
    const writes = [];
    for (const size of sizes) {
      const res = await inPage("update", { task: "update", size, samples: quick ? 30 : 300, warmup: quick ? 5 : 30, burst: 20 }, systems, "µs", size);
      meta.timer_resolution_us = res.timer_resolution_us;
      firsts.push(`${size.toLocaleString("en-US")}: ${systems.map((s) => `${SYSTEMS[s]} ${pct(res.firsts[s], 50).toFixed(0)} µs`).join(", ")}`);
      writes.push(`${size.toLocaleString("en-US")}: ${Object.entries(res.idb_writes_per_update).map(([s, n]) => `${SYSTEMS[s]} ${n.toFixed(2)}`).join(", ")}`);
    }
    // RESULTS.md shows the notes of a scenario's first size.
    rows.find((r) => r.scenario === "update" && r.size === sizes[0] && r.system === "tandem").note =
      `The first update of each sample alone (it follows a task boundary, in which Tandem writes its outbox and runs the persists, so it runs cold), p50 in 5 µs timer steps — ${firsts.join("; ")}. ` +
      `IndexedDB write requests (\`put\`, \`add\`, \`delete\`) per update, made after it returns — ${writes.join("; ")}.`;
  }

  if (wanted("bulk-insert")) {
    for (const size of [10_000, 100_000]) {
      const samples = quick ? 2 : size === 10_000 ? 10 : 5;
      await inPage("bulk-insert", { task: "bulk", size, samples, warmup: quick ? 0 : 1 }, ["tandem", "tanstack-db", "plain-js"], "ms", size);
    }
  }

  if (wanted("ordered-idb")) {
    await inPage("ordered-idb", { task: "ordered", mode: "idb", samples: quick ? 2 : 8, warmup: quick ? 0 : 1 }, ["tandem", "tanstack-offline", "plain-js"], "ms", 1000);
  }
  if (wanted("ordered-memory")) {
    await inPage("ordered-memory", { task: "ordered", mode: "memory", samples: quick ? 2 : 10, warmup: quick ? 0 : 1 }, ["tandem-memory", "tanstack-db", "plain-js"], "ms", 1000);
  }

  if (wanted("outbox-write") || wanted("outbox-recover")) {
    const systems = ["tandem", "tanstack-offline", "plain-js"];
    const write = Object.fromEntries(systems.map((s) => [s, []]));
    const recover = Object.fromEntries(systems.map((s) => [s, []]));
    const writtenBack = [];
    const rounds = quick ? 1 : 6;
    for (let r = 0; r < rounds; r++) {
      for (const s of rotated(systems, r)) {
        const w = await task({ task: "outbox-write", systems: s, size: 1000 });
        const rec = await task({ task: "outbox-recover", systems: s, size: 1000 }); // the reload
        if (r > 0 || quick) {
          write[s].push(w.ms);
          recover[s].push(rec.ms);
          if (rec.readyMs !== undefined) writtenBack.push(rec.readyMs);
        }
      }
    }
    for (const s of systems) row("outbox-write", 1000, s, write[s], "ms");
    for (const s of systems) row("outbox-recover", 1000, s, recover[s], "ms");
    const tandemRecover = rows.find((r) => r.scenario === "outbox-recover" && r.system === "tandem");
    if (tandemRecover && writtenBack.length) {
      tandemRecover.ready_p50 = pct(writtenBack, 50);
      tandemRecover.note = `tandem-sync: \`client.ready\`, which also waits until the resumed attempts are written back to IndexedDB (strict durability), settled at p50 ${pct(writtenBack, 50).toFixed(0)} ms.`;
    }
  }

  if (wanted("cold-start")) {
    const systems = ["tandem", "tanstack-db", "plain-js"];
    const size = 100_000;
    for (const s of systems) await task({ task: "cold-prepare", systems: s, size });
    const samples = Object.fromEntries(systems.map((s) => [s, []]));
    const rounds = quick ? 1 : 6;
    for (let r = 0; r < rounds; r++) {
      for (const s of rotated(systems, r)) {
        const res = await task({ task: "cold-start", systems: s, size });
        if (r > 0 || quick) samples[s].push(res.ms);
      }
    }
    for (const s of systems) row("cold-start", size, s, samples[s], "ms");
  }

  if (wanted("memory")) {
    const systems = ["tandem", "tanstack-db", "plain-js"];
    const size = 100_000;
    const samples = Object.fromEntries(systems.map((s) => [s, []]));
    const parts = Object.fromEntries(systems.map((s) => [s, []]));
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      for (const s of rotated(systems, r)) {
        const { wasm_before } = await task({ task: "memory", systems: s, size });
        const heap0 = await heapUsed();
        const wasmAfter = await page.evaluate(() => window.__fill());
        const heap1 = await heapUsed();
        const js = (heap1 - heap0) / 1e6;
        const wasm = (wasmAfter - wasm_before) / 1e6;
        samples[s].push(js + wasm);
        parts[s].push({ js, wasm });
      }
    }
    for (const s of systems) {
      const mid = parts[s].sort((a, b) => a.js + a.wasm - b.js - b.wasm)[Math.floor((parts[s].length - 1) / 2)];
      row("memory", size, s, samples[s], "MB", { js_mb: mid.js, wasm_mb: mid.wasm });
    }
  }
} finally {
  await context.close();
  server.close();
}

if (wanted("size")) {
  const apps = { "tandem": "tandem.mjs", "tanstack-db": "tanstack-db.mjs", "tanstack-offline": "tanstack-offline.mjs", "automerge": "automerge.mjs" };
  for (const [system, entry] of Object.entries(apps)) {
    const out = join(TMP, "size", system);
    await bundle(join(BENCH, "size"), join(BENCH, "size", entry), out);
    let js = 0;
    let wasm = 0;
    let raw = 0;
    const walk = (dir) => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(m?js|wasm)$/.test(f)) {
          const bytes = readFileSync(p);
          raw += bytes.length;
          const gz = gzipSync(bytes, { level: 9 }).length;
          if (f.endsWith(".wasm")) wasm += gz;
          else js += gz;
        }
      }
    };
    walk(out);
    const kb = (js + wasm) / 1024;
    rows.push({ scenario: "size", size: null, system, p50: kb, p99: kb, unit: "KB", samples: 1, js_kb: js / 1024, wasm_kb: wasm / 1024, wasm_bytes: wasm, raw_kb: raw / 1024 });
    log(`size ${system}: ${kb.toFixed(1)} KB gzipped (JS ${(js / 1024).toFixed(1)} + wasm ${(wasm / 1024).toFixed(1)})`);
  }
}

/**
 * The top functions by self time; with `root` (a function name), only the samples under a call
 * of it, with each function's inclusive time too (what that call spends, and where).
 */
function printProfile(profile, root) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const nameOf = (node) => `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop()}:${node.callFrame.lineNumber}`;
  const stack = (id) => {
    const names = [];
    for (let at = id; at !== undefined; at = parent.get(at)) names.push(byId.get(at).callFrame.functionName);
    return names;
  };
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const self = new Map();
  const inclusive = new Map();
  let total = 0;
  for (const [id, t] of dt) {
    const names = stack(id);
    const under = root ? names.indexOf(root) : names.length;
    if (under < 0) continue;
    total += t;
    const name = nameOf(byId.get(id));
    self.set(name, (self.get(name) ?? 0) + t);
    const seen = new Set();
    let at = id;
    for (let depth = 0; depth <= under && at !== undefined; depth++, at = parent.get(at)) {
      const frame = nameOf(byId.get(at));
      if (!seen.has(frame)) inclusive.set(frame, (inclusive.get(frame) ?? 0) + t);
      seen.add(frame);
    }
  }
  const ms = (us) => `${(us / 1000).toFixed(1).padStart(9)} ms  ${(100 * us / total).toFixed(1).padStart(5)}%`;
  console.error(`total sampled${root ? ` under ${root}` : ""}: ${(total / 1000).toFixed(1)} ms — self time:`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 50)) console.error(`${ms(us)}  ${name}`);
  if (!root) return;
  console.error("inclusive time:");
  for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.error(`${ms(us)}  ${name}`);
}

if (profiled) process.exit(0);

let commit = "unknown";
try {
  commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
} catch {}
const results = await writeResults("client", rows, {
  date: new Date().toISOString().slice(0, 10),
  machine: machine(),
  chromium: chromiumVersion(),
  versions: `tandem-sync ${JSON.parse(readFileSync(join(PKG, "package.json"), "utf8")).version} (working tree at ${commit}), @tanstack/db ${pkgVersion("@tanstack/db")}, @tanstack/offline-transactions ${pkgVersion("@tanstack/offline-transactions")} (with @tanstack/db ${offlineDb.version}), @automerge/automerge ${pkgVersion("@automerge/automerge")}`,
  timer_resolution_us: meta.timer_resolution_us ?? null,
  load_average: `${loadStart} at the start, ${loadavg()} at the end (1/5/15 min; other work on the machine)`,
  quick,
  duration_s: Math.round((Date.now() - started) / 1000),
}, quick || only ? TMP : undefined);
log(`done in ${Math.round((Date.now() - started) / 1000)} s; ${results.rows.length} rows in ${quick || only ? "bench/tmp/" : "bench/"}results.json, RESULTS.md, results.png`);
