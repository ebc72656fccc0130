#!/usr/bin/env node
// `npm run bench:server`: broadcast latency and committed ops/s of tandem-server, Hocuspocus
// (Yjs) and a raw WebSocket broadcast server (the limit), in one run on loopback; beside them,
// tandem-server with its store on tmpfs (what waiting for the disk costs). For each
// system and client count N a fresh server process is started pinned to core 0 (`taskset`), and
// the load generator — tandem-bench (crates/server/src/bin/tandem-bench.rs, Rust, cheap receivers
// that scan the raw stream) — runs pinned to core 1. Then, per system, the largest N with
// p95 < 50 ms is searched. Writes the server part of bench/results.json, RESULTS.md, results.png.
//
//   npm run bench:server                  full run (~9 minutes)
//   npm run bench:server -- --quick       smoke run: N = 10, 50, short runs; writes to bench/tmp/
//   options: --rate=1000 --secs=5 --reps=5 --clients=10,100,500 --no-build --no-search
import { execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { log, machine, parseArgs, pkgVersion, ROOT, TMP } from "./lib/common.mjs";
import { freePort, waitListening } from "./lib/ports.mjs";
import { writeResults } from "./lib/report.mjs";

const args = parseArgs();
const quick = Boolean(args.quick);
const rate = Number(args.rate ?? 1000);
const secs = Number(args.secs ?? (quick ? 1 : 5));
const searchSecs = Number(args["search-secs"] ?? (quick ? 1 : 3));
const reps = Number(args.reps ?? (quick ? 1 : 5));
const clientCounts = String(args.clients ?? (quick ? "10,50" : "10,100,500")).split(",").map(Number);
const MAX_SEARCH_N = Number(args["max-clients"] ?? (quick ? 100 : 2000));
const P95_LIMIT_MS = 50;
const SECRET = `bench-${process.pid}`;
const release = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, "target"), "release");
const cores = Number(execFileSync("nproc", { encoding: "utf8" }).trim());
const [SERVER_CORE, LOADGEN_CORE] = cores >= 2 ? ["0", "1"] : ["0", "0"];

if (!args["no-build"]) {
  log("cargo build --release -p tandem-server (bins tandem-server, tandem-bench)");
  execFileSync("cargo", ["build", "--release", "-p", "tandem-server"], { cwd: ROOT, stdio: "inherit" });
}
mkdirSync(TMP, { recursive: true });
const framesFile = join(TMP, "yjs-frames.json");
const maxOps = rate * Math.max(secs, searchSecs);
execFileSync(process.execPath, [join(ROOT, "bench/server/yjs-frames.mjs"), String(maxOps), framesFile], { stdio: "inherit" });

