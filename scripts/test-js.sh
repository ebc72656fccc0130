#!/usr/bin/env bash
# The TypeScript layer (`npm test` suite "vitest"): builds the runtime into js/wasm (where the
# sources import it from), type-checks sources and tests, then runs Vitest — Node and jsdom
# suites, and the `*.test-d.ts` type tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-wasm.sh js/wasm --target web
node_modules/.bin/tsc -p js
node_modules/.bin/vitest run --config js/vitest.config.mts
