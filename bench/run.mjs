#!/usr/bin/env node
// Client benchmarks in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// builds the release wasm as it ships (scripts/build-wasm.sh) into bench/tmp/pkg, serves bench/
// on a loopback port, runs each phase of bench.mjs on its own page load, and prints the
// figures as JSON (also written to bench/tmp/results.json).
//
//   node bench/run.mjs              build, then run every phase
//   node bench/run.mjs --no-build   reuse bench/tmp/pkg
//   node bench/run.mjs --profile=update   CPU-profile one phase; prints the top functions by self time
import { execFileSync } from "node:child_process";
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, "..");
const PKG = join(BENCH, "tmp", "pkg");
const args = new Set(process.argv.slice(2));
const profiled = [...args].find((a) => a.startsWith("--profile="))?.slice("--profile=".length);

if (!args.has("--no-build")) {
  // Profiles want the function names; what ships has none.
  const names = profiled ? ["--keep-names"] : [];
  execFileSync(join(ROOT, "scripts", "build-wasm.sh"), [PKG, ...names, "--target", "web", "--no-pack"], { stdio: "inherit" });
}
const shipped = readFileSync(join(PKG, "tandem_bg.wasm"));
const size = {
  shipped_bytes: shipped.length,
  shipped_gzip_bytes: gzipSync(shipped, { level: 9 }).length,
  budget_gzip_bytes: 150 * 1024,
};

const TYPES = { ".html": "text/html", ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm" };
const server = createServer((req, res) => {
  const path = normalize(join(BENCH, decodeURIComponent(new URL(req.url, "http://x").pathname)));
  const file = path.endsWith("/") ? join(path, "index.html") : path;
  if (!file.startsWith(BENCH) || !existsSync(file) || statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, {
    "content-type": TYPES[extname(file)] ?? "application/octet-stream",
    // Cross-origin isolation: performance.now() at 5 µs resolution instead of 100 µs.
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
  });
  createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const results = { size };
try {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  const phases = profiled ? [profiled] : ["update", "batch", "recovery-write", "recovery-read"];
  for (const phase of phases) {
    const cdp = profiled ? await page.context().newCDPSession(page) : null;
    if (cdp) {
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 50 });
      await cdp.send("Profiler.start");
    }
    await page.goto(`${base}index.html?phase=${phase}`); // a new page load per phase (a reload for recovery-read)
    await page.waitForFunction(() => window.__bench !== undefined, null, { timeout: 120_000 });
    if (cdp) printProfile((await cdp.send("Profiler.stop")).profile);
    const outcome = await page.evaluate(() => window.__bench);
    if (!outcome.ok) throw new Error(`phase ${phase}: ${outcome.error}`);
    results[phase] = outcome.result;
    console.error(`[bench] ${phase}: ${JSON.stringify(outcome.result)}`);
  }
} finally {
  await browser.close();
  server.close();
}
function printProfile(profile) {
  const self = new Map();
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  for (const node of profile.nodes) {
    const name = `${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop()}`;
    self.set(name, (self.get(name) ?? 0) + (dt.get(node.id) ?? 0));
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 40);
  for (const [name, us] of top) console.error(`${(us / 1000).toFixed(1).padStart(9)} ms  ${name}`);
}

const out = JSON.stringify(results, null, 2);
writeFileSync(join(BENCH, "tmp", "results.json"), out);
console.log(out);