/** Starts `system` on a fresh port and state; returns {url, pid, stop()}. */
async function startServer(system) {
  const port = await freePort();
  let dataDir;
  let cmd;
  let env = { ...process.env };
  if (system === "raw") {
    cmd = [join(release, "tandem-bench"), "--serve-raw", `127.0.0.1:${port}`];
  } else if (system === "tandem-server" || system === "tandem-server-tmpfs") {
    // The durable store under bench/tmp, on the repository's disk: the OS temp directory may
    // be a tmpfs, where an fdatasync waits for nothing.
    dataDir = mkdtempSync(join(system === "tandem-server" ? TMP : SHM, "tandem-bench-"));
    cmd = [join(release, "tandem-server"), "--listen", `127.0.0.1:${port}`, "--data", dataDir];
    env = { ...env, TANDEM_JWT_SECRET: SECRET, TANDEM_LOG: "warn" };
  } else {
    cmd = [process.execPath, join(ROOT, "bench/server/hocuspocus.mjs"), String(port)];
  }
  const child = spawn("taskset", ["-c", SERVER_CORE, ...cmd], { env, stdio: ["ignore", "ignore", "inherit"] });
  await waitListening(port, child);
  const path = system.startsWith("tandem-server") ? "/v1/sync/bench" : "/";
  return {
    url: `ws://127.0.0.1:${port}${path}`,
    pid: child.pid, // taskset execs the server: same pid
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** One measurement: a fresh server, N clients, the writer for `s` seconds. */
async function measure(system, n, s) {
  const server = await startServer(system);
  try {
    const gen = [
      join(release, "tandem-bench"), "--target", server.url, "--clients", String(n), "--rate", String(rate), "--secs", String(s),
      "--server-pid", String(server.pid), "--label", system, "--json",
    ];
    if (system === "hocuspocus") gen.push("--protocol", "hocuspocus", "--frames", framesFile);
    const env = { ...process.env, ...(system.startsWith("tandem-server") ? { TANDEM_BENCH_SECRET: SECRET } : {}) };
    const out = execFileSync("bash", ["-c", 'ulimit -n "$(ulimit -Hn)"; exec taskset -c "$0" "$@"', LOADGEN_CORE, ...gen], {
      env, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 180_000,
    });
    const row = JSON.parse(out.trim().split("\n").pop());
    row.delivered_ratio = row.expected ? row.delivered / row.expected : 0;
    row.pass = row.p95_ms < P95_LIMIT_MS && row.delivered_ratio >= 0.99;
    log(`${system.padEnd(14)} N=${String(n).padStart(4)}  p50 ${row.p50_ms.toFixed(2)} ms  p95 ${row.p95_ms.toFixed(2)} ms  p99 ${row.p99_ms.toFixed(2)} ms  ` +
      `${row.committed_per_sec.toFixed(0)} ops/s  delivered ${(100 * row.delivered_ratio).toFixed(1)}%  ` +
      `server CPU ${row.server_cpu === null ? "–" : Math.round(100 * row.server_cpu)}%  generator CPU ${Math.round(100 * row.loadgen_cpu)}%`);
    return row;
  } finally {
    await server.stop();
  }
}

// The same server with its store on tmpfs, where fdatasync reaches no disk: measured beside
// tandem-server, it shows what waiting for the disk costs. Not searched for its largest N.
const SHM = "/dev/shm";
const shmWritable = (() => { try { accessSync(SHM, constants.W_OK); return true; } catch { return false; } })();
if (!shmWritable) log(`${SHM} is not writable: the tmpfs diagnostic is left out`);
const SYSTEMS = ["tandem-server", ...(shmWritable ? ["tandem-server-tmpfs"] : []), "hocuspocus", "raw"];
const SEARCHED = SYSTEMS.filter((s) => s !== "tandem-server-tmpfs");
const rows = [];
const measured = Object.fromEntries(SYSTEMS.map((s) => [s, new Map()]));
const started = Date.now();
const loadStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
if (Number(loadStart.split(" ")[0]) > 1) log(`warning: load average ${loadStart} — other work on this machine will show in the figures`);
// Interleaved: for each N, every system, in an order rotated per N.
// Each (system, N) is measured `reps` times, interleaved; the run with the median p95 stands
// (other processes on a shared machine can stall any single run).
const runs = new Map();
for (let rep = 0; rep < reps; rep++) {
  for (const [i, n] of clientCounts.entries()) {
    const order = SYSTEMS.map((_, k) => SYSTEMS[(k + i + rep) % SYSTEMS.length]);
    for (const system of order) {
      const key = `${system}|${n}`;
      runs.set(key, [...(runs.get(key) ?? []), await measure(system, n, secs)]);
    }
  }
}
for (const n of clientCounts) {
  for (const system of SYSTEMS) {
    const all = runs.get(`${system}|${n}`).sort((a, b) => a.p95_ms - b.p95_ms);
    const r = all[Math.floor((all.length - 1) / 2)];
    r.p95_runs = all.map((x) => x.p95_ms);
    measured[system].set(n, r);
    const common = { size: n, system, samples: reps, rate, secs, delivered_ratio: r.delivered_ratio, server_cpu: r.server_cpu, loadgen_cpu: r.loadgen_cpu };
    rows.push({ scenario: "broadcast", p50: r.p50_ms, p99: r.p99_ms, unit: "ms", ...common, p95: r.p95_ms, max: r.max_ms, p95_of_runs: r.p95_runs.map((v) => v.toFixed(2)).join(" ") });
    rows.push({ scenario: "committed", p50: r.committed_per_sec, p99: r.committed_per_sec, unit: "ops/s", ...common });
  }
}

// Largest N with p95 < 50 ms: double above the largest passing N, or bisect below the first failure.
for (const system of SEARCHED) {
  const tried = new Map([...measured[system]].map(([n, r]) => [n, r]));
  const passing = () => [...tried].filter(([, r]) => r.pass).map(([n]) => n);
  const failing = () => [...tried].filter(([, r]) => !r.pass).map(([n]) => n);
  if (!args["no-search"]) {
    for (let step = 0; step < (quick ? 1 : 4); step++) {
      const lo = Math.max(0, ...passing());
      const hi = Math.min(Infinity, ...failing().filter((n) => n > lo));
      let next;
      if (hi === Infinity) next = lo >= MAX_SEARCH_N ? null : Math.min(MAX_SEARCH_N, lo * 2);
      else if (hi - lo > Math.max(10, lo * 0.15)) next = Math.round((lo + hi) / 2 / 10) * 10 || Math.round((lo + hi) / 2);
      else next = null;
      if (!next || tried.has(next)) break;
      tried.set(next, await measure(system, next, searchSecs));
    }
  }
  // The largest passing N below the smallest failing one.
  const firstFail = Math.min(Infinity, ...failing());
  const best = Math.max(0, ...passing().filter((n) => n < firstFail));
  const list = [...tried].sort((a, b) => a[0] - b[0]).map(([n, r]) => `${n}: ${r.p95_ms.toFixed(1)} ms${r.delivered_ratio < 0.99 ? ` (${(100 * r.delivered_ratio).toFixed(0)}% delivered)` : ""}`).join(", ");
  const capped = best >= MAX_SEARCH_N ? ` (search capped at ${MAX_SEARCH_N})` : "";
  rows.push({ scenario: "max-clients", size: null, system, p50: best, p99: best, unit: "clients", samples: 1, tried: list + capped });
  log(`${system}: largest N with p95 < ${P95_LIMIT_MS} ms = ${best}${capped}  [${list}]`);
}

const versions = `@hocuspocus/server ${pkgVersion("@hocuspocus/server")}, yjs ${pkgVersion("yjs")}`;
const meta = {
  date: new Date().toISOString().slice(0, 10),
  load_average: `${loadStart} at the start, ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} at the end (1/5/15 min; other work on the machine)`,
  reps,
  machine: machine(),
  rate, secs, search_secs: searchSecs, quick,
  versions,
  duration_s: Math.round((Date.now() - started) / 1000),
};
const outDir = quick ? TMP : undefined;
await writeResults("server", rows, meta, outDir);
log(`done in ${meta.duration_s} s; wrote ${quick ? "bench/tmp/" : "bench/"}results.json, RESULTS.md, results.png`);
