#!/usr/bin/env node
// Many busy workspaces on one tandem-server: K workspaces, each with one writer at a fixed rate
// and one more reader, all at once. What it shows is the store's shared writer thread
// (crates/server/src/committer.rs): commits of different workspaces that queue up meanwhile go to
// disk in one transaction. Not part of `npm run bench:server`'s results; run it by hand:
//
//   node bench/server/workspaces.mjs [--workspaces=16] [--rate=250] [--secs=5] [--reps=3] [--no-build]
//
// Prints, per run, the median over workspaces of each workspace's p50 and p99 broadcast latency,
// the worst workspace's p99, and the committed ops/s of all of them. Server on core 0, the load
// generators (tandem-bench, one per workspace) on core 1, the store on the repository's disk.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { log, parseArgs, ROOT, TMP } from "../lib/common.mjs";
import { freePort, waitListening } from "../lib/ports.mjs";

const args = parseArgs();
const workspaces = Number(args.workspaces ?? 16);
const rate = Number(args.rate ?? 250);
const secs = Number(args.secs ?? 5);
const reps = Number(args.reps ?? 3);
const SECRET = `bench-${process.pid}`;
const release = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, "target"), "release");

if (!args["no-build"]) {
  log("cargo build --release -p tandem-server (bins tandem-server, tandem-bench)");
  execFileSync("cargo", ["build", "--release", "-p", "tandem-server"], { cwd: ROOT, stdio: "inherit" });
}
mkdirSync(TMP, { recursive: true });

/** The output of one tandem-bench process: its last line, JSON. */
function runGenerator(url, pid) {
  const gen = [join(release, "tandem-bench"), "--target", url, "--clients", "2", "--rate", String(rate), "--secs", String(secs),
    "--server-pid", String(pid), "--label", "tandem-server", "--json"];
  const child = spawn("taskset", ["-c", "1", ...gen], { env: { ...process.env, TANDEM_BENCH_SECRET: SECRET }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => { out += d; });
  // "close", not "exit": only then has all of its stdout been read.
  return new Promise((resolve, reject) => child.on("close", (code) => {
    try {
      if (code !== 0) throw new Error(`tandem-bench exited with ${code}`);
      resolve(JSON.parse(out.trim().split("\n").pop()));
    } catch (e) {
      reject(new Error(`${url}: ${e.message}`));
    }
  }));
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

for (let rep = 0; rep < reps; rep++) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(TMP, "tandem-workspaces-"));
  const server = spawn("taskset", ["-c", "0", join(release, "tandem-server"), "--listen", `127.0.0.1:${port}`, "--data", dataDir], {
    env: { ...process.env, TANDEM_JWT_SECRET: SECRET, TANDEM_LOG: "warn" }, stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await waitListening(port, server);
    const rows = await Promise.all(Array.from({ length: workspaces }, (_, i) => runGenerator(`ws://127.0.0.1:${port}/v1/sync/ws${i}`, server.pid)));
    const committed = rows.reduce((sum, r) => sum + r.committed_per_sec, 0);
    log(`${workspaces} workspaces × ${rate} ops/s: p50 ${median(rows.map((r) => r.p50_ms)).toFixed(2)} ms, ` +
      `p99 ${median(rows.map((r) => r.p99_ms)).toFixed(2)} ms (worst workspace ${Math.max(...rows.map((r) => r.p99_ms)).toFixed(2)}), ` +
      `${committed.toFixed(0)} ops/s committed`);
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => (server.exitCode !== null ? r() : server.once("exit", r)));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
