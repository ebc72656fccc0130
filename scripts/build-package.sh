#!/usr/bin/env bash
# Builds the npm package `tandem-sync` into OUT_DIR (default dist/tandem-sync, ignored by git):
#
#   wasm/   the release build of the runtime (scripts/build-wasm.sh --target web) with the JS
#           snippets its glue imports, also left in js/wasm, where the TypeScript sources import
#           it from (and Vitest runs it)
#   dist/   js/src compiled by tsc: ES modules and their .d.ts
#   package.json, README.md from pkg-template/
#
#   scripts/build-package.sh [OUT_DIR]      then: cd OUT_DIR && npm pack
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/dist/tandem-sync}")"
cd "$ROOT"

scripts/build-wasm.sh js/wasm --target web
rm -rf "$OUT"
mkdir -p "$OUT/wasm"
cp js/wasm/tandem.js js/wasm/tandem_bg.wasm "$OUT/wasm/"
# JS the runtime's glue imports (wasm-bindgen's inline_js helpers).
cp -r js/wasm/snippets "$OUT/wasm/"
# The glue's classes declare `[Symbol.dispose]`, which type-checks only with TypeScript's
# esnext.disposable lib: dropped from the shipped declarations so an app's default `lib` (and
# `skipLibCheck: false`) works. The method is still there at run time where the engine has it.
grep -v '^    \[Symbol.dispose\](): void;$' js/wasm/tandem.d.ts >"$OUT/wasm/tandem.d.ts"
node_modules/.bin/tsc -p js/tsconfig.build.json --outDir "$OUT/dist"
cp pkg-template/package.json pkg-template/README.md "$OUT/"
echo "[build-package] $OUT"
