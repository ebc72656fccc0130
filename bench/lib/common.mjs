// Helpers shared by bench/run.mjs (client) and bench/server.mjs (server).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = join(BENCH, "..");
export const TMP = join(BENCH, "tmp");

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
];

/** `--name=value` / `--flag` arguments. */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = {};
  for (const a of argv) {
    const m = a.match(/^--([^=]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unknown argument ${a}`);
    out[m[1]] = m[2] ?? true;
  }
  return out;
}

export function machine() {
  const model = cpuModel();
  return { cpu: model, cores: cpus().length, node: process.version, os: `${process.platform} ${process.arch}` };
}

function cpuModel() {
  try {
    const info = execFileSync("lscpu", { encoding: "utf8" });
    const name = info.match(/^Model name:\s*(.+)$/m)?.[1]?.trim();
    const family = info.match(/^CPU family:\s*(.+)$/m)?.[1]?.trim();
    const model = info.match(/^Model:\s*(.+)$/m)?.[1]?.trim();
    const mhz = cpus()[0]?.speed;
    const hyper = info.match(/^Hypervisor vendor:\s*(.+)$/m)?.[1]?.trim();
    return [name, family && `family ${family} model ${model}`, mhz && `${mhz} MHz`, hyper && `${hyper} VM`].filter(Boolean).join(", ");
  } catch {
    return cpus()[0]?.model ?? "unknown";
  }
}

export function chromiumVersion() {
  try {
    return execFileSync(CHROMIUM, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "unknown";
  }
}

/** Nearest-rank percentile of numbers. */
export function pct(samples, p) {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const log = (...a) => console.error("[bench]", ...a);

/** The installed version of an npm package (`node_modules/NAME/package.json`, or a nested path). */
export function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}
